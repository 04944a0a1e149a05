package web

import (
	"image/color"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// photographed creates a property with a photo of each colour, in order, and
// returns it with its photos.
func photographed(t *testing.T, p *platform, sc tenant.Scope, title string, edit func(*content.PropertyInput), colours ...color.Color) content.Property {
	t.Helper()
	prop := listing(t, sc, title, edit)
	for _, c := range colours {
		if _, err := content.AddPhoto(t.Context(), sc, prop.ID, pngBytes(t, c), p.server.photos); err != nil {
			t.Fatal(err)
		}
	}
	full, err := content.GetProperty(t.Context(), sc, prop.ID)
	if err != nil {
		t.Fatal(err)
	}
	return full
}

var photoColours = []color.Color{color.RGBA{200, 30, 30, 255}, color.RGBA{30, 160, 60, 255}, color.RGBA{30, 60, 200, 255}}

// Each photo of a property has a page of its own that shows it large, with
// its place among the photos, links to the ones before and after it and
// back to the property; photos that are not there are not found.
func TestPublic_PhotoPages(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	sc := p.scope(p.tenant("casa", "shard_1"))
	const host = "casa.localhost"
	home := photographed(t, p, sc, "Garden flat", nil, photoColours...)
	hidden := photographed(t, p, sc, "Secret flat", func(in *content.PropertyInput) { in.Visible = false }, color.Black)
	bare := photographed(t, p, sc, "Bare flat", nil)
	otherSite := p.scope(p.tenant("other", "shard_1"))
	theirs := photographed(t, p, otherSite, "Their flat", nil, color.White)

	page := p.get(host, "/properties/"+home.Slug)
	wantStatus(t, page, http.StatusOK)
	for i, ph := range home.Photos {
		n := string(rune('1' + i))
		bodyHas(t, page, `href="/properties/garden-flat/photos/`+n+`"`, `<img src="/photos/`+ph.ID.String()+`" alt="Photo `+n+` of Garden flat">`)
	}

	base := "/properties/" + home.Slug + "/photos/"
	for _, tc := range []struct {
		n          string
		prev, next string // "" when there is none
	}{{"1", "", "2"}, {"2", "1", "3"}, {"3", "2", ""}} {
		r := p.get(host, base+tc.n)
		wantStatus(t, r, http.StatusOK)
		i := int(tc.n[0] - '1')
		bodyHas(t, r, `<img src="/photos/`+home.Photos[i].ID.String()+`"`, "Photo "+tc.n+" of 3",
			`<a href="/properties/garden-flat#photo-`+tc.n+`">← Back to Garden flat</a>`, "<title>Photo "+tc.n+" of 3 · Garden flat")
		for rel, to := range map[string]string{"prev": tc.prev, "next": tc.next} {
			link := `<a href="` + base + to + `" rel="` + rel + `">`
			if to == "" {
				if strings.Contains(r.Body, `rel="`+rel+`"`) {
					t.Errorf("photo %s links %s; it has no photo there", tc.n, rel)
				}
			} else if !strings.Contains(r.Body, link) {
				t.Errorf("photo %s lacks %s", tc.n, link)
			}
		}
	}

	for _, path := range []string{
		base + "0", base + "4", base + "-1", base + "one", base + "1.0", base + url.PathEscape("1 "),
		"/properties/" + hidden.Slug + "/photos/1",
		"/properties/" + bare.Slug + "/photos/1",
		"/properties/no-such-flat/photos/1",
		"/properties/" + theirs.Slug + "/photos/1",
	} {
		r := p.get(host, path)
		wantStatus(t, r, http.StatusNotFound)
		bodyLacks(t, r, "Secret flat", "/photos/"+hidden.Photos[0].ID.String(), theirs.Photos[0].ID.String())
	}
	// The other site's own host shows its photo page.
	wantStatus(t, p.get("other.localhost", "/properties/"+theirs.Slug+"/photos/1"), http.StatusOK)
}

// In a browser: a thumbnail on the property page opens its photo large, Next
// goes to the following one, and the link back returns to the property.
func TestBrowser_PropertyPhotoPages(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	p := newPlatform(t, platformOptions{shards: 1})
	sc := p.scope(p.tenant("casa", "shard_1"))
	home := photographed(t, p, sc, "Garden flat", nil, photoColours...)
	u, _ := url.Parse(p.http.URL)
	b := opsPage{t: t, ctx: ctx, base: "http://casa.localhost:" + u.Port()}
	screenshotOnFailure(t, ctx)
	shown := func(n int) {
		t.Helper()
		want := "Photo " + string(rune('0'+n)) + " of 3"
		if got := b.text(".photo-count"); got != want {
			t.Errorf("the photo page says %q, want %q", got, want)
		}
		b.waitFor("photo "+want+" to load", `(() => { const i = document.querySelector('.photo-page img'); return i.complete && i.naturalWidth === 24; })()`, 10*time.Second)
		if src := b.attr(".photo-page img", "src"); src != "/photos/"+home.Photos[n-1].ID.String() {
			t.Errorf("photo %d shows %s, want photo %s", n, src, home.Photos[n-1].ID)
		}
	}

	b.do("open the property page and its first thumbnail",
		chromedp.Navigate(b.base+"/properties/"+home.Slug),
		chromedp.WaitVisible(chromedp.CSS(`.gallery a[href$="/photos/1"] img`)),
		chromedp.Click(chromedp.CSS(`.gallery a[href$="/photos/1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.photo-page img`)),
	)
	shown(1)
	if !b.is(`document.querySelector('a[rel="prev"]') === null`) {
		t.Error("the first photo links to a previous one")
	}
	// The large photo is larger than its thumbnail was.
	if !b.is(`document.querySelector('.photo-page img').getBoundingClientRect().width > 600`) {
		t.Error("the photo page does not show the photo large")
	}
	b.do("follow Next",
		chromedp.Click(chromedp.CSS(`a[rel="next"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[rel="prev"]`)),
	)
	b.waitFor("the second photo's page", `location.pathname.endsWith("/photos/2")`, 10*time.Second)
	shown(2)
	b.do("go back to the property",
		chromedp.Click(chromedp.CSS(`.photo-back a`)),
		chromedp.WaitVisible(chromedp.CSS(`#enquiry`)),
	)
	if path := opsRun(b, "reading the address", chromedp.Evaluate[string](`location.pathname + location.hash`)); path != "/properties/garden-flat#photo-2" {
		t.Errorf("back at %s, want the property page at the second photo", path)
	}
	if h1 := b.text("main h1"); h1 != "Garden flat" {
		t.Errorf("back on a page titled %q", h1)
	}
}
