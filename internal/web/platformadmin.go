package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/propertywebbuilder/pwb/internal/account"
)

// The platform admin lives under opsPrefix on the platform's own host (the
// bare platform domain), never on a tenant's. It has its own accounts (users
// with the super-admin role), its own sessions and cookie, scoped to its
// path, and checks a CSRF token on every change on top of the cross-origin
// check every form gets.
const (
	opsPrefix     = "/admin"
	opsCookie     = "pwb_platform"
	opsPerPage    = 25
	opsCSRFField  = "csrf"
	opsCSRFHeader = "X-CSRF-Token"
)

func (s *Server) platformAdminRoutes(mux *http.ServeMux) {
	a := func(pattern string, h handlerFunc) { mux.Handle(pattern, s.admin(s.superAdmin(h))) }

	mux.Handle("GET /admin/login", s.admin(s.opsLoginForm))
	mux.Handle("POST /admin/login", s.admin(s.opsLogin))
	mux.Handle("POST /admin/logout", s.admin(s.opsLogout))

	a("GET /admin", s.opsDashboard)
	a("GET /admin/{$}", func(w http.ResponseWriter, r *http.Request) error {
		http.Redirect(w, r, opsPrefix, http.StatusMovedPermanently)
		return nil
	})
	a("GET /admin/shards", s.opsShardCards)
	a("GET /admin/tenants", s.opsTenants)
	a("GET /admin/tenants/{id}", s.opsTenant)
	a("GET /admin/tenants/{id}/migrate", s.opsMigrateForm)
	a("POST /admin/tenants/{id}/migrate", s.opsMigrate)
	a("GET /admin/moves/{id}", s.opsMove)
	a("GET /admin/moves/{id}/progress", s.opsMoveProgress)
	a("GET /admin/moves/{id}/events", s.opsMoveEvents)
	a("POST /admin/moves/{id}/resume", s.opsResume)
	a("POST /admin/moves/{id}/abort", s.opsAbort)
	a("GET /admin/audit", s.opsAudit)
	a("GET /admin/sign-in-locks", s.opsLocks)
	a("POST /admin/sign-in-locks/clear", s.opsClearLock)
	a("/admin/", notFound)
}

type opsSessionKey struct{}

// opsSessionFrom returns the signed-in super-admin of a platform admin
// request.
func opsSessionFrom(ctx context.Context) account.PlatformSession {
	sess, _ := ctx.Value(opsSessionKey{}).(account.PlatformSession)
	return sess
}

func (s *Server) currentOpsSession(r *http.Request) (account.PlatformSession, error) {
	c, err := r.Cookie(opsCookie)
	if err != nil || c.Value == "" {
		return account.PlatformSession{}, account.ErrNoSession
	}
	return account.LookupPlatformSession(r.Context(), s.accounts, c.Value)
}

// superAdmin lets h run only for a signed-in super-admin. Anonymous GETs
// are sent to sign in; anything else anonymous is 401; a signed-in user
// without the platform role is 403; a change without this session's CSRF
// token is 403.
func (s *Server) superAdmin(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sess, err := s.currentOpsSession(r)
		if errors.Is(err, account.ErrNoSession) {
			if _, err := r.Cookie(opsCookie); err == nil {
				s.setOpsCookie(w, "", -1) // stale: expired or ended
			}
			if safeMethod(r.Method) {
				http.Redirect(w, r, opsPrefix+"/login?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
				return nil
			}
			return errorPage(http.StatusUnauthorized, "Please sign in",
				"You are not signed in to the platform admin, or your session has ended. Nothing was changed.")
		}
		if err != nil {
			return err
		}
		if !sess.SuperAdmin {
			return errorPage(http.StatusForbidden, "Forbidden",
				"Your account cannot open the platform admin: it needs the super-admin role.")
		}
		if !safeMethod(r.Method) {
			if err := parseForm(w, r, maxSmallForm); err != nil {
				return err
			}
			if !sess.ValidCSRF(r.PostForm.Get(opsCSRFField)) && !sess.ValidCSRF(r.Header.Get(opsCSRFHeader)) {
				return errorPage(http.StatusForbidden, "Forbidden",
					"This form's security token is missing or out of date, so it was refused. Nothing was changed; reload the page and try again.")
			}
		}
		// The first signed-in request starts the server's own health
		// poller, if it has one, so the shards are being checked by the
		// time the dashboard is looked at.
		s.poller()
		return h(w, r.WithContext(context.WithValue(r.Context(), opsSessionKey{}, sess)))
	}
}

// opsView is what every platform admin page receives as view.Data's frame.
type opsView struct {
	Email string
	CSRF  string
	Page  any
}

// renderOps draws a platform admin page.
func (s *Server) renderOps(w http.ResponseWriter, r *http.Request, status int, name, title string, page any) error {
	return s.renderOpsMsg(w, r, status, name, title, page, "")
}

// renderOpsMsg is renderOps with a form-level error message.
func (s *Server) renderOpsMsg(w http.ResponseWriter, r *http.Request, status int, name, title string, page any, msg string) error {
	sess := opsSessionFrom(r.Context())
	v := view{Title: title, Path: r.URL.Path, RequestID: requestFrom(r.Context()).ID, Flash: opsFlash(r), Error: msg,
		Member: sess.Email, Data: opsView{Email: sess.Email, CSRF: sess.CSRF, Page: page}}
	return s.pages.render(w, status, name, v)
}

// opsFlashes are the notices of ?done= after a change; the move page's own
// are moveNotices.
var opsFlashes = map[string]string{
	"unlocked": "The lock is cleared: sign-ins are let through again.",
}

func opsFlash(r *http.Request) string { return opsFlashes[r.URL.Query().Get("done")] }

// ---- signing in and out ----

func safeOpsNext(next string) string {
	if next != opsPrefix && !strings.HasPrefix(next, opsPrefix+"/") && !strings.HasPrefix(next, opsPrefix+"?") ||
		strings.ContainsAny(next, "\\\r\n\t") || strings.HasPrefix(next, opsPrefix+"/login") || strings.HasPrefix(next, "//") {
		return opsPrefix
	}
	return next
}

func (s *Server) opsLoginForm(w http.ResponseWriter, r *http.Request) error {
	next := safeOpsNext(r.URL.Query().Get("next"))
	switch sess, err := s.currentOpsSession(r); {
	case err == nil && sess.SuperAdmin:
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	case err != nil && !errors.Is(err, account.ErrNoSession):
		return err
	}
	return s.renderOpsLogin(w, r, http.StatusOK, loginData{Next: next}, "")
}

func (s *Server) renderOpsLogin(w http.ResponseWriter, r *http.Request, status int, d loginData, msg string) error {
	v := view{Title: "Sign in", Data: d, Error: msg, Path: r.URL.Path, RequestID: requestFrom(r.Context()).ID}
	if r.URL.Query().Get("done") == "logout" {
		v.Flash = "You have signed out."
	}
	return s.pages.render(w, status, "ops/login", v)
}

func (s *Server) opsLogin(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r, maxSmallForm); err != nil {
		return err
	}
	d := loginData{Email: strings.TrimSpace(r.PostForm.Get("email")), Next: safeOpsNext(r.PostForm.Get("next"))}
	attempt, refused, err := s.countSignIn(w, r, d.Email, 0, "")
	if err != nil {
		return err
	}
	if refused != "" {
		return s.renderOpsLogin(w, r, http.StatusTooManyRequests, d, refused)
	}
	u, err := account.AuthenticatePlatform(r.Context(), s.accounts, r.PostForm.Get("email"), r.PostForm.Get("password"))
	switch {
	case errors.Is(err, account.ErrBadCredentials):
		return s.renderOpsLogin(w, r, http.StatusUnauthorized, d, "Wrong email or password.")
	case errors.Is(err, account.ErrNotSuperAdmin):
		// The password was right: its attempt is given back, and no
		// session is opened for an account that could use none.
		if err := s.succeeded(r.Context(), attempt); err != nil {
			return err
		}
		return s.renderOpsLogin(w, r, http.StatusForbidden, d,
			"This account cannot open the platform admin: it needs the super-admin role. To manage a website, sign in to its site admin.")
	case err != nil:
		return err
	}
	if err := s.succeeded(r.Context(), attempt); err != nil {
		return err
	}
	if old, err := r.Cookie(opsCookie); err == nil {
		if err := account.DeletePlatformSession(r.Context(), s.accounts, old.Value); err != nil {
			return err
		}
	}
	token, err := account.CreatePlatformSession(r.Context(), s.accounts, u.ID, s.sessionTTL)
	if err != nil {
		return err
	}
	s.setOpsCookie(w, token, int(s.sessionTTL.Seconds()))
	s.poller()
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
	return nil
}

func (s *Server) opsLogout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(opsCookie); err == nil {
		if err := account.DeletePlatformSession(r.Context(), s.accounts, c.Value); err != nil {
			return err
		}
	}
	s.setOpsCookie(w, "", -1)
	http.Redirect(w, r, opsPrefix+"/login?done=logout", http.StatusSeeOther)
	return nil
}

// setOpsCookie sets (or, with maxAge -1, clears) the platform session
// cookie: HttpOnly, SameSite Strict, and only sent to /admin.
func (s *Server) setOpsCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: opsCookie, Value: value, Path: opsPrefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.secureCookies,
	})
}
