// Package movertest builds tenants worth moving, for the mover's tests and
// benchmark: every tenant table populated with the data that breaks naive
// copies (real image bytes, unicode, NULLs, long text, many rows), and a
// byte-exact digest of a tenant's rows to compare before and after a move.
package movertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Options sizes a filled tenant.
type Options struct {
	Properties int // default 50; each gets 3 features, and half as many contacts with 2 messages each
	Photos     int // real images, spread over the first properties; default 12
}

// Rows is how many rows Fill writes with o.
func (o Options) Rows() int64 {
	o = o.withDefaults()
	p := int64(o.Properties)
	return 1 + 3 + p + 3*p + int64(o.Photos) + p/2 + 2*(p/2)
}

func (o Options) withDefaults() Options {
	if o.Properties <= 0 {
		o.Properties = 50
	}
	if o.Photos == 0 {
		o.Photos = 12
	}
	return o
}

// Fill writes a tenant's rows straight into its shard's tables. The rows are
// generated on the server, so a million of them take seconds.
func Fill(ctx context.Context, db dbq.Querier, websiteID int64, o Options) error {
	o = o.withDefaults()
	stmts := []string{
		`INSERT INTO agencies (id, website_id, name, email, phone, address)
		 VALUES (gen_random_uuid(), $1, 'Agence Côte d''Azur – 不動産 🏠', 'bureau@example.com', '', E'1 Rue de l''Été\nNice')`,
		`INSERT INTO pages (id, website_id, slug, title, body, visible, nav_order) VALUES
		 (gen_random_uuid(), $1, 'about', 'À propos', repeat('Long text, with ''quotes'', \backslashes\ and tabs	. ', 3000), true, 1),
		 (gen_random_uuid(), $1, 'contact', 'Контакт', E'Line one\nLine two\r\nZoë 東京 🏡', true, 2),
		 (gen_random_uuid(), $1, 'hidden', 'Hidden', '', false, 0)`,
		`INSERT INTO properties (id, website_id, reference, slug, title, description, address, city, country,
		   latitude, longitude, bedrooms, bathrooms, floor_area_sqm, year_built, property_type,
		   for_sale, sale_price_cents, sale_currency, for_rent, rent_price_cents_monthly, rent_currency,
		   visible, highlighted, created_at, updated_at)
		 SELECT gen_random_uuid(), $1,
		   CASE WHEN i % 3 = 0 THEN NULL ELSE 'REF-' || i END,
		   'property-' || i,
		   'Maison n°' || i || ' à Zürich – 東京 🏠',
		   CASE WHEN i % 50 = 1 THEN repeat('A very long description. ', 4000) ELSE 'Description ' || i END,
		   i || ' Straße', 'Málaga', 'ES',
		   CASE WHEN i % 4 = 0 THEN NULL ELSE 36.7 + i * 0.000001 END,
		   CASE WHEN i % 4 = 0 THEN NULL ELSE -4.4 - i * 0.000001 END,
		   i % 6, i % 3,
		   CASE WHEN i % 5 = 0 THEN NULL ELSE (40 + i % 300) + 0.25 END,
		   CASE WHEN i % 7 = 0 THEN NULL ELSE 1900 + i % 120 END,
		   'villa', i % 2 = 0, CASE WHEN i % 2 = 0 THEN 10000000 + i ELSE NULL END, CASE WHEN i % 2 = 0 THEN 'EUR' END,
		   i % 2 = 1, CASE WHEN i % 2 = 1 THEN 120000 + i ELSE NULL END, CASE WHEN i % 2 = 1 THEN 'EUR' END,
		   i % 10 <> 0, i % 9 = 0,
		   now() - i * interval '1 second', now() - i * interval '1 second' + interval '1 millisecond'
		 FROM generate_series(1, $2::int) i`,
		`INSERT INTO property_features (id, website_id, property_id, name)
		 SELECT gen_random_uuid(), $1, p.id, f
		 FROM properties p, unnest(ARRAY['Garden', 'Piscine chauffée', 'バルコニー']) f
		 WHERE p.website_id = $1`,
		`INSERT INTO contacts (id, website_id, email, name, phone, created_at)
		 SELECT gen_random_uuid(), $1, 'buyer' || i || '@example.com',
		   CASE WHEN i % 5 = 0 THEN '' ELSE 'Zoë Ñúñez ' || i END, '+34 600 ' || i,
		   now() - i * interval '1 minute'
		 FROM generate_series(1, $2::int / 2) i`,
		`INSERT INTO messages (id, website_id, contact_id, property_id, body, read_at, created_at)
		 SELECT gen_random_uuid(), $1, c.id,
		   CASE WHEN k = 1 THEN (SELECT id FROM properties WHERE website_id = $1 AND slug = 'property-' || (1 + abs(hashtext(c.email)) % $2::int)) END,
		   CASE WHEN k = 1 THEN E'Is it still available?\nRegards, ' || c.name ELSE repeat('¿Podría visitarla? ', 1 + abs(hashtext(c.email)) % 20) END,
		   CASE WHEN k = 2 THEN now() END,
		   c.created_at + k * interval '1 second'
		 FROM contacts c, generate_series(1, 2) k
		 WHERE c.website_id = $1`,
	}
	for _, s := range stmts {
		args := []any{websiteID}
		if strings.Contains(s, "$2") {
			args = append(args, o.Properties)
		}
		if _, err := db.Exec(ctx, s, args...); err != nil {
			return fmt.Errorf("filling tenant %d: %w", websiteID, err)
		}
	}
	for i := range o.Photos {
		img, ctype, err := photo(i)
		if err != nil {
			return err
		}
		if _, err := db.Exec(ctx, `INSERT INTO property_photos (id, website_id, property_id, content_type, image, sort_order)
			SELECT gen_random_uuid(), $1, id, $3, $4, $5 FROM properties WHERE website_id = $1 AND slug = $2`,
			websiteID, "property-"+strconv.Itoa(1+i/3), ctype, img, i%3); err != nil {
			return fmt.Errorf("filling tenant %d: %w", websiteID, err)
		}
	}
	return nil
}

// photo draws image i: a JPEG or, for every fourth, a PNG, different each
// time and some tens of kilobytes large.
func photo(i int) ([]byte, string, error) {
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := range 240 {
		for x := range 320 {
			img.Set(x, y, color.RGBA{uint8(x*i + y), uint8(y * (i + 3)), uint8((x ^ y) + i*40), 255})
		}
	}
	var b bytes.Buffer
	if i%4 == 3 {
		err := png.Encode(&b, img)
		return b.Bytes(), "image/png", err
	}
	err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
	return b.Bytes(), "image/jpeg", err
}

// Digest is a tenant's rows on one shard, per table: the row count and the
// SHA-256 of the binary COPY of every column of its rows in id order. Equal
// digests mean byte-identical rows.
type Digest map[string]string

// TakeDigest reads the digest of websiteID's rows on conn's database.
func TakeDigest(ctx context.Context, conn *pgx.Conn, websiteID int64) (Digest, error) {
	d := Digest{}
	for _, t := range tenant.Tables {
		h := sha256.New()
		tag, err := conn.PgConn().CopyTo(ctx, h, "COPY (SELECT * FROM "+pgx.Identifier{t}.Sanitize()+
			" WHERE website_id = "+strconv.FormatInt(websiteID, 10)+" ORDER BY id) TO STDOUT (FORMAT binary)")
		if err != nil {
			return nil, fmt.Errorf("digesting %s: %w", t, err)
		}
		d[t] = fmt.Sprintf("%d rows, sha256 %s", tag.RowsAffected(), hex.EncodeToString(h.Sum(nil)))
	}
	return d, nil
}

// Empty reports whether every table of d has no rows.
func (d Digest) Empty() bool {
	for _, v := range d {
		if v[:2] != "0 " {
			return false
		}
	}
	return true
}
