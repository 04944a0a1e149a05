package content

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Property is a realty asset with its sale and rental listing.
type Property struct {
	ID                                  uuid.UUID
	Reference, Slug, Title, Description string
	Address, City, Region, PostalCode   string
	Country                             string
	Latitude, Longitude                 *float64
	Bedrooms, Bathrooms, Garages        int
	FloorAreaSqm                        *float64
	YearBuilt                           *int
	PropertyType                        string

	ForSale        bool
	SalePriceCents *int64
	SaleCurrency   string

	ForRent               bool
	RentPriceCentsMonthly *int64
	RentCurrency          string

	Visible, Highlighted bool
	CreatedAt, UpdatedAt time.Time

	Features     []string    // by GetProperty and GetVisibleProperty, sorted by name
	Photos       []PhotoInfo // by GetProperty and GetVisibleProperty, in display order
	CoverPhotoID *uuid.UUID  // by Search: the first photo in display order, if any
}

// PropertyInput is what an editor sets on a property. The slug is not here:
// it is made from the title once, at creation, and then kept so links stay.
type PropertyInput struct {
	Reference, Title, Description     string
	Address, City, Region, PostalCode string
	Country                           string
	Latitude, Longitude               *float64
	Bedrooms, Bathrooms, Garages      int
	FloorAreaSqm                      *float64
	YearBuilt                         *int
	PropertyType                      string

	ForSale        bool
	SalePriceCents *int64
	SaleCurrency   string

	ForRent               bool
	RentPriceCentsMonthly *int64
	RentCurrency          string

	Visible, Highlighted bool
	Features             []string
}

// Input returns p's editable fields, to fill an edit form.
func (p Property) Input() PropertyInput {
	return PropertyInput{
		Reference: p.Reference, Title: p.Title, Description: p.Description, Address: p.Address,
		City: p.City, Region: p.Region, PostalCode: p.PostalCode, Country: p.Country,
		Latitude: p.Latitude, Longitude: p.Longitude,
		Bedrooms: p.Bedrooms, Bathrooms: p.Bathrooms, Garages: p.Garages,
		FloorAreaSqm: p.FloorAreaSqm, YearBuilt: p.YearBuilt, PropertyType: p.PropertyType,
		ForSale: p.ForSale, SalePriceCents: p.SalePriceCents, SaleCurrency: p.SaleCurrency,
		ForRent: p.ForRent, RentPriceCentsMonthly: p.RentPriceCentsMonthly, RentCurrency: p.RentCurrency,
		Visible: p.Visible, Highlighted: p.Highlighted,
		Features: append([]string(nil), p.Features...),
	}
}

// Limits of property input.
const (
	MaxFeatures      = 50
	maxFeatureLen    = 100
	maxRooms         = 1000
	maxFloorAreaSqm  = 99_999_999 // numeric(10, 2)
	maxPropertyTitle = 200
)

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// Validate trims and checks in. Its *InvalidError uses these field names:
// reference, title, description, address, city, region, postal_code,
// country, latitude, longitude, bedrooms, bathrooms, garages,
// floor_area_sqm, year_built, property_type, sale_price_cents,
// sale_currency, rent_price_cents_monthly, rent_currency, features.
func (in *PropertyInput) Validate() error {
	p := problems{}
	p.text("title", "Title", &in.Title, maxPropertyTitle, true)
	p.text("reference", "Reference", &in.Reference, 50, false)
	p.text("description", "Description", &in.Description, 20000, false)
	p.text("address", "Address", &in.Address, 200, false)
	p.text("city", "City", &in.City, 200, false)
	p.text("region", "Region", &in.Region, 200, false)
	p.text("postal_code", "Postal code", &in.PostalCode, 200, false)
	p.text("country", "Country", &in.Country, 200, false)
	p.text("property_type", "Property type", &in.PropertyType, 200, false)

	for _, c := range []struct {
		field, label string
		n            int
	}{{"bedrooms", "Bedrooms", in.Bedrooms}, {"bathrooms", "Bathrooms", in.Bathrooms}, {"garages", "Garages", in.Garages}} {
		if c.n < 0 || c.n > maxRooms {
			p.add(c.field, fmt.Sprintf("%s must be between 0 and %d.", c.label, maxRooms))
		}
	}
	coordinate := func(field, label string, v *float64, limit float64) {
		if v != nil && (math.IsNaN(*v) || *v < -limit || *v > limit) {
			p.add(field, fmt.Sprintf("%s must be between %g and %g.", label, -limit, limit))
		}
	}
	coordinate("latitude", "Latitude", in.Latitude, 90)
	coordinate("longitude", "Longitude", in.Longitude, 180)
	if a := in.FloorAreaSqm; a != nil {
		switch {
		case math.IsNaN(*a):
			p.add("floor_area_sqm", "Floor area must be a number.")
		case *a < 0:
			p.add("floor_area_sqm", "Floor area cannot be negative.")
		case *a > maxFloorAreaSqm:
			p.add("floor_area_sqm", fmt.Sprintf("Floor area must be at most %d m².", maxFloorAreaSqm))
		}
	}
	if y := in.YearBuilt; y != nil && (*y < 1000 || *y > 3000) {
		p.add("year_built", "Year built must be between 1000 and 3000.")
	}
	price := func(field, curField, label string, cents *int64, currency *string) {
		*currency = strings.ToUpper(strings.TrimSpace(*currency))
		if cents != nil && *cents < 0 {
			p.add(field, "Price cannot be negative.")
		}
		switch {
		case *currency == "" && cents != nil:
			p.add(curField, "Choose the currency of the "+label+".")
		case *currency != "" && !currencyRE.MatchString(*currency):
			p.add(curField, "Use a three-letter currency code such as EUR.")
		}
	}
	price("sale_price_cents", "sale_currency", "sale price", in.SalePriceCents, &in.SaleCurrency)
	price("rent_price_cents_monthly", "rent_currency", "monthly rent", in.RentPriceCentsMonthly, &in.RentCurrency)

	features := make([]string, 0, len(in.Features))
	seen := map[string]bool{}
	for _, f := range in.Features {
		fp := problems{}
		fp.text("features", "Each feature", &f, maxFeatureLen, false)
		if msg, bad := fp["features"]; bad {
			p.add("features", msg)
			continue
		}
		if f == "" || seen[strings.ToLower(f)] {
			continue
		}
		seen[strings.ToLower(f)] = true
		features = append(features, f)
	}
	if len(features) > MaxFeatures {
		p.add("features", fmt.Sprintf("A property can have at most %d features.", MaxFeatures))
	}
	in.Features = features
	return p.err()
}

// columnArgs returns in's values in the order of propertyInputColumns.
func (in *PropertyInput) columnArgs() []any {
	return []any{
		nullIfEmpty(in.Reference), in.Title, in.Description, in.Address, in.City, in.Region,
		in.PostalCode, in.Country, in.Latitude, in.Longitude, in.Bedrooms, in.Bathrooms,
		in.Garages, in.FloorAreaSqm, in.YearBuilt, in.PropertyType,
		in.ForSale, in.SalePriceCents, nullIfEmpty(in.SaleCurrency),
		in.ForRent, in.RentPriceCentsMonthly, nullIfEmpty(in.RentCurrency),
		in.Visible, in.Highlighted,
	}
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

const propertyColumns = `p.id, COALESCE(p.reference, ''), p.slug, p.title, p.description,
	p.address, p.city, p.region, p.postal_code, p.country, p.latitude, p.longitude,
	p.bedrooms, p.bathrooms, p.garages, p.floor_area_sqm::float8, p.year_built, p.property_type,
	p.for_sale, p.sale_price_cents, COALESCE(p.sale_currency, ''),
	p.for_rent, p.rent_price_cents_monthly, COALESCE(p.rent_currency, ''),
	p.visible, p.highlighted, p.created_at, p.updated_at`

// scanProperty scans propertyColumns, then extra.
func scanProperty(row pgx.Row, extra ...any) (Property, error) {
	var p Property
	dest := []any{&p.ID, &p.Reference, &p.Slug, &p.Title, &p.Description,
		&p.Address, &p.City, &p.Region, &p.PostalCode, &p.Country, &p.Latitude, &p.Longitude,
		&p.Bedrooms, &p.Bathrooms, &p.Garages, &p.FloorAreaSqm, &p.YearBuilt, &p.PropertyType,
		&p.ForSale, &p.SalePriceCents, &p.SaleCurrency,
		&p.ForRent, &p.RentPriceCentsMonthly, &p.RentCurrency,
		&p.Visible, &p.Highlighted, &p.CreatedAt, &p.UpdatedAt}
	err := row.Scan(append(dest, extra...)...)
	return p, err
}

const (
	selectPropertyByID = `SELECT ` + propertyColumns + ` FROM properties p
		WHERE p.website_id = $1 AND p.id = $2`
	selectVisiblePropertyBySlug = `SELECT ` + propertyColumns + ` FROM properties p
		WHERE p.website_id = $1 AND p.slug = $2 AND p.visible`
	selectFeatures = `SELECT name FROM property_features
		WHERE website_id = $1 AND property_id = $2 ORDER BY lower(name), name`
	selectPhotoInfos = `SELECT id, content_type, sort_order, octet_length(image) FROM property_photos
		WHERE website_id = $1 AND property_id = $2 ORDER BY sort_order, created_at, id`
)

// loadProperty reads one property with its features and photos; key is its
// id or slug, as the query expects.
func loadProperty(ctx context.Context, q dbq.Reader, websiteID int64, query string, key any) (Property, error) {
	p, err := scanProperty(q.QueryRow(ctx, query, websiteID, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return Property{}, ErrNotFound
	}
	if err != nil {
		return Property{}, err
	}
	rows, err := q.Query(ctx, selectFeatures, websiteID, p.ID)
	if err != nil {
		return Property{}, fmt.Errorf("reading features: %w", err)
	}
	if p.Features, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return Property{}, fmt.Errorf("reading features: %w", err)
	}
	rows, err = q.Query(ctx, selectPhotoInfos, websiteID, p.ID)
	if err != nil {
		return Property{}, fmt.Errorf("reading photos: %w", err)
	}
	p.Photos, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PhotoInfo, error) {
		var ph PhotoInfo
		err := r.Scan(&ph.ID, &ph.ContentType, &ph.SortOrder, &ph.Size)
		return ph, err
	})
	if err != nil {
		return Property{}, fmt.Errorf("reading photos: %w", err)
	}
	return p, nil
}

// GetProperty returns a property of the website, hidden or not, for its
// admin.
func GetProperty(ctx context.Context, s tenant.Scope, id uuid.UUID) (Property, error) {
	p, err := loadProperty(ctx, s, s.WebsiteID, selectPropertyByID, id)
	if err != nil {
		return Property{}, fmt.Errorf("reading property %s of tenant %d: %w", id, s.WebsiteID, err)
	}
	return p, nil
}

// GetVisibleProperty returns a visible property by slug, for the public
// site.
func GetVisibleProperty(ctx context.Context, s tenant.Scope, slug string) (Property, error) {
	if !isSlug(slug) {
		return Property{}, fmt.Errorf("reading property %q of tenant %d: %w", slug, s.WebsiteID, ErrNotFound)
	}
	p, err := loadProperty(ctx, s, s.WebsiteID, selectVisiblePropertyBySlug, slug)
	if err != nil {
		return Property{}, fmt.Errorf("reading property %q of tenant %d: %w", slug, s.WebsiteID, err)
	}
	return p, nil
}

const (
	propertyInputColumns = `reference, title, description, address, city, region,
		postal_code, country, latitude, longitude, bedrooms, bathrooms,
		garages, floor_area_sqm, year_built, property_type,
		for_sale, sale_price_cents, sale_currency,
		for_rent, rent_price_cents_monthly, rent_currency,
		visible, highlighted`
	insertProperty = `INSERT INTO properties (id, website_id, slug, ` + propertyInputColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
			$19, $20, $21, $22, $23, $24, $25, $26, $27)`
	updateProperty = `UPDATE properties SET (` + propertyInputColumns + `, updated_at) =
		($3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
			$19, $20, $21, $22, $23, $24, $25, $26, now())
		WHERE website_id = $1 AND id = $2`
	deleteFeatures = `DELETE FROM property_features WHERE website_id = $1 AND property_id = $2`
	insertFeatures = `INSERT INTO property_features (id, website_id, property_id, name)
		SELECT f.id, $1, $2, f.name FROM unnest($3::uuid[], $4::text[]) AS f (id, name)`
	deleteProperty = `DELETE FROM properties WHERE website_id = $1 AND id = $2`

	propertySlugKey      = "properties_website_id_slug_key"
	propertyReferenceKey = "properties_reference_key"
)

// defaultPropertySlug is the slug of a property whose title has no letter
// or digit a URL can carry.
const defaultPropertySlug = "property"

// CreateProperty validates in and adds the property with its features. Its
// slug comes from the title, made unique in the website with -2, -3 ...
// A reference already used in the website is ErrConflict.
func CreateProperty(ctx context.Context, s tenant.Scope, in PropertyInput) (Property, error) {
	return CreatePropertyWithPhotos(ctx, s, in, nil, PhotoLimits{})
}

// CreatePropertyWithPhotos is CreateProperty with the property's first
// photos, stored in the order given (the first is the cover) in the same
// transaction: the property and all its photos are stored, or nothing is.
// Every photo is checked as AddPhoto checks it, and their number against
// l.PerProperty, before anything is written. The *InvalidError of a refused
// input lists the property's fields and, for the photos, the field "photo",
// whose message names the photo by its place ("Photo 2: ...").
func CreatePropertyWithPhotos(ctx context.Context, s tenant.Scope, in PropertyInput, photos [][]byte, l PhotoLimits) (Property, error) {
	types, err := checkNewProperty(&in, photos, l)
	if err != nil {
		return Property{}, err
	}
	base := Slugify(in.Title)
	if base == "" {
		base = defaultPropertySlug
	}
	id, err := newID()
	if err != nil {
		return Property{}, err
	}
	photoIDs := make([]uuid.UUID, len(photos))
	for i := range photoIDs {
		if photoIDs[i], err = newID(); err != nil {
			return Property{}, err
		}
	}
	var p Property
	// A concurrent create may take the chosen slug between choosing and
	// inserting it; choosing again sees it. Each lost race means another
	// create of the same title has committed, so n creates at once need at
	// most n attempts: the bound is for many more than an editor makes.
	for attempt := 1; ; attempt++ {
		err = s.Write(ctx, func(tx tenant.Tx) error {
			slug, err := uniquePropertySlug(ctx, tx, s.WebsiteID, base)
			if err != nil {
				return err
			}
			args := append([]any{id, s.WebsiteID, slug}, in.columnArgs()...)
			if _, err := tx.Exec(ctx, insertProperty, args...); err != nil {
				return err
			}
			if err := insertPropertyFeatures(ctx, tx, s.WebsiteID, id, in.Features); err != nil {
				return err
			}
			for i, data := range photos {
				if _, err := insertPhotoRow(ctx, tx, s.WebsiteID, id, photoIDs[i], types[i], data); err != nil {
					return fmt.Errorf("adding photo %d of %d: %w", i+1, len(photos), err)
				}
			}
			p, err = loadProperty(ctx, tx, s.WebsiteID, selectPropertyByID, id)
			return err
		})
		if code, constraint := pgError(err); code == uniqueViolation && constraint == propertySlugKey && attempt < 20 {
			continue
		}
		break
	}
	if err != nil {
		return Property{}, fmt.Errorf("creating property %q of tenant %d: %w", in.Title, s.WebsiteID, propertyWriteError(err, in.Reference))
	}
	return p, nil
}

// checkNewProperty validates a new property's input and photos together, so
// that one answer lists every problem, and returns the photos' types.
func checkNewProperty(in *PropertyInput, photos [][]byte, l PhotoLimits) ([]string, error) {
	p := problems{}
	var invalid *InvalidError
	if err := in.Validate(); errors.As(err, &invalid) {
		p = invalid.Fields
	}
	if err := l.Room(0, len(photos)); errors.As(err, &invalid) {
		p.add("photo", invalid.Fields["photo"])
	}
	types := make([]string, len(photos))
	for i, data := range photos {
		ct, err := CheckPhoto(data, l)
		if errors.As(err, &invalid) {
			msg := invalid.Fields["photo"]
			p.add("photo", fmt.Sprintf("Photo %d: %s%s", i+1, strings.ToLower(msg[:1]), msg[1:]))
		}
		types[i] = ct
	}
	return types, p.err()
}

// UpdateProperty validates in and replaces the property's fields and
// features. The slug stays as it was.
func UpdateProperty(ctx context.Context, s tenant.Scope, id uuid.UUID, in PropertyInput) (Property, error) {
	if err := in.Validate(); err != nil {
		return Property{}, err
	}
	var p Property
	err := s.Write(ctx, func(tx tenant.Tx) error {
		tag, err := tx.Exec(ctx, updateProperty, append([]any{s.WebsiteID, id}, in.columnArgs()...)...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, deleteFeatures, s.WebsiteID, id); err != nil {
			return fmt.Errorf("removing old features: %w", err)
		}
		if err := insertPropertyFeatures(ctx, tx, s.WebsiteID, id, in.Features); err != nil {
			return err
		}
		p, err = loadProperty(ctx, tx, s.WebsiteID, selectPropertyByID, id)
		return err
	})
	if err != nil {
		return Property{}, fmt.Errorf("updating property %s of tenant %d: %w", id, s.WebsiteID, propertyWriteError(err, in.Reference))
	}
	return p, nil
}

func propertyWriteError(err error, reference string) error {
	switch code, constraint := pgError(err); {
	case code == uniqueViolation && constraint == propertyReferenceKey:
		return fmt.Errorf("reference %q is used by another property: %w", reference, ErrConflict)
	case code == uniqueViolation && constraint == propertySlugKey:
		return fmt.Errorf("slug: %w", ErrConflict)
	}
	return err
}

func insertPropertyFeatures(ctx context.Context, tx tenant.Tx, websiteID int64, propertyID uuid.UUID, names []string) error {
	if len(names) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(names))
	for i := range ids {
		var err error
		if ids[i], err = newID(); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, insertFeatures, websiteID, propertyID, ids, names); err != nil {
		return fmt.Errorf("adding features: %w", err)
	}
	return nil
}

// DeleteProperty removes a property with its photos and features. Its
// enquiries stay, no longer linked to it.
func DeleteProperty(ctx context.Context, s tenant.Scope, id uuid.UUID) error {
	err := s.Write(ctx, func(tx tenant.Tx) error {
		tag, err := tx.Exec(ctx, deleteProperty, s.WebsiteID, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting property %s of tenant %d: %w", id, s.WebsiteID, err)
	}
	return nil
}

// What the site's admin can list properties by (ListFilter.Status).
const (
	StatusShown    = "shown"    // visible on the website
	StatusHidden   = "hidden"   // not visible on the website
	StatusFeatured = "featured" // visible and featured on the home page
)

// coverPhotoColumn is the id of a property's cover, its first photo in
// display order, or NULL.
const coverPhotoColumn = `(SELECT ph.id FROM property_photos ph
	WHERE ph.website_id = p.website_id AND ph.property_id = p.id
	ORDER BY ph.sort_order, ph.created_at, ph.id LIMIT 1)`

// maxListText bounds the text an admin list is searched for.
const maxListText = 100

// ListFilter selects properties for the site's admin list (ListProperties).
type ListFilter struct {
	// Text is part of the reference or the title, in any case; "" for any.
	Text    string
	Status  string // StatusShown, StatusHidden, StatusFeatured, or "" for any
	Listing string // ListingSale, ListingRent, or "" for any
	Page    int    // from 1
	PerPage int    // default DefaultPerPage, at most MaxPerPage
}

// Validate normalises f (trimmed text, lower-case status and listing, page
// bounds) and checks it. Its *InvalidError uses the fields q, status and
// listing.
func (f *ListFilter) Validate() error {
	p := problems{}
	f.Text = strings.TrimSpace(f.Text)
	switch {
	case !utf8.ValidString(f.Text) || strings.ContainsRune(f.Text, 0):
		p.add("q", "The search contains characters that cannot be searched for.")
	case utf8.RuneCountInString(f.Text) > maxListText:
		p.add("q", fmt.Sprintf("Search for at most %d characters.", maxListText))
	}
	f.Status = strings.ToLower(strings.TrimSpace(f.Status))
	switch f.Status {
	case "", StatusShown, StatusHidden, StatusFeatured:
	default:
		p.add("status", "Choose shown, hidden or featured.")
	}
	f.Listing = strings.ToLower(strings.TrimSpace(f.Listing))
	if f.Listing != "" && f.Listing != ListingSale && f.Listing != ListingRent {
		p.add("listing", "Choose for sale or for rent.")
	}
	f.Page, f.PerPage, _ = pageBounds(f.Page, f.PerPage, DefaultPerPage)
	return p.err()
}

// ListProperties returns one page of the website's properties that match f,
// hidden ones included, newest first, for the site's admin. Features and
// photos are not filled in; CoverPhotoID is. The count and the page are
// one query each.
func ListProperties(ctx context.Context, s tenant.Scope, f ListFilter) (Results, error) {
	if err := f.Validate(); err != nil {
		return Results{}, err
	}
	args := []any{s.WebsiteID}
	where := []string{"p.website_id = $1"}
	switch f.Status {
	case StatusShown:
		where = append(where, "p.visible")
	case StatusHidden:
		where = append(where, "NOT p.visible")
	case StatusFeatured:
		where = append(where, "p.visible AND p.highlighted")
	}
	switch f.Listing {
	case ListingSale:
		where = append(where, "p.for_sale")
	case ListingRent:
		where = append(where, "p.for_rent")
	}
	if f.Text != "" {
		// strpos, not LIKE: the text is matched as typed, % and _ included.
		args = append(args, f.Text)
		where = append(where, "(strpos(lower(p.title), lower($2)) > 0 OR strpos(lower(COALESCE(p.reference, '')), lower($2)) > 0)")
	}
	cond := " WHERE " + strings.Join(where, " AND ")

	r := Results{Page: f.Page, PerPage: f.PerPage}
	if err := s.QueryRow(ctx, "SELECT count(*) FROM properties p"+cond, args...).Scan(&r.Total); err != nil {
		return Results{}, fmt.Errorf("counting properties of tenant %d: %w", s.WebsiteID, err)
	}
	// The page is chosen first and the covers looked up for its rows alone:
	// in one query they would be looked up for every matching row before
	// the sort, which a tenant with thousands of properties feels.
	const order = " ORDER BY p.created_at DESC, p.id DESC"
	n := len(args)
	query := fmt.Sprintf("SELECT %s, %s FROM (SELECT p.* FROM properties p%s%s LIMIT $%d OFFSET $%d) p%s",
		propertyColumns, coverPhotoColumn, cond, order, n+1, n+2, order)
	rows, err := s.Query(ctx, query, append(args, f.PerPage, (f.Page-1)*f.PerPage)...)
	if err != nil {
		return Results{}, fmt.Errorf("listing properties of tenant %d: %w", s.WebsiteID, err)
	}
	r.Properties, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Property, error) {
		var cover *uuid.UUID
		p, err := scanProperty(row, &cover)
		p.CoverPhotoID = cover
		return p, err
	})
	if err != nil {
		return Results{}, fmt.Errorf("listing properties of tenant %d: %w", s.WebsiteID, err)
	}
	return r, nil
}
