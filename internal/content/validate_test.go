package content_test

import (
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/propertywebbuilder/pwb/internal/content"
)

func TestInvalidError_IsErrInvalidAndListsFields(t *testing.T) {
	t.Parallel()
	var err error = &content.InvalidError{Fields: map[string]string{"title": "Title is required.", "city": "City must be at most 200 characters."}}
	if !errors.Is(err, content.ErrInvalid) {
		t.Error("errors.Is(InvalidError, ErrInvalid) is false")
	}
	if errors.Is(err, content.ErrNotFound) || errors.Is(err, content.ErrConflict) {
		t.Error("InvalidError is another sentinel too")
	}
	want := "invalid input: city: City must be at most 200 characters.; title: Title is required."
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestPropertyInput_ValidateTrimsAndNormalises(t *testing.T) {
	t.Parallel()
	in := content.PropertyInput{
		Title: "  Sea view flat \n", Reference: " R-1 ", City: " Alicante ",
		SalePriceCents: ptr[int64](0), SaleCurrency: " eur ",
		RentPriceCentsMonthly: ptr[int64](90000), RentCurrency: "gbp",
		Features: []string{" Pool ", "", "pool", "Garden", "  ", "GARDEN", "Lift"},
	}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	want := content.PropertyInput{
		Title: "Sea view flat", Reference: "R-1", City: "Alicante",
		SalePriceCents: ptr[int64](0), SaleCurrency: "EUR",
		RentPriceCentsMonthly: ptr[int64](90000), RentCurrency: "GBP",
		Features: []string{"Pool", "Garden", "Lift"},
	}
	if d := cmp.Diff(want, in); d != "" {
		t.Errorf("validated input (-want +got):\n%s", d)
	}
}

func TestPropertyInput_ValidateReportsEachField(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("é", n) } // characters, not bytes
	tooMany := make([]string, content.MaxFeatures+1)
	for i := range tooMany {
		tooMany[i] = "feature " + strings.Repeat("x", i)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*content.PropertyInput)
		field string
		msg   string // checked when not empty
	}{
		{"title missing", func(in *content.PropertyInput) { in.Title = "   " }, "title", "Title is required."},
		{"title too long", func(in *content.PropertyInput) { in.Title = long(201) }, "title", "Title must be at most 200 characters."},
		{"title with NUL", func(in *content.PropertyInput) { in.Title = "a\x00b" }, "title", ""},
		{"title not UTF-8", func(in *content.PropertyInput) { in.Title = "a\xffb" }, "title", ""},
		{"reference too long", func(in *content.PropertyInput) { in.Reference = long(51) }, "reference", ""},
		{"description too long", func(in *content.PropertyInput) { in.Description = long(20001) }, "description", ""},
		{"city too long", func(in *content.PropertyInput) { in.City = long(201) }, "city", ""},
		{"postal code too long", func(in *content.PropertyInput) { in.PostalCode = long(201) }, "postal_code", ""},
		{"negative bedrooms", func(in *content.PropertyInput) { in.Bedrooms = -1 }, "bedrooms", ""},
		{"too many bathrooms", func(in *content.PropertyInput) { in.Bathrooms = 1001 }, "bathrooms", ""},
		{"negative garages", func(in *content.PropertyInput) { in.Garages = -3 }, "garages", ""},
		{"negative sale price", func(in *content.PropertyInput) { in.SalePriceCents = ptr[int64](-1) }, "sale_price_cents", "Price cannot be negative."},
		{"negative rent", func(in *content.PropertyInput) {
			in.RentPriceCentsMonthly, in.RentCurrency = ptr[int64](-100), "EUR"
		}, "rent_price_cents_monthly", "Price cannot be negative."},
		{"sale price without currency", func(in *content.PropertyInput) { in.SaleCurrency = "" }, "sale_currency", ""},
		{"rent without currency", func(in *content.PropertyInput) { in.RentPriceCentsMonthly = ptr[int64](1) }, "rent_currency", ""},
		{"currency of four letters", func(in *content.PropertyInput) { in.SaleCurrency = "EURO" }, "sale_currency", ""},
		{"currency with a digit", func(in *content.PropertyInput) { in.SaleCurrency = "EU1" }, "sale_currency", ""},
		{"latitude above 90", func(in *content.PropertyInput) { in.Latitude = ptr(90.5) }, "latitude", ""},
		{"latitude NaN", func(in *content.PropertyInput) { in.Latitude = ptr(math.NaN()) }, "latitude", ""},
		{"longitude below -180", func(in *content.PropertyInput) { in.Longitude = ptr(-180.1) }, "longitude", ""},
		{"longitude infinite", func(in *content.PropertyInput) { in.Longitude = ptr(math.Inf(1)) }, "longitude", ""},
		{"year too early", func(in *content.PropertyInput) { in.YearBuilt = ptr(999) }, "year_built", ""},
		{"year too late", func(in *content.PropertyInput) { in.YearBuilt = ptr(3001) }, "year_built", ""},
		{"negative floor area", func(in *content.PropertyInput) { in.FloorAreaSqm = ptr(-0.5) }, "floor_area_sqm", ""},
		{"floor area too large for the column", func(in *content.PropertyInput) { in.FloorAreaSqm = ptr(1e9) }, "floor_area_sqm", ""},
		{"feature too long", func(in *content.PropertyInput) { in.Features = []string{long(101)} }, "features", ""},
		{"too many features", func(in *content.PropertyInput) { in.Features = tooMany }, "features", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := house("A house")
			tc.edit(&in)
			fields := invalidFields(t, in.Validate())
			msg, ok := fields[tc.field]
			if !ok || len(fields) != 1 {
				t.Fatalf("problems %v, want one for %s", fields, tc.field)
			}
			if tc.msg != "" && msg != tc.msg {
				t.Errorf("%s: %q, want %q", tc.field, msg, tc.msg)
			}
		})
	}
}

func TestPropertyInput_ValidateAcceptsLimits(t *testing.T) {
	t.Parallel()
	in := house(strings.Repeat("é", 200))
	in.Reference = strings.Repeat("r", 50)
	in.Latitude, in.Longitude = ptr(-90.0), ptr(180.0)
	in.Bedrooms, in.Bathrooms, in.Garages = 1000, 0, 1000
	in.YearBuilt, in.FloorAreaSqm = ptr(1000), ptr(0.0)
	in.Features = make([]string, content.MaxFeatures)
	for i := range in.Features {
		in.Features[i] = strings.Repeat("f", 90) + strings.Repeat("x", i%10) + string(rune('a'+i/10))
	}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	// A price is optional even when listed: "price on request".
	in = content.PropertyInput{Title: "Flat", ForSale: true, ForRent: true}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestEnquiry_Validate(t *testing.T) {
	t.Parallel()
	ok := content.Enquiry{Name: " Ann ", Email: " ann@example.com ", Phone: " +34 600 ", Body: " Is it still for sale? "}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := (content.Enquiry{Name: "Ann", Email: "ann@example.com", Phone: "+34 600", Body: "Is it still for sale?"}); ok != want {
		t.Errorf("validated %+v, want %+v", ok, want)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*content.Enquiry)
		field string
	}{
		{"no name", func(e *content.Enquiry) { e.Name = "" }, "name"},
		{"long name", func(e *content.Enquiry) { e.Name = strings.Repeat("n", 201) }, "name"},
		{"no email", func(e *content.Enquiry) { e.Email = " " }, "email"},
		{"not an email", func(e *content.Enquiry) { e.Email = "ann" }, "email"},
		{"display name", func(e *content.Enquiry) { e.Email = "Ann <ann@example.com>" }, "email"},
		{"angle brackets", func(e *content.Enquiry) { e.Email = "<ann@example.com>" }, "email"},
		{"two addresses", func(e *content.Enquiry) { e.Email = "ann@example.com, bob@example.com" }, "email"},
		{"header injection", func(e *content.Enquiry) { e.Email = "ann@example.com\r\nBcc: x@example.com" }, "email"},
		{"long email", func(e *content.Enquiry) { e.Email = strings.Repeat("a", 250) + "@x.io" }, "email"},
		{"long phone", func(e *content.Enquiry) { e.Phone = strings.Repeat("1", 51) }, "phone"},
		{"no body", func(e *content.Enquiry) { e.Body = "\n\t" }, "body"},
		{"long body", func(e *content.Enquiry) { e.Body = strings.Repeat("b", 5001) }, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := content.Enquiry{Name: "Ann", Email: "ann@example.com", Body: "Hello"}
			tc.edit(&e)
			fields := invalidFields(t, e.Validate())
			if _, ok := fields[tc.field]; !ok || len(fields) != 1 {
				t.Errorf("problems %v, want one for %s", fields, tc.field)
			}
		})
	}
}

func TestPageInput_Validate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		in       content.PageInput
		wantSlug string
		field    string // the one problem expected, or ""
	}{
		{"slug from title", content.PageInput{Title: "  About Us! "}, "about-us", ""},
		{"slug lower-cased and trimmed", content.PageInput{Title: "T", Slug: " Terms-2024 "}, "terms-2024", ""},
		{"slug kept", content.PageInput{Title: "About", Slug: "who-we-are"}, "who-we-are", ""},
		{"slug with space", content.PageInput{Title: "About", Slug: "who we are"}, "", "slug"},
		{"slug with leading hyphen", content.PageInput{Title: "About", Slug: "-about"}, "", "slug"},
		{"slug with slash", content.PageInput{Title: "About", Slug: "a/b"}, "", "slug"},
		{"slug too long", content.PageInput{Title: "About", Slug: strings.Repeat("a", 81)}, "", "slug"},
		{"title without usable letters", content.PageInput{Title: "会社"}, "", "slug"},
		{"no title", content.PageInput{Slug: "about"}, "", "title"},
		{"title too long", content.PageInput{Title: strings.Repeat("t", 201)}, "", "title"},
		{"body too long", content.PageInput{Title: "About", Body: strings.Repeat("b", 50001)}, "", "body"},
		{"nav order too low", content.PageInput{Title: "About", NavOrder: -1001}, "", "nav_order"},
		{"nav order too high", content.PageInput{Title: "About", NavOrder: 1001}, "", "nav_order"},
		{"nav order at limit", content.PageInput{Title: "About", NavOrder: -1000}, "about", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := tc.in
			err := in.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if in.Slug != tc.wantSlug {
					t.Errorf("slug %q, want %q", in.Slug, tc.wantSlug)
				}
				return
			}
			if fields := invalidFields(t, err); len(fields) != 1 || fields[tc.field] == "" {
				t.Errorf("problems %v, want one for %s", fields, tc.field)
			}
		})
	}
}

func TestAgency_Validate(t *testing.T) {
	t.Parallel()
	a := content.Agency{Name: " Acme Homes ", Email: " ", Phone: " 1 ", Address: " Main St "}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := (content.Agency{Name: "Acme Homes", Phone: "1", Address: "Main St"}); a != want {
		t.Errorf("validated %+v, want %+v", a, want)
	}
	bad := content.Agency{Name: strings.Repeat("n", 201), Email: "nope", Phone: strings.Repeat("1", 51), Address: strings.Repeat("a", 501)}
	fields := invalidFields(t, bad.Validate())
	if d := cmp.Diff([]string{"address", "email", "name", "phone"}, keys(fields), cmpopts.SortSlices(func(a, b string) bool { return a < b })); d != "" {
		t.Errorf("fields (-want +got):\n%s", d)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestFilter_Validate(t *testing.T) {
	t.Parallel()
	f := content.Filter{Listing: " Sale ", City: " Madrid ", Page: -3, PerPage: 1000}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Listing != "sale" || f.City != "Madrid" || f.Page != 1 || f.PerPage != content.MaxPerPage {
		t.Errorf("normalised filter %+v", f)
	}
	f = content.Filter{}
	if err := f.Validate(); err != nil || f.PerPage != content.DefaultPerPage || f.Page != 1 {
		t.Errorf("zero filter normalised to %+v, %v", f, err)
	}
	for _, tc := range []struct {
		name  string
		f     content.Filter
		field string
	}{
		{"unknown listing", content.Filter{Listing: "auction"}, "listing"},
		{"negative min price", content.Filter{MinPriceCents: ptr[int64](-1)}, "min_price"},
		{"negative max price", content.Filter{MaxPriceCents: ptr[int64](-1)}, "max_price"},
		{"min above max", content.Filter{MinPriceCents: ptr[int64](10), MaxPriceCents: ptr[int64](9)}, "max_price"},
		{"negative bedrooms", content.Filter{MinBedrooms: -1}, "min_bedrooms"},
	} {
		f := tc.f
		if fields := invalidFields(t, f.Validate()); fields[tc.field] == "" {
			t.Errorf("%s: problems %v, want one for %s", tc.name, fields, tc.field)
		}
	}
}

func TestResults_Pages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ total, per, want int }{
		{0, 12, 1}, {1, 12, 1}, {12, 12, 1}, {13, 12, 2}, {25, 5, 5}, {26, 5, 6}, {3, 0, 1},
	} {
		if got := (content.Results{Total: tc.total, PerPage: tc.per}).Pages(); got != tc.want {
			t.Errorf("Pages() of %d by %d = %d, want %d", tc.total, tc.per, got, tc.want)
		}
	}
}

func TestSlugify(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Sea View Flat":                  "sea-view-flat",
		"  --Château d'Eau--  ":          "chateau-d-eau",
		"Straße & Smørrebrød":            "strasse-smorrebrod",
		"3 bed / 2 bath, 120 m²":         "3-bed-2-bath-120-m2",
		"<script>alert(1)</script>":      "script-alert-1-script",
		"'; DROP TABLE properties; --":   "drop-table-properties",
		"会社":                             "",
		"":                               "",
		strings.Repeat("ab ", 40) + "cd": strings.TrimSuffix(strings.Repeat("ab-", 27), "-"),
	} {
		if got := content.Slugify(in); got != want {
			t.Errorf("Slugify(%q) = %q, want %q", in, got, want)
		}
	}
}

var slugShape = regexp.MustCompile(`^([a-z0-9]+(-[a-z0-9]+)*)?$`)

func FuzzSlugify(f *testing.F) {
	for _, s := range []string{"Sea View", "Ça va?", "a--b", "-", "ǅ", "\xff\xfe", strings.Repeat("x-", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, title string) {
		s := content.Slugify(title)
		if len(s) > content.MaxSlugLen || !slugShape.MatchString(s) {
			t.Fatalf("Slugify(%q) = %q: not a slug", title, s)
		}
	})
}

func TestPhotoContentType_SniffsTheBytes(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"png":  {pngBytes(t), "image/png"},
		"jpeg": {jpegBytes(t), "image/jpeg"},
		"gif":  {gifBytes(t), "image/gif"},
		"webp": {webpBytes(), "image/webp"},
	} {
		if got, err := content.PhotoContentType(tc.data); err != nil || got != tc.want {
			t.Errorf("%s: PhotoContentType = %q, %v; want %q", name, got, err, tc.want)
		}
	}
	for name, data := range map[string][]byte{
		"empty":    nil,
		"html":     []byte("<html><script>alert(1)</script></html>"),
		"svg":      []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>`),
		"pdf":      []byte("%PDF-1.7\n"),
		"bmp":      append([]byte("BM"), make([]byte, 64)...),
		"oversize": append(pngBytes(t), make([]byte, content.MaxPhotoBytes)...),
	} {
		_, err := content.PhotoContentType(data)
		if fields := invalidFields(t, err); fields["photo"] == "" {
			t.Errorf("%s: problems %v, want one for photo", name, fields)
		}
	}
	_, err := content.PhotoContentType(make([]byte, content.MaxPhotoBytes+1))
	if msg := invalidFields(t, err)["photo"]; !strings.Contains(msg, "5 MiB") {
		t.Errorf("oversize message %q does not name the 5 MiB limit", msg)
	}
}

func TestParseID(t *testing.T) {
	t.Parallel()
	if _, err := content.ParseID("0192f3a4-0000-7000-8000-000000000000"); err != nil {
		t.Error(err)
	}
	for _, s := range []string{"", "42", "not-a-uuid", "'; DROP TABLE pages; --"} {
		if _, err := content.ParseID(s); !errors.Is(err, content.ErrNotFound) {
			t.Errorf("ParseID(%q): %v, want ErrNotFound", s, err)
		}
	}
}
