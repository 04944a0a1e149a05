package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"html"
	"image/color"
	"image/png"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// The icon answers on every host, as a real ICO file holding a 32x32 PNG,
// cached and revalidated by its ETag.
func TestPublic_Favicon(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	p.tenant("acme", shard.Default)
	for _, host := range []string{"acme.localhost", "localhost"} {
		r := p.get(host, "/favicon.ico")
		wantStatus(t, r, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); ct != "image/x-icon" {
			t.Errorf("%s: Content-Type %q", host, ct)
		}
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=86400") {
			t.Errorf("%s: Cache-Control %q, want a day", host, cc)
		}
		ico := []byte(r.Body)
		if len(ico) < 22 {
			t.Fatalf("%s: %d bytes is no icon", host, len(ico))
		}
		le := binary.LittleEndian
		if le.Uint16(ico[0:]) != 0 || le.Uint16(ico[2:]) != 1 || le.Uint16(ico[4:]) != 1 {
			t.Fatalf("%s: not an ICO header with one image: % x", host, ico[:6])
		}
		width, height, size, offset := ico[6], ico[7], le.Uint32(ico[14:]), le.Uint32(ico[18:])
		if width != 32 || height != 32 || int(offset)+int(size) != len(ico) {
			t.Fatalf("%s: entry %dx%d, %d bytes at %d, in a file of %d", host, width, height, size, offset, len(ico))
		}
		img, err := png.Decode(bytes.NewReader(ico[offset:]))
		if err != nil || img.Bounds().Dx() != 32 || img.Bounds().Dy() != 32 {
			t.Fatalf("%s: the icon's image: %v, %v", host, err, img)
		}
		req, _ := http.NewRequest(http.MethodGet, "/favicon.ico", nil)
		req.Header.Set("If-None-Match", r.Header.Get("ETag"))
		if again := p.do(host, req); again.StatusCode != http.StatusNotModified || again.Body != "" {
			t.Errorf("%s: asking again with its ETag %q: %d, %d bytes", host, r.Header.Get("ETag"), again.StatusCode, len(again.Body))
		}
	}
}

// sitemapXML is a sitemap as a crawler reads it.
type sitemapXML struct {
	XMLName xml.Name
	URLs    []struct {
		Loc     string `xml:"loc"`
		LastMod string `xml:"lastmod"`
	} `xml:"url"`
}

func readSitemap(t *testing.T, r response) (sitemapXML, []string) {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
		t.Errorf("sitemap Content-Type %q", ct)
	}
	var sm sitemapXML
	if err := xml.Unmarshal([]byte(r.Body), &sm); err != nil {
		t.Fatalf("the sitemap is not XML: %v\n%s", err, excerpt(r.Body))
	}
	if sm.XMLName.Space != "http://www.sitemaps.org/schemas/sitemap/0.9" || sm.XMLName.Local != "urlset" {
		t.Errorf("the sitemap's root is %v, want urlset in the sitemaps namespace", sm.XMLName)
	}
	var locs []string
	for _, u := range sm.URLs {
		locs = append(locs, u.Loc)
	}
	return sm, locs
}

// robots.txt and sitemap.xml are each tenant's own, with absolute
// addresses on the host and scheme the site is reached by: https only when
// a trusted proxy says so.
func TestPublic_RobotsAndSitemap(t *testing.T) {
	t.Parallel()
	const proxy = "127.0.0.77"
	// A longer deadline: the sitemap of the site at the cap lists 50,000
	// addresses on a machine shared by many tests.
	p := newPlatform(t, platformOptions{shards: 1, trusted: []netip.Prefix{netip.MustParsePrefix(proxy + "/32")}, requestTimeout: 20 * time.Second})
	ctx := context.Background()
	alpha := p.tenant("alpha", "shard_1")
	bravo := p.tenant("bravo", "shard_1") // same shard: only website_id tells them apart
	asc, bsc := p.scope(alpha), p.scope(bravo)
	shown := listing(t, asc, "Shown flat", nil)
	hidden := listing(t, asc, "Hidden flat", func(in *content.PropertyInput) { in.Visible = false })
	rental := listing(t, asc, "Flat to let", func(in *content.PropertyInput) {
		in.ForSale, in.SalePriceCents, in.SaleCurrency = false, nil, ""
		in.ForRent, in.RentPriceCentsMonthly, in.RentCurrency = true, cents(900_00), "EUR"
	})
	others := listing(t, bsc, "Bravo's flat", nil)
	for _, pg := range []content.PageInput{
		{Slug: "about", Title: "About us", Body: "Since 1990.", Visible: true},
		{Slug: "draft", Title: "Draft", Visible: false},
	} {
		if _, err := content.CreatePage(ctx, asc, pg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := content.CreatePage(ctx, bsc, content.PageInput{Slug: "team", Title: "Team", Visible: true}); err != nil {
		t.Fatal(err)
	}

	robots := p.get("alpha.localhost:8080", "/robots.txt")
	wantStatus(t, robots, http.StatusOK)
	if ct := robots.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("robots.txt Content-Type %q", ct)
	}
	lines := strings.Split(strings.TrimSpace(robots.Body), "\n")
	for _, want := range []string{"User-agent: *", "Allow: /", "Disallow: /site_admin", "Disallow: /admin", "Sitemap: http://alpha.localhost:8080/sitemap.xml"} {
		if !slices.Contains(lines, want) {
			t.Errorf("robots.txt lacks the line %q:\n%s", want, robots.Body)
		}
	}

	sm, locs := readSitemap(t, p.get("alpha.localhost", "/sitemap.xml"))
	const base = "http://alpha.localhost"
	want := []string{base + "/", base + "/buy", base + "/rent", base + "/contact", base + "/p/about",
		base + "/properties/" + shown.Slug, base + "/properties/" + rental.Slug}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(locs))
	if !slices.Equal(got, want) {
		t.Errorf("the sitemap lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, absent := range []string{hidden.Slug, others.Slug, "/p/draft", "/p/team"} {
		if strings.Contains(strings.Join(locs, "\n"), absent) {
			t.Errorf("the sitemap lists %s", absent)
		}
	}
	for _, u := range sm.URLs {
		if strings.Contains(u.Loc, "/properties/") {
			if _, err := time.Parse(time.RFC3339, u.LastMod); err != nil {
				t.Errorf("%s: lastmod %q is not a W3C date-time", u.Loc, u.LastMod)
			}
		}
	}
	_, bravoLocs := readSitemap(t, p.get("bravo.localhost", "/sitemap.xml"))
	if !slices.Contains(bravoLocs, "http://bravo.localhost/properties/"+others.Slug) || slices.ContainsFunc(bravoLocs, func(l string) bool {
		return strings.Contains(l, shown.Slug) || strings.Contains(l, "alpha")
	}) {
		t.Errorf("bravo's sitemap:\n%s", strings.Join(bravoLocs, "\n"))
	}

	// Through a trusted proxy that received https, the addresses are https;
	// the same header from anyone else changes nothing.
	req, _ := http.NewRequest(http.MethodGet, "/robots.txt", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	bodyHas(t, p.from(proxy).do("alpha.localhost", req), "Sitemap: https://alpha.localhost/sitemap.xml")
	req, _ = http.NewRequest(http.MethodGet, "/sitemap.xml", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	if _, locs := readSitemap(t, p.do("alpha.localhost", req)); !slices.Contains(locs, base+"/buy") {
		t.Errorf("a stranger's X-Forwarded-Proto was believed:\n%s", strings.Join(locs, "\n"))
	}

	// A site with more properties than a sitemap may hold lists its newest,
	// up to the cap.
	charlie := p.tenant("charlie", shard.Default)
	pgtest.Exec(t, p.cluster.URL[shard.Default], `INSERT INTO properties (id, website_id, slug, title, created_at)
		SELECT gen_random_uuid(), $1, 'bulk-' || n, 'Bulk ' || n, now() - n * interval '1 second'
		FROM generate_series(1, 50010) AS n`, charlie.ID)
	_, bulk := readSitemap(t, p.get("charlie.localhost", "/sitemap.xml"))
	if len(bulk) != 50_000 || !slices.Contains(bulk, "http://charlie.localhost/properties/bulk-1") ||
		slices.Contains(bulk, "http://charlie.localhost/properties/bulk-50010") {
		t.Errorf("the sitemap of a site with 50,010 properties lists %d addresses; want 50,000, the newest", len(bulk))
	}
}

var metaTagRE = regexp.MustCompile(`<meta (?:name|property)="([^"]+)" content="([^"]*)">`)

// metaTags reads the named meta tags of a page, unescaped.
func metaTags(t *testing.T, r response) map[string]string {
	t.Helper()
	head, _, ok := strings.Cut(r.Body, "</head>")
	if !ok {
		t.Fatalf("%s: no head:\n%s", r.Request.URL, excerpt(r.Body))
	}
	out := map[string]string{}
	for _, m := range metaTagRE.FindAllStringSubmatch(head, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

func wantMeta(t *testing.T, r response, want map[string]string) {
	t.Helper()
	got := metaTags(t, r)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %q, want %q", r.Request.URL, k, got[k], v)
		}
	}
}

// Every public page describes itself for search results and link previews:
// its own description, title, address and first photo, escaped.
func TestPublic_MetaDescriptionAndOpenGraph(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := context.Background()
	w := p.tenant("prestige", "shard_1")
	sc := p.scope(w)
	const host, base = "prestige.localhost", "http://prestige.localhost"
	if err := content.SaveAgency(ctx, sc, content.Agency{Name: "Prestige Estates Ltd", Address: "Rua Augusta 10, Lisbon"}); err != nil {
		t.Fatal(err)
	}
	const title = `Tom's "sunny" <flat> & more`
	long := strings.Repeat("A bright flat on the third floor,   with\nviews of the river. ", 6)
	flat := listing(t, sc, title, func(in *content.PropertyInput) { in.Description, in.Highlighted = long, true })
	var photos []content.PhotoInfo
	for _, c := range []color.Color{color.RGBA{200, 20, 20, 255}, color.White} {
		ph, err := content.AddPhoto(ctx, sc, flat.ID, pngBytes(t, c), p.server.photos)
		if err != nil {
			t.Fatal(err)
		}
		photos = append(photos, ph)
	}
	plain := listing(t, sc, "Plain house", func(in *content.PropertyInput) { in.City, in.Bedrooms, in.Bathrooms = "Porto", 3, 1 })
	if _, err := content.CreatePage(ctx, sc, content.PageInput{Slug: "about", Title: "About us", Body: "We sell homes.\n\n  Since 1990.", Visible: true}); err != nil {
		t.Fatal(err)
	}

	home := p.get(host, "/")
	wantStatus(t, home, http.StatusOK)
	wantMeta(t, home, map[string]string{
		"description":    "Homes for sale and to rent from Prestige Estates Ltd, Rua Augusta 10, Lisbon.",
		"og:title":       "Prestige Homes",
		"og:site_name":   "Prestige Homes",
		"og:type":        "website",
		"og:url":         base + "/",
		"og:image":       base + "/photos/" + photos[0].ID.String(),
		"twitter:card":   "summary_large_image",
		"og:description": "Homes for sale and to rent from Prestige Estates Ltd, Rua Augusta 10, Lisbon.",
	})

	page := p.get(host, "/properties/"+flat.Slug+"?sent=1")
	wantStatus(t, page, http.StatusOK)
	wantMeta(t, page, map[string]string{
		"og:title":     title,
		"og:type":      "article",
		"og:url":       base + "/properties/" + flat.Slug,
		"og:image":     base + "/photos/" + photos[0].ID.String(),
		"twitter:card": "summary_large_image",
	})
	tags := metaTags(t, page)
	desc, oneLine := tags["description"], strings.Join(strings.Fields(long), " ")
	if n := utf8.RuneCountInString(desc); n > 160 || !strings.HasSuffix(desc, "…") ||
		!strings.HasPrefix(oneLine, strings.TrimSuffix(desc, "…")) || n < 100 {
		t.Errorf("the description of a long text is %q (%d characters); want its start on one line, cut at a word, at most 160", desc, n)
	}
	if tags["og:description"] != desc {
		t.Errorf("og:description %q differs from the description %q", tags["og:description"], desc)
	}
	head, _, _ := strings.Cut(page.Body, "</head>")
	if strings.Contains(page.Body, "<flat>") || !strings.Contains(head, `content="Tom&#39;s &#34;sunny&#34; &lt;flat&gt; &amp; more"`) {
		t.Errorf("the title is not escaped in the head:\n%s", head)
	}

	wantMeta(t, p.get(host, "/properties/"+plain.Slug), map[string]string{
		"description":  "For sale in Porto: 3 bedrooms, 1 bathroom.",
		"og:title":     "Plain house",
		"twitter:card": "summary",
	})
	about := p.get(host, "/p/about")
	wantMeta(t, about, map[string]string{
		"description": "We sell homes. Since 1990.",
		"og:title":    "About us",
		"og:type":     "article",
		"og:url":      base + "/p/about",
	})
	if _, ok := metaTags(t, about)["og:image"]; ok {
		t.Errorf("a page without photos has an og:image")
	}
	wantMeta(t, p.get(host, "/buy?city=Lisbon"), map[string]string{
		"description": "Homes for sale from Prestige Homes: 1 property.",
		"og:url":      base + "/buy",
	})
	wantMeta(t, p.get(host, "/contact"), map[string]string{
		"description": "Contact Prestige Homes: send a message, or call or write to the agency.",
	})
	// Every public page has its own description and an absolute address;
	// error pages ask not to be indexed.
	for _, path := range []string{"/", "/buy", "/rent", "/contact", "/p/about", "/properties/" + flat.Slug} {
		r := p.get(host, path)
		tags := metaTags(t, r)
		if tags["description"] == "" || !strings.HasPrefix(tags["og:url"], base+"/") || tags["og:title"] == "" || tags["robots"] != "" {
			t.Errorf("%s: meta tags %v", path, tags)
		}
	}
	missing := p.get(host, "/properties/no-such-flat")
	wantStatus(t, missing, http.StatusNotFound)
	if tags := metaTags(t, missing); tags["robots"] != "noindex" {
		t.Errorf("the not-found page's meta tags: %v", tags)
	}
}
