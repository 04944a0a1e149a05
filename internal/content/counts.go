package content

import (
	"context"
	"fmt"

	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Counts is the size of a website's content, for its admin dashboard.
type Counts struct {
	Properties, VisibleProperties, Photos, Messages, UnreadMessages, Pages int
}

const countAll = `SELECT
	(SELECT count(*) FROM properties WHERE website_id = $1),
	(SELECT count(*) FROM properties WHERE website_id = $1 AND visible),
	(SELECT count(*) FROM property_photos WHERE website_id = $1),
	(SELECT count(*) FROM messages WHERE website_id = $1),
	(SELECT count(*) FROM messages WHERE website_id = $1 AND read_at IS NULL),
	(SELECT count(*) FROM pages WHERE website_id = $1)`

// CountAll counts the website's content in one round trip.
func CountAll(ctx context.Context, s tenant.Scope) (Counts, error) {
	var c Counts
	err := s.QueryRow(ctx, countAll, s.WebsiteID).Scan(
		&c.Properties, &c.VisibleProperties, &c.Photos, &c.Messages, &c.UnreadMessages, &c.Pages)
	if err != nil {
		return Counts{}, fmt.Errorf("counting content of tenant %d: %w", s.WebsiteID, err)
	}
	return c, nil
}
