package content

import (
	"context"
	"fmt"

	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// selectFrame reads the agency (all empty when none was saved) and the
// visible pages' slugs and titles in navigation order, as ListPages orders
// them.
const selectFrame = `SELECT COALESCE(a.name, ''), COALESCE(a.email, ''), COALESCE(a.phone, ''), COALESCE(a.address, ''),
	ARRAY(SELECT slug FROM pages WHERE website_id = $1 AND visible ORDER BY nav_order, title, id),
	ARRAY(SELECT title FROM pages WHERE website_id = $1 AND visible ORDER BY nav_order, title, id)
	FROM (VALUES (1)) AS one LEFT JOIN agencies a ON a.website_id = $1`

// GetFrame returns, in one statement, what every page of the public site
// shows around its content: the agency's details and the menu of visible
// pages. The menu's pages carry only their slug and title.
func GetFrame(ctx context.Context, s tenant.Scope) (Agency, []Page, error) {
	var (
		a             Agency
		slugs, titles []string
	)
	err := s.QueryRow(ctx, selectFrame, s.WebsiteID).Scan(&a.Name, &a.Email, &a.Phone, &a.Address, &slugs, &titles)
	if err != nil {
		return Agency{}, nil, fmt.Errorf("reading agency and menu of tenant %d: %w", s.WebsiteID, err)
	}
	menu := make([]Page, len(slugs))
	for i := range slugs {
		menu[i] = Page{Slug: slugs[i], Title: titles[i], Visible: true}
	}
	return a, menu, nil
}
