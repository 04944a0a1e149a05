package content_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

func fullInput() content.PropertyInput {
	return content.PropertyInput{
		Reference: "REF-001", Title: "Villa with pool", Description: "Bright villa.\nSecond line.",
		Address: "Calle Mayor 1", City: "Valencia", Region: "Valencia", PostalCode: "46001", Country: "Spain",
		Latitude: ptr(39.4699), Longitude: ptr(-0.3763), Bedrooms: 4, Bathrooms: 2, Garages: 1,
		FloorAreaSqm: ptr(180.25), YearBuilt: ptr(1998), PropertyType: "Villa",
		ForSale: true, SalePriceCents: ptr[int64](45_000_000), SaleCurrency: "EUR",
		ForRent: true, RentPriceCentsMonthly: ptr[int64](250_000), RentCurrency: "EUR",
		Visible: true, Highlighted: true,
		Features: []string{"terrace", "Pool", "air conditioning"},
	}
}

// editable compares what an editor set, ignoring what the database made.
var editable = cmp.Options{
	cmpopts.IgnoreFields(content.Property{}, "ID", "Slug", "CreatedAt", "UpdatedAt", "Photos", "CoverPhotoID"),
	cmpopts.EquateEmpty(),
}

func fromInput(in content.PropertyInput) content.Property {
	return content.Property{
		Reference: in.Reference, Title: in.Title, Description: in.Description, Address: in.Address,
		City: in.City, Region: in.Region, PostalCode: in.PostalCode, Country: in.Country,
		Latitude: in.Latitude, Longitude: in.Longitude, Bedrooms: in.Bedrooms, Bathrooms: in.Bathrooms,
		Garages: in.Garages, FloorAreaSqm: in.FloorAreaSqm, YearBuilt: in.YearBuilt, PropertyType: in.PropertyType,
		ForSale: in.ForSale, SalePriceCents: in.SalePriceCents, SaleCurrency: in.SaleCurrency,
		ForRent: in.ForRent, RentPriceCentsMonthly: in.RentPriceCentsMonthly, RentCurrency: in.RentCurrency,
		Visible: in.Visible, Highlighted: in.Highlighted, Features: in.Features,
	}
}

func TestProperty_CreateReadUpdateDeleteRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)

	in := fullInput()
	created := mustCreate(t, s, in)
	if created.ID.Version() != 7 {
		t.Errorf("id %s is UUID version %d, want 7", created.ID, created.ID.Version())
	}
	if created.Slug != "villa-with-pool" {
		t.Errorf("slug %q, want villa-with-pool", created.Slug)
	}
	want := fromInput(in)
	want.Features = []string{"air conditioning", "Pool", "terrace"} // sorted by name, any case
	if d := cmp.Diff(want, created, editable); d != "" {
		t.Errorf("created property (-want +got):\n%s", d)
	}
	got, err := content.GetProperty(ctx, s, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(created, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("GetProperty differs from what CreateProperty returned (-created +got):\n%s", d)
	}
	if got, err = content.GetVisibleProperty(ctx, s, "villa-with-pool"); err != nil || got.ID != created.ID {
		t.Errorf("GetVisibleProperty = %v, %v", got.ID, err)
	}
	if _, err := content.GetProperty(ctx, s, uuid.Must(uuid.NewV7())); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("GetProperty of an unknown id: %v, want ErrNotFound", err)
	}

	// Every field changes, the features are replaced, the slug stays.
	time.Sleep(2 * time.Millisecond)
	up := content.PropertyInput{Title: "Renamed cottage", Reference: "", Visible: false,
		ForRent: true, RentPriceCentsMonthly: ptr[int64](99_900), RentCurrency: "gbp", Features: []string{"Fireplace"}}
	updated, err := content.UpdateProperty(ctx, s, created.ID, up)
	if err != nil {
		t.Fatal(err)
	}
	want = fromInput(up)
	want.RentCurrency = "GBP"
	if d := cmp.Diff(want, updated, editable); d != "" {
		t.Errorf("updated property (-want +got):\n%s", d)
	}
	if updated.Slug != created.Slug {
		t.Errorf("update changed the slug from %q to %q", created.Slug, updated.Slug)
	}
	if !updated.UpdatedAt.After(created.UpdatedAt) || !updated.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("timestamps after update: created %v -> %v, updated %v -> %v",
			created.CreatedAt, updated.CreatedAt, created.UpdatedAt, updated.UpdatedAt)
	}
	if _, err := content.UpdateProperty(ctx, s, uuid.Must(uuid.NewV7()), up); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("UpdateProperty of an unknown id: %v, want ErrNotFound", err)
	}
	if _, err := content.UpdateProperty(ctx, s, created.ID, content.PropertyInput{}); !errors.Is(err, content.ErrInvalid) {
		t.Errorf("UpdateProperty without a title: %v, want ErrInvalid", err)
	}

	if err := content.DeleteProperty(ctx, s, created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := content.GetProperty(ctx, s, created.ID); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("GetProperty after delete: %v, want ErrNotFound", err)
	}
	if err := content.DeleteProperty(ctx, s, created.ID); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("second DeleteProperty: %v, want ErrNotFound", err)
	}
	for table, rows := range snapshot(t, s) {
		if len(rows) > 0 {
			t.Errorf("rows left in %s after delete: %v", table, rows)
		}
	}
}

func TestProperty_HiddenIsOnlyForTheAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	in := house("Off market")
	in.Visible = false
	p := mustCreate(t, s, in)
	if _, err := content.GetVisibleProperty(ctx, s, p.Slug); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("GetVisibleProperty of a hidden property: %v, want ErrNotFound", err)
	}
	if got, err := content.GetProperty(ctx, s, p.ID); err != nil || got.Visible {
		t.Errorf("GetProperty of a hidden property: %+v, %v", got, err)
	}
}

// Whatever a visitor puts in a URL, a slug that cannot exist is not found,
// not a database error.
func TestGetVisible_MalformedSlugsAreNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	mustCreate(t, s, house("Real"))
	mustPage(t, s, content.PageInput{Title: "Real", Visible: true})
	for _, slug := range []string{"", "a\x00b", "\xff\xfe", "Real", "real/../real", strings.Repeat("r", 81), "-real"} {
		if _, err := content.GetVisibleProperty(ctx, s, slug); !errors.Is(err, content.ErrNotFound) {
			t.Errorf("GetVisibleProperty(%q): %v, want ErrNotFound", slug, err)
		}
		if _, err := content.GetVisiblePage(ctx, s, slug); !errors.Is(err, content.ErrNotFound) {
			t.Errorf("GetVisiblePage(%q): %v, want ErrNotFound", slug, err)
		}
	}
}

func TestProperty_SlugsAreUniqueWithinTheWebsiteAndStable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s, other := e.site(t, shard.Default), e.site(t, shard.Default)

	var slugs []string
	for range 3 {
		slugs = append(slugs, mustCreate(t, s, house("Sea View Flat")).Slug)
	}
	if d := cmp.Diff([]string{"sea-view-flat", "sea-view-flat-2", "sea-view-flat-3"}, slugs); d != "" {
		t.Errorf("slugs (-want +got):\n%s", d)
	}
	if got := mustCreate(t, other, house("Sea View Flat")).Slug; got != "sea-view-flat" {
		t.Errorf("another website's slug %q, want sea-view-flat: slugs are per website", got)
	}

	long := strings.Repeat("abcdefghi ", 10) // 99 characters
	a, b := mustCreate(t, s, house(long)), mustCreate(t, s, house(long))
	if len(a.Slug) > content.MaxSlugLen || len(b.Slug) > content.MaxSlugLen || a.Slug == b.Slug || !strings.HasSuffix(b.Slug, "-2") {
		t.Errorf("slugs of a long title: %q, %q", a.Slug, b.Slug)
	}
	if got := mustCreate(t, s, house("会社")).Slug; got != "property" {
		t.Errorf("slug of a title without ASCII letters: %q, want property", got)
	}

	// The slug is the property's address: retitling keeps it, and a new
	// property with the old title does not take it.
	first := mustCreate(t, s, house("Old title"))
	in := house("New title")
	updated, err := content.UpdateProperty(ctx, s, first.ID, in)
	if err != nil || updated.Slug != "old-title" {
		t.Fatalf("after retitling: slug %q, %v; want old-title", updated.Slug, err)
	}
	if got := mustCreate(t, s, house("Old title")).Slug; got != "old-title-2" {
		t.Errorf("new property with the old title got slug %q, want old-title-2", got)
	}
}

func TestProperty_ConcurrentCreatesWithOneTitleGetDistinctSlugs(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// On shard_1: a tenant on primary cannot have more writes in flight
	// than primary's pool has connections, because tenant.Scope.Write holds
	// one for its transaction while it takes another for the registry check.
	s := newEnv(t, 1).site(t, "shard_1")
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := content.CreateProperty(ctx, s, house("Twin"))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	res, err := content.Search(ctx, s, content.Filter{PerPage: n})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range res.Properties {
		seen[p.Slug] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct slugs among %d properties: %v", len(seen), res.Total, seen)
	}
}

func TestProperty_ReferenceTakenIsConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s, other := e.site(t, shard.Default), e.site(t, shard.Default)

	in := house("First")
	in.Reference = "A-1"
	mustCreate(t, s, in)
	before := snapshot(t, s)
	in.Title = "Second"
	_, err := content.CreateProperty(ctx, s, in)
	wantErr(t, "CreateProperty with a taken reference", err, content.ErrConflict)
	if d := cmp.Diff(before, snapshot(t, s)); d != "" {
		t.Errorf("a conflicting create wrote rows:\n%s", d)
	}
	mustCreate(t, other, in) // references are per website

	in.Reference = "B-2"
	second := mustCreate(t, s, in)
	in.Reference = "A-1"
	_, err = content.UpdateProperty(ctx, s, second.ID, in)
	wantErr(t, "UpdateProperty to a taken reference", err, content.ErrConflict)

	// No reference is no reference, however many properties lack one.
	mustCreate(t, s, house("Unreferenced 1"))
	mustCreate(t, s, house("Unreferenced 2"))
}

func TestProperty_NegativePriceIsRejectedWithNothingWritten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	p := mustCreate(t, s, house("Priced"))
	before := snapshot(t, s)

	in := house("Negative")
	in.SalePriceCents = ptr[int64](-1)
	_, err := content.CreateProperty(ctx, s, in)
	if msg := invalidFields(t, err)["sale_price_cents"]; msg != "Price cannot be negative." {
		t.Errorf("sale price problem %q", msg)
	}
	in = house("Negative rent")
	in.ForRent, in.RentPriceCentsMonthly, in.RentCurrency = true, ptr[int64](-50), "EUR"
	_, err = content.UpdateProperty(ctx, s, p.ID, in)
	if msg := invalidFields(t, err)["rent_price_cents_monthly"]; msg != "Price cannot be negative." {
		t.Errorf("rent problem %q", msg)
	}
	if d := cmp.Diff(before, snapshot(t, s)); d != "" {
		t.Errorf("rejected input wrote rows:\n%s", d)
	}
}

// Escaping is the web layer's job: markup and SQL metacharacters are data
// here, stored and returned exactly as typed.
func TestContent_MarkupAndSQLMetacharactersRoundTripVerbatim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	nasty := []string{
		`<script>alert("x")</script>`,
		`'; DROP TABLE properties; --`,
		`Robert'); DELETE FROM pages WHERE ('1'='1`,
		`" onmouseover="alert(1)`,
		`\x00-free but with \ backslash, 100% _like_ $1 {{.}} & &amp;`,
	}
	for _, text := range nasty {
		in := house(text)
		in.Description, in.City, in.Reference = text, text[:min(len(text), 50)], text[:min(len(text), 50)]
		in.Features = []string{text}
		p := mustCreate(t, s, in)
		got, err := content.GetProperty(ctx, s, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Title != text || got.Description != text || got.City != in.City || got.Reference != in.Reference ||
			len(got.Features) != 1 || got.Features[0] != text {
			t.Errorf("property with %q came back as %+v", text, got)
		}
		res, err := content.Search(ctx, s, content.Filter{City: in.City})
		if err != nil || res.Total != 1 || res.Properties[0].ID != p.ID {
			t.Errorf("searching city %q: %d results, %v", in.City, res.Total, err)
		}

		pg := mustPage(t, s, content.PageInput{Title: text, Body: text, Visible: true})
		if got, err := content.GetVisiblePage(ctx, s, pg.Slug); err != nil || got.Title != text || got.Body != text {
			t.Errorf("page with %q came back as %+v, %v", text, got, err)
		}
		if _, err := content.GetVisiblePage(ctx, s, text); !errors.Is(err, content.ErrNotFound) {
			t.Errorf("GetVisiblePage(%q): %v, want ErrNotFound", text, err)
		}
		if _, err := content.GetVisibleProperty(ctx, s, text); !errors.Is(err, content.ErrNotFound) {
			t.Errorf("GetVisibleProperty(%q): %v, want ErrNotFound", text, err)
		}

		id, err := content.SubmitEnquiry(ctx, s, content.Enquiry{Name: text, Email: "x@example.com", Body: text, PropertyID: &p.ID})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := content.GetMessage(ctx, s, id); err != nil || m.Body != text || m.ContactName != text || m.PropertyTitle != text {
			t.Errorf("message with %q came back as %+v, %v", text, m, err)
		}

		a := content.Agency{Name: text, Address: text}
		if err := content.SaveAgency(ctx, s, a); err != nil {
			t.Fatal(err)
		}
		if got, err := content.GetAgency(ctx, s); err != nil || got != a {
			t.Errorf("agency with %q came back as %+v, %v", text, got, err)
		}
	}
	c, err := content.CountAll(ctx, s)
	if err != nil || c.Properties != len(nasty) || c.Pages != len(nasty) {
		t.Errorf("after the round trips: %+v, %v", c, err)
	}
}

func TestProperty_DeleteRemovesPhotosAndFeaturesButKeepsEnquiries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	p := mustCreate(t, s, fullInput())
	ph := mustPhoto(t, s, p, pngBytes(t))
	msgID, err := content.SubmitEnquiry(ctx, s, content.Enquiry{Name: "Ann", Email: "ann@example.com", Body: "Viewing?", PropertyID: &p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := content.DeleteProperty(ctx, s, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := content.GetPhoto(ctx, s, ph.ID, false); !errors.Is(err, content.ErrNotFound) {
		t.Errorf("photo of a deleted property: %v, want ErrNotFound", err)
	}
	m, err := content.GetMessage(ctx, s, msgID)
	if err != nil {
		t.Fatal(err)
	}
	if m.PropertyID != nil || m.PropertyTitle != "" || m.Body != "Viewing?" {
		t.Errorf("enquiry after its property was deleted: %+v", m)
	}
	snap := snapshot(t, s)
	if len(snap["property_features"]) != 0 || len(snap["property_photos"]) != 0 || len(snap["messages"]) != 1 || len(snap["contacts"]) != 1 {
		t.Errorf("rows after deleting the property: %v", snap)
	}
}

// A property created with photos has them all, in the order given, the
// first as its cover, written in the transaction that made the property.
func TestProperty_CreateWithPhotosKeepsTheirOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	s := e.site(t, "shard_1")
	photos := [][]byte{jpegBytes(t), pngBytes(t), gifBytes(t)}
	p, err := content.CreatePropertyWithPhotos(ctx, s, fullInput(), photos, photoLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := fromInput(fullInput())
	want.Features = []string{"air conditioning", "Pool", "terrace"}
	if d := cmp.Diff(want, p, editable); d != "" {
		t.Errorf("created property (-want +got):\n%s", d)
	}
	if len(p.Photos) != len(photos) {
		t.Fatalf("%d photos, want %d", len(p.Photos), len(photos))
	}
	for i, info := range p.Photos {
		ph, err := content.GetPhoto(ctx, s, info.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		if info.SortOrder != i || !bytes.Equal(ph.Data, photos[i]) || ph.PropertyID != p.ID {
			t.Errorf("photo %d: sort order %d, %d bytes, of %s", i, info.SortOrder, len(ph.Data), ph.PropertyID)
		}
	}
	res, err := content.ListProperties(ctx, s, content.ListFilter{})
	if err != nil || res.Total != 1 || *res.Properties[0].CoverPhotoID != p.Photos[0].ID {
		t.Errorf("the cover is not the first photo given: %+v, %v", res, err)
	}
	// Without photos it is CreateProperty.
	bare, err := content.CreatePropertyWithPhotos(ctx, s, house("Bare"), nil, photoLimits)
	if err != nil || len(bare.Photos) != 0 {
		t.Errorf("without photos: %d photos, %v", len(bare.Photos), err)
	}
}

// A new property refused for any of its photos, or for its fields, writes
// nothing; one answer lists every problem.
func TestProperty_CreateWithPhotosRefusesAndWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	mustCreate(t, s, house("Already here"))
	before := snapshot(t, s)
	good := pngBytes(t)
	noTitle := house("")

	for _, c := range []struct {
		name   string
		in     content.PropertyInput
		photos [][]byte
		limits content.PhotoLimits
		want   map[string]string
	}{
		{"second photo not an image", house("Sea view"), [][]byte{good, []byte("plain text")}, photoLimits,
			map[string]string{"photo": "Photo 2: the file is not a JPEG, PNG, GIF or WebP image."}},
		{"photo too large", house("Sea view"), [][]byte{append(pngBytes(t), make([]byte, content.MaxPhotoBytes)...)}, photoLimits,
			map[string]string{"photo": "Photo 1: the photo is larger than the 5 MiB limit."}},
		{"photo declaring too many pixels", house("Sea view"), [][]byte{pngSized(t, 20000, 10)}, photoLimits,
			map[string]string{"photo": "Photo 1: the photo is 20000 × 10 pixels; the largest allowed is 12000 pixels a side."}},
		{"empty photo", house("Sea view"), [][]byte{good, {}}, photoLimits,
			map[string]string{"photo": "Photo 2: choose a photo to upload."}},
		{"more photos than a property may have", house("Sea view"), [][]byte{good, good, good}, content.PhotoLimits{PerProperty: 2},
			map[string]string{"photo": "A property may have at most 2 photos."}},
		{"no title and a bad photo", noTitle, [][]byte{[]byte("GIF? no")}, photoLimits,
			map[string]string{"title": "Title is required.", "photo": "Photo 1: the file is not a JPEG, PNG, GIF or WebP image."}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := content.CreatePropertyWithPhotos(ctx, s, c.in, c.photos, c.limits)
			if d := cmp.Diff(c.want, invalidFields(t, err)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
			if d := cmp.Diff(before, snapshot(t, s)); d != "" {
				t.Errorf("a refused create wrote rows (-before +after):\n%s", d)
			}
		})
	}
}

// When the shard fails after the property's row is written, while its
// photos are (an error, or the session ended under it), nothing of the
// property is left: not its row, its features, nor the photos before.
func TestProperty_CreateWithPhotosLeavesNothingWhenTheShardFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	for _, c := range []struct{ name, action string }{
		{"error", pgtest.RaiseError},
		{"session ended", pgtest.TerminateBackend},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := e.site(t, "shard_1")
			mustCreate(t, s, house("Already here"))
			before := snapshot(t, s)
			// The second photo of a property fails: by then the property,
			// its features and its first photo are written.
			restore := pgtest.FailInserts(t, e.cluster.URL["shard_1"], "property_photos",
				fmt.Sprintf(`NEW.website_id = %d AND EXISTS (SELECT 1 FROM property_photos
					WHERE website_id = NEW.website_id AND property_id = NEW.property_id)`, s.WebsiteID), c.action)
			in := fullInput()
			_, err := content.CreatePropertyWithPhotos(ctx, s, in, [][]byte{pngBytes(t), jpegBytes(t)}, photoLimits)
			if err == nil || errors.Is(err, content.ErrInvalid) {
				t.Fatalf("create on a failing shard: %v, want the shard's error", err)
			}
			if d := cmp.Diff(before, snapshot(t, s)); d != "" {
				t.Errorf("a failed create left rows (-before +after):\n%s", d)
			}
			// The same create goes through once the shard is well again.
			restore()
			p, err := content.CreatePropertyWithPhotos(ctx, s, in, [][]byte{pngBytes(t), jpegBytes(t)}, photoLimits)
			if err != nil || len(p.Photos) != 2 || p.Slug != "villa-with-pool" {
				t.Errorf("create after the failure: %d photos, slug %q, %v", len(p.Photos), p.Slug, err)
			}
		})
	}
}

func listTitles(t *testing.T, s tenant.Scope, f content.ListFilter) []string {
	t.Helper()
	res, err := content.ListProperties(context.Background(), s, f)
	if err != nil {
		t.Fatalf("ListProperties(%+v): %v", f, err)
	}
	out := []string{}
	for _, p := range res.Properties {
		out = append(out, p.Title)
	}
	return out
}

// The admin's list finds properties by part of their reference or title in
// any case, with % and _ taken as typed, and by status and listing; hidden
// ones are listed too. Newest first.
func TestListProperties_SearchesAndFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	s, other := e.site(t, shard.Default), e.site(t, shard.Default)
	add := func(title, ref string, visible, featured, sale, rent bool) {
		in := content.PropertyInput{Title: title, Reference: ref, Visible: visible, Highlighted: featured, ForSale: sale, ForRent: rent}
		mustCreate(t, s, in)
	}
	// Oldest first; the list shows them newest first.
	add("Sea view flat", "VAL-001", true, false, true, false)
	add("Mountain cabin", "MTN-7", false, false, false, true)
	add("Seaside villa", "", true, true, true, true)
	add("100% sea", "P%1", true, false, true, false)
	add("under_score house", "", false, true, true, false)
	add("Townhouse", "SEA-9", true, false, false, true)
	mustCreate(t, other, house("Sea shell cottage"))

	for _, c := range []struct {
		name string
		f    content.ListFilter
		want []string
	}{
		{"everything, hidden too", content.ListFilter{}, []string{"Townhouse", "under_score house", "100% sea", "Seaside villa", "Mountain cabin", "Sea view flat"}},
		{"title or reference, any case", content.ListFilter{Text: "  SEA "}, []string{"Townhouse", "100% sea", "Seaside villa", "Sea view flat"}},
		{"part of a reference", content.ListFilter{Text: "val-0"}, []string{"Sea view flat"}},
		{"% as typed", content.ListFilter{Text: "%"}, []string{"100% sea"}},
		{"_ as typed", content.ListFilter{Text: "_"}, []string{"under_score house"}},
		{"nothing matches", content.ListFilter{Text: "castle"}, []string{}},
		{"shown", content.ListFilter{Status: content.StatusShown}, []string{"Townhouse", "100% sea", "Seaside villa", "Sea view flat"}},
		{"hidden", content.ListFilter{Status: "Hidden"}, []string{"under_score house", "Mountain cabin"}},
		{"featured is shown and featured", content.ListFilter{Status: content.StatusFeatured}, []string{"Seaside villa"}},
		{"for rent", content.ListFilter{Listing: content.ListingRent}, []string{"Townhouse", "Seaside villa", "Mountain cabin"}},
		{"for sale, shown, matching sea", content.ListFilter{Text: "sea", Status: content.StatusShown, Listing: content.ListingSale},
			[]string{"100% sea", "Seaside villa", "Sea view flat"}},
	} {
		if got := listTitles(t, s, c.f); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}

	// Pages of a filtered list.
	f := content.ListFilter{Text: "sea", PerPage: 3}
	res, err := content.ListProperties(context.Background(), s, f)
	if err != nil || res.Total != 4 || res.Pages() != 2 || len(res.Properties) != 3 {
		t.Errorf("first page: %d of %d on %d pages, %v", len(res.Properties), res.Total, res.Pages(), err)
	}
	f.Page = 2
	if got := listTitles(t, s, f); !slices.Equal(got, []string{"Sea view flat"}) {
		t.Errorf("second page: %q", got)
	}
	f.Page = 3
	res, err = content.ListProperties(context.Background(), s, f)
	if err != nil || res.Total != 4 || len(res.Properties) != 0 || res.Page != 3 {
		t.Errorf("past the last page: %d of %d, page %d, %v", len(res.Properties), res.Total, res.Page, err)
	}
	if got := listTitles(t, other, content.ListFilter{Text: "sea"}); !slices.Equal(got, []string{"Sea shell cottage"}) {
		t.Errorf("the other website lists %q", got)
	}
}

func TestListFilter_RefusesWhatItCannotUse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		f     content.ListFilter
		field string
	}{
		{"unknown status", content.ListFilter{Status: "sold"}, "status"},
		{"unknown listing", content.ListFilter{Listing: "lease"}, "listing"},
		{"search too long", content.ListFilter{Text: strings.Repeat("é", 101)}, "q"},
		{"search with a NUL", content.ListFilter{Text: "a\x00b"}, "q"},
		{"search not UTF-8", content.ListFilter{Text: "\xff"}, "q"},
	} {
		err := c.f.Validate()
		var inv *content.InvalidError
		if !errors.As(err, &inv) || len(inv.Fields) != 1 || inv.Fields[c.field] == "" {
			t.Errorf("%s: %v, want a problem with %s only", c.name, err, c.field)
		}
	}
	f := content.ListFilter{Text: strings.Repeat("é", 100), Status: " FEATURED ", Listing: "Sale", Page: -3, PerPage: 1000}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Status != content.StatusFeatured || f.Listing != content.ListingSale || f.Page != 1 || f.PerPage != content.MaxPerPage {
		t.Errorf("normalised to %+v", f)
	}
}
