package web

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// pngBytes is a small real PNG image.
func pngBytes(t testing.TB, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 24, 16))
	for x := 0; x < 24; x++ {
		for y := 0; y < 16; y++ {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func cents(n int64) *int64 { return &n }

// listing creates a property with sensible defaults changed by edit.
func listing(t *testing.T, sc tenant.Scope, title string, edit func(*content.PropertyInput)) content.Property {
	t.Helper()
	in := content.PropertyInput{Title: title, City: "Lisbon", PropertyType: "Apartment", Bedrooms: 2, Bathrooms: 1,
		ForSale: true, SalePriceCents: cents(300_000_00), SaleCurrency: "EUR", Visible: true}
	if edit != nil {
		edit(&in)
	}
	p, err := content.CreateProperty(context.Background(), sc, in)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func bodyHas(t *testing.T, r response, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(r.Body, w) {
			t.Errorf("%s %s: body lacks %q:\n%s", r.Request.Method, r.Request.URL, w, excerpt(r.Body))
		}
	}
}

func bodyLacks(t *testing.T, r response, nots ...string) {
	t.Helper()
	for _, n := range nots {
		if strings.Contains(r.Body, n) {
			t.Errorf("%s %s: body should not contain %q", r.Request.Method, r.Request.URL, n)
		}
	}
}

func TestPublic_HomeSearchPropertyPagesAndPhotos(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := context.Background()
	w := p.tenant("prestige", "shard_1")
	sc := p.scope(w)
	const host = "prestige.localhost"

	star := listing(t, sc, "Penthouse with a view", func(in *content.PropertyInput) {
		in.Highlighted, in.Bedrooms, in.PropertyType, in.City = true, 4, "Penthouse", "Porto"
		in.Features = []string{"Terrace", "Lift"}
		in.Description = "Light on three sides.\nQuiet street."
	})
	if _, err := content.AddPhoto(ctx, sc, star.ID, pngBytes(t, color.RGBA{200, 20, 20, 255}), p.server.photos); err != nil {
		t.Fatal(err)
	}
	rental := listing(t, sc, "Studio to let", func(in *content.PropertyInput) {
		in.ForSale, in.SalePriceCents, in.SaleCurrency = false, nil, ""
		in.ForRent, in.RentPriceCentsMonthly, in.RentCurrency = true, cents(950_00), "EUR"
		in.Bedrooms, in.PropertyType = 0, "Studio"
	})
	hidden := listing(t, sc, "Secret draft listing", func(in *content.PropertyInput) { in.Visible = false })
	hiddenPhoto, err := content.AddPhoto(ctx, sc, hidden.ID, pngBytes(t, color.Black), p.server.photos)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 14 {
		listing(t, sc, fmt.Sprintf("Family house %02d", i), func(in *content.PropertyInput) {
			in.PropertyType, in.Bedrooms, in.SalePriceCents = "House", 3, cents(int64(400_000_00+i*10_000_00))
		})
	}
	if err := content.SaveAgency(ctx, sc, content.Agency{Name: "Prestige Estates Ltd", Phone: "+351 21 000 0000", Email: "hello@prestige.example"}); err != nil {
		t.Fatal(err)
	}
	if _, err := content.CreatePage(ctx, sc, content.PageInput{Slug: "about", Title: "About us", Body: "We sell homes.", Visible: true, NavOrder: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := content.CreatePage(ctx, sc, content.PageInput{Slug: "draft", Title: "Draft page", Visible: false}); err != nil {
		t.Fatal(err)
	}

	home := p.get(host, "/")
	wantStatus(t, home, 200)
	bodyHas(t, home, "Featured", "Penthouse with a view", "Studio to let", "Family house 13", "€950", "/ month",
		"Prestige Estates Ltd", "21 000 0000", `href="/p/about"`, "/photos/")
	bodyLacks(t, home, "Secret draft listing", "Draft page")
	if !strings.Contains(home.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("no CSP on public pages: %v", home.Header)
	}

	buy := p.get(host, "/buy")
	bodyHas(t, buy, "15 properties", "Page 1 of 2", "Family house 13")
	bodyLacks(t, buy, "Studio to let", "Secret draft listing")
	bodyHas(t, p.get(host, "/buy?page=2"), "Page 2 of 2", "Penthouse with a view")
	bodyHas(t, p.get(host, "/rent"), "1 property", "Studio to let")
	filtered := p.get(host, "/buy?min_price=405000&max_price=430%2C000&bedrooms=3&type=House&city=lisbon")
	wantStatus(t, filtered, 200)
	bodyHas(t, filtered, "3 properties", "Family house 01", "Family house 03")
	bodyLacks(t, filtered, "Family house 00", "Family house 04", "Penthouse with a view")
	bodyHas(t, p.get(host, "/buy?bedrooms=4"), "1 property", "Penthouse with a view")

	page := p.get(host, "/properties/"+star.Slug)
	wantStatus(t, page, 200)
	bodyHas(t, page, "Penthouse with a view", "Terrace", "Lift", "Light on three sides.", "€300,000", "Porto", `name="email"`)
	wantStatus(t, p.get(host, "/properties/"+hidden.Slug), 404)
	wantStatus(t, p.get(host, "/properties/no-such-home"), 404)

	about := p.get(host, "/p/about")
	wantStatus(t, about, 200)
	bodyHas(t, about, "We sell homes.")
	wantStatus(t, p.get(host, "/p/draft"), 404)

	full, err := content.GetProperty(ctx, sc, star.ID)
	if err != nil || len(full.Photos) != 1 {
		t.Fatalf("photos of %s: %v %v", star.Title, full.Photos, err)
	}
	ph := p.get(host, "/photos/"+full.Photos[0].ID.String())
	wantStatus(t, ph, 200)
	if ph.Header.Get("Content-Type") != "image/png" || !bytes.Equal([]byte(ph.Body), pngBytes(t, color.RGBA{200, 20, 20, 255})) {
		t.Errorf("photo: %s, %d bytes", ph.Header.Get("Content-Type"), len(ph.Body))
	}
	wantStatus(t, p.get(host, "/photos/"+hiddenPhoto.ID.String()), 404)
	wantStatus(t, p.get(host, "/photos/not-a-uuid"), 404)

	css := p.get(host, "/static/site.css")
	wantStatus(t, css, 200)
	if !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet content type %q", css.Header.Get("Content-Type"))
	}
	wantStatus(t, p.get(host, "/no/such/page"), 404)
	// A studio reads so, on its card and its page, and says it once.
	bodyHas(t, home, "Lisbon · Studio · 1 bath</p>")
	bodyHas(t, p.get(host, "/properties/"+rental.Slug), "For rent", "€950", "<dt>Bedrooms</dt><dd>Studio</dd>")
}

func TestPublic_EnquiryAndContactLandOnTheTenantsShard(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	w := p.tenant("prestige", "shard_1")
	sc := p.scope(w)
	home := listing(t, sc, "Garden flat", nil)
	const host = "prestige.localhost"
	shardURL, primaryURL := p.cluster.URL["shard_1"], p.cluster.URL[shard.Default]

	r := p.postForm(host, "/properties/"+home.Slug+"/enquiry", url.Values{
		"name": {"Ann Smith"}, "email": {"Ann@Example.com"}, "phone": {"+44 20 0000"}, "message": {"Can I visit on Saturday?"}})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); !strings.HasPrefix(loc, "/properties/"+home.Slug+"?sent=1") {
		t.Errorf("redirect to %q", loc)
	}
	bodyHas(t, p.get(host, r.Header.Get("Location")), "Your enquiry has been sent")
	wantStatus(t, p.postForm(host, "/contact", url.Values{
		"name": {"Ann"}, "email": {"ann@example.com"}, "message": {"Also, do you do valuations?"}}), http.StatusSeeOther)

	if n := count(t, shardURL, "messages", w.ID); n != 2 {
		t.Errorf("messages on shard_1: %d, want 2", n)
	}
	if n := count(t, shardURL, "contacts", w.ID); n != 1 {
		t.Errorf("contacts on shard_1: %d, want 1 (found by email in any case)", n)
	}
	if n := pgtestCount(t, shardURL, "SELECT count(*) FROM messages WHERE property_id = $1", home.ID); n != 1 {
		t.Errorf("messages about the property: %d, want 1", n)
	}
	for _, table := range []string{"messages", "contacts"} {
		if n := count(t, primaryURL, table, w.ID); n != 0 {
			t.Errorf("%s on primary: %d, want 0", table, n)
		}
	}
}

// Bad input on public forms and pages gives a 4xx page with a clear message,
// and writes nothing.
func TestPublic_BadInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	w := p.tenant("prestige", "shard_1")
	sc := p.scope(w)
	home := listing(t, sc, "Garden flat", nil)
	const host = "prestige.localhost"
	shardURL := p.cluster.URL["shard_1"]
	good := func() url.Values {
		return url.Values{"name": {"Ann"}, "email": {"ann@example.com"}, "message": {"Hello"}}
	}
	with := func(k, v string) url.Values { f := good(); f.Set(k, v); return f }
	with2 := func(k1, v1, k2, v2 string) url.Values { f := with(k1, v1); f.Set(k2, v2); return f }

	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		status int
		want   string
	}{
		{"missing name", "/contact", with("name", ""), 422, "Name is required"},
		{"missing message", "/properties/" + home.Slug + "/enquiry", with("message", "  "), 422, "Message is required"},
		{"bad email", "/contact", with("email", "ann at example"), 422, "email address"},
		{"oversized message", "/contact", with("message", strings.Repeat("x", 5001)), 422, "Message"},
		{"script in name", "/contact", with2("email", "nope", "name", "<script>alert(1)</script>"), 422, "&lt;script&gt;alert(1)&lt;/script&gt;"},
		{"far over the size limit", "/contact", with("message", strings.Repeat("x", 1<<20)), 413, "larger than this form accepts"},
		{"enquiry on unknown property", "/properties/nope/enquiry", good(), 404, "nothing at this address"},
	} {
		r := p.postForm(host, tc.path, tc.form)
		if r.StatusCode != tc.status || !strings.Contains(r.Body, tc.want) {
			t.Errorf("%s: status %d, want %d with %q:\n%s", tc.name, r.StatusCode, tc.status, tc.want, excerpt(r.Body))
		}
		if strings.Contains(r.Body, "<script>alert") {
			t.Errorf("%s: unescaped script in the page", tc.name)
		}
	}
	// A refused form is shown again with what was typed.
	r := p.postForm(host, "/contact", with2("email", "", "name", "Ann O'Neil"))
	bodyHas(t, r, `value="Ann O&#39;Neil"`)

	for _, tc := range []struct {
		query, want string
		status      int
	}{
		{"min_price=-5", "Minimum price cannot be negative", 400},
		{"max_price=abc", "Maximum price must be an amount", 400},
		{"min_price=500&max_price=100", "must not be below the minimum", 400},
		{"bedrooms=-1", "Bedrooms must be a whole number", 400},
		{"page=0", "Page must be a positive whole number", 400},
		{"city=" + url.QueryEscape("'; DROP TABLE properties; --"), "0 properties", 200},
		{"type=" + url.QueryEscape(`" OR 1=1 --`), "0 properties", 200},
	} {
		r := p.get(host, "/buy?"+tc.query)
		if r.StatusCode != tc.status || !strings.Contains(r.Body, tc.want) {
			t.Errorf("/buy?%s: status %d, want %d with %q:\n%s", tc.query, r.StatusCode, tc.status, tc.want, excerpt(r.Body))
		}
	}
	for _, table := range []string{"messages", "contacts"} {
		if n := count(t, shardURL, table, w.ID); n != 0 {
			t.Errorf("%s written by refused forms: %d", table, n)
		}
	}
	if n := count(t, shardURL, "properties", w.ID); n != 1 {
		t.Errorf("properties: %d, want 1 (table intact)", n)
	}
}

// Tenants cannot reach each other's properties, pages or photos through
// their own site, whether they share a shard or not.
func TestPublic_TenantsCannotReachEachOthersRows(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := context.Background()
	a := p.tenant("alpha", "shard_1")
	b := p.tenant("bravo", "shard_1")       // same shard as alpha
	c := p.tenant("charlie", shard.Default) // another shard
	for _, victim := range []struct {
		w    string
		sc   tenant.Scope
		host string
	}{{"bravo", p.scope(b), "bravo.localhost"}, {"charlie", p.scope(c), "charlie.localhost"}} {
		prop := listing(t, victim.sc, "Home of "+victim.w, nil)
		photo, err := content.AddPhoto(ctx, victim.sc, prop.ID, pngBytes(t, color.White), p.server.photos)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := content.CreatePage(ctx, victim.sc, content.PageInput{Slug: "team-" + victim.w, Title: "Team", Visible: true}); err != nil {
			t.Fatal(err)
		}
		// Its own host serves them...
		wantStatus(t, p.get(victim.host, "/properties/"+prop.Slug), 200)
		wantStatus(t, p.get(victim.host, "/photos/"+photo.ID.String()), 200)
		// ...alpha's host does not.
		for _, path := range []string{"/properties/" + prop.Slug, "/photos/" + photo.ID.String(), "/p/team-" + victim.w} {
			r := p.get("alpha.localhost", path)
			wantStatus(t, r, 404)
			bodyLacks(t, r, "Home of "+victim.w)
		}
		r := p.postForm("alpha.localhost", "/properties/"+prop.Slug+"/enquiry",
			url.Values{"name": {"X"}, "email": {"x@example.com"}, "message": {"hi"}})
		wantStatus(t, r, 404)
	}
	if n := count(t, p.cluster.URL["shard_1"], "messages", a.ID); n != 0 {
		t.Errorf("alpha got %d messages", n)
	}
	bodyHas(t, p.get("alpha.localhost", "/buy"), "0 properties")
}

func pgtestCount(t *testing.T, dbURL, sql string, args ...any) int64 {
	t.Helper()
	return pgtest.QueryValue[int64](t, dbURL, sql, args...)
}
