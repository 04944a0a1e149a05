package web

import (
	"context"
	"errors"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

// The site admin lives under adminPrefix on every tenant's host. Its session
// cookie is scoped to that path and host, and a session is bound to the
// website it was opened on, so a member of one tenant is a stranger to every
// other tenant's admin.
const (
	adminPrefix   = "/site_admin"
	sessionCookie = "pwb_session"

	// maxSmallForm bounds a sign-in form (an email and a password) and the
	// one-button forms (mark read, delete a photo).
	maxSmallForm = 16 << 10
	// maxAdminForm bounds a form without files; the longest field, a page
	// body, is 50,000 characters.
	maxAdminForm = 1 << 20
	// maxPhotosPerUpload and maxUploadBody bound a form with photos: each
	// photo is at most content.MaxPhotoBytes, plus room for the other fields.
	maxPhotosPerUpload = 6
	maxUploadBody      = maxPhotosPerUpload*content.MaxPhotoBytes + 1<<20
	// uploadMemory is how much of a multipart form is kept in memory; the
	// rest spills to temporary files until it is read.
	uploadMemory = 8 << 20

	adminPerPage = 20
)

// isSiteAdmin reports whether path is the site admin's.
func isSiteAdmin(path string) bool {
	return path == adminPrefix || strings.HasPrefix(path, adminPrefix+"/")
}

func (s *Server) siteAdminRoutes(mux *http.ServeMux) {
	a := func(pattern string, h handlerFunc) { mux.Handle(pattern, s.admin(s.member(h))) }

	mux.Handle("GET /site_admin/login", s.admin(s.loginForm))
	mux.Handle("POST /site_admin/login", s.admin(s.login))
	mux.Handle("POST /site_admin/logout", s.admin(s.logout))

	a("GET /site_admin", s.dashboard)
	a("GET /site_admin/{$}", func(w http.ResponseWriter, r *http.Request) error {
		http.Redirect(w, r, adminPrefix, http.StatusMovedPermanently)
		return nil
	})

	a("GET /site_admin/properties", s.adminProperties)
	a("GET /site_admin/properties/new", s.newProperty)
	a("POST /site_admin/properties", s.createProperty)
	a("GET /site_admin/properties/{id}/edit", s.editProperty)
	a("POST /site_admin/properties/{id}", s.updateProperty)
	a("POST /site_admin/properties/{id}/delete", s.deleteProperty)
	a("POST /site_admin/properties/{id}/photos", s.uploadPhotos)
	a("POST /site_admin/properties/{id}/photos/{photo}/position", s.movePhoto)
	a("GET /site_admin/photos/{id}", s.photo(false))
	a("POST /site_admin/photos/{id}/delete", s.deletePhoto)

	a("GET /site_admin/messages", s.adminMessages)
	a("GET /site_admin/messages/{id}", s.adminMessage)
	a("POST /site_admin/messages/{id}/read", s.markMessage)

	a("GET /site_admin/pages", s.adminPages)
	a("GET /site_admin/pages/new", s.newPage)
	a("POST /site_admin/pages", s.createPage)
	a("GET /site_admin/pages/{id}/edit", s.editPage)
	a("POST /site_admin/pages/{id}", s.updatePage)
	a("POST /site_admin/pages/{id}/delete", s.deletePage)

	a("GET /site_admin/agency", s.agencyForm)
	a("POST /site_admin/agency", s.saveAgency)

	// Anything else under the admin is not found, but only a member learns
	// which addresses exist.
	a("/site_admin/", notFound)
}

// admin is s.handle for admin pages: nothing an admin sees is cached, by the
// browser or anything between.
func (s *Server) admin(h handlerFunc) http.Handler {
	inner := s.handle(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		inner.ServeHTTP(w, r)
	})
}

type memberKey struct{}

// memberFrom returns the signed-in member of an admin request.
func memberFrom(ctx context.Context) account.Session {
	m, _ := ctx.Value(memberKey{}).(account.Session)
	return m
}

// currentSession returns the session of the request's cookie on this
// request's website, or account.ErrNoSession.
func (s *Server) currentSession(r *http.Request) (account.Session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return account.Session{}, account.ErrNoSession
	}
	return account.LookupSession(r.Context(), s.accounts, c.Value, siteFrom(r.Context()).Website.ID)
}

// member lets h run only for a signed-in member of the request's website.
// Anybody else is sent to sign in (GET) or refused (anything that would
// change something).
func (s *Server) member(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		sess, err := s.currentSession(r)
		if errors.Is(err, account.ErrNoSession) {
			if _, err := r.Cookie(sessionCookie); err == nil {
				s.clearSessionCookie(w) // stale: expired, ended or another website's
			}
			if safeMethod(r.Method) {
				http.Redirect(w, r, adminPrefix+"/login?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
				return nil
			}
			return errorPage(http.StatusUnauthorized, "Please sign in",
				"You are not signed in to this website's admin, or your session has ended. Nothing was changed.")
		}
		if err != nil {
			return err
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), memberKey{}, sess)))
	}
}

// renderAdmin draws an admin page. The admin's chrome is only the site's name:
// admin pages need nothing else of the public site.
func (s *Server) renderAdmin(w http.ResponseWriter, r *http.Request, status int, name string, v view) error {
	ws := siteFrom(r.Context()).Website
	v.Site = &chrome{Name: ws.Name, ReadOnly: ws.Status == registry.StatusReadOnly}
	v.Member = memberFrom(r.Context()).Email
	v.Path = r.URL.Path
	v.RequestID = requestFrom(r.Context()).ID
	if v.Flash == "" {
		v.Flash = flash(r)
	}
	return s.pages.render(w, status, name, v)
}

// flashes are the notices a redirect after a change asks for with ?done=KEY.
// Only these fixed texts are shown, so a link cannot put words on the page.
var flashes = map[string]string{
	"created":       "Created.",
	"saved":         "Saved.",
	"deleted":       "Deleted.",
	"photos":        "Photos added.",
	"photo_deleted": "Photo deleted.",
	"photo_moved":   "Photo moved.",
	"cover":         "Cover photo chosen: it is shown first.",
	"read":          "Marked as read.",
	"unread":        "Marked as unread.",
}

func flash(r *http.Request) string {
	return flashes[r.URL.Query().Get("done")]
}

// redirectDone sends the browser to path after a change, with its notice.
// A #fragment of path stays at the end, where it belongs.
func redirectDone(w http.ResponseWriter, r *http.Request, path, done string) error {
	path, fragment, found := strings.Cut(path, "#")
	if found {
		fragment = "#" + fragment
	}
	http.Redirect(w, r, path+"?done="+done+fragment, http.StatusSeeOther)
	return nil
}

// ---- signing in and out ----

type loginData struct {
	Email, Next string
}

// safeNext returns next when it is an address inside this site's admin, so a
// link cannot use the sign-in page to send a member elsewhere.
func safeNext(next string) string {
	if next != adminPrefix && !strings.HasPrefix(next, adminPrefix+"/") && !strings.HasPrefix(next, adminPrefix+"?") ||
		strings.ContainsAny(next, "\\\r\n\t") || strings.HasPrefix(next, adminPrefix+"/login") {
		return adminPrefix
	}
	return next
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"))
	switch _, err := s.currentSession(r); {
	case err == nil:
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	case !errors.Is(err, account.ErrNoSession):
		return err
	}
	return s.renderLogin(w, r, http.StatusOK, loginData{Next: next}, "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, status int, d loginData, msg string) error {
	v := view{Title: "Sign in", Data: d, Error: msg}
	if r.URL.Query().Get("done") == "logout" {
		v.Flash = "You have signed out."
	}
	v.Site = &chrome{Name: siteFrom(r.Context()).Website.Name}
	v.Path, v.RequestID = r.URL.Path, requestFrom(r.Context()).ID
	return s.pages.render(w, status, "admin/login", v)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	st := siteFrom(r.Context())
	if err := parseForm(w, r, maxSmallForm); err != nil {
		return err
	}
	d := loginData{Email: strings.TrimSpace(r.PostForm.Get("email")), Next: safeNext(r.PostForm.Get("next"))}
	attempt, refused, err := s.countSignIn(w, r, d.Email, st.Website.ID, st.Website.Subdomain)
	if err != nil {
		return err
	}
	if refused != "" {
		return s.renderLogin(w, r, http.StatusTooManyRequests, d, refused)
	}
	m, err := account.Authenticate(r.Context(), s.accounts, st.Website.ID, r.PostForm.Get("email"), r.PostForm.Get("password"))
	if errors.Is(err, account.ErrBadCredentials) {
		return s.renderLogin(w, r, http.StatusUnauthorized, d, "Wrong email or password.")
	}
	if err != nil {
		return err
	}
	if err := s.succeeded(r.Context(), attempt); err != nil {
		return err
	}
	// A new token on every sign-in: a token planted before it (session
	// fixation) is ended, never promoted.
	if old, err := r.Cookie(sessionCookie); err == nil {
		if err := account.DeleteSession(r.Context(), s.accounts, old.Value); err != nil {
			return err
		}
	}
	token, err := account.CreateSession(r.Context(), s.accounts, m, s.sessionTTL)
	if err != nil {
		return err
	}
	http.SetCookie(w, s.sessionCookie(token, int(s.sessionTTL.Seconds())))
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := account.DeleteSession(r.Context(), s.accounts, c.Value); err != nil {
			return err
		}
	}
	s.clearSessionCookie(w)
	http.Redirect(w, r, adminPrefix+"/login?done=logout", http.StatusSeeOther)
	return nil
}

func (s *Server) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: sessionCookie, Value: value, Path: adminPrefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.secureCookies,
	}
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, s.sessionCookie("", -1))
}

// ---- dashboard ----

type dashboardData struct {
	Counts   content.Counts
	Messages []content.Message
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) error {
	sc := siteFrom(r.Context()).Scope
	var d dashboardData
	var err error
	if d.Counts, err = content.CountAll(r.Context(), sc); err != nil {
		return err
	}
	if d.Messages, _, err = content.ListMessages(r.Context(), sc, 1, 5); err != nil {
		return err
	}
	return s.renderAdmin(w, r, http.StatusOK, "admin/dashboard", view{Title: "Dashboard", Data: d})
}

// ---- helpers shared by the admin's handlers ----

// parseForm reads a url-encoded form of at most limit bytes. A larger body
// is a 413 page; a body that is not a form, a 400.
func parseForm(w http.ResponseWriter, r *http.Request, limit int64) error {
	if r.ContentLength > limit {
		return &http.MaxBytesError{Limit: limit}
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseForm(); err != nil {
		return formError(err)
	}
	return nil
}

// parseUpload reads a form that may carry photos (multipart) or not
// (url-encoded), of at most maxUploadBody bytes. The caller must call
// cleanupUpload when done.
func parseUpload(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength > maxUploadBody {
		return &http.MaxBytesError{Limit: maxUploadBody}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBody)
	err := r.ParseMultipartForm(uploadMemory)
	if errors.Is(err, http.ErrNotMultipart) {
		err = r.ParseForm()
	}
	if err != nil {
		return formError(err)
	}
	return nil
}

func cleanupUpload(r *http.Request) {
	if r.MultipartForm != nil {
		_ = r.MultipartForm.RemoveAll()
	}
}

func formError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || errors.Is(err, multipart.ErrMessageTooLarge) {
		return &httpError{status: http.StatusRequestEntityTooLarge, title: "Too large",
			message: "What you sent is larger than this form accepts. Nothing was saved.", err: err}
	}
	return &httpError{status: http.StatusBadRequest, title: "Bad request",
		message: "The form could not be read. Nothing was saved.", err: err}
}

// pathID parses the {id} of an address. A malformed id names nothing, so it
// is a 404 like an id of another website.
func pathID(r *http.Request) (uuid.UUID, error) {
	return content.ParseID(r.PathValue("id"))
}

// pageParam reads ?page=, 1 when absent or nonsense.
func pageParam(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return min(n, 1_000_000)
}

// pager is what the admin's lists show below their table.
type pager struct {
	Page, Pages int
	URL         *url.URL
}

func newPager(r *http.Request, page, total, perPage int) pager {
	pages := max((total+perPage-1)/perPage, 1)
	return pager{Page: page, Pages: pages, URL: r.URL}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// invalidFields returns the field messages of a content.InvalidError, or nil
// when err is not one.
func invalidFields(err error) fieldErr {
	var invalid *content.InvalidError
	if errors.As(err, &invalid) {
		return invalid.Fields
	}
	return nil
}
