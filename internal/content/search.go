package content

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Listings a Filter can ask for.
const (
	ListingSale = "sale"
	ListingRent = "rent"
)

// DefaultPerPage is the page size of Search when the filter gives none.
const DefaultPerPage = 12

// Filter selects properties for Search.
type Filter struct {
	Listing string // ListingSale, ListingRent, or "" for any
	// Prices compare with the listing's price: the sale price for sale, the
	// monthly rent for rent. Without a Listing they are ignored, since the
	// two are not comparable.
	MinPriceCents, MaxPriceCents *int64
	MinBedrooms                  int
	PropertyType                 string // case-insensitive equality; "" for any
	// City matches the cities that start with it, ignoring case and
	// accents ("lisb", "LISBOA" and "Lisbóa" all find Lisboa); "" for any.
	City            string
	HighlightedOnly bool
	IncludeHidden   bool // for the site's admin
	Page, PerPage   int  // Page from 1; PerPage default DefaultPerPage, at most MaxPerPage
}

// Validate normalises f (trimmed text, lower-case listing, page bounds) and
// checks it. Its *InvalidError uses the fields listing, min_price,
// max_price, min_bedrooms, property_type and city.
func (f *Filter) Validate() error {
	p := problems{}
	f.Listing = strings.ToLower(strings.TrimSpace(f.Listing))
	if f.Listing != "" && f.Listing != ListingSale && f.Listing != ListingRent {
		p.add("listing", "Choose for sale or for rent.")
	}
	if f.MinPriceCents != nil && *f.MinPriceCents < 0 {
		p.add("min_price", "Price cannot be negative.")
	}
	if f.MaxPriceCents != nil && *f.MaxPriceCents < 0 {
		p.add("max_price", "Price cannot be negative.")
	}
	if f.MinPriceCents != nil && f.MaxPriceCents != nil && *f.MinPriceCents > *f.MaxPriceCents {
		p.add("max_price", "The maximum price must not be below the minimum price.")
	}
	if f.MinBedrooms < 0 {
		p.add("min_bedrooms", "Bedrooms cannot be negative.")
	}
	// More than any property can have matches nothing, and must still fit
	// the column's type.
	f.MinBedrooms = min(f.MinBedrooms, maxRooms+1)
	p.text("property_type", "Property type", &f.PropertyType, 200, false)
	p.text("city", "City", &f.City, 200, false)
	f.Page, f.PerPage, _ = pageBounds(f.Page, f.PerPage, DefaultPerPage)
	return p.err()
}

// Results is one page of a search.
type Results struct {
	Properties    []Property
	Total         int // matching properties on all pages
	Page, PerPage int
}

// Pages is the number of pages, at least 1 so that "page 1 of 1" reads
// right for an empty result.
func (r Results) Pages() int {
	if r.PerPage <= 0 || r.Total <= 0 {
		return 1
	}
	return (r.Total + r.PerPage - 1) / r.PerPage
}

// queryArgs numbers a statement's parameters as its fragments are put
// together: every value is a parameter, never part of the SQL text.
type queryArgs []any

func (a *queryArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// where returns f's conditions on properties p; the website id is $1.
func (f *Filter) where(a *queryArgs) string {
	where := []string{"p.website_id = $1"}
	if !f.IncludeHidden {
		where = append(where, "p.visible")
	}
	price := ""
	switch f.Listing {
	case ListingSale:
		where = append(where, "p.for_sale")
		price = "p.sale_price_cents"
	case ListingRent:
		where = append(where, "p.for_rent")
		price = "p.rent_price_cents_monthly"
	}
	if price != "" && f.MinPriceCents != nil {
		where = append(where, price+" >= "+a.add(*f.MinPriceCents))
	}
	if price != "" && f.MaxPriceCents != nil {
		where = append(where, price+" <= "+a.add(*f.MaxPriceCents))
	}
	if f.MinBedrooms > 0 {
		where = append(where, "p.bedrooms >= "+a.add(f.MinBedrooms))
	}
	if f.PropertyType != "" {
		where = append(where, "lower(p.property_type) = lower("+a.add(f.PropertyType)+")")
	}
	if f.City != "" {
		// A filter on the rows the website's index finds: a tenant has at
		// most a few thousand properties, so no index of its own is needed.
		where = append(where, foldSQL("p.city")+" LIKE "+foldSQL(a.add(likePrefix(f.City))))
	}
	if f.HighlightedOnly {
		where = append(where, "p.highlighted")
	}
	return " WHERE " + strings.Join(where, " AND ")
}

// likePrefix is a LIKE pattern of what starts with s: s's own % and _ are
// matched as they are.
func likePrefix(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}

const searchOrder = ` ORDER BY p.created_at DESC, p.id DESC` // newest first

// Search returns one page of the website's properties that match f, newest
// first. Only visible ones unless f.IncludeHidden. Features and photos are
// not filled in; CoverPhotoID is. It runs one statement, which counts the
// matches as it reads the page; only a page past the last one, which has
// no row to carry the count, costs a second.
func Search(ctx context.Context, s tenant.Scope, f Filter) (Results, error) {
	rs, err := SearchMany(ctx, s, f)
	if err != nil {
		return Results{}, err
	}
	return rs[0], nil
}

// SearchMany runs several searches in one statement, such as the lists of a
// home page, and returns their results in the order of filters. Each is as
// Search's.
func SearchMany(ctx context.Context, s tenant.Scope, filters ...Filter) ([]Results, error) {
	if len(filters) == 0 {
		return nil, nil
	}
	filters = slices.Clone(filters)
	for i := range filters {
		if err := filters[i].Validate(); err != nil {
			return nil, err
		}
	}
	query, args := searchStatement(s.WebsiteID, filters)
	results := make([]Results, len(filters))
	for i, f := range filters {
		results[i] = Results{Properties: []Property{}, Page: f.Page, PerPage: f.PerPage}
	}
	rows, err := s.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("searching properties of tenant %d: %w", s.WebsiteID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			cover    *uuid.UUID
			i, total int
		)
		p, err := scanProperty(rows, &cover, &i, &total)
		if err != nil {
			return nil, fmt.Errorf("searching properties of tenant %d: %w", s.WebsiteID, err)
		}
		p.CoverPhotoID = cover
		results[i].Properties = append(results[i].Properties, p)
		results[i].Total = total
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("searching properties of tenant %d: %w", s.WebsiteID, err)
	}
	for i := range results {
		if len(results[i].Properties) > 0 || results[i].Page == 1 {
			continue
		}
		// Past the last page: no row carried the count.
		args := queryArgs{s.WebsiteID}
		cond := filters[i].where(&args)
		if err := s.QueryRow(ctx, "SELECT count(*) FROM properties p"+cond, args...).Scan(&results[i].Total); err != nil {
			return nil, fmt.Errorf("counting properties of tenant %d: %w", s.WebsiteID, err)
		}
	}
	return results, nil
}

// searchStatement is the one statement of SearchMany over valid filters.
// Each search is a branch of a UNION ALL that counts its matches with a
// window over them before its LIMIT; the cover photo is looked up outside,
// for the rows of the pages only.
func searchStatement(websiteID int64, filters []Filter) (string, queryArgs) {
	args := queryArgs{websiteID}
	branches := make([]string, len(filters))
	for i := range filters {
		f := &filters[i]
		branches[i] = "(SELECT " + strconv.Itoa(i) + " AS search, count(*) OVER () AS total, p.* FROM properties p" +
			f.where(&args) + searchOrder + " LIMIT " + args.add(f.PerPage) + " OFFSET " + args.add((f.Page-1)*f.PerPage) + ")"
	}
	return "SELECT " + propertyColumns + ", " + coverPhotoColumn + ", p.search, p.total FROM (" +
		strings.Join(branches, " UNION ALL ") + ") p ORDER BY p.search, p.created_at DESC, p.id DESC", args
}

// Choices is what a search form offers: the property types and the cities
// of the website's visible properties.
type Choices struct {
	Types, Cities []string
}

var (
	// Types differing only in case are one, spelt as a visible property
	// spells it.
	selectPropertyTypes = `SELECT min(property_type) FROM properties
		WHERE website_id = $1 AND visible AND property_type <> ''
		GROUP BY lower(property_type) ORDER BY lower(property_type)`
	// Cities that a search cannot tell apart are one, spelt the way most
	// of its properties spell it.
	selectCities = `SELECT mode() WITHIN GROUP (ORDER BY city) FROM properties
		WHERE website_id = $1 AND visible AND city <> ''
		GROUP BY ` + foldSQL("city") + ` ORDER BY ` + foldSQL("city")
	selectChoices = `SELECT ARRAY(` + selectPropertyTypes + `), ARRAY(` + selectCities + `)`
)

// SearchChoices lists, in one statement, the property types and cities a
// search form offers.
func SearchChoices(ctx context.Context, s tenant.Scope) (Choices, error) {
	var c Choices
	if err := s.QueryRow(ctx, selectChoices, s.WebsiteID).Scan(&c.Types, &c.Cities); err != nil {
		return Choices{}, fmt.Errorf("listing property types and cities of tenant %d: %w", s.WebsiteID, err)
	}
	return c, nil
}

// foldFrom and foldTo are the letters with accents of the Latin alphabets
// and the plain letter each becomes, rune for rune, as PostgreSQL's
// translate() takes them. Folding in SQL needs no extension (unaccent must
// be installed by a superuser) and works under any collation.
var foldFrom, foldTo = foldTable()

// noDecomposition are letters that do not decompose into a plain letter and
// accents but read as one.
var noDecomposition = map[rune]rune{
	'Ø': 'O', 'ø': 'o', 'Ł': 'L', 'ł': 'l', 'Đ': 'D', 'đ': 'd', 'Ð': 'D', 'ð': 'd',
	'Ħ': 'H', 'ħ': 'h', 'Ŧ': 'T', 'ŧ': 't', 'ı': 'i',
}

func foldTable() (from, to string) {
	var f, t strings.Builder
	for r := rune(0xC0); r <= 0x24F; r++ {
		plain, ok := noDecomposition[r]
		if !ok {
			plain, ok = accentedLetter(r)
		}
		if ok {
			f.WriteRune(r)
			t.WriteRune(plain)
		}
	}
	return f.String(), t.String()
}

// accentedLetter returns the plain ASCII letter of r when r is that letter
// with accents.
func accentedLetter(r rune) (rune, bool) {
	d := []rune(norm.NFD.String(string(r)))
	if len(d) < 2 || d[0] > unicode.MaxASCII || !unicode.IsLetter(d[0]) {
		return 0, false
	}
	for _, m := range d[1:] {
		if !unicode.Is(unicode.Mn, m) {
			return 0, false
		}
	}
	return d[0], true
}

// foldSQL is the SQL of expr without case or accents: the city a search
// compares. The letters are translated before lower(), which under the C
// collation lowers only ASCII.
func foldSQL(expr string) string {
	return "lower(translate(" + expr + ", '" + foldFrom + "', '" + foldTo + "'))"
}
