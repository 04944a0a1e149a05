package content

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// MaxPhotoBytes is the largest photo accepted, as the schema also enforces.
const MaxPhotoBytes = 5 << 20

// PhotoLimits bound the photos of a property. A zero field sets no bound.
type PhotoLimits struct {
	// PerProperty is how many photos one property may have.
	PerProperty int
	// MaxSide is the largest width or height a photo may declare, in
	// pixels.
	MaxSide int
}

// PhotoTypes are the image types a photo may have, as sniffed from its
// bytes.
var PhotoTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// PhotoInfo describes a photo without its bytes.
type PhotoInfo struct {
	ID          uuid.UUID
	ContentType string
	SortOrder   int
	Size        int // bytes
}

// Photo is a photo with its bytes, for serving.
type Photo struct {
	PhotoInfo
	PropertyID uuid.UUID
	Data       []byte
	CreatedAt  time.Time
}

// PhotoContentType returns the type of an uploaded photo sniffed from its
// bytes, never from what the client claimed, or an *InvalidError for the
// field "photo" when it is empty, too large or not an image of PhotoTypes.
func PhotoContentType(data []byte) (string, error) {
	switch {
	case len(data) == 0:
		return "", &InvalidError{Fields: map[string]string{"photo": "Choose a photo to upload."}}
	case len(data) > MaxPhotoBytes:
		return "", &InvalidError{Fields: map[string]string{"photo": fmt.Sprintf("The photo is larger than the %d MiB limit.", MaxPhotoBytes>>20)}}
	}
	ct := http.DetectContentType(data)
	if !slices.Contains(PhotoTypes, ct) {
		return "", &InvalidError{Fields: map[string]string{"photo": notAnImage}}
	}
	return ct, nil
}

const notAnImage = "The file is not a JPEG, PNG, GIF or WebP image."

// CheckPhoto is PhotoContentType, and also refuses a photo whose header
// cannot be read or declares a width or height over l.MaxSide. Only the
// header is read: a small file can declare a size whose decoding would take
// gigabytes, and that is what the bound is for.
func CheckPhoto(data []byte, l PhotoLimits) (string, error) {
	ct, err := PhotoContentType(data)
	if err != nil {
		return "", err
	}
	w, h, err := photoSize(ct, data)
	if err != nil || w <= 0 || h <= 0 {
		return "", &InvalidError{Fields: map[string]string{"photo": notAnImage}}
	}
	if l.MaxSide > 0 && (w > l.MaxSide || h > l.MaxSide) {
		return "", &InvalidError{Fields: map[string]string{"photo": fmt.Sprintf(
			"The photo is %d × %d pixels; the largest allowed is %d pixels a side.", w, h, l.MaxSide)}}
	}
	return ct, nil
}

// Room returns an *InvalidError for the field "photo" when a property with
// have photos cannot take adding more, else nil.
func (l PhotoLimits) Room(have, adding int) error {
	var msg string
	switch {
	case l.PerProperty <= 0 || have+adding <= l.PerProperty:
		return nil
	case have == l.PerProperty:
		msg = fmt.Sprintf("This property already has %s, the most allowed.", photoCount(have))
	case have > l.PerProperty:
		msg = fmt.Sprintf("This property already has %s; the most allowed is %d.", photoCount(have), l.PerProperty)
	case have == 0:
		msg = fmt.Sprintf("A property may have at most %s.", photoCount(l.PerProperty))
	default:
		msg = fmt.Sprintf("This property has %s and may have at most %d: add at most %d more.",
			photoCount(have), l.PerProperty, l.PerProperty-have)
	}
	return &InvalidError{Fields: map[string]string{"photo": msg}}
}

func photoCount(n int) string {
	if n == 1 {
		return "1 photo"
	}
	return fmt.Sprintf("%d photos", n)
}

// photoSize reads the width and height a photo of type ct declares. The
// decoder is the one of the sniffed type, so a file cannot be sized as one
// type and served as another.
func photoSize(ct string, data []byte) (int, int, error) {
	var (
		c   image.Config
		err error
	)
	switch ct {
	case "image/jpeg":
		c, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case "image/png":
		c, err = png.DecodeConfig(bytes.NewReader(data))
	case "image/gif":
		c, err = gif.DecodeConfig(bytes.NewReader(data))
	case "image/webp":
		return webpSize(data)
	default:
		err = fmt.Errorf("no decoder for %s", ct)
	}
	return c.Width, c.Height, err
}

var errNotWebP = errors.New("not a WebP header")

// webpSize reads the canvas size from the first chunk of a WebP file
// (RFC 9649): the key frame header of a lossy image (VP8), the header of a
// lossless one (VP8L), or the extended header (VP8X) that animations and
// images with alpha or metadata start with.
func webpSize(b []byte) (int, int, error) {
	if len(b) < 30 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return 0, 0, errNotWebP
	}
	d := b[20:30]
	switch string(b[12:16]) {
	case "VP8 ":
		// A 3-byte frame tag whose lowest bit is 0 on a key frame, the
		// start code, then 14 bits of width and of height (the top 2 bits
		// are scaling).
		if d[0]&1 != 0 || d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a {
			return 0, 0, errNotWebP
		}
		return int(binary.LittleEndian.Uint16(d[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(d[8:]) & 0x3fff), nil
	case "VP8L":
		// The signature byte, then width - 1 and height - 1 in 14 bits each.
		if d[0] != 0x2f {
			return 0, 0, errNotWebP
		}
		v := binary.LittleEndian.Uint32(d[1:])
		return int(v&0x3fff) + 1, int(v>>14&0x3fff) + 1, nil
	case "VP8X":
		// Flags and 3 reserved bytes, then canvas width - 1 and height - 1
		// in 24 bits each.
		w := int(d[4]) | int(d[5])<<8 | int(d[6])<<16
		h := int(d[7]) | int(d[8])<<8 | int(d[9])<<16
		return w + 1, h + 1, nil
	}
	return 0, 0, errNotWebP
}

const (
	lockPropertyForPhoto = `SELECT 1 FROM properties WHERE website_id = $1 AND id = $2 FOR NO KEY UPDATE`
	countPhotos          = `SELECT count(*) FROM property_photos WHERE website_id = $1 AND property_id = $2`
	insertPhoto          = `INSERT INTO property_photos (id, website_id, property_id, content_type, image, sort_order)
		SELECT $3::uuid, $1::bigint, $2::uuid, $4::text, $5::bytea, COALESCE(max(sort_order) + 1, 0)
		FROM property_photos WHERE website_id = $1 AND property_id = $2
		RETURNING sort_order`
)

// AddPhoto stores a photo of a property of the website, after every photo
// it already has. It refuses, with an *InvalidError for the field "photo",
// what CheckPhoto refuses and a photo past l.PerProperty.
func AddPhoto(ctx context.Context, s tenant.Scope, propertyID uuid.UUID, data []byte, l PhotoLimits) (PhotoInfo, error) {
	ct, err := CheckPhoto(data, l)
	if err != nil {
		return PhotoInfo{}, err
	}
	id, err := newID()
	if err != nil {
		return PhotoInfo{}, err
	}
	info := PhotoInfo{ID: id, ContentType: ct, Size: len(data)}
	err = s.Write(ctx, func(tx tenant.Tx) error {
		// The lock makes concurrent uploads to one property take turns, so
		// each sees the other's sort order, and counts the other's photo:
		// two uploads cannot both take the last place.
		if err := lockPhotosOf(ctx, tx, s.WebsiteID, propertyID); err != nil {
			return err
		}
		if l.PerProperty > 0 {
			var n int
			if err := tx.QueryRow(ctx, countPhotos, s.WebsiteID, propertyID).Scan(&n); err != nil {
				return err
			}
			if err := l.Room(n, 1); err != nil {
				return err
			}
		}
		info.SortOrder, err = insertPhotoRow(ctx, tx, s.WebsiteID, propertyID, id, ct, data)
		return err
	})
	if err != nil {
		return PhotoInfo{}, fmt.Errorf("adding a photo to property %s of tenant %d: %w", propertyID, s.WebsiteID, err)
	}
	return info, nil
}

// lockPhotosOf holds the property's row until tx ends, so that uploads and
// moves of its photos take turns; a property not in this website is
// ErrNotFound.
func lockPhotosOf(ctx context.Context, tx tenant.Tx, websiteID int64, propertyID uuid.UUID) error {
	var one int
	err := tx.QueryRow(ctx, lockPropertyForPhoto, websiteID, propertyID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// insertPhotoRow stores a checked photo after the property's others and
// returns its sort order.
func insertPhotoRow(ctx context.Context, tx tenant.Tx, websiteID int64, propertyID, id uuid.UUID, ct string, data []byte) (int, error) {
	var order int
	err := tx.QueryRow(ctx, insertPhoto, websiteID, propertyID, id, ct, data).Scan(&order)
	return order, err
}

const (
	selectPhotoOrder = `SELECT id FROM property_photos WHERE website_id = $1 AND property_id = $2
		ORDER BY sort_order, created_at, id`
	// renumberPhotos gives the photos of $3, in that order, the sort orders
	// 0, 1, 2 ...; only rows whose order changes are written.
	renumberPhotos = `UPDATE property_photos ph SET sort_order = o.n - 1
		FROM unnest($3::uuid[]) WITH ORDINALITY AS o (id, n)
		WHERE ph.website_id = $1 AND ph.property_id = $2 AND ph.id = o.id AND ph.sort_order <> o.n - 1`
)

// MovePhoto puts a photo of a property at position, counted from 1 in
// display order, and shifts the photos between one place; position 1 makes
// it the cover, the photo shown first. The photos are numbered afresh in one
// transaction that holds the property's row, as AddPhoto does, so a move and
// an upload take turns. A photo that is not one of this property's, in this
// website, is ErrNotFound; a position outside 1 to the number of photos is an
// *InvalidError for the field "position".
func MovePhoto(ctx context.Context, s tenant.Scope, propertyID, photoID uuid.UUID, position int) error {
	err := s.Write(ctx, func(tx tenant.Tx) error {
		if err := lockPhotosOf(ctx, tx, s.WebsiteID, propertyID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, selectPhotoOrder, s.WebsiteID, propertyID)
		if err != nil {
			return err
		}
		order, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return err
		}
		from := slices.Index(order, photoID)
		if from < 0 {
			return ErrNotFound
		}
		if position < 1 || position > len(order) {
			return &InvalidError{Fields: map[string]string{"position": fmt.Sprintf(
				"Choose a position between 1 and %d.", len(order))}}
		}
		order = slices.Insert(slices.Delete(order, from, from+1), position-1, photoID)
		_, err = tx.Exec(ctx, renumberPhotos, s.WebsiteID, propertyID, order)
		return err
	})
	if err != nil {
		return fmt.Errorf("moving photo %s of property %s of tenant %d to position %d: %w",
			photoID, propertyID, s.WebsiteID, position, err)
	}
	return nil
}

const (
	selectPhoto = `SELECT ph.id, ph.content_type, ph.sort_order, octet_length(ph.image),
		ph.property_id, ph.image, ph.created_at
		FROM property_photos ph
		JOIN properties p ON p.website_id = ph.website_id AND p.id = ph.property_id
		WHERE ph.website_id = $1 AND ph.id = $2 AND (p.visible OR NOT $3)`
	deletePhoto = `DELETE FROM property_photos WHERE website_id = $1 AND id = $2`
)

// GetPhoto returns a photo of the website with its bytes. With visibleOnly,
// for the public site, a photo of a hidden property is ErrNotFound.
func GetPhoto(ctx context.Context, s tenant.Scope, id uuid.UUID, visibleOnly bool) (Photo, error) {
	var ph Photo
	err := s.QueryRow(ctx, selectPhoto, s.WebsiteID, id, visibleOnly).Scan(
		&ph.ID, &ph.ContentType, &ph.SortOrder, &ph.Size, &ph.PropertyID, &ph.Data, &ph.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Photo{}, fmt.Errorf("reading photo %s of tenant %d: %w", id, s.WebsiteID, err)
	}
	return ph, nil
}

// DeletePhoto removes a photo of the website.
func DeletePhoto(ctx context.Context, s tenant.Scope, id uuid.UUID) error {
	err := s.Write(ctx, func(tx tenant.Tx) error {
		tag, err := tx.Exec(ctx, deletePhoto, s.WebsiteID, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting photo %s of tenant %d: %w", id, s.WebsiteID, err)
	}
	return nil
}
