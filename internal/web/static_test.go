package web

import (
	"context"
	"image/color"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

func wantNoSniff(t *testing.T, r response) {
	t.Helper()
	if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s %s%s: X-Content-Type-Options %q, want nosniff", r.Request.Method, r.Request.Host, r.Request.URL.Path, got)
	}
}

// wantNoListing checks r is the not-found page and names none of the
// static files.
func wantNoListing(t *testing.T, r response) {
	t.Helper()
	wantStatus(t, r, http.StatusNotFound)
	wantNoSniff(t, r)
	if !strings.Contains(r.Body, "There is nothing at this address.") {
		t.Errorf("%s: not the not-found page:\n%s", r.Request.URL.Path, excerpt(r.Body))
	}
	for _, listed := range []string{`href="site.css"`, `href="ops.js"`, `href="css/"`, "<pre>"} {
		if strings.Contains(r.Body, listed) {
			t.Errorf("%s lists the folder (%s):\n%s", r.Request.URL.Path, listed, excerpt(r.Body))
		}
	}
	if got := r.Header.Get("Cache-Control"); strings.Contains(got, "max-age") {
		t.Errorf("%s: a miss is cached (%s)", r.Request.URL.Path, got)
	}
}

func TestStatic_FilesButNoListingAndNoSniffing(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	acme := p.tenant("acme", shard.Default)

	for _, host := range []string{"acme.localhost", "localhost", "unknown.example"} {
		for _, c := range []struct{ path, typ string }{{"/static/site.css", "text/css"}, {"/static/ops.js", "javascript"}} {
			r := p.get(host, c.path)
			wantStatus(t, r, http.StatusOK)
			wantNoSniff(t, r)
			if got := r.Header.Get("Content-Type"); !strings.Contains(got, c.typ) {
				t.Errorf("%s%s: Content-Type %q, want %s", host, c.path, got, c.typ)
			}
			if got := r.Header.Get("Cache-Control"); got != "public, max-age=86400" {
				t.Errorf("%s%s: Cache-Control %q", host, c.path, got)
			}
		}
		for _, path := range []string{"/static/", "/static/somedir/", "/static/missing.css", "/static/site.css/"} {
			wantNoListing(t, p.get(host, path))
		}
		req, _ := http.NewRequest(http.MethodHead, "/static/", nil)
		r := p.do(host, req)
		wantStatus(t, r, http.StatusNotFound)
		wantNoSniff(t, r)
	}

	// Every other answer says nosniff too: pages, error pages, the admin,
	// photos from the database and the health checks.
	ph, err := content.AddPhoto(context.Background(), p.scope(acme),
		listing(t, p.scope(acme), "Sea view", nil).ID, pngBytes(t, color.White), p.server.photos)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host, path string
		status     int
	}{
		{"acme.localhost", "/", http.StatusOK},
		{"acme.localhost", "/photos/" + ph.ID.String(), http.StatusOK},
		{"acme.localhost", "/nothing-here", http.StatusNotFound},
		{"acme.localhost", "/site_admin/login", http.StatusOK},
		{"unknown.example", "/", http.StatusNotFound},
		{"localhost", "/admin/login", http.StatusOK},
		{"localhost", "/healthz", http.StatusOK},
	} {
		r := p.get(c.host, c.path)
		wantStatus(t, r, c.status)
		wantNoSniff(t, r)
	}
}

// A folder that is there, with or without its slash, is not listed either.
func TestStatic_FoldersOfTheFilesAreNotListed(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	files := fstest.MapFS{
		"site.css":      {Data: []byte("body { color: black }")},
		"css/print.css": {Data: []byte("nav { display: none }")},
	}
	h := http.StripPrefix("/static/", p.server.staticFiles(files))
	get := func(path string) response {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return response{Response: rec.Result(), Body: rec.Body.String()}
	}
	for _, path := range []string{"/static/", "/static/css/", "/static/css", "/static/css/.", "/static/css/print.css/"} {
		r := get(path)
		r.Request = httptest.NewRequest(http.MethodGet, path, nil)
		wantNoListing(t, r)
	}
	r := get("/static/css/print.css")
	if r.StatusCode != http.StatusOK || r.Body != "nav { display: none }" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("a file in a folder: %d %q %v", r.StatusCode, r.Body, r.Header)
	}
}
