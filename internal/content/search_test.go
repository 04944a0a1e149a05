package content_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// catalogue creates, oldest first, properties titled by what they are.
func catalogue(t *testing.T, s tenant.Scope) map[string]uuid.UUID {
	t.Helper()
	sale := func(title, typ, city string, beds int, cents int64) content.PropertyInput {
		return content.PropertyInput{Title: title, PropertyType: typ, City: city, Bedrooms: beds, Visible: true,
			ForSale: true, SalePriceCents: ptr(cents), SaleCurrency: "EUR"}
	}
	rent := func(title, typ, city string, beds int, cents int64) content.PropertyInput {
		return content.PropertyInput{Title: title, PropertyType: typ, City: city, Bedrooms: beds, Visible: true,
			ForRent: true, RentPriceCentsMonthly: ptr(cents), RentCurrency: "EUR"}
	}
	both := sale("both", "Flat", "Madrid", 2, 30_000_000)
	both.ForRent, both.RentPriceCentsMonthly, both.RentCurrency = true, ptr[int64](120_000), "EUR"
	hidden := sale("hidden", "Villa", "Ibiza", 6, 90_000_000)
	hidden.Visible = false
	highlighted := sale("highlighted", "villa", "madrid", 5, 80_000_000)
	highlighted.Highlighted = true
	noPrice := sale("sale-no-price", "Plot", "", 0, 0)
	noPrice.SalePriceCents, noPrice.SaleCurrency = nil, ""
	ids := map[string]uuid.UUID{}
	for _, in := range []content.PropertyInput{
		sale("cheap-sale", "Flat", "Valencia", 1, 10_000_000),
		sale("mid-sale", "House", "Valencia", 3, 25_000_000),
		rent("cheap-rent", "Flat", "Madrid", 1, 80_000),
		rent("dear-rent", "House", "Valencia", 4, 300_000),
		both, hidden, highlighted, noPrice,
	} {
		ids[in.Title] = mustCreate(t, s, in).ID
	}
	return ids
}

func titles(r content.Results) []string {
	out := []string{}
	for _, p := range r.Properties {
		out = append(out, p.Title)
	}
	return out
}

func TestSearch_Filters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s := e.site(t, shard.Default)
	catalogue(t, s)
	catalogue(t, e.site(t, shard.Default)) // another website's, never found
	for _, tc := range []struct {
		name string
		f    content.Filter
		want []string // newest first
	}{
		{"everything visible", content.Filter{},
			[]string{"sale-no-price", "highlighted", "both", "dear-rent", "cheap-rent", "mid-sale", "cheap-sale"}},
		{"admin sees hidden", content.Filter{IncludeHidden: true},
			[]string{"sale-no-price", "highlighted", "hidden", "both", "dear-rent", "cheap-rent", "mid-sale", "cheap-sale"}},
		{"for sale", content.Filter{Listing: "sale"},
			[]string{"sale-no-price", "highlighted", "both", "mid-sale", "cheap-sale"}},
		{"for rent", content.Filter{Listing: "rent"}, []string{"both", "dear-rent", "cheap-rent"}},
		{"sale price range", content.Filter{Listing: "sale", MinPriceCents: ptr[int64](20_000_000), MaxPriceCents: ptr[int64](30_000_000)},
			[]string{"both", "mid-sale"}},
		{"sale price bounds are inclusive", content.Filter{Listing: "sale", MinPriceCents: ptr[int64](10_000_000), MaxPriceCents: ptr[int64](10_000_000)},
			[]string{"cheap-sale"}},
		{"sale minimum drops unpriced", content.Filter{Listing: "sale", MinPriceCents: ptr[int64](0)},
			[]string{"highlighted", "both", "mid-sale", "cheap-sale"}},
		{"rent compares monthly rent", content.Filter{Listing: "rent", MaxPriceCents: ptr[int64](150_000)},
			[]string{"both", "cheap-rent"}},
		{"rent minimum", content.Filter{Listing: "rent", MinPriceCents: ptr[int64](200_000)}, []string{"dear-rent"}},
		{"prices ignored without a listing", content.Filter{MinPriceCents: ptr[int64](1), MaxPriceCents: ptr[int64](2)},
			[]string{"sale-no-price", "highlighted", "both", "dear-rent", "cheap-rent", "mid-sale", "cheap-sale"}},
		{"min bedrooms", content.Filter{MinBedrooms: 4}, []string{"highlighted", "dear-rent"}},
		{"type, any case", content.Filter{PropertyType: " VILLA "}, []string{"highlighted"}},
		{"type with hidden", content.Filter{PropertyType: "villa", IncludeHidden: true}, []string{"highlighted", "hidden"}},
		{"city, any case", content.Filter{City: "MADRID"}, []string{"highlighted", "both", "cheap-rent"}},
		{"city is a beginning, not a pattern", content.Filter{City: "Mad%"}, []string{}},
		{"city by its beginning", content.Filter{City: "vAL"}, []string{"dear-rent", "mid-sale", "cheap-sale"}},
		{"highlighted only", content.Filter{HighlightedOnly: true}, []string{"highlighted"}},
		{"combined", content.Filter{Listing: "rent", City: "valencia", MinBedrooms: 2, PropertyType: "house"}, []string{"dear-rent"}},
		{"nothing matches", content.Filter{City: "Nowhere"}, []string{}},
		{"more bedrooms than a column holds", content.Filter{MinBedrooms: 1 << 40}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := content.Search(ctx, s, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, titles(r)); d != "" {
				t.Errorf("results (-want +got):\n%s", d)
			}
			if r.Total != len(tc.want) || r.Page != 1 || r.PerPage != content.DefaultPerPage {
				t.Errorf("total %d page %d per page %d, want %d 1 %d", r.Total, r.Page, r.PerPage, len(tc.want), content.DefaultPerPage)
			}
		})
	}
}

func TestSearch_PaginatesNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	var want []string
	for i := range 27 {
		p := mustCreate(t, s, house("p"+string(rune('a'+i))))
		want = append([]string{p.Title}, want...)
	}
	var got []string
	for page := 1; page <= 3; page++ {
		r, err := content.Search(ctx, s, content.Filter{Page: page})
		if err != nil {
			t.Fatal(err)
		}
		if r.Total != 27 || r.Pages() != 3 || r.Page != page || r.PerPage != 12 {
			t.Errorf("page %d: total %d, pages %d, page %d, per page %d", page, r.Total, r.Pages(), r.Page, r.PerPage)
		}
		got = append(got, titles(r)...)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("the pages together (-want +got):\n%s", d)
	}

	r, err := content.Search(ctx, s, content.Filter{Page: 4})
	if err != nil || len(r.Properties) != 0 || r.Total != 27 {
		t.Errorf("past the last page: %d properties, total %d, %v", len(r.Properties), r.Total, err)
	}
	r, err = content.Search(ctx, s, content.Filter{Page: -5, PerPage: 5})
	if err != nil || r.Page != 1 || len(r.Properties) != 5 || r.Properties[0].Title != want[0] {
		t.Errorf("page -5: page %d, %v, %v", r.Page, titles(r), err)
	}
	r, err = content.Search(ctx, s, content.Filter{PerPage: 1000})
	if err != nil || r.PerPage != content.MaxPerPage || len(r.Properties) != 27 {
		t.Errorf("per page 1000: per page %d, %d properties, %v", r.PerPage, len(r.Properties), err)
	}
	r, err = content.Search(ctx, s, content.Filter{Page: 1 << 62, PerPage: 100})
	if err != nil || len(r.Properties) != 0 {
		t.Errorf("a huge page number: %d properties, %v", len(r.Properties), err)
	}
}

func TestSearch_CoverPhotoIsTheFirstBySortOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	bare := mustCreate(t, s, house("No photos"))
	withPhotos := mustCreate(t, s, house("Photos"))
	first := mustPhoto(t, s, withPhotos, jpegBytes(t))
	mustPhoto(t, s, withPhotos, pngBytes(t))
	r, err := content.Search(ctx, s, content.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	covers := map[uuid.UUID]*uuid.UUID{}
	for _, p := range r.Properties {
		covers[p.ID] = p.CoverPhotoID
		if p.Features != nil || p.Photos != nil {
			t.Errorf("search filled features or photos of %s", p.Title)
		}
	}
	if covers[bare.ID] != nil {
		t.Errorf("cover of a property without photos: %v", covers[bare.ID])
	}
	if c := covers[withPhotos.ID]; c == nil || *c != first.ID {
		t.Errorf("cover %v, want the first photo %v", c, first.ID)
	}
}

func TestSearch_RejectsInvalidFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	for _, f := range []content.Filter{
		{Listing: "sale", MinPriceCents: ptr[int64](-1)},
		{Listing: "rent", MaxPriceCents: ptr[int64](-100)},
		{Listing: "sale", MinPriceCents: ptr[int64](500), MaxPriceCents: ptr[int64](100)},
		{Listing: "lease"},
		{MinBedrooms: -2},
		{City: "Madrid\x00"},
		{PropertyType: "\xff"},
	} {
		if _, err := content.Search(ctx, s, f); !errors.Is(err, content.ErrInvalid) {
			t.Errorf("Search(%+v): %v, want ErrInvalid", f, err)
		}
	}
}

func TestSearchChoices_ListVisibleOnesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s := e.site(t, shard.Default)
	catalogue(t, s)
	other := e.site(t, shard.Default)
	in := house("Elsewhere")
	in.City, in.PropertyType = "Zaragoza", "Castle"
	mustCreate(t, other, in)

	c, err := content.SearchChoices(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	// "Villa" of the hidden property and "villa" of a visible one are one
	// type, spelt as a visible property spells it.
	if d := cmp.Diff([]string{"Flat", "House", "Plot", "villa"}, c.Types); d != "" {
		t.Errorf("property types (-want +got):\n%s", d)
	}
	// "Madrid" (twice) and "madrid" (once) are one city, spelt the way most
	// properties spell it; the hidden Ibiza and the empty city are not
	// listed.
	if d := cmp.Diff([]string{"Madrid", "Valencia"}, c.Cities); d != "" {
		t.Errorf("cities (-want +got):\n%s", d)
	}
	empty := e.site(t, shard.Default)
	if c, err := content.SearchChoices(ctx, empty); err != nil || len(c.Types) != 0 || len(c.Cities) != 0 {
		t.Errorf("choices of an empty website: %+v, %v", c, err)
	}
}

// A visitor's city matches whatever the agent typed, in any case, with or
// without accents, and by its beginning.
func TestSearch_CityIgnoresCaseAndAccentsAndMatchesTheStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	s := e.site(t, shard.Default)
	for _, city := range []string{"Lisboa", "lisboa", "Sao Paulo", "São Paulo", "MÁLAGA", "Zürich", "Łódź", "Porto", "Porto Santo", "100%_Town"} {
		in := house("In " + city)
		in.City = city
		mustCreate(t, s, in)
	}
	elsewhere := house("Lisboa of another site")
	elsewhere.City = "Lisboa"
	mustCreate(t, e.site(t, shard.Default), elsewhere)

	lisboa := []string{"In lisboa", "In Lisboa"}
	saoPaulo := []string{"In São Paulo", "In Sao Paulo"}
	for _, tc := range []struct {
		city string
		want []string // newest first
	}{
		{"Lisboa", lisboa},
		{"lisboa", lisboa},
		{"LISBOA", lisboa},
		{"Lisbóa", lisboa},
		{"lisb", lisboa},
		{"  Lisb  ", lisboa},
		{"são paulo", saoPaulo},
		{"sao paulo", saoPaulo},
		{"SÃO", saoPaulo},
		{"malaga", []string{"In MÁLAGA"}},
		{"Málaga", []string{"In MÁLAGA"}},
		{"zurich", []string{"In Zürich"}},
		{"ZÜRICH", []string{"In Zürich"}},
		{"lodz", []string{"In Łódź"}},
		{"Porto", []string{"In Porto Santo", "In Porto"}},
		{"porto s", []string{"In Porto Santo"}},
		// The start of the name, not any part of it.
		{"isboa", []string{}},
		{"paulo", []string{}},
		// LIKE's wildcards are letters like any other.
		{"Lisb%", []string{}},
		{"_isboa", []string{}},
		{"%", []string{}},
		{"100%_", []string{"In 100%_Town"}},
		{"Lisboa Norte", []string{}},
	} {
		t.Run(tc.city, func(t *testing.T) {
			t.Parallel()
			r, err := content.Search(ctx, s, content.Filter{City: tc.city})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, titles(r)); d != "" {
				t.Errorf("city %q (-want +got):\n%s", tc.city, d)
			}
		})
	}

	// The list a form offers names each city once, however it is spelt.
	c, err := content.SearchChoices(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Cities) != 8 || c.Cities[0] != "100%_Town" || c.Cities[1] != "Lisboa" && c.Cities[1] != "lisboa" ||
		c.Cities[2] != "Łódź" || c.Cities[3] != "MÁLAGA" || c.Cities[4] != "Porto" || c.Cities[5] != "Porto Santo" ||
		c.Cities[6] != "São Paulo" && c.Cities[6] != "Sao Paulo" || c.Cities[7] != "Zürich" {
		t.Errorf("cities %q: want each once, in the order of their plain spelling", c.Cities)
	}
}

// SearchMany gives each search the results Search gives it alone.
func TestSearchMany_IsEachSearchAlone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEnv(t, 0).site(t, shard.Default)
	catalogue(t, s)
	filters := []content.Filter{
		{HighlightedOnly: true, PerPage: 6},
		{Listing: "sale", PerPage: 2},
		{Listing: "rent", PerPage: 2, Page: 2},
		{City: "Nowhere"},
		{Listing: "sale", PerPage: 2, Page: 9}, // past the last page
	}
	many, err := content.SearchMany(ctx, s, filters...)
	if err != nil {
		t.Fatal(err)
	}
	if len(many) != len(filters) {
		t.Fatalf("%d results for %d searches", len(many), len(filters))
	}
	for i, f := range filters {
		alone, err := content.Search(ctx, s, f)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(titles(alone), titles(many[i])); d != "" {
			t.Errorf("search %d (%+v) (-alone +together):\n%s", i, f, d)
		}
		if many[i].Total != alone.Total || many[i].Page != alone.Page || many[i].PerPage != alone.PerPage {
			t.Errorf("search %d: total %d page %d per page %d; alone %d %d %d", i,
				many[i].Total, many[i].Page, many[i].PerPage, alone.Total, alone.Page, alone.PerPage)
		}
	}
	want := []int{1, 5, 3, 0, 5}
	for i, r := range many {
		if r.Total != want[i] {
			t.Errorf("search %d: total %d, want %d", i, r.Total, want[i])
		}
	}
	if d := cmp.Diff([]string{"cheap-rent"}, titles(many[2])); d != "" {
		t.Errorf("second page of rentals (-want +got):\n%s", d)
	}
	if _, err := content.SearchMany(ctx, s, content.Filter{}, content.Filter{MinBedrooms: -1}); !errors.Is(err, content.ErrInvalid) {
		t.Errorf("a bad filter among good ones: %v, want ErrInvalid", err)
	}
}
