package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

func TestBodyLimit_PerRoute(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         int64
	}{
		{"POST", "/site_admin/properties", maxUploadBody},
		{"POST", "/site_admin/properties/0192f3a4-0000-7000-8000-000000000000", maxUploadBody},
		{"POST", "/site_admin/properties/0192f3a4-0000-7000-8000-000000000000/photos", maxUploadBody},
		{"POST", "/site_admin/properties/0192f3a4-0000-7000-8000-000000000000/delete", maxAdminForm},
		{"POST", "/site_admin/properties/", maxAdminForm},
		{"POST", "/site_admin/propertiesx", maxAdminForm},
		{"POST", "/site_admin/properties/x/photos/", maxAdminForm},
		{"POST", "/site_admin/pages", maxAdminForm},
		{"POST", "/site_admin/agency", maxAdminForm},
		{"POST", "/site_admin/photos/x/delete", maxAdminForm},
		{"POST", "/site_admin/logout", maxAdminForm},
		{"POST", "/site_admin/login", maxSmallForm},
		{"POST", "/admin/login", maxSmallForm},
		{"POST", "/admin/tenants/3/migrate", maxSmallForm},
		{"POST", "/contact", maxPublicForm},
		{"POST", "/properties/sea-view/enquiry", maxPublicForm},
		{"POST", "/properties//enquiry", maxSmallForm},
		{"POST", "/properties/sea-view/enquiry/x", maxSmallForm},
		{"POST", "/", maxSmallForm},
		{"POST", "/administrator", maxSmallForm},
		{"GET", "/site_admin/properties", maxSmallForm},
		{"PUT", "/site_admin/properties", maxSmallForm},
		{"HEAD", "/contact", maxSmallForm},
	} {
		if got := bodyLimit(c.method, c.path); got != c.want {
			t.Errorf("bodyLimit(%s %s) = %d, want %d", c.method, c.path, got, c.want)
		}
	}
}

// declare sends only the head of a request that declares a body of length
// bytes, over a connection of its own, and returns the answer and how long it
// took. A server that waits for the body never answers: the connection's
// deadline of a second fails the test then.
func declare(t *testing.T, p *platform, method, host, path string, length int64, header ...string) (*http.Response, string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", p.http.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, path, host, length)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&head, "%s: %s\r\n", header[i], header[i+1])
	}
	head.WriteString("\r\n")
	start := time.Now()
	if err := conn.SetDeadline(start.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, head.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s declaring %d bytes: no answer within a second: %v", method, path, length, err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	took := time.Since(start)
	// The server closes the connection rather than read what is declared.
	// A declared body of up to 256 KB it reads after answering, before it
	// closes (bounded by the server's ReadTimeout): that is net/http's own
	// and costs the client its answer nothing.
	if length > 256<<10 {
		if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("%s %s: after the answer, read %d bytes, %v; want the connection closed", method, path, n, err)
		}
	}
	return res, string(body), took
}

// bodyLimitDB counts the rows a refused request could have written: the
// tenant's, and the sessions, sign-in and enquiry counts and audit entries,
// all on primary.
func bodyLimitDB(t *testing.T, p *platform, websiteID int64) saCounts {
	t.Helper()
	c := saCount(t, p.cluster.URL[shard.Default], websiteID)
	for _, table := range []string{"sessions", "platform_sessions", "throttles", "audit_log", "users"} {
		c["primary "+table] = int(pgtest.QueryValue[int64](t, p.cluster.URL[shard.Default], "SELECT count(*) FROM "+table))
	}
	return c
}

func TestBodyLimit_DeclaredTooLargeIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	acme := p.tenant("acme", shard.Default)
	const host = "acme.localhost"
	email, password := p.member(acme, "owner@acme.example")
	cookie := saSignIn(t, p, host, email, password)
	opsCookie, csrf := p.superAdmin("ops@pwb.example")
	prop, err := content.CreateProperty(context.Background(), p.scope(acme),
		content.PropertyInput{Title: "Sea view", Visible: true, ForSale: true})
	if err != nil {
		t.Fatal(err)
	}
	id := prop.ID.String()
	session := sessionCookie + "=" + cookie.Value
	ops := opsCookie.Name + "=" + opsCookie.Value

	for _, c := range []struct {
		name, method, host, path string
		limit                    int64
		header                   []string
	}{
		{"new property with photos", "POST", host, "/site_admin/properties", maxUploadBody,
			[]string{"Cookie", session, "Content-Type", "multipart/form-data; boundary=x"}},
		{"property form with photos", "POST", host, "/site_admin/properties/" + id, maxUploadBody,
			[]string{"Cookie", session, "Content-Type", "multipart/form-data; boundary=x"}},
		{"photo upload", "POST", host, "/site_admin/properties/" + id + "/photos", maxUploadBody,
			[]string{"Cookie", session, "Content-Type", "multipart/form-data; boundary=x"}},
		{"site admin form", "POST", host, "/site_admin/pages", maxAdminForm,
			[]string{"Cookie", session, "Content-Type", "application/x-www-form-urlencoded"}},
		{"site admin delete", "POST", host, "/site_admin/properties/" + id + "/delete", maxAdminForm,
			[]string{"Cookie", session, "Content-Type", "application/x-www-form-urlencoded"}},
		{"platform admin form", "POST", "localhost", "/admin/tenants/" + fmt.Sprint(acme.ID) + "/migrate", maxSmallForm,
			[]string{"Cookie", ops, "X-CSRF-Token", csrf, "Content-Type", "application/x-www-form-urlencoded"}},
		{"site admin sign-in", "POST", host, "/site_admin/login", maxSmallForm,
			[]string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"platform admin sign-in", "POST", "localhost", "/admin/login", maxSmallForm,
			[]string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"contact form", "POST", host, "/contact", maxPublicForm,
			[]string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"enquiry", "POST", host, "/properties/" + prop.Slug + "/enquiry", maxPublicForm,
			[]string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"page", "GET", host, "/", maxSmallForm, nil},
		{"admin page", "GET", host, "/site_admin/properties", maxSmallForm, []string{"Cookie", session}},
		{"head", "HEAD", host, "/contact", maxSmallForm, nil},
		{"stylesheet", "GET", "unknown.example", "/static/site.css", maxSmallForm, nil},
		{"unknown host", "POST", "unknown.example", "/contact", maxPublicForm, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := bodyLimitDB(t, p, acme.ID)
			for _, length := range []int64{10 << 30, c.limit + 1} {
				res, body, took := declare(t, p, c.method, c.host, c.path, length, c.header...)
				if res.StatusCode != http.StatusRequestEntityTooLarge {
					t.Errorf("declaring %d bytes: status %d, want 413:\n%s", length, res.StatusCode, excerpt(body))
				}
				if c.method != "HEAD" && !strings.Contains(body, "larger than this form accepts") {
					t.Errorf("declaring %d bytes: not the error page:\n%s", length, excerpt(body))
				}
				if !res.Close {
					t.Errorf("declaring %d bytes: the answer keeps the connection (%v)", length, res.Header)
				}
				if took > 500*time.Millisecond {
					t.Errorf("declaring %d bytes: answered after %v", length, took)
				}
			}
			saWantSameCounts(t, c.name, before, bodyLimitDB(t, p, acme.ID))
		})
	}
	if log := p.log.String(); !strings.Contains(log, "status=413") {
		t.Errorf("the refusals are not in the access log:\n%s", log)
	}
}

// paddedForm encodes fields with a pad field that makes it exactly size
// bytes.
func paddedForm(t *testing.T, fields url.Values, size int64) string {
	t.Helper()
	padded := url.Values{}
	for k, v := range fields {
		padded[k] = v
	}
	padded.Set("pad", "")
	n := size - int64(len(padded.Encode()))
	if n < 0 {
		t.Fatalf("the fields alone are %d bytes, over %d", len(padded.Encode()), size)
	}
	padded.Set("pad", strings.Repeat("x", int(n)))
	if got := int64(len(padded.Encode())); got != size {
		t.Fatalf("padded form is %d bytes, want %d", got, size)
	}
	return padded.Encode()
}

func TestBodyLimit_AFormAtTheLimitIsAccepted(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	acme := p.tenant("acme", shard.Default)
	const host = "acme.localhost"
	db := p.cluster.URL[shard.Default]
	email, password := p.member(acme, "owner@acme.example")
	prop, err := content.CreateProperty(context.Background(), p.scope(acme),
		content.PropertyInput{Title: "Sea view", Visible: true, ForSale: true})
	if err != nil {
		t.Fatal(err)
	}
	post := func(host, path string, body string, cookies ...*http.Cookie) response {
		req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		return p.do(host, req)
	}

	// Sign-ins.
	r := post(host, "/site_admin/login", paddedForm(t, url.Values{"email": {email}, "password": {password}}, maxSmallForm))
	wantStatus(t, r, http.StatusSeeOther)
	cookie := saCookie(r)
	if cookie == nil {
		t.Fatal("no session cookie after signing in")
	}
	const opsPassword = "correct horse battery"
	if _, err := account.CreateSuperAdmin(context.Background(), p.primary, "ops@pwb.example", opsPassword); err != nil {
		t.Fatal(err)
	}
	r = post("localhost", "/admin/login", paddedForm(t, url.Values{"email": {"ops@pwb.example"}, "password": {opsPassword}}, maxSmallForm))
	wantStatus(t, r, http.StatusSeeOther)

	// A site admin form.
	r = post(host, "/site_admin/pages", paddedForm(t, url.Values{"title": {"About us"}, "body": {strings.Repeat("Words. ", 7000)}, "visible": {"1"}}, maxAdminForm), cookie)
	wantStatus(t, r, http.StatusSeeOther)
	if got := count(t, db, "pages", acme.ID); got != 1 {
		t.Errorf("%d pages after the form at the limit, want 1", got)
	}

	// Public forms.
	enquiry := url.Values{"name": {"Ana"}, "email": {"ana@example.com"}, "message": {"Is it still for sale?"}}
	wantStatus(t, post(host, "/contact", paddedForm(t, enquiry, maxPublicForm)), http.StatusSeeOther)
	wantStatus(t, post(host, "/properties/"+prop.Slug+"/enquiry", paddedForm(t, enquiry, maxPublicForm)), http.StatusSeeOther)
	if got := count(t, db, "messages", acme.ID); got != 2 {
		t.Errorf("%d messages after the forms at the limit, want 2", got)
	}

	// A page asked for with a small body.
	req, _ := http.NewRequest(http.MethodGet, "/", strings.NewReader(strings.Repeat("x", maxSmallForm)))
	wantStatus(t, p.do(host, req), http.StatusOK)

	// Photos: six of the largest size, and the rest of the room in a field.
	photo := append(saPNG(t, 9), make([]byte, content.MaxPhotoBytes)...)[:content.MaxPhotoBytes]
	files := []saFile{{"1.png", photo}, {"2.png", photo}, {"3.png", photo}, {"4.png", photo}, {"5.png", photo}, {"6.png", photo}}
	body, _ := saMultipart(t, url.Values{"pad": {""}}, files...)
	pad := strings.Repeat("x", maxUploadBody-body.Len())
	body, ct := saMultipart(t, url.Values{"pad": {pad}}, files...)
	if body.Len() != maxUploadBody {
		t.Fatalf("upload is %d bytes, want %d", body.Len(), maxUploadBody)
	}
	r = saPost(p, host, "/site_admin/properties/"+prop.ID.String()+"/photos", body, ct, cookie)
	wantStatus(t, r, http.StatusSeeOther)
	if got := count(t, db, "property_photos", acme.ID); got != len(files) {
		t.Errorf("%d photos after the upload at the limit, want %d", got, len(files))
	}
}

// Without a declared length, a body is cut off as it is read: the public
// forms too.
func TestBodyLimit_ChunkedPublicFormIsCutOff(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	acme := p.tenant("acme", shard.Default)
	const host = "acme.localhost"
	before := bodyLimitDB(t, p, acme.ID)
	form := paddedForm(t, url.Values{"name": {"Ana"}, "email": {"ana@example.com"}, "message": {"Hello"}}, 4*maxPublicForm)
	// A reader that is not a *strings.Reader has no known length, so the
	// client sends it chunked.
	req, _ := http.NewRequest(http.MethodPost, "/contact", io.MultiReader(strings.NewReader(form)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := p.do(host, req)
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
	saWantSameCounts(t, "chunked contact form", before, bodyLimitDB(t, p, acme.ID))
}
