package content

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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
	PropertyType, City           string // case-insensitive equality; "" for any
	HighlightedOnly              bool
	IncludeHidden                bool // for the site's admin
	Page, PerPage                int  // Page from 1; PerPage default DefaultPerPage, at most MaxPerPage
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

const (
	searchColumns = propertyColumns + `,
	(SELECT ph.id FROM property_photos ph WHERE ph.website_id = p.website_id AND ph.property_id = p.id
		ORDER BY ph.sort_order, ph.created_at, ph.id LIMIT 1)`
	searchOrder = ` ORDER BY p.created_at DESC, p.id DESC`
)

// Search returns one page of the website's properties that match f, newest
// first. Only visible ones unless f.IncludeHidden. Features and photos are
// not filled in; CoverPhotoID is.
func Search(ctx context.Context, s tenant.Scope, f Filter) (Results, error) {
	if err := f.Validate(); err != nil {
		return Results{}, err
	}
	// The conditions are fixed fragments; every value is a parameter.
	args := []any{s.WebsiteID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
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
		where = append(where, price+" >= "+arg(*f.MinPriceCents))
	}
	if price != "" && f.MaxPriceCents != nil {
		where = append(where, price+" <= "+arg(*f.MaxPriceCents))
	}
	if f.MinBedrooms > 0 {
		where = append(where, "p.bedrooms >= "+arg(f.MinBedrooms))
	}
	if f.PropertyType != "" {
		where = append(where, "lower(p.property_type) = lower("+arg(f.PropertyType)+")")
	}
	if f.City != "" {
		where = append(where, "lower(p.city) = lower("+arg(f.City)+")")
	}
	if f.HighlightedOnly {
		where = append(where, "p.highlighted")
	}
	cond := " WHERE " + strings.Join(where, " AND ")

	r := Results{Page: f.Page, PerPage: f.PerPage}
	if err := s.QueryRow(ctx, "SELECT count(*) FROM properties p"+cond, args...).Scan(&r.Total); err != nil {
		return Results{}, fmt.Errorf("counting properties of tenant %d: %w", s.WebsiteID, err)
	}
	query := "SELECT " + searchColumns + " FROM properties p" + cond + searchOrder +
		" LIMIT " + arg(f.PerPage) + " OFFSET " + arg((f.Page-1)*f.PerPage)
	rows, err := s.Query(ctx, query, args...)
	if err != nil {
		return Results{}, fmt.Errorf("searching properties of tenant %d: %w", s.WebsiteID, err)
	}
	r.Properties, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Property, error) {
		var cover *uuid.UUID
		p, err := scanProperty(row, &cover)
		p.CoverPhotoID = cover
		return p, err
	})
	if err != nil {
		return Results{}, fmt.Errorf("searching properties of tenant %d: %w", s.WebsiteID, err)
	}
	return r, nil
}

const (
	selectPropertyTypes = `SELECT min(property_type) FROM properties
		WHERE website_id = $1 AND visible AND property_type <> ''
		GROUP BY lower(property_type) ORDER BY lower(property_type)`
	selectCities = `SELECT min(city) FROM properties
		WHERE website_id = $1 AND visible AND city <> ''
		GROUP BY lower(city) ORDER BY lower(city)`
)

// PropertyTypes lists the property types of the website's visible
// properties, for a search form. Types differing only in case are one.
func PropertyTypes(ctx context.Context, s tenant.Scope) ([]string, error) {
	return distinct(ctx, s, selectPropertyTypes, "property types")
}

// Cities lists the cities of the website's visible properties, for a search
// form. Cities differing only in case are one.
func Cities(ctx context.Context, s tenant.Scope) ([]string, error) {
	return distinct(ctx, s, selectCities, "cities")
}

func distinct(ctx context.Context, s tenant.Scope, query, what string) ([]string, error) {
	rows, err := s.Query(ctx, query, s.WebsiteID)
	if err != nil {
		return nil, fmt.Errorf("listing %s of tenant %d: %w", what, s.WebsiteID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing %s of tenant %d: %w", what, s.WebsiteID, err)
	}
	return out, nil
}
