package content

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// MaxPhotoBytes is the largest photo accepted, as the schema also enforces.
const MaxPhotoBytes = 5 << 20

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
		return "", &InvalidError{Fields: map[string]string{"photo": fmt.Sprintf("The photo is larger than the %d MB limit.", MaxPhotoBytes>>20)}}
	}
	ct := http.DetectContentType(data)
	if !slices.Contains(PhotoTypes, ct) {
		return "", &InvalidError{Fields: map[string]string{"photo": "The file is not a JPEG, PNG, GIF or WebP image."}}
	}
	return ct, nil
}

const (
	lockPropertyForPhoto = `SELECT 1 FROM properties WHERE website_id = $1 AND id = $2 FOR NO KEY UPDATE`
	insertPhoto          = `INSERT INTO property_photos (id, website_id, property_id, content_type, image, sort_order)
		SELECT $3::uuid, $1::bigint, $2::uuid, $4::text, $5::bytea, COALESCE(max(sort_order) + 1, 0)
		FROM property_photos WHERE website_id = $1 AND property_id = $2
		RETURNING sort_order`
)

// AddPhoto stores a photo of a property of the website, after every photo
// it already has.
func AddPhoto(ctx context.Context, s tenant.Scope, propertyID uuid.UUID, data []byte) (PhotoInfo, error) {
	ct, err := PhotoContentType(data)
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
		// each sees the other's sort order.
		var one int
		err := tx.QueryRow(ctx, lockPropertyForPhoto, s.WebsiteID, propertyID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return tx.QueryRow(ctx, insertPhoto, s.WebsiteID, propertyID, id, ct, data).Scan(&info.SortOrder)
	})
	if err != nil {
		return PhotoInfo{}, fmt.Errorf("adding a photo to property %s of tenant %d: %w", propertyID, s.WebsiteID, err)
	}
	return info, nil
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
