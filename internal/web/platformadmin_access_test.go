package web

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// ---- helpers of the platform admin access tests (prefixed pa) ----

const paPassword = "correct horse battery" // the harness's password for every account

// paRoute is one request to a route of the platform admin that needs a
// super-admin, and the pattern of platformAdminRoutes it must reach.
type paRoute struct {
	method, path, pattern string
	form                  url.Values // what a POST sends, besides a CSRF token
}

func (r paRoute) String() string { return r.method + " " + r.path }

// paRoutes is every route of the platform admin behind the super-admin
// check, with a real tenant and a real (unfinished) move where the path
// needs one. TestOps_AccessTableCoversEveryRoute keeps it complete.
func paRoutes(tenantID, moveID int64) []paRoute {
	t, m := strconv.FormatInt(tenantID, 10), strconv.FormatInt(moveID, 10)
	return []paRoute{
		{http.MethodGet, "/admin", "GET /admin", nil},
		{http.MethodGet, "/admin/", "GET /admin/{$}", nil},
		{http.MethodGet, "/admin/shards", "GET /admin/shards", nil},
		{http.MethodGet, "/admin/tenants?premium=1&sort=properties", "GET /admin/tenants", nil},
		{http.MethodGet, "/admin/tenants/" + t, "GET /admin/tenants/{id}", nil},
		{http.MethodGet, "/admin/tenants/" + t + "/migrate", "GET /admin/tenants/{id}/migrate", nil},
		{http.MethodPost, "/admin/tenants/" + t + "/migrate", "POST /admin/tenants/{id}/migrate", url.Values{"target": {"shard_1"}, "confirm": {"yes"}}},
		{http.MethodGet, "/admin/moves/" + m, "GET /admin/moves/{id}", nil},
		{http.MethodGet, "/admin/moves/" + m + "/progress", "GET /admin/moves/{id}/progress", nil},
		{http.MethodGet, "/admin/moves/" + m + "/events", "GET /admin/moves/{id}/events", nil},
		{http.MethodPost, "/admin/moves/" + m + "/resume", "POST /admin/moves/{id}/resume", url.Values{}},
		{http.MethodPost, "/admin/moves/" + m + "/abort", "POST /admin/moves/{id}/abort", url.Values{"confirm": {"yes"}}},
		{http.MethodGet, "/admin/audit?page=2", "GET /admin/audit", nil},
		{http.MethodGet, "/admin/sign-in-locks", "GET /admin/sign-in-locks", nil},
		{http.MethodPost, "/admin/sign-in-locks/clear", "POST /admin/sign-in-locks/clear", url.Values{"kind": {"sign_in_account"}, "subject": {"locked@example.com"}}},
		{http.MethodGet, "/admin/no-such-page", "/admin/", nil},
		{http.MethodPost, "/admin/no-such-page", "/admin/", url.Values{}},
	}
}

// paPublic are the platform admin's routes that anybody may call; the
// sign-in tests cover them.
var paPublic = []string{"GET /admin/login", "POST /admin/login", "POST /admin/logout"}

// paDo sends one request to host with form (POST) and the cookies, and
// header as extra headers.
func paDo(p *platform, method, host, path string, form url.Values, header http.Header, cookies ...*http.Cookie) response {
	p.t.Helper()
	var body io.Reader
	if method != http.MethodGet && method != http.MethodHead {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return p.do(host, req)
}

// paSend sends route on the platform host with csrf, if any, in its form.
func paSend(p *platform, rt paRoute, csrf string, header http.Header, cookies ...*http.Cookie) response {
	p.t.Helper()
	form := url.Values{}
	for k, v := range rt.form {
		form[k] = v
	}
	if csrf != "" {
		form.Set(opsCSRFField, csrf)
	}
	return paDo(p, rt.method, "localhost", rt.path, form, header, cookies...)
}

// paWantAnonymous checks the answer to a request the platform admin must
// treat as anonymous: a GET is sent to sign in with next set to where it
// was going, anything else is 401.
func paWantAnonymous(t *testing.T, what string, rt paRoute, r response) {
	t.Helper()
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: %s: Cache-Control %q, want no-store", what, rt, r.Header.Get("Cache-Control"))
	}
	if rt.method != http.MethodGet {
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "not signed in") {
			t.Errorf("%s: %s: status %d, want 401 asking to sign in\n%s", what, rt, r.StatusCode, excerpt(r.Body))
		}
		return
	}
	loc, err := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusSeeOther || err != nil || loc.Path != "/admin/login" || loc.Host != "" || loc.Query().Get("next") != rt.path {
		t.Errorf("%s: %s: status %d to %q, want 303 to /admin/login?next=%s", what, rt, r.StatusCode, r.Header.Get("Location"), rt.path)
	}
}

// paWantForbidden checks a 403 for a signed-in user without the
// super-admin role.
func paWantForbidden(t *testing.T, what string, rt paRoute, r response) {
	t.Helper()
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "needs the super-admin role") {
		t.Errorf("%s: %s: status %d, want 403 for the missing role\n%s", what, rt, r.StatusCode, excerpt(r.Body))
	}
}

// paWantStatus is wantStatus with the page's text checked too (as the
// visitor reads it: unescaped).
func paWantStatus(t *testing.T, what string, r response, status int, text ...string) {
	t.Helper()
	if r.StatusCode != status {
		t.Errorf("%s: %s %s: status %d, want %d\n%s", what, r.Request.Method, r.Request.URL.Path, r.StatusCode, status, excerpt(r.Body))
		return
	}
	body := html.UnescapeString(r.Body)
	for _, s := range text {
		if !strings.Contains(body, s) {
			t.Errorf("%s: %s %s: page lacks %q\n%s", what, r.Request.Method, r.Request.URL.Path, s, excerpt(r.Body))
		}
	}
}

// paCookie returns the response's platform session cookie, if it sets one.
func paCookie(r response) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == opsCookie {
			return c
		}
	}
	return nil
}

// paState is what an admin action could change on primary: the journal,
// the move jobs, the registry and the sign-in counts and locks.
type paState struct {
	Moves, Jobs                  int64
	Journal, Registry, Throttles string
}

func paSnapshot(t *testing.T, p *platform) paState {
	t.Helper()
	var s paState
	err := p.primary.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM moves),
		(SELECT count(*) FROM river_job WHERE kind = 'move'),
		(SELECT COALESCE(string_agg(concat_ws(':', id, website_id, state, source_shard, target_shard, updated_at, target_cleared), ',' ORDER BY id), '') FROM moves),
		(SELECT COALESCE(string_agg(row_to_json(w)::text, ',' ORDER BY id), '') FROM websites w),
		(SELECT COALESCE(string_agg(concat_ws(':', kind, subject, locked_until), ',' ORDER BY kind, subject), '')
			FROM throttles WHERE locked_until IS NOT NULL)`).
		Scan(&s.Moves, &s.Jobs, &s.Journal, &s.Registry, &s.Throttles)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func paWantUnchanged(t *testing.T, p *platform, what string, before paState) {
	t.Helper()
	after := paSnapshot(t, p)
	if after.Moves != before.Moves || after.Jobs != before.Jobs {
		t.Errorf("%s: moves %d → %d, move jobs %d → %d; want no change", what, before.Moves, after.Moves, before.Jobs, after.Jobs)
	}
	if after.Journal != before.Journal {
		t.Errorf("%s: the journal changed:\n%s\n→\n%s", what, before.Journal, after.Journal)
	}
	if after.Registry != before.Registry {
		t.Errorf("%s: the registry changed:\n%s\n→\n%s", what, before.Registry, after.Registry)
	}
	if after.Throttles != before.Throttles {
		t.Errorf("%s: the sign-in locks changed:\n%s\n→\n%s", what, before.Throttles, after.Throttles)
	}
}

// paPlanMove records a planned move of w to target in the journal, with no
// job to run it.
func paPlanMove(t *testing.T, mv *mover.Mover, w registry.Website, target string) int64 {
	t.Helper()
	ctx := context.Background()
	plan, err := mv.Plan(ctx, strconv.FormatInt(w.ID, 10), target, journal.ModeFreeze)
	if err != nil {
		t.Fatal(err)
	}
	id, err := mv.Start(ctx, plan, "test")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func paRandomToken() string {
	raw := make([]byte, 32)
	rand.Read(raw)
	return base64.RawURLEncoding.EncodeToString(raw)
}

var paMoveLocation = regexp.MustCompile(`^/admin/moves/([0-9]+)\?done=(queued|resumed|aborted)$`)

// ---- tests ----

func TestOps_SafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                              "/admin",
		"/admin":                        "/admin",
		"/admin/tenants?page=2":         "/admin/tenants?page=2",
		"/admin?x=1":                    "/admin?x=1",
		"/admin/moves/3":                "/admin/moves/3",
		"//evil.example":                "/admin",
		"//evil.example/admin":          "/admin",
		"https://evil.example":          "/admin",
		"https://evil.example/admin":    "/admin",
		"http://localhost/admin":        "/admin",
		"javascript:alert(1)":           "/admin",
		"/adminevil":                    "/admin",
		"/admin.evil.example":           "/admin",
		"/admin/\\evil.example":         "/admin",
		"/\\evil.example":               "/admin",
		"/admin/\r\nSet-Cookie: x=1":    "/admin",
		"/admin/login":                  "/admin",
		"/admin/login?next=/admin/x":    "/admin",
		"/site_admin":                   "/admin",
		"/":                             "/admin",
		"admin":                         "/admin",
		"/admin/tenants/1/migrate#frag": "/admin/tenants/1/migrate#frag",
	} {
		if got := safeOpsNext(in); got != want {
			t.Errorf("safeOpsNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// The table of the access tests names every route platformAdminRoutes
// registers, and each of its requests reaches the route it is meant for.
func TestOps_AccessTableCoversEveryRoute(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("platformadmin.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:a|mux\.Handle)\("([^"]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(m) < 10 {
		t.Fatalf("found only %d routes in platformadmin.go: has the way routes are registered changed?", len(m))
	}
	mux := http.NewServeMux()
	(&Server{}).platformAdminRoutes(mux)
	covered := map[string]bool{}
	for _, p := range paPublic {
		covered[p] = true
	}
	for _, rt := range paRoutes(7, 9) {
		_, pattern := mux.Handler(httptest.NewRequest(rt.method, rt.path, nil))
		if pattern != rt.pattern {
			t.Errorf("%s reaches route %q, want %q", rt, pattern, rt.pattern)
		}
		covered[pattern] = true
	}
	for _, sm := range m {
		if !covered[sm[1]] {
			t.Errorf("route %q is not in the access tests' table (paRoutes)", sm[1])
		}
	}
}

// Every route of the platform admin, for everybody but a signed-in
// super-admin: anonymous visitors, a tenant's site admin (with their site
// session and with a platform session of their own), forged, expired and
// orphaned sessions, a demoted admin, and any request on a tenant's host.
// Then CSRF and the refusals of the move forms. Nothing of it may change the
// journal, the move jobs or the registry.
func TestOps_AccessControl(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 2, jobs: true})
	p.fastHealth()
	ctx := context.Background()
	acme := p.tenant("acme", shard.Default)   // to migrate
	bravo := p.tenant("bravo", shard.Default) // has a planned move
	delta := p.tenant("delta", shard.Default) // moved to shard_1: a done move
	maint := p.tenant("maint", shard.Default) // in maintenance
	for _, w := range []registry.Website{acme, bravo, delta} {
		if err := movertest.Fill(ctx, p.primary, w.ID, movertest.Options{Properties: 4, Photos: 1}); err != nil {
			t.Fatal(err)
		}
	}
	mv, err := mover.New(p.set, mover.Options{CleanupDelay: mover.NoCleanupDelay})
	if err != nil {
		t.Fatal(err)
	}
	planned := paPlanMove(t, mv, bravo, "shard_1")
	done := paPlanMove(t, mv, delta, "shard_1")
	if m, err := mv.Run(ctx, done); err != nil || m.State != journal.StateDone {
		t.Fatalf("running move %d: %v, %v", done, m.State, err)
	}
	if err := registry.SetStatus(ctx, p.primary, maint.ID, registry.StatusMaintenance); err != nil {
		t.Fatal(err)
	}
	routes := paRoutes(acme.ID, planned)
	cookie, csrf := p.superAdmin("ops@example.com")
	if n := paSnapshot(t, p).Jobs; n != 0 {
		t.Fatalf("%d move jobs before any request, want 0", n)
	}

	// The super-admin opens every page, so the refusals below are the
	// callers', not the pages'.
	t.Run("a super-admin opens every page", func(t *testing.T) {
		for _, rt := range routes {
			if rt.method != http.MethodGet {
				continue
			}
			want := http.StatusOK
			switch rt.pattern {
			case "GET /admin/{$}":
				want = http.StatusMovedPermanently
			case "/admin/":
				want = http.StatusNotFound
			case "GET /admin/moves/{id}/events":
				rt.path = "/admin/moves/" + strconv.FormatInt(done, 10) + "/events" // a finished move's stream ends at once
			}
			r := paSend(p, rt, "", nil, cookie)
			if r.StatusCode != want {
				t.Errorf("%s: status %d, want %d\n%s", rt, r.StatusCode, want, excerpt(r.Body))
			}
		}
	})

	t.Run("anonymous: GETs go to sign in, POSTs are 401", func(t *testing.T) {
		before := paSnapshot(t, p)
		for _, rt := range routes {
			r := paSend(p, rt, "", nil)
			paWantAnonymous(t, "anonymous", rt, r)
			if rt.method == http.MethodGet {
				// The sign-in page it is sent to keeps the address.
				login := p.get("localhost", r.Header.Get("Location"))
				paWantStatus(t, "sign-in page", login, http.StatusOK, `name="next" value="`+rt.path+`"`)
			}
			// A guessed CSRF token changes nothing either.
			if rt.method == http.MethodPost {
				paWantAnonymous(t, "anonymous with a token", rt, paSend(p, rt, csrf, nil))
			}
		}
		paWantUnchanged(t, p, "anonymous requests", before)
	})

	t.Run("a tenant's site admin", func(t *testing.T) {
		before := paSnapshot(t, p)
		email, password := p.member(acme, "owner@acme.example")
		site := saSignIn(t, p, "acme.localhost", email, password)
		wantStatus(t, p.get("acme.localhost", "/site_admin", site), http.StatusOK)

		// Their site-admin session is no platform session: neither as the
		// cookie the browser has, nor with its token put in the platform
		// cookie.
		asPlatform := &http.Cookie{Name: opsCookie, Value: site.Value}
		for _, rt := range routes {
			paWantAnonymous(t, "site-admin cookie", rt, paSend(p, rt, "", nil, site))
			paWantAnonymous(t, "site-admin token as the platform cookie", rt, paSend(p, rt, account.CSRFToken(site.Value), nil, asPlatform))
		}

		// The same email and password at /admin/login are refused with a
		// clear answer, and open no platform session.
		var sessions int
		countSessions := func() int {
			if err := p.primary.QueryRow(ctx, "SELECT count(*) FROM platform_sessions").Scan(&sessions); err != nil {
				t.Fatal(err)
			}
			return sessions
		}
		n := countSessions()
		r := p.postForm("localhost", "/admin/login", url.Values{"email": {email}, "password": {password}})
		paWantStatus(t, "site admin signing in at /admin", r, http.StatusForbidden, "cannot open the platform admin", "sign in to its site admin")
		if c := paCookie(r); c != nil {
			t.Errorf("a site admin signing in at /admin got a cookie: %v", c)
		}
		if got := countSessions(); got != n {
			t.Errorf("a site admin signing in at /admin made %d platform session rows", got-n)
		}
		// A platform session of theirs, had one been made, opens nothing.
		u, err := account.FindUserByEmail(ctx, p.primary, email)
		if err != nil {
			t.Fatal(err)
		}
		token, err := account.CreatePlatformSession(ctx, p.primary, u.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ops, opsCSRF := &http.Cookie{Name: opsCookie, Value: token}, account.CSRFToken(token)
		for _, rt := range routes {
			paWantForbidden(t, "site admin with a platform session", rt, paSend(p, rt, opsCSRF, nil, ops))
			if rt.method == http.MethodPost {
				paWantForbidden(t, "site admin, token in the header", rt,
					paSend(p, rt, "", http.Header{opsCSRFHeader: {opsCSRF}}, ops))
			}
		}
		// The sign-in page does not send them on either.
		paWantStatus(t, "sign-in page", p.get("localhost", "/admin/login", ops), http.StatusOK, `name="password"`)
		// Nor does the platform session open their site admin.
		r = p.get("acme.localhost", "/site_admin", &http.Cookie{Name: sessionCookie, Value: ops.Value})
		if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/site_admin/login") {
			t.Errorf("platform token as the site-admin cookie: status %d to %q, want sent to sign in", r.StatusCode, loc)
		}
		paWantUnchanged(t, p, "a site admin's requests", before)
	})

	t.Run("forged, expired and orphaned sessions are anonymous", func(t *testing.T) {
		before := paSnapshot(t, p)
		admin, err := account.CreateSuperAdmin(ctx, p.primary, "short@example.com", paPassword)
		if err != nil {
			t.Fatal(err)
		}
		expired, err := account.CreatePlatformSession(ctx, p.primary, admin.ID, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		gone, err := account.CreateSuperAdmin(ctx, p.primary, "gone@example.com", paPassword)
		if err != nil {
			t.Fatal(err)
		}
		orphan, err := account.CreatePlatformSession(ctx, p.primary, gone.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// Before its user goes, the session works.
		wantStatus(t, p.get("localhost", "/admin", &http.Cookie{Name: opsCookie, Value: orphan}), http.StatusOK)
		if _, err := p.primary.Exec(ctx, "DELETE FROM users WHERE id = $1", gone.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if _, err := account.LookupPlatformSession(ctx, p.primary, expired); !errors.Is(err, account.ErrNoSession) {
			t.Fatalf("the 1ms session is still open: %v", err)
		}

		for name, token := range map[string]string{
			"random well-formed token":    paRandomToken(),
			"malformed token":             "not-a-token",
			"token of the wrong length":   paRandomToken()[:40],
			"long junk":                   strings.Repeat("A", 4000),
			"the CSRF token of a session": csrf,
			"expired session":             expired,
			"session of a deleted user":   orphan,
			"empty":                       "",
		} {
			c := &http.Cookie{Name: opsCookie, Value: token}
			for _, rt := range routes {
				// A forger knows how CSRF tokens derive from session
				// tokens: it does not help.
				r := paSend(p, rt, account.CSRFToken(token), nil, c)
				paWantAnonymous(t, name, rt, r)
				if stale := paCookie(r); token != "" && rt.method == http.MethodGet && (stale == nil || stale.MaxAge >= 0 || stale.Path != "/admin") {
					t.Errorf("%s: %s: the stale cookie is not cleared: %v", name, rt, r.Header.Values("Set-Cookie"))
				}
			}
		}
		paWantUnchanged(t, p, "forged sessions", before)
	})

	t.Run("a super-admin whose role is taken away is refused at once", func(t *testing.T) {
		before := paSnapshot(t, p)
		demoted, demotedCSRF := p.superAdmin("demoted@example.com")
		wantStatus(t, p.get("localhost", "/admin", demoted), http.StatusOK)
		if _, err := p.primary.Exec(ctx, "UPDATE users SET platform_role = NULL WHERE lower(email) = 'demoted@example.com'"); err != nil {
			t.Fatal(err)
		}
		for _, rt := range routes {
			paWantForbidden(t, "demoted", rt, paSend(p, rt, demotedCSRF, nil, demoted))
		}
		paWantUnchanged(t, p, "a demoted admin's requests", before)
	})

	t.Run("the platform admin does not exist on a tenant's host", func(t *testing.T) {
		before := paSnapshot(t, p)
		paths := []string{"/admin", "/admin/", "/admin/login", "/admin/tenants", "/admin/tenants/" + strconv.FormatInt(acme.ID, 10),
			"/admin/moves/" + strconv.FormatInt(planned, 10)}
		for _, host := range []string{"acme.localhost", "bravo.pwb.localhost"} {
			for _, path := range paths {
				for _, cookies := range [][]*http.Cookie{nil, {cookie}} {
					r := p.get(host, path, cookies...)
					paWantStatus(t, "on "+host, r, http.StatusNotFound)
					if paCookie(r) != nil {
						t.Errorf("%s%s set a platform cookie", host, path)
					}
				}
			}
			r := p.postForm(host, "/admin/login", url.Values{"email": {"ops@example.com"}, "password": {paPassword}})
			paWantStatus(t, "signing in on "+host, r, http.StatusNotFound)
			if paCookie(r) != nil {
				t.Errorf("signing in on %s set a platform cookie", host)
			}
			for _, rt := range routes {
				if rt.method == http.MethodPost {
					r := paDo(p, rt.method, host, rt.path, url.Values{"csrf": {csrf}, "target": {"shard_1"}, "confirm": {"yes"}}, nil, cookie)
					paWantStatus(t, rt.String()+" on "+host, r, http.StatusNotFound)
				}
			}
		}
		// The tenant header of a client that is no trusted proxy is
		// ignored (with one, it makes the request a tenant's: see
		// TestTrustedProxies).
		r := paDo(p, http.MethodGet, "localhost", "/admin", nil, http.Header{"X-Website-Slug": {"acme"}}, cookie)
		paWantStatus(t, "with X-Website-Slug", r, http.StatusOK)
		// An IP address is no platform host unless configured as one.
		paWantStatus(t, "on 127.0.0.1", paDo(p, http.MethodGet, "127.0.0.1", "/admin", nil, nil, cookie), http.StatusNotFound)
		// The platform's other domain is the platform.
		wantStatus(t, p.get("pwb.localhost", "/admin", cookie), http.StatusOK)
		paWantUnchanged(t, p, "requests on a tenant's host", before)
	})

	t.Run("CSRF: every change needs this session's token, from this site", func(t *testing.T) {
		before := paSnapshot(t, p)
		_, otherCSRF := p.superAdmin("other@example.com")
		_, secondCSRF := p.opsLogin("ops@example.com", paPassword) // the same admin, another session
		if secondCSRF == csrf {
			t.Fatal("two sessions share a CSRF token")
		}
		actions := []paRoute{}
		for _, rt := range routes {
			if rt.method == http.MethodPost && rt.pattern != "/admin/" {
				actions = append(actions, rt)
			}
		}
		if len(actions) != 4 {
			t.Fatalf("want the migrate, resume, abort and clear-lock actions; have %v", actions)
		}
		const refused = "security token is missing or out of date"
		for _, rt := range actions {
			for name, c := range map[string]struct {
				csrf   string
				header http.Header
				query  bool
			}{
				"no token":                        {},
				"wrong token":                     {csrf: "wrong"},
				"a well-formed wrong token":       {csrf: account.CSRFToken(paRandomToken())},
				"the session token itself":        {csrf: cookie.Value},
				"another admin's token":           {csrf: otherCSRF},
				"another session's token":         {csrf: secondCSRF},
				"a truncated token":               {csrf: csrf[:len(csrf)-1]},
				"the token in the query string":   {query: true},
				"another session's token, header": {header: http.Header{opsCSRFHeader: {secondCSRF}}},
				"the token in another header":     {header: http.Header{"X-Csrf": {csrf}, "Csrf": {csrf}}},
			} {
				sent := rt
				if c.query {
					sent.path += "?csrf=" + url.QueryEscape(csrf)
				}
				before := paSnapshot(t, p)
				paWantStatus(t, name, paSend(p, sent, c.csrf, c.header, cookie), http.StatusForbidden, refused)
				paWantUnchanged(t, p, rt.String()+", "+name, before)
			}
			// The right token, from another site.
			for name, h := range map[string]http.Header{
				"cross-site":                      {"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}},
				"Sec-Fetch-Site only":             {"Sec-Fetch-Site": {"cross-site"}},
				"Origin only":                     {"Origin": {"http://evil.example"}},
				"from a tenant's site":            {"Sec-Fetch-Site": {"same-site"}, "Origin": {"http://acme.localhost"}},
				"cross-site, token in the header": {"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}, opsCSRFHeader: {csrf}},
			} {
				before := paSnapshot(t, p)
				paWantStatus(t, name, paSend(p, rt, csrf, h, cookie), http.StatusForbidden, "sent from another website")
				paWantUnchanged(t, p, rt.String()+", "+name, before)
			}
		}
		// Signing in and out from another site is refused too, and the
		// session stays open.
		evil := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}}
		paWantStatus(t, "cross-site logout", paDo(p, http.MethodPost, "localhost", "/admin/logout", nil, evil, cookie), http.StatusForbidden)
		r := paDo(p, http.MethodPost, "localhost", "/admin/login", url.Values{"email": {"ops@example.com"}, "password": {paPassword}}, evil)
		paWantStatus(t, "cross-site login", r, http.StatusForbidden)
		if paCookie(r) != nil {
			t.Error("a cross-site sign-in set a cookie")
		}
		wantStatus(t, p.get("localhost", "/admin", cookie), http.StatusOK)
		paWantUnchanged(t, p, "CSRF refusals", before)
	})

	t.Run("form refusals change nothing", func(t *testing.T) {
		a, b := strconv.FormatInt(acme.ID, 10), strconv.FormatInt(bravo.ID, 10)
		pm, dm := strconv.FormatInt(planned, 10), strconv.FormatInt(done, 10)
		for _, c := range []struct {
			name, path string
			form       url.Values
			status     int
			text       []string
		}{
			{"migrate with no target", "/admin/tenants/" + a + "/migrate", url.Values{}, 422,
				[]string{"Select the shard to move the tenant to.", "Migrate Acme Homes"}},
			{"migrate to an unknown shard", "/admin/tenants/" + a + "/migrate", url.Values{"target": {"shard_9"}}, 409,
				[]string{"nothing was changed", `target shard "shard_9" is not configured`}},
			{"migrate to the tenant's own shard", "/admin/tenants/" + a + "/migrate", url.Values{"target": {shard.Default}}, 409,
				[]string{"nothing was changed", `shard "default" cannot take it (current shard)`}},
			{"migrate a tenant with an unfinished move", "/admin/tenants/" + b + "/migrate", url.Values{"target": {"shard_2"}}, 409,
				[]string{"nothing was changed", "move " + pm + " of tenant " + b, "is planned"}},
			{"migrate a tenant in maintenance", "/admin/tenants/" + strconv.FormatInt(maint.ID, 10) + "/migrate", url.Values{"target": {"shard_1"}}, 409,
				[]string{"nothing was changed", "is maintenance, not active"}},
			{"migrate a tenant that does not exist", "/admin/tenants/999999/migrate", url.Values{"target": {"shard_1"}}, 404, []string{"Not found"}},
			{"migrate a non-numeric tenant id", "/admin/tenants/acme/migrate", url.Values{"target": {"shard_1"}}, 404, []string{"Not found"}},
			{"migrate tenant 0", "/admin/tenants/0/migrate", url.Values{"target": {"shard_1"}}, 404, nil},
			{"migrate tenant -1", "/admin/tenants/-1/migrate", url.Values{"target": {"shard_1"}}, 404, nil},
			{"resume a move that is done", "/admin/moves/" + dm + "/resume", url.Values{}, 409,
				[]string{"Refused, and nothing was changed", "move " + dm + " of tenant", "is already done"}},
			{"abort a move that is done", "/admin/moves/" + dm + "/abort", url.Values{"confirm": {"yes"}}, 409,
				[]string{"Refused, and nothing was changed", "move " + dm + " of tenant", "is already done"}},
			{"abort without the confirm box", "/admin/moves/" + pm + "/abort", url.Values{}, 422,
				[]string{"Tick the box to confirm the abort. Nothing was changed."}},
			{"abort with the box set to something else", "/admin/moves/" + pm + "/abort", url.Values{"confirm": {"on"}}, 422,
				[]string{"Tick the box to confirm the abort."}},
			{"resume an unknown move", "/admin/moves/999999/resume", url.Values{}, 404, []string{"Not found"}},
			{"abort an unknown move", "/admin/moves/999999/abort", url.Values{"confirm": {"yes"}}, 404, []string{"Not found"}},
			{"abort an unknown move, unconfirmed", "/admin/moves/999999/abort", url.Values{}, 404, nil},
			{"resume a non-numeric move id", "/admin/moves/x/resume", url.Values{}, 404, nil},
			{"abort a non-numeric move id", "/admin/moves/x/abort", url.Values{"confirm": {"yes"}}, 404, nil},
		} {
			before := paSnapshot(t, p)
			c.form.Set(opsCSRFField, csrf)
			r := p.postForm("localhost", c.path, c.form, cookie)
			paWantStatus(t, c.name, r, c.status, c.text...)
			paWantUnchanged(t, p, c.name, before)
		}
		// The pages of unknown ids are 404 too.
		for _, path := range []string{"/admin/tenants/999999", "/admin/tenants/999999/migrate", "/admin/tenants/x",
			"/admin/moves/999999", "/admin/moves/999999/progress", "/admin/moves/999999/events", "/admin/moves/x"} {
			paWantStatus(t, "unknown id", p.get("localhost", path, cookie), http.StatusNotFound)
		}
		// The refused resume and abort say so in the audit log.
		audit := p.get("localhost", "/admin/audit", cookie)
		paWantStatus(t, "audit", audit, http.StatusOK, `data-action="resume" data-outcome="refused"`, `data-action="abort" data-outcome="refused"`,
			`data-action="move" data-outcome="refused"`)
		// A move refused at its pre-flight is recorded with the reason.
		if n := pgtest.QueryValue[int64](t, p.cluster.URL["default"], `SELECT count(*) FROM audit_log WHERE action = 'move'
			AND outcome = 'refused' AND target_shard = 'shard_9' AND actor = 'admin:' || $1 AND detail LIKE '%not configured%'`, "ops@example.com"); n != 1 {
			t.Errorf("audit lines of the move refused for shard_9: %d, want 1", n)
		}
	})

	// The same forms with a good token go through, in a form field or the
	// header: the refusals above were the checks', not the routes'.
	t.Run("with this session's token the actions are queued", func(t *testing.T) {
		echo, fox, golf := p.tenant("echo", shard.Default), p.tenant("fox", shard.Default), p.tenant("golf", shard.Default)
		foxMove, golfMove := paPlanMove(t, mv, fox, "shard_1"), paPlanMove(t, mv, golf, "shard_1")
		before := paSnapshot(t, p)
		var moves []int64
		for _, c := range []struct {
			name, path string
			form       url.Values
			header     http.Header
			done       string
		}{
			{"migrate, token in the form", "/admin/tenants/" + strconv.FormatInt(echo.ID, 10) + "/migrate",
				url.Values{"target": {"shard_1"}, opsCSRFField: {csrf}}, nil, "queued"},
			{"resume, token in the header", "/admin/moves/" + strconv.FormatInt(foxMove, 10) + "/resume",
				url.Values{}, http.Header{opsCSRFHeader: {csrf}}, "resumed"},
			{"abort, token in the header, same-origin", "/admin/moves/" + strconv.FormatInt(golfMove, 10) + "/abort",
				url.Values{"confirm": {"yes"}}, http.Header{opsCSRFHeader: {csrf}, "Sec-Fetch-Site": {"same-origin"}, "Origin": {"http://localhost"}}, "aborted"},
		} {
			r := paDo(p, http.MethodPost, "localhost", c.path, c.form, c.header, cookie)
			m := paMoveLocation.FindStringSubmatch(r.Header.Get("Location"))
			if r.StatusCode != http.StatusSeeOther || m == nil || m[2] != c.done {
				t.Fatalf("%s: status %d to %q, want 303 to the move's page, done=%s\n%s", c.name, r.StatusCode, r.Header.Get("Location"), c.done, excerpt(r.Body))
			}
			id, _ := strconv.ParseInt(m[1], 10, 64)
			moves = append(moves, id)
		}
		after := paSnapshot(t, p)
		if after.Moves != before.Moves+1 || after.Jobs != before.Jobs+3 {
			t.Errorf("moves %d → %d, jobs %d → %d; want one new move and three jobs", before.Moves, after.Moves, before.Jobs, after.Jobs)
		}
		// A second resume of the same move is refused while its job waits or
		// runs, or because it is done by then; either way nothing is queued.
		before = paSnapshot(t, p)
		r := paDo(p, http.MethodPost, "localhost", "/admin/moves/"+strconv.FormatInt(foxMove, 10)+"/resume", url.Values{opsCSRFField: {csrf}}, nil, cookie)
		paWantStatus(t, "resume twice", r, http.StatusConflict, "Refused, and nothing was changed")
		if after := paSnapshot(t, p); after.Jobs != before.Jobs || after.Moves != before.Moves {
			t.Errorf("a second resume: jobs %d → %d", before.Jobs, after.Jobs)
		}
		// Let the three finish, so nothing runs on while the next test stops
		// a shard.
		deadline := time.Now().Add(60 * time.Second)
		for i, id := range moves {
			want := []journal.State{journal.StateDone, journal.StateDone, journal.StateAborted}[i]
			for {
				m, err := journal.Get(ctx, p.primary, id)
				if err != nil {
					t.Fatal(err)
				}
				if m.Finished() || m.State == journal.StateFailed || time.Now().After(deadline) {
					if m.State != want {
						t.Errorf("move %d ended %s (%s), want %s\nlog:\n%s", id, m.State, m.Error, want, p.log.String())
					}
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	})

	t.Run("migrate to a shard whose server is stopped", func(t *testing.T) {
		a := strconv.FormatInt(acme.ID, 10)
		// The targets offered are the health poller's: every shard once it
		// has checked them.
		p.healthRound(t, false)
		form := p.get("localhost", "/admin/tenants/"+a+"/migrate", cookie)
		paWantStatus(t, "form", form, http.StatusOK, `<option value="shard_1" data-tier="premium">shard_1</option>`,
			`<option value="shard_2" data-tier="premium">shard_2</option>`)
		// A fast shutdown: test servers do not sync commits.
		if err := p.cluster.Servers[2].Stop(ctx, false); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		p.healthRound(t, false)
		form = p.get("localhost", "/admin/tenants/"+a+"/migrate", cookie)
		paWantStatus(t, "form with shard_2 down", form, http.StatusOK, `<option value="shard_1" data-tier="premium">shard_1</option>`,
			`<option value="shard_2" disabled data-tier="premium">shard_2 — unreachable: `)
		before := paSnapshot(t, p)
		r := p.postForm("localhost", "/admin/tenants/"+a+"/migrate", url.Values{"target": {"shard_2"}, opsCSRFField: {csrf}}, cookie)
		paWantStatus(t, "migrate to the stopped shard", r, http.StatusConflict,
			"nothing was changed", `shard "shard_2" cannot take it (unreachable: `)
		paWantUnchanged(t, p, "migrate to the stopped shard", before)
		if took := time.Since(start); took > 8*time.Second {
			t.Errorf("the form and the refusal took %s with a shard down", took)
		}
		dash := p.get("localhost", "/admin", cookie)
		paWantStatus(t, "dashboard", dash, http.StatusOK, `data-shard="shard_2" data-health="red"`, `data-shard="shard_1" data-health=`)
		for _, up := range []string{shard.Default, "shard_1"} {
			if strings.Contains(dash.Body, `data-shard="`+up+`" data-health="red"`) {
				t.Errorf("the dashboard shows %s down beside the stopped shard_2", up)
			}
		}
	})
}

// Signing in to the platform admin: the cookie, the next address, wrong
// passwords, signing out, and the limit on failures, which is kept apart
// from every tenant's.
func TestOps_AccessSignIn(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{signIn: throttle.Rule{Limit: 3, Window: time.Hour, Lock: time.Minute, MaxLock: time.Hour}})
	ctx := context.Background()
	acme := p.tenant("acme", shard.Default)
	if _, err := account.CreateSuperAdmin(ctx, p.primary, "ops@example.com", paPassword); err != nil {
		t.Fatal(err)
	}
	siteEmail, sitePassword := p.member(acme, "owner@acme.example")
	sessions := func() int64 {
		var n int64
		if err := p.primary.QueryRow(ctx, "SELECT count(*) FROM platform_sessions").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	signIn := func(form url.Values) response {
		t.Helper()
		return p.postForm("localhost", "/admin/login", form)
	}

	t.Run("the sign-in page", func(t *testing.T) {
		r := p.get("localhost", "/admin/login?next=%2Fadmin%2Faudit")
		paWantStatus(t, "sign-in page", r, http.StatusOK, `action="/admin/login"`, `name="password"`, `name="next" value="/admin/audit"`)
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.Header.Get("Cache-Control"))
		}
		r = p.get("localhost", "/admin/login?next=%2F%2Fevil.example")
		paWantStatus(t, "sign-in page, next off the admin", r, http.StatusOK, `name="next" value="/admin"`)
	})

	var cookie *http.Cookie
	t.Run("a super-admin signs in with a strict cookie scoped to /admin", func(t *testing.T) {
		r := signIn(url.Values{"email": {"  OPS@example.com "}, "password": {paPassword}, "next": {"/admin/tenants?page=2"}})
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != "/admin/tenants?page=2" {
			t.Errorf("Location %q, want the next address", got)
		}
		cookie = paCookie(r)
		switch {
		case cookie == nil || cookie.Value == "":
			t.Fatalf("no session cookie: %v", r.Header)
		case !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/admin" || cookie.Secure || cookie.Domain != "":
			t.Errorf("cookie %q: want HttpOnly, SameSite=Strict, Path=/admin, host-only, not Secure over plain HTTP", r.Header.Get("Set-Cookie"))
		case cookie.MaxAge != int((12 * time.Hour).Seconds()):
			t.Errorf("cookie Max-Age %d, want 12 hours", cookie.MaxAge)
		}
		paWantStatus(t, "dashboard", p.get("localhost", "/admin", cookie), http.StatusOK, "Signed in as ops@example.com")
		// Signed in, the sign-in page goes straight on, but only inside
		// /admin.
		for next, want := range map[string]string{"/admin/audit": "/admin/audit", "//evil.example": "/admin", "https://evil.example": "/admin"} {
			r = p.get("localhost", "/admin/login?"+url.Values{"next": {next}}.Encode(), cookie)
			if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
				t.Errorf("sign-in page when signed in, next %q: status %d to %q, want %q", next, r.StatusCode, r.Header.Get("Location"), want)
			}
		}
	})

	t.Run("next is followed only inside /admin", func(t *testing.T) {
		for next, want := range map[string]string{
			"/admin/audit":               "/admin/audit",
			"/admin/":                    "/admin/",
			"//evil.example":             "/admin",
			"https://evil.example":       "/admin",
			"https://evil.example/admin": "/admin",
			"/\\evil.example":            "/admin",
			"/admin/login":               "/admin",
			"/site_admin":                "/admin",
		} {
			r := signIn(url.Values{"email": {"ops@example.com"}, "password": {paPassword}, "next": {next}})
			if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
				t.Errorf("next %q: status %d to %q, want %q", next, r.StatusCode, r.Header.Get("Location"), want)
			}
			if c := paCookie(r); c != nil {
				p.postForm("localhost", "/admin/logout", nil, c)
			}
		}
	})

	t.Run("wrong credentials are 401 and open no session", func(t *testing.T) {
		n := sessions()
		for name, form := range map[string]url.Values{
			"wrong password": {"email": {"ops@example.com"}, "password": {"not the password"}},
			"unknown email":  {"email": {"nobody@example.com"}, "password": {paPassword}},
		} {
			r := signIn(form)
			paWantStatus(t, name, r, http.StatusUnauthorized, "Wrong email or password.")
			if c := paCookie(r); c != nil {
				t.Errorf("%s: a cookie was set: %v", name, c)
			}
		}
		if got := sessions(); got != n {
			t.Errorf("%d platform sessions, want still %d", got, n)
		}
		// A success takes back its own attempt only: the failure above
		// still counts for ops@example.com.
		wantStatus(t, signIn(url.Values{"email": {"ops@example.com"}, "password": {paPassword}}), http.StatusSeeOther)
	})

	t.Run("signing in again ends the session the browser had", func(t *testing.T) {
		old, _ := p.opsLogin("ops@example.com", paPassword)
		r := p.postForm("localhost", "/admin/login", url.Values{"email": {"ops@example.com"}, "password": {paPassword}}, old)
		wantStatus(t, r, http.StatusSeeOther)
		if c := paCookie(r); c == nil || c.Value == old.Value {
			t.Fatalf("no new session: %v", r.Header.Values("Set-Cookie"))
		}
		if _, err := account.LookupPlatformSession(ctx, p.primary, old.Value); !errors.Is(err, account.ErrNoSession) {
			t.Errorf("the replaced session is still open: %v", err)
		}
	})

	t.Run("logging out ends the session", func(t *testing.T) {
		r := p.postForm("localhost", "/admin/logout", nil, cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != "/admin/login?done=logout" {
			t.Errorf("Location %q", got)
		}
		if c := paCookie(r); c == nil || c.MaxAge >= 0 || c.Value != "" || c.Path != "/admin" {
			t.Errorf("the cookie is not cleared: %v", r.Header.Values("Set-Cookie"))
		}
		if _, err := account.LookupPlatformSession(ctx, p.primary, cookie.Value); !errors.Is(err, account.ErrNoSession) {
			t.Errorf("the session is still open: %v", err)
		}
		paWantStatus(t, "after logout", p.get("localhost", "/admin/login?done=logout"), http.StatusOK, "You have signed out.")
		// The old cookie, replayed, is anonymous.
		rt := paRoute{method: http.MethodGet, path: "/admin/tenants"}
		paWantAnonymous(t, "old cookie", rt, paSend(p, rt, "", nil, cookie))
		post := paRoute{method: http.MethodPost, path: "/admin/moves/1/resume"}
		paWantAnonymous(t, "old cookie", post, paSend(p, post, account.CSRFToken(cookie.Value), nil, cookie))
		// Logging out with no session is harmless.
		wantStatus(t, p.postForm("localhost", "/admin/logout", nil), http.StatusSeeOther)
	})

	t.Run("too many failures are refused for a while, apart from the tenants' sign-ins", func(t *testing.T) {
		n := sessions()
		// One failure is counted already; two more reach the limit of 3.
		for i := range 2 {
			r := signIn(url.Values{"email": {"ops@example.com"}, "password": {"guess " + strconv.Itoa(i)}})
			paWantStatus(t, "failure "+strconv.Itoa(i+2), r, http.StatusUnauthorized, "Wrong email or password.")
		}
		// The right password is refused now too, without being checked.
		r := signIn(url.Values{"email": {"ops@example.com"}, "password": {paPassword}})
		paWantStatus(t, "after 3 failures", r, http.StatusTooManyRequests, "Too many sign-in attempts for this account", "1 minute")
		secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || secs < 55 || secs > 60 {
			t.Errorf("Retry-After %q, want about a minute", r.Header.Get("Retry-After"))
		}
		if c := paCookie(r); c != nil {
			t.Errorf("a rate-limited sign-in set a cookie: %v", c)
		}
		if got := sessions(); got != n {
			t.Errorf("%d platform sessions, want still %d", got, n)
		}
		// The platform's failures do not lock the tenant's admins out, who
		// sign in from the same address.
		saSignIn(t, p, "acme.localhost", siteEmail, sitePassword)
		wantStatus(t, signIn(url.Values{"email": {"ops@example.com"}, "password": {paPassword}}), http.StatusTooManyRequests)
	})
}
