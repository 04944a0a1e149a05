package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// saListed returns the titles of the properties a list page shows, in order.
func saListed(t *testing.T, r response) []string {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	out := []string{}
	for _, m := range saListedRE.FindAllStringSubmatch(r.Body, -1) {
		out = append(out, m[1])
	}
	return out
}

var saListedRE = regexp.MustCompile(`<td data-label="Title"><a href="/site_admin/properties/[0-9a-f-]{36}/edit">([^<]*)</a>`)

// saPhotoOrder is the ids of a property's photos in display order.
func saPhotoOrder(t *testing.T, dbURL string, propertyID uuid.UUID) []string {
	t.Helper()
	got := pgtest.QueryValue[string](t, dbURL, `SELECT COALESCE(string_agg(id::text, ',' ORDER BY sort_order, created_at, id), '')
		FROM property_photos WHERE property_id = $1`, propertyID)
	if got == "" {
		return nil
	}
	return strings.Split(got, ",")
}

// saPhotoDigests is the SHA-256 of a property's photos in display order.
func saPhotoDigests(t *testing.T, dbURL string, propertyID uuid.UUID) string {
	t.Helper()
	return pgtest.QueryValue[string](t, dbURL, `SELECT COALESCE(string_agg(encode(sha256(image), 'hex'), ',' ORDER BY sort_order, created_at, id), '')
		FROM property_photos WHERE property_id = $1`, propertyID)
}

func saDigests(photos ...[]byte) string {
	var out []string
	for _, p := range photos {
		d := sha256.Sum256(p)
		out = append(out, hex.EncodeToString(d[:]))
	}
	return strings.Join(out, ",")
}

func TestSiteAdmin_PropertyListSearchFiltersAndPages(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	ctx := context.Background()
	acme, other := p.tenant("acme", shard.Default), p.tenant("other", shard.Default)
	email, password := p.member(acme, "owner@acme.example")
	cookie := saSignIn(t, p, "acme.localhost", email, password)
	const host = "acme.localhost"
	sc := p.scope(acme)
	create := func(in content.PropertyInput) {
		t.Helper()
		if _, err := content.CreateProperty(ctx, sc, in); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 23; i++ {
		create(content.PropertyInput{Title: fmt.Sprintf("Garden flat %d", i), Reference: fmt.Sprintf("GF-%02d", i), Visible: true, ForSale: true})
	}
	create(content.PropertyInput{Title: "Sea view studio", Reference: "VAL-7", ForRent: true})
	create(content.PropertyInput{Title: "Seaside villa", Visible: true, Highlighted: true, ForSale: true})
	if _, err := content.CreateProperty(ctx, p.scope(other), content.PropertyInput{Title: "Sea shell cottage", Visible: true}); err != nil {
		t.Fatal(err)
	}
	list := func(query string) response {
		t.Helper()
		return p.get(host, "/site_admin/properties"+query, cookie)
	}

	t.Run("unfiltered", func(t *testing.T) {
		r := list("")
		if got := saListed(t, r); len(got) != 20 || got[0] != "Seaside villa" || got[1] != "Sea view studio" {
			t.Errorf("first page: %q", got)
		}
		saWantBody(t, r, "25 in all", `name="q"`, `name="status"`, `name="listing"`, `href="/site_admin/properties?page=2"`)
		if strings.Contains(r.Body, "Clear") {
			t.Error("an unfiltered list offers to clear its filters")
		}
	})

	t.Run("search by title or reference, any case", func(t *testing.T) {
		r := list("?q=SEA")
		if got := saListed(t, r); !slices.Equal(got, []string{"Seaside villa", "Sea view studio"}) {
			t.Errorf("q=SEA: %q", got)
		}
		saWantBody(t, r, "2 match", `value="SEA"`, `<a href="/site_admin/properties">Clear</a>`)
		if got := saListed(t, list("?q=val-7")); !slices.Equal(got, []string{"Sea view studio"}) {
			t.Errorf("q=val-7: %q", got)
		}
		if got := saListed(t, list("?q=gf-1")); len(got) != 10 {
			t.Errorf("q=gf-1 lists %d, want 10 (GF-10 to GF-19)", len(got))
		}
	})

	t.Run("filters", func(t *testing.T) {
		for query, want := range map[string][]string{
			"?status=hidden":                {"Sea view studio"},
			"?status=featured":              {"Seaside villa"},
			"?listing=rent":                 {"Sea view studio"},
			"?q=sea&status=shown":           {"Seaside villa"},
			"?q=sea&listing=sale":           {"Seaside villa"},
			"?q=garden+flat+2&status=shown": {"Garden flat 23", "Garden flat 22", "Garden flat 21", "Garden flat 20", "Garden flat 2"},
		} {
			if got := saListed(t, list(query)); !slices.Equal(got, want) {
				t.Errorf("%s: %q, want %q", query, got, want)
			}
		}
		r := list("?status=hidden&listing=rent")
		saWantBody(t, r, `<option value="hidden" selected>`, `<option value="rent" selected>`)
	})

	t.Run("pages keep the filters", func(t *testing.T) {
		r := list("?q=garden&status=shown")
		if got := saListed(t, r); len(got) != 20 || got[0] != "Garden flat 23" {
			t.Errorf("first page: %q", got)
		}
		saWantBody(t, r, "23 match", "Page 1 of 2")
		next := regexp.MustCompile(`<a href="([^"]*)" rel="next">`).FindStringSubmatch(r.Body)
		if next == nil {
			t.Fatalf("no link to the next page:\n%s", excerpt(r.Body))
		}
		link := strings.ReplaceAll(next[1], "&amp;", "&")
		if link != "/site_admin/properties?page=2&q=garden&status=shown" {
			t.Errorf("next page link %q", link)
		}
		r = list(strings.TrimPrefix(link, "/site_admin/properties"))
		if got := saListed(t, r); !slices.Equal(got, []string{"Garden flat 3", "Garden flat 2", "Garden flat 1"}) {
			t.Errorf("second page: %q", got)
		}
		saWantBody(t, r, "Page 2 of 2", `value="garden"`, `<option value="shown" selected>`)
	})

	t.Run("nothing matches", func(t *testing.T) {
		r := list("?q=castle&status=hidden")
		if got := saListed(t, r); len(got) != 0 {
			t.Errorf("q=castle: %q", got)
		}
		saWantBody(t, r, "0 match", "No properties match “castle” with these filters.",
			`<a href="/site_admin/properties">Clear the search and filters</a>`)
		// Another website's properties are never found.
		if got := saListed(t, list("?q=shell")); len(got) != 0 {
			t.Errorf("q=shell lists the other website's %q", got)
		}
	})

	t.Run("nonsense is left out with a notice, never a failure", func(t *testing.T) {
		for _, c := range []struct {
			query  string
			notice string
			listed int
		}{
			{"?status=sold", "The status filter was not used: choose shown, hidden or featured.", 20},
			{"?listing=lease&q=sea", "The listing filter was not used: choose for sale or for rent.", 2},
			{"?q=" + strings.Repeat("x", 101), "Your search was not used: search for at most 100 characters.", 20},
			{"?q=%00", "Your search was not used: the search contains characters that cannot be searched for.", 20},
			{"?q=%FF", "Your search was not used", 20},
			{"?status[]=x&page=abc", "", 20},
			{"?page=-4&status=HIDDEN", "", 1},
		} {
			r := list(c.query)
			if got := saListed(t, r); len(got) != c.listed {
				t.Errorf("%s: %d listed, want %d", c.query, len(got), c.listed)
			}
			if c.notice != "" {
				saWantBody(t, r, c.notice)
			}
		}
		// The pager carries what was applied, not the nonsense.
		r := list("?status=sold&q=garden")
		saWantBody(t, r, `href="/site_admin/properties?page=2&amp;q=garden"`)
		// A page past the last one says so and links to the first.
		r = list("?q=garden&page=99")
		saWantBody(t, r, "This page is past the last one.", `href="/site_admin/properties?page=1&amp;q=garden"`)
		// What is typed is shown back escaped.
		r = list("?q=" + url.QueryEscape(`<script>alert(1)</script>`))
		saWantBody(t, r, `value="&lt;script&gt;alert(1)&lt;/script&gt;"`)
		if strings.Contains(r.Body, "<script>alert(1)") {
			t.Error("the search is shown unescaped")
		}
	})
}

func TestSiteAdmin_PhotosAreReorderedAndOneIsTheCover(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := context.Background()
	acme := p.tenant("acme", "shard_1")
	email, password := p.member(acme, "owner@acme.example")
	cookie := saSignIn(t, p, "acme.localhost", email, password)
	const host = "acme.localhost"
	db := p.cluster.URL["shard_1"]
	front, garden, kitchen := saPNG(t, 11), saPNG(t, 22), saPNG(t, 33)

	id := saCreatedID(t, saPostMultipart(t, p, host, "/site_admin/properties", cookie, saPropertyFields("Three photos"),
		saFile{"front.png", front}, saFile{"garden.png", garden}, saFile{"kitchen.png", kitchen}))
	if got, want := saPhotoDigests(t, db, id), saDigests(front, garden, kitchen); got != want {
		t.Fatalf("photos stored out of the order uploaded")
	}
	order := saPhotoOrder(t, db, id)
	f, g, k := order[0], order[1], order[2]
	edit := "/site_admin/properties/" + id.String() + "/edit"
	position := func(photo string) string {
		return "/site_admin/properties/" + id.String() + "/photos/" + photo + "/position"
	}
	move := func(photo, to string) response {
		t.Helper()
		return p.postForm(host, position(photo), url.Values{"position": {to}}, cookie)
	}

	r := p.get(host, edit, cookie)
	wantStatus(t, r, http.StatusOK)
	saWantBody(t, r, `<span class="tag">Cover</span>`, "Photo 2 of 3", "Photo 3 of 3",
		`action="`+position(k)+`"`, "Make cover", "↑ Earlier", "↓ Later")

	t.Run("make the last photo the cover", func(t *testing.T) {
		r := move(k, "1")
		wantStatus(t, r, http.StatusSeeOther)
		if got, want := r.Header.Get("Location"), edit+"?done=cover#photo-"+k; got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
		if got := saPhotoOrder(t, db, id); !slices.Equal(got, []string{k, f, g}) {
			t.Errorf("order %v, want kitchen, front, garden", got)
		}
		r = p.get(host, edit+"?done=cover", cookie)
		saWantBody(t, r, "Cover photo chosen", `id="photo-`+k+`"`)
		if i, j := strings.Index(r.Body, "/site_admin/photos/"+k), strings.Index(r.Body, "/site_admin/photos/"+f); i < 0 || j < i {
			t.Error("the edit page does not show the cover first")
		}
	})

	t.Run("move earlier and later", func(t *testing.T) {
		wantStatus(t, move(g, "2"), http.StatusSeeOther)
		if got := saPhotoOrder(t, db, id); !slices.Equal(got, []string{k, g, f}) {
			t.Errorf("after moving garden earlier: %v", got)
		}
		r := move(k, " 2 ")
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != edit+"?done=photo_moved#photo-"+k {
			t.Errorf("Location %q", got)
		}
		if got := saPhotoOrder(t, db, id); !slices.Equal(got, []string{g, k, f}) {
			t.Errorf("after moving kitchen later: %v", got)
		}
	})

	t.Run("the public site shows the photos in this order, the cover first", func(t *testing.T) {
		slug := pgtest.QueryValue[string](t, db, "SELECT slug FROM properties WHERE id = $1", id)
		r := p.get(host, "/properties/"+slug)
		wantStatus(t, r, http.StatusOK)
		at := func(photo string) int { return strings.Index(r.Body, `src="/photos/`+photo+`"`) }
		if !(at(g) >= 0 && at(g) < at(k) && at(k) < at(f)) {
			t.Errorf("public page order: garden %d, kitchen %d, front %d", at(g), at(k), at(f))
		}
		saWantBody(t, p.get(host, "/buy"), `src="/photos/`+g+`"`)
		saWantBody(t, p.get(host, "/site_admin/properties", cookie), `src="/site_admin/photos/`+g+`"`)
	})

	t.Run("refusals change nothing", func(t *testing.T) {
		other := p.tenant("other", shard.Default)
		otherProp, err := content.CreatePropertyWithPhotos(ctx, p.scope(other), content.PropertyInput{Title: "Other's", Visible: true},
			[][]byte{saPNG(t, 1), saPNG(t, 2)}, p.server.photos)
		if err != nil {
			t.Fatal(err)
		}
		sameShard := p.tenant("neighbour", "shard_1")
		neighbourProp, err := content.CreatePropertyWithPhotos(ctx, p.scope(sameShard), content.PropertyInput{Title: "Neighbour's", Visible: true},
			[][]byte{saPNG(t, 3), saPNG(t, 4)}, p.server.photos)
		if err != nil {
			t.Fatal(err)
		}
		second := saCreatedID(t, saPostMultipart(t, p, host, "/site_admin/properties", cookie, saPropertyFields("Second"), saFile{"s.png", saPNG(t, 5)}))
		secondPhoto := saPhotoOrder(t, db, second)[0]
		before, otherBefore, neighbourBefore := saPhotoOrder(t, db, id), saPhotoOrder(t, p.cluster.URL[shard.Default], otherProp.ID), saPhotoOrder(t, db, neighbourProp.ID)
		counts := saCount(t, db, acme.ID)

		for _, c := range []struct {
			name   string
			path   string
			form   url.Values
			status int
			want   string
		}{
			{"position 0", position(f), url.Values{"position": {"0"}}, 422, "The photo was not moved. Choose a position between 1 and 3."},
			{"position past the last", position(f), url.Values{"position": {"4"}}, 422, "Choose a position between 1 and 3."},
			{"position that is not a number", position(f), url.Values{"position": {"first"}}, 422, "Choose a position between 1 and 3."},
			{"no position", position(f), nil, 422, "Choose a position between 1 and 3."},
			{"a bogus photo id", "/site_admin/properties/" + id.String() + "/photos/nope/position", url.Values{"position": {"1"}}, 404, "Not found"},
			{"an unknown photo id", position(uuid.NewString()), url.Values{"position": {"1"}}, 404, "Not found"},
			{"a bogus property id", "/site_admin/properties/42/photos/" + f + "/position", url.Values{"position": {"1"}}, 404, "Not found"},
			{"a photo of another property", position(secondPhoto), url.Values{"position": {"1"}}, 404, "Not found"},
			{"another website's photo on another shard", position(otherProp.Photos[1].ID.String()), url.Values{"position": {"1"}}, 404, "Not found"},
			{"another website's photo on this shard", position(neighbourProp.Photos[1].ID.String()), url.Values{"position": {"1"}}, 404, "Not found"},
			{"another website's photo under its own property", "/site_admin/properties/" + neighbourProp.ID.String() + "/photos/" + neighbourProp.Photos[1].ID.String() + "/position",
				url.Values{"position": {"1"}}, 404, "Not found"},
		} {
			r := p.postForm(host, c.path, c.form, cookie)
			wantStatus(t, r, c.status)
			saWantBody(t, r, c.want)
			if strings.Contains(r.Body, "Other&#39;s") || strings.Contains(r.Body, "Neighbour") {
				t.Errorf("%s: the answer shows another website's property", c.name)
			}
		}

		// Sent from another website (what a forged form is) or signed out.
		for _, h := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "http://evil.example"}} {
			r := saPost(p, host, position(f), strings.NewReader("position=1"), "application/x-www-form-urlencoded", cookie, h...)
			wantStatus(t, r, http.StatusForbidden)
			saWantBody(t, r, "sent from another website")
		}
		wantStatus(t, p.postForm(host, position(f), url.Values{"position": {"1"}}), http.StatusUnauthorized)

		if got := saPhotoOrder(t, db, id); !slices.Equal(got, before) {
			t.Errorf("order %v after refusals, was %v", got, before)
		}
		if got := saPhotoOrder(t, p.cluster.URL[shard.Default], otherProp.ID); !slices.Equal(got, otherBefore) {
			t.Errorf("the other website's order changed: %v, was %v", got, otherBefore)
		}
		if got := saPhotoOrder(t, db, neighbourProp.ID); !slices.Equal(got, neighbourBefore) {
			t.Errorf("the neighbour's order changed: %v, was %v", got, neighbourBefore)
		}
		saWantSameCounts(t, "refused moves", counts, saCount(t, db, acme.ID))
	})

	t.Run("while writes are paused a move is a 503 and changes nothing", func(t *testing.T) {
		before := saPhotoOrder(t, db, id)
		if err := registry.SetStatus(ctx, p.primary, acme.ID, registry.StatusReadOnly); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = registry.SetStatus(ctx, p.primary, acme.ID, registry.StatusActive) })
		r := move(before[2], "1")
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		if got := saPhotoOrder(t, db, id); !slices.Equal(got, before) {
			t.Errorf("order %v while paused, was %v", got, before)
		}
	})
}

// Creating a property with photos is one transaction on the tenant's shard:
// a refused photo, a shard failing half-way or paused writes leave nothing
// behind.
func TestSiteAdmin_CreatePropertyWithPhotosIsOneTransaction(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := context.Background()
	acme := p.tenant("acme", "shard_1")
	email, password := p.member(acme, "owner@acme.example")
	cookie := saSignIn(t, p, "acme.localhost", email, password)
	const host = "acme.localhost"
	db := p.cluster.URL["shard_1"]
	photos := []saFile{{"a.png", saPNG(t, 1)}, {"b.png", saPNG(t, 2)}, {"c.png", saPNG(t, 3)}}
	fields := saPropertyFields("Sea view")
	fields.Set("reference", "SV-1")
	fields.Set("city", "Dénia")
	before := saCount(t, db, acme.ID)

	t.Run("a refused photo is shown on the form with what was typed", func(t *testing.T) {
		r := saPostMultipart(t, p, host, "/site_admin/properties", cookie, fields, photos[0], saFile{"notes.png", []byte("not a picture")})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		saWantBody(t, r, "notes.png: the file is not a JPEG, PNG, GIF or WebP image.", "Choose the photos again",
			`value="Sea view"`, `value="SV-1"`, `value="Dénia"`, `value="250,000"`, "Bright, with a view of the sea.", "Pool\nGarden")
		saWantSameCounts(t, "a refused photo", before, saCount(t, db, acme.ID))
	})

	for _, c := range []struct {
		name, action string
		status       int
	}{
		{"the shard refuses the second photo", pgtest.RaiseError, http.StatusInternalServerError},
		{"the session ends at the second photo", pgtest.TerminateBackend, http.StatusServiceUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			restore := pgtest.FailInserts(t, db, "property_photos", fmt.Sprintf(`NEW.website_id = %d AND EXISTS (SELECT 1 FROM property_photos
				WHERE website_id = NEW.website_id AND property_id = NEW.property_id)`, acme.ID), c.action)
			defer restore()
			r := saPostMultipart(t, p, host, "/site_admin/properties", cookie, fields, photos...)
			wantStatus(t, r, c.status)
			saWantSameCounts(t, c.name, before, saCount(t, db, acme.ID))
		})
	}

	t.Run("while writes are paused it is a 503 and writes nothing", func(t *testing.T) {
		if err := registry.SetStatus(ctx, p.primary, acme.ID, registry.StatusReadOnly); err != nil {
			t.Fatal(err)
		}
		r := saPostMultipart(t, p, host, "/site_admin/properties", cookie, fields, photos...)
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		saWantSameCounts(t, "paused writes", before, saCount(t, db, acme.ID))
		if err := registry.SetStatus(ctx, p.primary, acme.ID, registry.StatusActive); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			return !strings.Contains(p.get(host, "/site_admin", cookie).Body, "read-only while maintenance")
		})
	})

	t.Run("then it goes through, photos in the order sent", func(t *testing.T) {
		id := saCreatedID(t, saPostMultipart(t, p, host, "/site_admin/properties", cookie, fields, photos...))
		if got, want := saPhotoDigests(t, db, id), saDigests(photos[0].data, photos[1].data, photos[2].data); got != want {
			t.Errorf("photos stored out of the order sent")
		}
		if got := saCount(t, db, acme.ID); got["properties"] != 1 || got["property_photos"] != 3 || got["property_features"] != 2 {
			t.Errorf("after the create: %v", got)
		}
	})

	t.Run("a reference already used refuses the property and its photos", func(t *testing.T) {
		before := saCount(t, db, acme.ID)
		r := saPostMultipart(t, p, host, "/site_admin/properties", cookie, fields, photos...)
		wantStatus(t, r, http.StatusConflict)
		saWantBody(t, r, "That reference is already used by another property.", "Choose the photos again", `value="Sea view"`)
		saWantSameCounts(t, "a taken reference", before, saCount(t, db, acme.ID))
	})
}

// In a real browser, the photo buttons are plain forms: make the last photo
// the cover, move it back one place, and the page comes back at the moved
// photo. On a phone the edit page and the filtered list fit the screen.
func TestBrowser_SiteAdminReordersPhotos(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	p := newPlatform(t, platformOptions{})
	w := p.tenant("acme", shard.Default)
	email, password := p.member(w, "owner@acme.example")
	prop, err := content.CreatePropertyWithPhotos(context.Background(), p.scope(w), content.PropertyInput{Title: "Gallery house", Visible: true},
		[][]byte{saPNG(t, 10), saPNG(t, 20), saPNG(t, 30)}, p.server.photos)
	if err != nil {
		t.Fatal(err)
	}
	first, second, third := prop.Photos[0].ID.String(), prop.Photos[1].ID.String(), prop.Photos[2].ID.String()
	u, _ := url.Parse(p.http.URL)
	b := opsPage{t: t, ctx: ctx, base: "http://acme.localhost:" + u.Port()}
	screenshotOnFailure(t, ctx)
	db := p.cluster.URL[shard.Default]
	edit := b.base + "/site_admin/properties/" + prop.ID.String() + "/edit"

	b.do("sign in",
		chromedp.Navigate(b.base+"/site_admin"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/site_admin/properties"]`)),
	)
	b.do("open the property", chromedp.Navigate(edit), chromedp.WaitVisible(chromedp.CSS(`.photo-order li`)))
	if b.is(`document.querySelector('script')`) {
		t.Error("the edit page has a script; its buttons should need none")
	}

	b.do("make the third photo the cover", chromedp.Click(chromedp.CSS(`#photo-`+third+` button.secondary`)))
	b.waitFor("the page after choosing the cover", `location.search === '?done=cover' && document.readyState === 'complete'`, 10*time.Second)
	if got := saPhotoOrder(t, db, prop.ID); !slices.Equal(got, []string{third, first, second}) {
		t.Errorf("order after making the third the cover: %v", got)
	}
	// The page comes back with the new cover first, scrolled to it.
	b.waitFor("the new cover first, at the moved photo", `document.readyState === 'complete' && `+
		`document.querySelector('.photo-order li').id === 'photo-`+third+`' && document.querySelector(':target')?.id === 'photo-`+third+`'`, 10*time.Second)
	if got := b.text(".notice.ok"); !strings.Contains(got, "Cover photo chosen") {
		t.Errorf("notice %q", got)
	}

	b.do("move the cover one place later", chromedp.Click(chromedp.CSS(`#photo-`+third+` button[aria-label="Move photo 1 later"]`)))
	b.waitFor("the page after moving", `location.search === '?done=photo_moved' && document.readyState === 'complete'`, 10*time.Second)
	if got := saPhotoOrder(t, db, prop.ID); !slices.Equal(got, []string{first, third, second}) {
		t.Errorf("order after moving the cover later: %v", got)
	}
	if got := b.text(".photo-order li:first-child figcaption"); !strings.EqualFold(got, "Cover") {
		t.Errorf("the first photo's caption is %q", got)
	}

	b.do("narrow the page to a phone's screen",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	for _, path := range []string{"/site_admin/properties/" + prop.ID.String() + "/edit", "/site_admin/properties?q=gallery&status=shown"} {
		b.do("open "+path+" on a phone", chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		if b.is(`document.documentElement.scrollWidth > window.innerWidth`) {
			t.Errorf("at 390 px %s is wider than the screen", path)
		}
	}
}
