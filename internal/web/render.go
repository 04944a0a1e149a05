package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/units"
)

//go:embed templates
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// renderer holds every page template, parsed once at start-up. Each page is
// its own clone of the layouts, so pages can all define "content".
type renderer struct {
	pages map[string]*template.Template
}

// layoutFor says which layout a page is drawn in, by its folder.
var layoutFor = map[string]string{
	"public":   "public_layout",
	"admin":    "admin_layout",
	"platform": "plain_layout",
	"ops":      "ops_layout",
	".":        "plain_layout", // templates at the top, such as error
}

func newRenderer() (*renderer, error) {
	base, err := template.New("").Funcs(templateFuncs).ParseFS(templateFS, "templates/layouts.html")
	if err != nil {
		return nil, fmt.Errorf("parsing layouts: %w", err)
	}
	r := &renderer{pages: map[string]*template.Template{}}
	err = fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "templates/layouts.html" {
			return err
		}
		t, err := base.Clone()
		if err != nil {
			return err
		}
		if _, err := t.ParseFS(templateFS, p); err != nil {
			return fmt.Errorf("parsing %s: %w", p, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(p, "templates/"), ".html")
		r.pages[name] = t
		return nil
	})
	return r, err
}

// view is what every page template receives.
type view struct {
	Title     string
	Site      *chrome  // the tenant's name, agency and menu; nil off tenant sites
	Member    string   // the signed-in site admin's email, on admin pages
	Path      string   // the request path, for marking the current menu item
	Flash     string   // a one-line notice after a redirect
	Data      any      // the page's own data
	Error     string   // a form-level error message
	Fields    fieldErr // per-field error messages of a refused form
	RequestID string
	Meta      *pageMeta // a public page's description and link preview; nil elsewhere
}

type fieldErr map[string]string

// render executes page name into a buffer and only then writes it, so a
// template error becomes a clean 500 instead of half a page.
func (rd *renderer) render(w http.ResponseWriter, status int, name string, v view) error {
	return rd.renderIn(w, status, name, layoutFor[path.Dir(name)], v)
}

// renderIn is render in a layout of one's choice: an error page is drawn in
// the layout of the site it happens on.
func (rd *renderer) renderIn(w http.ResponseWriter, status int, name, layout string, v view) error {
	t, ok := rd.pages[name]
	if !ok {
		return fmt.Errorf("no template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, layout, v); err != nil {
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	// A failed write means the client went away; there is nobody to tell.
	_, _ = w.Write(buf.Bytes())
	return nil
}

// renderFragment draws one named template of page name without its
// layout: a part of a page that the page refreshes by itself.
func (rd *renderer) renderFragment(w http.ResponseWriter, name, fragment string, data any) error {
	t, ok := rd.pages[name]
	if !ok {
		return fmt.Errorf("no template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, fragment, data); err != nil {
		return fmt.Errorf("rendering %s of %s: %w", fragment, name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(buf.Bytes())
	return nil
}

// renderError draws an error page. Error pages never query the tenant's shard
// (it may be the very thing that is down), so they show only what the request
// already knows. On a tenant's public site that is its name, enough for the
// site's header and navigation: the visitor is not left at a dead end. When
// the answer says when to come back (Retry-After), the page says it in words.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, he *httpError) {
	ri := requestFrom(r.Context())
	v := view{Title: he.title, RequestID: ri.ID, Data: errorPageData{
		Title: he.title, Message: he.message, Link: he.link, RetryIn: retryAfterWords(w.Header().Get("Retry-After")),
	}}
	layout := layoutFor["."]
	if ri.SiteName != "" {
		v.Site = &chrome{Name: ri.SiteName}
		if !isSiteAdmin(r.URL.Path) {
			layout, v.Path = "public_layout", r.URL.Path
			v.Meta = publicMeta(r, v.Site, he.title, &pageMeta{NoIndex: true})
		}
	}
	if err := s.pages.renderIn(w, he.status, "error", layout, v); err != nil {
		http.Error(w, he.title, he.status)
	}
}

// errorPageData is what the error page shows.
type errorPageData struct {
	Title, Message string
	Link           *pageLink // where to go instead, if anywhere
	RetryIn        string    // "30 seconds", when the answer says when to try again
}

// retryAfterWords says a Retry-After of whole seconds in words, or "" when
// there is none.
func retryAfterWords(header string) string {
	secs, err := strconv.Atoi(header)
	if err != nil || secs <= 0 {
		return ""
	}
	return waitText(secs)
}

var templateFuncs = template.FuncMap{
	"money":    formatMoney,
	"date":     func(t time.Time) string { return t.Format("2 Jan 2006") },
	"datetime": func(t time.Time) string { return t.Format("2 Jan 2006 15:04") },
	"add":      func(a, b int) int { return a + b },
	"deref": func(p any) any {
		switch v := p.(type) {
		case *int64:
			if v != nil {
				return *v
			}
		case *int:
			if v != nil {
				return *v
			}
		case *float64:
			if v != nil {
				return *v
			}
		}
		return ""
	},
	"pageURL": func(u *url.URL, page int) string {
		q := u.Query()
		q.Set("page", strconv.Itoa(page))
		return u.Path + "?" + q.Encode()
	},
	"excerpt": func(s string, n int) string {
		r := []rune(s)
		if len(r) <= n {
			return s
		}
		return strings.TrimSpace(string(r[:n])) + "…"
	},
	"statusText": http.StatusText,
	"count":      func(n any) string { return units.Count(toInt64(n)) },
	"bytes":      units.Bytes,
	"latency":    func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) },
	"rough":      roughDuration,
	"clock":      func(t time.Time) string { return t.Format("15:04:05") },
	"progress":   func(m journal.Move) moveProgress { return progressOf(m, time.Now()) },
	"listing":    listingLabel,
	"facts":      cardFacts,
}

func toInt64(n any) int64 {
	switch v := n.(type) {
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case int64:
		return v
	}
	return 0
}

func listingLabel(p content.Property) string {
	switch {
	case p.ForSale && p.ForRent:
		return "For sale or rent"
	case p.ForSale:
		return "For sale"
	case p.ForRent:
		return "For rent"
	}
	return "Not listed"
}
