package content

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// PropertyLink is what a sitemap says of a property: its address and when it
// last changed.
type PropertyLink struct {
	Slug      string
	UpdatedAt time.Time
}

const selectPropertyLinks = `SELECT slug, updated_at FROM properties
	WHERE website_id = $1 AND visible ORDER BY created_at DESC, id DESC LIMIT $2`

// VisiblePropertyLinks returns up to limit of the website's visible
// properties, newest first, for its sitemap. A limit below 1 is none.
func VisiblePropertyLinks(ctx context.Context, s tenant.Scope, limit int) ([]PropertyLink, error) {
	if limit < 1 {
		return nil, nil
	}
	rows, err := s.Query(ctx, selectPropertyLinks, s.WebsiteID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing properties of tenant %d for its sitemap: %w", s.WebsiteID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PropertyLink, error) {
		var l PropertyLink
		err := r.Scan(&l.Slug, &l.UpdatedAt)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing properties of tenant %d for its sitemap: %w", s.WebsiteID, err)
	}
	return out, nil
}
