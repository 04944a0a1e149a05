package web

import (
	"bytes"
	"context"
	"image/color"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// ---- helpers of the site-admin tests (prefixed sa, to keep clear of the
// other tests' helpers) ----

// saSignIn signs a member in to host's admin and returns the session cookie.
func saSignIn(t *testing.T, p *platform, host, email, password string) *http.Cookie {
	t.Helper()
	r := p.postForm(host, "/site_admin/login", url.Values{"email": {email}, "password": {password}})
	wantStatus(t, r, http.StatusSeeOther)
	if c := saCookie(r); c != nil && c.Value != "" {
		return c
	}
	t.Fatalf("signing in to %s: no session cookie in %v", host, r.Header)
	return nil
}

func saCookie(r response) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

type saFile struct {
	name string
	data []byte
}

// saMultipart builds a multipart form with fields and files, all files in the
// field "photos".
func saMultipart(t *testing.T, fields url.Values, files ...saFile) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, vs := range fields {
		for _, v := range vs {
			if err := mw.WriteField(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range files {
		fw, err := mw.CreateFormFile("photos", f.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, mw.FormDataContentType()
}

func saPost(p *platform, host, path string, body io.Reader, contentType string, cookie *http.Cookie, header ...string) response {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, path, body)
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	return p.do(host, req)
}

func saPostMultipart(t *testing.T, p *platform, host, path string, cookie *http.Cookie, fields url.Values, files ...saFile) response {
	t.Helper()
	body, ct := saMultipart(t, fields, files...)
	return saPost(p, host, path, body, ct, cookie)
}

// saPNG returns a small PNG image; seed makes different images.
func saPNG(t *testing.T, seed uint8) []byte {
	t.Helper()
	return pngBytes(t, color.RGBA{R: seed, G: 60, B: 80, A: 255})
}

// saPropertyFields is a valid property form.
func saPropertyFields(title string) url.Values {
	return url.Values{
		"title": {title}, "description": {"Bright, with a view of the sea."},
		"for_sale": {"1"}, "sale_price": {"250,000"}, "sale_currency": {"EUR"},
		"bedrooms": {"2"}, "bathrooms": {"1"}, "garages": {"0"}, "city": {"Valencia"},
		"visible": {"1"}, "features": {"Pool\nGarden\n\npool"},
	}
}

var saEditLocationRE = regexp.MustCompile(`^/site_admin/properties/([0-9a-f-]{36})/edit\?done=created$`)

// saCreatedID returns the id of the property a create redirected to.
func saCreatedID(t *testing.T, r response) uuid.UUID {
	t.Helper()
	wantStatus(t, r, http.StatusSeeOther)
	m := saEditLocationRE.FindStringSubmatch(r.Header.Get("Location"))
	if m == nil {
		t.Fatalf("create redirected to %q", r.Header.Get("Location"))
	}
	return uuid.MustParse(m[1])
}

func saWantBody(t *testing.T, r response, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.Body, w) {
			t.Errorf("%s %s: body lacks %q:\n%s", r.Request.Method, r.Request.URL.Path, w, excerpt(r.Body))
		}
	}
}

func saWantNoStore(t *testing.T, r response) {
	t.Helper()
	if got := r.Header.Get("Cache-Control"); !strings.Contains(got, "no-store") {
		t.Errorf("%s %s: Cache-Control %q, want no-store", r.Request.Method, r.Request.URL.Path, got)
	}
}

// saCounts is the number of a website's rows in each table the admin writes.
type saCounts map[string]int

func saCount(t *testing.T, dbURL string, websiteID int64) saCounts {
	t.Helper()
	tables := []string{"properties", "property_photos", "property_features", "messages", "contacts", "pages", "agencies"}
	parts := make([]string, len(tables))
	for i, table := range tables {
		parts[i] = "(SELECT count(*) FROM " + table + " WHERE website_id = $1)::text"
	}
	// One query, one connection: the tests count before and after every
	// refused request.
	got := strings.Split(pgtest.QueryValue[string](t, dbURL, "SELECT concat_ws(',', "+strings.Join(parts, ", ")+")", websiteID), ",")
	c := saCounts{}
	for i, table := range tables {
		n, err := strconv.Atoi(got[i])
		if err != nil {
			t.Fatal(err)
		}
		c[table] = n
	}
	return c
}

func saWantSameCounts(t *testing.T, what string, before, after saCounts) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s went from %d to %d rows", what, k, v, after[k])
		}
	}
}

// ---- tests ----

func TestSiteAdmin_SafeNext(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                           "/site_admin",
		"/site_admin":                "/site_admin",
		"/site_admin/pages?page=2":   "/site_admin/pages?page=2",
		"/site_admin?x=1":            "/site_admin?x=1",
		"//evil.example/site_admin":  "/site_admin",
		"https://evil.example/":      "/site_admin",
		"/site_adminevil":            "/site_admin",
		"/site_admin/\\evil.example": "/site_admin",
		"/site_admin/login":          "/site_admin",
		"/":                          "/site_admin",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSiteAdmin_SignInSessionsAndRateLimit(t *testing.T) {
	t.Parallel()
	const maxFailures = 8
	p := newPlatform(t, platformOptions{signIn: throttle.Rule{Limit: maxFailures, Window: time.Hour, Lock: time.Minute, MaxLock: time.Hour}})
	acme := p.tenant("acme", shard.Default)
	beta := p.tenant("beta", shard.Default)
	ratey := p.tenant("ratey", shard.Default)
	email, password := p.member(acme, "owner@acme.example")
	betaEmail, betaPassword := p.member(beta, "owner@beta.example")
	rateyEmail, rateyPassword := p.member(ratey, "owner@ratey.example")
	db := p.cluster.URL[shard.Default]
	sessions := func(w registry.Website) int { return count(t, db, "sessions", w.ID) }

	t.Run("anonymous visitors are sent to sign in and cannot post", func(t *testing.T) {
		r := p.get("acme.localhost", "/site_admin/properties?page=2")
		wantStatus(t, r, http.StatusSeeOther)
		saWantNoStore(t, r)
		if got, want := r.Header.Get("Location"), "/site_admin/login?next=%2Fsite_admin%2Fproperties%3Fpage%3D2"; got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
		r = p.get("acme.localhost", "/site_admin/login?next=%2Fsite_admin%2Fproperties")
		wantStatus(t, r, http.StatusOK)
		saWantNoStore(t, r)
		saWantBody(t, r, "Sign in", `name="password"`, `value="/site_admin/properties"`)

		r = p.postForm("acme.localhost", "/site_admin/pages", url.Values{"title": {"About"}})
		wantStatus(t, r, http.StatusUnauthorized)
		saWantBody(t, r, "not signed in")
		if n := count(t, db, "pages", acme.ID); n != 0 {
			t.Errorf("an anonymous post wrote %d pages", n)
		}
	})

	var cookie *http.Cookie
	t.Run("a member signs in with an HttpOnly SameSite cookie", func(t *testing.T) {
		r := p.postForm("acme.localhost", "/site_admin/login", url.Values{
			"email": {"  OWNER@acme.example "}, "password": {password}, "next": {"/site_admin/pages"}})
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != "/site_admin/pages" {
			t.Errorf("Location %q, want the next address", got)
		}
		cookie = saCookie(r)
		switch {
		case cookie == nil || cookie.Value == "":
			t.Fatalf("no session cookie: %v", r.Header)
		case !cookie.HttpOnly, cookie.SameSite != http.SameSiteLaxMode, cookie.Path != "/site_admin", cookie.Secure:
			t.Errorf("cookie %q: want HttpOnly, SameSite=Lax, Path=/site_admin, not Secure over plain HTTP", r.Header.Get("Set-Cookie"))
		case cookie.MaxAge != int((12 * time.Hour).Seconds()):
			t.Errorf("cookie Max-Age %d, want 12 hours", cookie.MaxAge)
		}
		if n := sessions(acme); n != 1 {
			t.Errorf("%d sessions, want 1", n)
		}
		r = p.get("acme.localhost", "/site_admin", cookie)
		wantStatus(t, r, http.StatusOK)
		saWantNoStore(t, r)
		saWantBody(t, r, "Signed in as owner@acme.example", "Dashboard", "Log out")

		// Signed in, the sign-in page goes straight on.
		r = p.get("acme.localhost", "/site_admin/login?next=%2Fsite_admin%2Fagency", cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != "/site_admin/agency" {
			t.Errorf("Location %q", got)
		}
	})

	t.Run("a next address off the admin is not followed", func(t *testing.T) {
		for _, next := range []string{"//evil.example/", "https://evil.example/site_admin", "/\\evil.example"} {
			r := p.postForm("acme.localhost", "/site_admin/login", url.Values{"email": {email}, "password": {password}, "next": {next}})
			wantStatus(t, r, http.StatusSeeOther)
			if got := r.Header.Get("Location"); got != "/site_admin" {
				t.Errorf("next %q: Location %q, want /site_admin", next, got)
			}
			p.postForm("acme.localhost", "/site_admin/logout", nil, saCookie(r))
		}
	})

	t.Run("wrong credentials are one 401 answer and open no session", func(t *testing.T) {
		for name, form := range map[string]url.Values{
			"wrong password":            {"email": {email}, "password": {"not the password"}},
			"unknown email":             {"email": {"nobody@acme.example"}, "password": {password}},
			"member of another website": {"email": {betaEmail}, "password": {betaPassword}},
			"malformed email":           {"email": {"<script>"}, "password": {password}},
			"sql in the email":          {"email": {"' OR 1=1 --"}, "password": {"' OR 1=1 --"}},
			"empty form":                {},
		} {
			r := p.postForm("acme.localhost", "/site_admin/login", form)
			if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "Wrong email or password.") {
				t.Errorf("%s: status %d, want 401 with the message:\n%s", name, r.StatusCode, excerpt(r.Body))
			}
			if c := saCookie(r); c != nil && c.Value != "" {
				t.Errorf("%s: a session cookie was set", name)
			}
		}
		if n := sessions(acme); n != 1 {
			t.Errorf("%d sessions on acme, want still 1", n)
		}
		if n := sessions(beta); n != 0 {
			t.Errorf("%d sessions on beta, want 0", n)
		}
	})

	t.Run("a session of one website is nobody on another", func(t *testing.T) {
		r := p.get("beta.localhost", "/site_admin", cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if !strings.HasPrefix(r.Header.Get("Location"), "/site_admin/login") {
			t.Errorf("Location %q, want the sign-in page", r.Header.Get("Location"))
		}
		r = p.postForm("beta.localhost", "/site_admin/agency", url.Values{"name": {"Taken over"}}, cookie)
		wantStatus(t, r, http.StatusUnauthorized)
		if n := count(t, db, "agencies", beta.ID); n != 0 {
			t.Errorf("beta has %d agency rows", n)
		}
		// From a client that is no trusted proxy, the X-Website-Slug
		// header is ignored: the host says acme, and acme's admin it is.
		req, _ := http.NewRequest(http.MethodGet, "/site_admin", nil)
		req.Header.Set("X-Website-Slug", "beta")
		req.AddCookie(cookie)
		wantStatus(t, p.do("acme.localhost", req), http.StatusOK)
		// And acme's own admin still takes it.
		wantStatus(t, p.get("acme.localhost", "/site_admin", cookie), http.StatusOK)
	})

	t.Run("signing out ends the session", func(t *testing.T) {
		r := p.postForm("acme.localhost", "/site_admin/logout", nil, cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != "/site_admin/login?done=logout" {
			t.Errorf("Location %q", got)
		}
		if c := saCookie(r); c == nil || c.MaxAge >= 0 || c.Value != "" {
			t.Errorf("logout does not clear the cookie: %q", r.Header.Get("Set-Cookie"))
		}
		if n := sessions(acme); n != 0 {
			t.Errorf("%d sessions after logout", n)
		}
		r = p.get("acme.localhost", "/site_admin", cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if c := saCookie(r); c == nil || c.MaxAge >= 0 {
			t.Errorf("a stale cookie is not cleared: %q", r.Header.Get("Set-Cookie"))
		}
		saWantBody(t, p.get("acme.localhost", "/site_admin/login?done=logout"), "You have signed out.")
	})

	t.Run("failed sign-ins are limited per account", func(t *testing.T) {
		for i := range maxFailures {
			r := p.postForm("ratey.localhost", "/site_admin/login", url.Values{"email": {rateyEmail}, "password": {"guess " + strconv.Itoa(i)}})
			wantStatus(t, r, http.StatusUnauthorized)
		}
		// Even the right password is not checked now: the account is
		// locked for the rule's first lock, a minute.
		r := p.postForm("ratey.localhost", "/site_admin/login", url.Values{"email": {rateyEmail}, "password": {rateyPassword}})
		wantStatus(t, r, http.StatusTooManyRequests)
		saWantBody(t, r, "Too many sign-in attempts for this account", "1 minute")
		if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 55 || secs > 60 {
			t.Errorf("Retry-After %q, want about a minute", r.Header.Get("Retry-After"))
		}
		if n := sessions(ratey); n != 0 {
			t.Errorf("%d sessions on ratey", n)
		}
		// Another website's admin is not locked by ratey's failures.
		saSignIn(t, p, "acme.localhost", email, password)
	})

	// Last: it stops primary.
	t.Run("with primary down the admin is unavailable, not signed out", func(t *testing.T) {
		cookie := saSignIn(t, p, "acme.localhost", email, password)
		wantStatus(t, p.get("acme.localhost", "/site_admin", cookie), http.StatusOK) // the website is in the registry cache
		if err := p.cluster.Servers[0].Stop(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		r := p.get("acme.localhost", "/site_admin", cookie)
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.Header.Get("Retry-After") == "" || saCookie(r) != nil {
			t.Errorf("want Retry-After and the cookie left alone; got %v", r.Header)
		}
		r = p.postForm("acme.localhost", "/site_admin/login", url.Values{"email": {email}, "password": {password}})
		wantStatus(t, r, http.StatusServiceUnavailable)
	})
}

func TestSiteAdmin_PropertiesAreWrittenToTheTenantsOwnShard(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	acme := p.tenant("acme", "shard_1")
	other := p.tenant("other", shard.Default)
	email, password := p.member(acme, "owner@acme.example")
	own, primary := p.cluster.URL["shard_1"], p.cluster.URL[shard.Default]
	cookie := saSignIn(t, p, "acme.localhost", email, password)
	const host = "acme.localhost"
	photo1, photo2 := saPNG(t, 10), saPNG(t, 200)

	r := p.get(host, "/site_admin/properties/new", cookie)
	wantStatus(t, r, http.StatusOK)
	saWantBody(t, r, `enctype="multipart/form-data"`, `name="photos"`, `name="features"`)

	r = saPostMultipart(t, p, host, "/site_admin/properties", cookie, saPropertyFields("Sunny flat"), saFile{"flat.png", photo1})
	id := saCreatedID(t, r)

	if got := saCount(t, own, acme.ID); got["properties"] != 1 || got["property_photos"] != 1 || got["property_features"] != 2 {
		t.Errorf("on shard_1: %v, want 1 property, 1 photo, 2 features", got)
	}
	if got := pgtest.QueryValue[int64](t, own, "SELECT sale_price_cents FROM properties WHERE id = $1", id); got != 25_000_000 {
		t.Errorf("sale price %d cents, want 25000000", got)
	}
	for _, table := range []string{"properties", "property_photos", "property_features"} {
		if n := pgtest.QueryValue[int64](t, primary, "SELECT count(*) FROM "+table); n != 0 {
			t.Errorf("%d rows in primary's %s", n, table)
		}
	}
	if n := count(t, own, "properties", other.ID); n != 0 {
		t.Errorf("the other tenant has %d properties", n)
	}

	r = p.get(host, "/site_admin/properties/"+id.String()+"/edit?done=created", cookie)
	wantStatus(t, r, http.StatusOK)
	saWantBody(t, r, "Created.", "Sunny flat", "250000", "Garden\nPool", "/site_admin/photos/")
	saWantNoStore(t, r)

	r = p.get(host, "/site_admin/properties", cookie)
	wantStatus(t, r, http.StatusOK)
	saWantBody(t, r, "Sunny flat", "€250,000", "table-wrap")

	t.Run("edit", func(t *testing.T) {
		f := saPropertyFields("Sunny flat, renovated")
		f.Set("sale_price", "199999.50")
		f.Set("features", "Lift")
		f.Del("visible")
		r := p.postForm(host, "/site_admin/properties/"+id.String(), f, cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if got := pgtest.QueryValue[string](t, own, "SELECT title FROM properties WHERE id = $1", id); got != "Sunny flat, renovated" {
			t.Errorf("title %q after update", got)
		}
		if got := pgtest.QueryValue[int64](t, own, "SELECT sale_price_cents FROM properties WHERE id = $1", id); got != 19_999_950 {
			t.Errorf("price %d after update", got)
		}
		if got := pgtest.QueryValue[bool](t, own, "SELECT visible FROM properties WHERE id = $1", id); got {
			t.Error("an unticked box left the property visible")
		}
		if n := count(t, own, "property_features", acme.ID); n != 1 {
			t.Errorf("%d features after update, want 1", n)
		}
		r = p.get(host, r.Header.Get("Location"), cookie)
		saWantBody(t, r, "Saved.", "Sunny flat, renovated", "199999.50", "Hidden")
	})

	t.Run("photos", func(t *testing.T) {
		r := saPostMultipart(t, p, host, "/site_admin/properties/"+id.String()+"/photos", cookie, nil, saFile{"second.png", photo2})
		wantStatus(t, r, http.StatusSeeOther)
		if n := count(t, own, "property_photos", acme.ID); n != 2 {
			t.Fatalf("%d photos, want 2", n)
		}
		second := pgtest.QueryValue[uuid.UUID](t, own, "SELECT id FROM property_photos WHERE website_id = $1 ORDER BY sort_order DESC LIMIT 1", acme.ID)
		r = p.get(host, "/site_admin/photos/"+second.String(), cookie)
		wantStatus(t, r, http.StatusOK)
		if r.Header.Get("Content-Type") != "image/png" || r.Body != string(photo2) {
			t.Errorf("photo served as %q, %d bytes", r.Header.Get("Content-Type"), len(r.Body))
		}
		saWantNoStore(t, r)
		// Signed out, a hidden property's photo is nobody's business.
		wantStatus(t, p.get(host, "/site_admin/photos/"+second.String()), http.StatusSeeOther)

		r = p.postForm(host, "/site_admin/photos/"+second.String()+"/delete", url.Values{"property": {id.String()}}, cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != "/site_admin/properties/"+id.String()+"/edit?done=photo_deleted" {
			t.Errorf("Location %q", got)
		}
		if n := count(t, own, "property_photos", acme.ID); n != 1 {
			t.Errorf("%d photos after delete, want 1", n)
		}
		wantStatus(t, p.get(host, "/site_admin/photos/"+second.String(), cookie), http.StatusNotFound)
	})

	t.Run("delete", func(t *testing.T) {
		r := p.postForm(host, "/site_admin/properties/"+id.String()+"/delete", nil, cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if got := saCount(t, own, acme.ID); got["properties"]+got["property_photos"]+got["property_features"] != 0 {
			t.Errorf("left after delete: %v", got)
		}
		wantStatus(t, p.get(host, "/site_admin/properties/"+id.String()+"/edit", cookie), http.StatusNotFound)
		wantStatus(t, p.postForm(host, "/site_admin/properties/"+id.String()+"/delete", nil, cookie), http.StatusNotFound)
	})
}

func TestSiteAdmin_RefusesBadInputAndWritesNothing(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	acme := p.tenant("acme", shard.Default)
	email, password := p.member(acme, "owner@acme.example")
	db := p.cluster.URL[shard.Default]
	cookie := saSignIn(t, p, "acme.localhost", email, password)
	const host = "acme.localhost"
	ctx := context.Background()
	existing, err := content.CreateProperty(ctx, p.scope(acme), content.PropertyInput{Title: "Existing house", Visible: true})
	if err != nil {
		t.Fatal(err)
	}
	valid := saPNG(t, 1)
	// A real PNG header followed by padding: an image by its bytes, but too
	// large.
	huge := append(append([]byte(nil), valid...), make([]byte, content.MaxPhotoBytes)...)
	with := func(k, v string) url.Values {
		f := saPropertyFields("Sea view")
		f.Set(k, v)
		return f
	}
	script := "<script>alert(1)</script>"

	for _, c := range []struct {
		name   string
		path   string
		fields url.Values
		files  []saFile
		status int
		want   []string
	}{
		{"missing title", "/site_admin/properties", with("title", ""), nil, 422, []string{"Title is required."}},
		{"blank title", "/site_admin/properties", with("title", "   "), nil, 422, []string{"Title is required."}},
		{"oversized title", "/site_admin/properties", with("title", strings.Repeat("x", 201)), nil, 422, []string{"Title must be at most 200 characters."}},
		{"negative price", "/site_admin/properties", with("sale_price", "-100"), nil, 422, []string{"Sale price cannot be negative.", `value="-100"`}},
		{"negative rent", "/site_admin/properties", with("rent_price", "-1"), nil, 422, []string{"Monthly rent cannot be negative."}},
		{"price that is not a number", "/site_admin/properties", with("sale_price", "lots"), nil, 422, []string{"Sale price must be an amount like 250000"}},
		{"bedrooms that are not a number", "/site_admin/properties", with("bedrooms", "two"), nil, 422, []string{"Bedrooms must be a whole number", `value="two"`}},
		{"negative bedrooms", "/site_admin/properties", with("bedrooms", "-2"), nil, 422, []string{"Bedrooms must be between 0 and 1000."}},
		{"latitude off the globe", "/site_admin/properties", with("latitude", "91"), nil, 422, []string{"Latitude must be between -90 and 90."}},
		{"not-a-number latitude", "/site_admin/properties", with("latitude", "NaN"), nil, 422, []string{"Latitude must be a number"}},
		{"bad currency", "/site_admin/properties", with("sale_currency", "euros"), nil, 422, []string{"three-letter currency code"}},
		{"oversized feature", "/site_admin/properties", with("features", strings.Repeat("f", 101)), nil, 422, []string{"Each feature must be at most 100 characters."}},
		{"title with script, refused for another reason", "/site_admin/properties", func() url.Values {
			f := with("title", script)
			f.Set("sale_price", "-1")
			return f
		}(), nil, 422, []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "Sale price cannot be negative."}},
		{"non-image upload", "/site_admin/properties", saPropertyFields("Sea view"), []saFile{{"x.png", []byte("this is plain text, not a picture")}}, 422,
			[]string{"x.png: the file is not a JPEG, PNG, GIF or WebP image.", "Choose the photos again"}},
		{"one bad photo among good ones", "/site_admin/properties", saPropertyFields("Sea view"), []saFile{{"a.png", valid}, {"b.png", []byte("GIF? no")}}, 422,
			[]string{"b.png: the file is not a JPEG"}},
		{"oversized photo", "/site_admin/properties", saPropertyFields("Sea view"), []saFile{{"big.png", huge}}, 422,
			[]string{"big.png: the photo is larger than the 5 MiB limit."}},
		{"too many photos", "/site_admin/properties", saPropertyFields("Sea view"), []saFile{
			{"1.png", valid}, {"2.png", valid}, {"3.png", valid}, {"4.png", valid}, {"5.png", valid}, {"6.png", valid}, {"7.png", valid}}, 422,
			[]string{"Upload at most 6 photos at a time."}},
		{"update with a negative price", "/site_admin/properties/" + existing.ID.String(), with("sale_price", "-5"), nil, 422, []string{"Sale price cannot be negative."}},
		{"update with an oversized title", "/site_admin/properties/" + existing.ID.String(), with("title", strings.Repeat("é", 201)), nil, 422, []string{"Title must be at most 200 characters."}},
		{"non-image added to a property", "/site_admin/properties/" + existing.ID.String() + "/photos", nil, []saFile{{"x.png", []byte("<html>not an image</html>")}}, 422,
			[]string{"x.png: the file is not a JPEG"}},
		{"oversized photo added to a property", "/site_admin/properties/" + existing.ID.String() + "/photos", nil, []saFile{{"big.jpg", huge}}, 422,
			[]string{"big.jpg: the photo is larger than the 5 MiB limit."}},
		{"no photo chosen", "/site_admin/properties/" + existing.ID.String() + "/photos", nil, []saFile{{"", nil}}, 422,
			[]string{"Choose a photo to upload."}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := saCount(t, db, acme.ID)
			r := saPostMultipart(t, p, host, c.path, cookie, c.fields, c.files...)
			wantStatus(t, r, c.status)
			saWantBody(t, r, c.want...)
			if strings.Contains(r.Body, script) {
				t.Errorf("the page carries the raw script tag")
			}
			saWantSameCounts(t, c.name, before, saCount(t, db, acme.ID))
			if got := pgtest.QueryValue[string](t, db, "SELECT title FROM properties WHERE id = $1", existing.ID); got != "Existing house" {
				t.Errorf("existing property's title is now %q", got)
			}
		})
	}

	t.Run("a body far over the limit", func(t *testing.T) {
		before := saCount(t, db, acme.ID)
		body, ct := saMultipart(t, saPropertyFields("Sea view"), saFile{"huge.png", append(append([]byte(nil), valid...), make([]byte, 40<<20)...)})
		r := saPost(p, host, "/site_admin/properties", body, ct, cookie)
		wantStatus(t, r, http.StatusRequestEntityTooLarge)
		saWantBody(t, r, "larger than this form accepts")
		// Without a length up front (chunked), the body is cut off as it is
		// read.
		body, ct = saMultipart(t, saPropertyFields("Sea view"), saFile{"huge.png", append(append([]byte(nil), valid...), make([]byte, 40<<20)...)})
		r = saPost(p, host, "/site_admin/properties", io.MultiReader(body), ct, cookie)
		wantStatus(t, r, http.StatusRequestEntityTooLarge)
		// A url-encoded form far over its limit.
		r = p.postForm(host, "/site_admin/pages", url.Values{"title": {"Big"}, "body": {strings.Repeat("x", 2<<20)}}, cookie)
		wantStatus(t, r, http.StatusRequestEntityTooLarge)
		saWantSameCounts(t, "too large", before, saCount(t, db, acme.ID))
	})

	t.Run("malformed ids are not found", func(t *testing.T) {
		for _, path := range []string{"/site_admin/properties/42/edit", "/site_admin/photos/x", "/site_admin/messages/%27%3B--", "/site_admin/pages/nope/edit", "/site_admin/nothing-here"} {
			r := p.get(host, path, cookie)
			wantStatus(t, r, http.StatusNotFound)
			saWantNoStore(t, r)
		}
		wantStatus(t, p.postForm(host, "/site_admin/properties/42/delete", nil, cookie), http.StatusNotFound)
	})

	t.Run("a script in the title is saved as typed and shown escaped", func(t *testing.T) {
		f := saPropertyFields(script)
		f.Set("description", `<img src=x onerror=alert(2)> & "quotes"`)
		id := saCreatedID(t, saPostMultipart(t, p, host, "/site_admin/properties", cookie, f))
		if got := pgtest.QueryValue[string](t, db, "SELECT title FROM properties WHERE id = $1", id); got != script {
			t.Errorf("title saved as %q", got)
		}
		slug := pgtest.QueryValue[string](t, db, "SELECT slug FROM properties WHERE id = $1", id)
		for _, path := range []string{"/properties/" + slug, "/"} {
			r := p.get(host, path)
			wantStatus(t, r, http.StatusOK)
			saWantBody(t, r, "&lt;script&gt;alert(1)&lt;/script&gt;")
			if strings.Contains(r.Body, script) || strings.Contains(r.Body, "<img src=x") {
				t.Errorf("%s carries raw markup from the form:\n%s", path, excerpt(r.Body))
			}
		}
		for _, path := range []string{"/site_admin/properties", "/site_admin/properties/" + id.String() + "/edit"} {
			r := p.get(host, path, cookie)
			saWantBody(t, r, "&lt;script&gt;alert(1)&lt;/script&gt;")
			if strings.Contains(r.Body, script) {
				t.Errorf("%s carries the raw script tag", path)
			}
		}
	})

	t.Run("SQL metacharacters are saved verbatim", func(t *testing.T) {
		evil := "'; DROP TABLE properties; --"
		f := saPropertyFields(evil)
		f.Set("city", `Valencia" OR "1"="1`)
		f.Set("features", "Robert'); DROP TABLE property_features;--\n\\x00 % _")
		id := saCreatedID(t, saPostMultipart(t, p, host, "/site_admin/properties", cookie, f, saFile{"it's; --.png", valid}))
		if got := pgtest.QueryValue[string](t, db, "SELECT title FROM properties WHERE id = $1", id); got != evil {
			t.Errorf("title saved as %q", got)
		}
		if got := pgtest.QueryValue[string](t, db, "SELECT city FROM properties WHERE id = $1", id); got != `Valencia" OR "1"="1` {
			t.Errorf("city saved as %q", got)
		}
		if n := count(t, db, "property_features", acme.ID); n < 2 {
			t.Errorf("%d features", n)
		}
		for _, table := range []string{"properties", "property_features", "property_photos"} {
			if !pgtest.QueryValue[bool](t, db, "SELECT to_regclass($1) IS NOT NULL", table) {
				t.Errorf("table %s is gone", table)
			}
		}
		r := p.get(host, "/site_admin/properties/"+id.String()+"/edit", cookie)
		wantStatus(t, r, http.StatusOK)
		saWantBody(t, r, "&#39;; DROP TABLE properties; --")
	})
}

// Tenant A, signed in to its own admin, asks for tenant B's rows by id: B on
// the same shard as A and B on another. Every answer is 404 and B's rows stay
// as they were.
func TestSiteAdmin_AnotherTenantsRowsAreNotFoundByID(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := context.Background()
	acme := p.tenant("acme", shard.Default)
	email, password := p.member(acme, "owner@acme.example")
	cookie := saSignIn(t, p, "acme.localhost", email, password)
	const host = "acme.localhost"
	photo := saPNG(t, 7)

	for _, victim := range []struct{ sub, shard string }{{"samebox", shard.Default}, {"otherbox", "shard_1"}} {
		t.Run(victim.sub+" on "+victim.shard, func(t *testing.T) {
			w := p.tenant(victim.sub, victim.shard)
			db := p.cluster.URL[victim.shard]
			sc := p.scope(w)
			prop, err := content.CreateProperty(ctx, sc, content.PropertyInput{Title: "Victim villa", Visible: true, Features: []string{"Moat"}})
			if err != nil {
				t.Fatal(err)
			}
			ph, err := content.AddPhoto(ctx, sc, prop.ID, photo, p.server.photos)
			if err != nil {
				t.Fatal(err)
			}
			msgID, err := content.SubmitEnquiry(ctx, sc, content.Enquiry{Name: "Vic", Email: "vic@example.com", Body: "Secret enquiry", PropertyID: &prop.ID})
			if err != nil {
				t.Fatal(err)
			}
			before := saCount(t, db, w.ID)
			ownBefore := saCount(t, p.cluster.URL[shard.Default], acme.ID)

			pid, phid, mid := prop.ID.String(), ph.ID.String(), msgID.String()
			body, ct := saMultipart(t, nil, saFile{"p.png", photo})
			for _, r := range []response{
				p.get(host, "/site_admin/properties/"+pid+"/edit", cookie),
				p.postForm(host, "/site_admin/properties/"+pid, saPropertyFields("Stolen"), cookie),
				p.postForm(host, "/site_admin/properties/"+pid+"/delete", nil, cookie),
				saPost(p, host, "/site_admin/properties/"+pid+"/photos", body, ct, cookie),
				p.get(host, "/site_admin/photos/"+phid, cookie),
				p.postForm(host, "/site_admin/photos/"+phid+"/delete", url.Values{"property": {pid}}, cookie),
				p.get(host, "/site_admin/messages/"+mid, cookie),
				p.postForm(host, "/site_admin/messages/"+mid+"/read", url.Values{"read": {"1"}}, cookie),
			} {
				wantStatus(t, r, http.StatusNotFound)
				if strings.Contains(r.Body, "Victim") || strings.Contains(r.Body, "Secret") {
					t.Errorf("%s %s shows the other tenant's data", r.Request.Method, r.Request.URL.Path)
				}
			}
			for _, path := range []string{"/site_admin/properties", "/site_admin/messages", "/site_admin"} {
				r := p.get(host, path, cookie)
				wantStatus(t, r, http.StatusOK)
				if strings.Contains(r.Body, "Victim") || strings.Contains(r.Body, "Secret") {
					t.Errorf("%s lists the other tenant's rows", path)
				}
			}

			saWantSameCounts(t, victim.sub, before, saCount(t, db, w.ID))
			saWantSameCounts(t, "acme", ownBefore, saCount(t, p.cluster.URL[shard.Default], acme.ID))
			if got := pgtest.QueryValue[string](t, db, "SELECT title FROM properties WHERE id = $1", prop.ID); got != "Victim villa" {
				t.Errorf("the victim's title is now %q", got)
			}
			if pgtest.QueryValue[bool](t, db, "SELECT read_at IS NOT NULL FROM messages WHERE id = $1", msgID) {
				t.Error("the victim's message was marked read")
			}
		})
	}
}

func TestSiteAdmin_MessagesPagesAgencyAndCSRF(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	ctx := context.Background()
	acme := p.tenant("acme", shard.Default)
	email, password := p.member(acme, "owner@acme.example")
	db := p.cluster.URL[shard.Default]
	cookie := saSignIn(t, p, "acme.localhost", email, password)
	const host = "acme.localhost"
	sc := p.scope(acme)

	t.Run("messages inbox", func(t *testing.T) {
		prop, err := content.CreateProperty(ctx, sc, content.PropertyInput{Title: "Harbour loft", Visible: true})
		if err != nil {
			t.Fatal(err)
		}
		older, err := content.SubmitEnquiry(ctx, sc, content.Enquiry{Name: "Ann", Email: "ann@example.com", Body: "General question"})
		if err != nil {
			t.Fatal(err)
		}
		id, err := content.SubmitEnquiry(ctx, sc, content.Enquiry{Name: "Bob <b>", Email: "bob@example.com", Phone: "+34 600", Body: "Is the loft still free?", PropertyID: &prop.ID})
		if err != nil {
			t.Fatal(err)
		}

		r := p.get(host, "/site_admin", cookie)
		wantStatus(t, r, http.StatusOK)
		saWantBody(t, r, "<b>2</b> messages", "(2 unread)", "Is the loft still free?", "General question", "<b>1</b> properties")

		r = p.get(host, "/site_admin/messages", cookie)
		wantStatus(t, r, http.StatusOK)
		if n := strings.Count(r.Body, `class="unread"`); n != 2 {
			t.Errorf("%d unread rows, want 2", n)
		}
		saWantBody(t, r, "Bob &lt;b&gt;", "Harbour loft", "/site_admin/messages/"+older.String())

		r = p.get(host, "/site_admin/messages/"+id.String(), cookie)
		wantStatus(t, r, http.StatusOK)
		saWantBody(t, r, "Is the loft still free?", "bob@example.com", "34 600", "/site_admin/properties/"+prop.ID.String()+"/edit", "Mark as read")

		r = p.postForm(host, "/site_admin/messages/"+id.String()+"/read", url.Values{"read": {"1"}}, cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if !pgtest.QueryValue[bool](t, db, "SELECT read_at IS NOT NULL FROM messages WHERE id = $1", id) {
			t.Error("message not marked read")
		}
		r = p.get(host, r.Header.Get("Location"), cookie)
		saWantBody(t, r, "Marked as read.", "Mark as unread")
		r = p.get(host, "/site_admin/messages", cookie)
		if n := strings.Count(r.Body, `class="unread"`); n != 1 {
			t.Errorf("%d unread rows after marking one read, want 1", n)
		}

		wantStatus(t, p.postForm(host, "/site_admin/messages/"+id.String()+"/read", url.Values{"read": {"0"}}, cookie), http.StatusSeeOther)
		if pgtest.QueryValue[bool](t, db, "SELECT read_at IS NOT NULL FROM messages WHERE id = $1", id) {
			t.Error("message not marked unread")
		}
		wantStatus(t, p.postForm(host, "/site_admin/messages/"+id.String()+"/read", url.Values{"read": {"maybe"}}, cookie), http.StatusBadRequest)
		wantStatus(t, p.postForm(host, "/site_admin/messages/"+uuid.NewString()+"/read", url.Values{"read": {"1"}}, cookie), http.StatusNotFound)
	})

	t.Run("pages", func(t *testing.T) {
		r := p.get(host, "/site_admin/pages/new", cookie)
		wantStatus(t, r, http.StatusOK)
		r = p.postForm(host, "/site_admin/pages", url.Values{"title": {"About us"}, "body": {"We sell homes."}, "visible": {"1"}, "nav_order": {"1"}}, cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if n := count(t, db, "pages", acme.ID); n != 1 {
			t.Fatalf("%d pages", n)
		}
		saWantBody(t, p.get(host, "/p/about-us"), "We sell homes.")
		r = p.get(host, "/site_admin/pages?done=created", cookie)
		saWantBody(t, r, "Created.", "About us", "/p/about-us")

		r = p.postForm(host, "/site_admin/pages", url.Values{"title": {"Another"}, "slug": {"about-us"}, "body": {"typed text"}}, cookie)
		wantStatus(t, r, http.StatusConflict)
		saWantBody(t, r, "That address is already used by another page.", "typed text")
		if n := count(t, db, "pages", acme.ID); n != 1 {
			t.Errorf("%d pages after a conflict", n)
		}
		r = p.postForm(host, "/site_admin/pages", url.Values{"title": {""}, "slug": {"Bad Slug!"}, "nav_order": {"first"}}, cookie)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		saWantBody(t, r, "Title is required.", "Navigation order must be a whole number", "Use only lower-case letters")

		id := pgtest.QueryValue[uuid.UUID](t, db, "SELECT id FROM pages WHERE website_id = $1", acme.ID)
		r = p.get(host, "/site_admin/pages/"+id.String()+"/edit", cookie)
		wantStatus(t, r, http.StatusOK)
		saWantBody(t, r, `value="About us"`, "We sell homes.")
		r = p.postForm(host, "/site_admin/pages/"+id.String(), url.Values{"title": {"About"}, "slug": {"about"}, "body": {"Since 1990."}}, cookie)
		wantStatus(t, r, http.StatusSeeOther)
		if got := pgtest.QueryValue[string](t, db, "SELECT slug || ' ' || title || ' ' || visible FROM pages WHERE id = $1", id); got != "about About false" {
			t.Errorf("page after update: %q", got)
		}
		if _, err := content.CreatePage(ctx, sc, content.PageInput{Title: "Terms", Slug: "terms"}); err != nil {
			t.Fatal(err)
		}
		r = p.postForm(host, "/site_admin/pages/"+id.String(), url.Values{"title": {"About"}, "slug": {"terms"}}, cookie)
		wantStatus(t, r, http.StatusConflict)
		saWantBody(t, r, "That address is already used by another page.")

		wantStatus(t, p.postForm(host, "/site_admin/pages/"+id.String()+"/delete", nil, cookie), http.StatusSeeOther)
		if n := count(t, db, "pages", acme.ID); n != 1 {
			t.Errorf("%d pages after delete, want 1 (terms)", n)
		}
	})

	t.Run("agency shows in the public footer", func(t *testing.T) {
		r := p.postForm(host, "/site_admin/agency", url.Values{"name": {"Acme Realty & Co"}, "email": {"info@acme.example"}, "phone": {"+34 961 000 000"}, "address": {"Calle Mayor 1"}}, cookie)
		wantStatus(t, r, http.StatusSeeOther)
		saWantBody(t, p.get(host, "/site_admin/agency?done=saved", cookie), "Saved.", `value="Acme Realty &amp; Co"`)
		saWantBody(t, p.get(host, "/"), "Acme Realty &amp; Co", "34 961 000 000", "info@acme.example", "Calle Mayor 1")

		r = p.postForm(host, "/site_admin/agency", url.Values{"name": {"Changed"}, "email": {"not an email"}}, cookie)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		saWantBody(t, r, "Enter an email address", `value="not an email"`)
		if got := pgtest.QueryValue[string](t, db, "SELECT name FROM agencies WHERE website_id = $1", acme.ID); got != "Acme Realty & Co" {
			t.Errorf("agency name is now %q", got)
		}
	})

	t.Run("cross-site posts are refused", func(t *testing.T) {
		before := saCount(t, db, acme.ID)
		form := url.Values{"title": {"CSRF page"}, "visible": {"1"}}.Encode()
		for _, h := range [][]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Origin", "http://evil.example"},
		} {
			for _, path := range []string{"/site_admin/pages", "/site_admin/logout", "/site_admin/login"} {
				r := saPost(p, host, path, strings.NewReader(form), "application/x-www-form-urlencoded", cookie, h...)
				wantStatus(t, r, http.StatusForbidden)
				saWantBody(t, r, "sent from another website")
			}
			body, ct := saMultipart(t, saPropertyFields("CSRF house"), saFile{"a.png", saPNG(t, 3)})
			r := saPost(p, host, "/site_admin/properties", body, ct, cookie, h...)
			wantStatus(t, r, http.StatusForbidden)
		}
		saWantSameCounts(t, "cross-site", before, saCount(t, db, acme.ID))
		if n := count(t, db, "sessions", acme.ID); n != 1 {
			t.Errorf("%d sessions: a cross-site logout took effect", n)
		}
		// The same form from the site itself goes through.
		r := saPost(p, host, "/site_admin/pages", strings.NewReader(form), "application/x-www-form-urlencoded", cookie,
			"Sec-Fetch-Site", "same-origin", "Origin", "http://"+host)
		wantStatus(t, r, http.StatusSeeOther)
	})

	t.Run("every admin answer is no-store", func(t *testing.T) {
		for _, path := range []string{"/site_admin", "/site_admin/properties", "/site_admin/properties/new", "/site_admin/messages", "/site_admin/pages", "/site_admin/agency", "/site_admin/login"} {
			r := p.get(host, path, cookie)
			if r.StatusCode >= 400 {
				t.Errorf("%s: %d", path, r.StatusCode)
			}
			saWantNoStore(t, r)
		}
	})
}

// A read_only tenant's members can still sign in and look around (sessions
// live on primary), are told why changes are paused, and every change gets
// 503 with Retry-After and writes nothing.
func TestSiteAdmin_ReadOnlyTenantSignsInButChangesNothing(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	w := p.tenant("frozen", "shard_1")
	email, password := p.member(w, "owner@frozen.example")
	const host = "frozen.localhost"
	if err := registry.SetStatus(context.Background(), p.primary, w.ID, registry.StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return p.postForm(host, "/contact", url.Values{}).StatusCode == http.StatusServiceUnavailable
	})
	before := saCount(t, p.cluster.URL["shard_1"], w.ID)
	cookie := saSignIn(t, p, host, email, password)
	dash := p.get(host, "/site_admin", cookie)
	wantStatus(t, dash, http.StatusOK)
	saWantBody(t, dash, "read-only while maintenance is in progress")
	r := saPostMultipart(t, p, host, "/site_admin/properties", cookie, saPropertyFields("Frozen flat"))
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("no Retry-After on a paused write: %v", r.Header)
	}
	saWantSameCounts(t, "a write to a read_only tenant", before, saCount(t, p.cluster.URL["shard_1"], w.ID))
	wantStatus(t, p.postForm(host, "/site_admin/logout", url.Values{}, cookie), http.StatusSeeOther)
	r = p.get(host, "/site_admin", cookie)
	wantStatus(t, r, http.StatusSeeOther)
}
