package content

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Page is a content page of the site (about us, terms ...).
type Page struct {
	ID                   uuid.UUID
	Slug, Title, Body    string
	Visible              bool
	NavOrder             int // position in the site's navigation, lowest first
	CreatedAt, UpdatedAt time.Time
}

// PageInput is what an editor sets on a page.
type PageInput struct {
	Slug, Title, Body string
	Visible           bool
	NavOrder          int
}

// Input returns p's editable fields, to fill an edit form.
func (p Page) Input() PageInput {
	return PageInput{Slug: p.Slug, Title: p.Title, Body: p.Body, Visible: p.Visible, NavOrder: p.NavOrder}
}

// Validate trims and checks in; an empty slug is made from the title. Its
// *InvalidError uses the fields slug, title, body and nav_order.
func (in *PageInput) Validate() error {
	p := problems{}
	p.text("title", "Title", &in.Title, 200, true)
	p.text("body", "Body", &in.Body, 50000, false)
	in.Slug = strings.ToLower(strings.TrimSpace(in.Slug))
	switch {
	case in.Slug == "" && in.Title != "":
		in.Slug = Slugify(in.Title)
		if in.Slug == "" {
			p.add("slug", "Give the page a slug: its title has no letters or digits a web address can use.")
		}
	case in.Slug == "":
		// The title's own problem says it all.
	case len(in.Slug) > MaxSlugLen: // before the pattern, for the clearer message
		p.add("slug", fmt.Sprintf("Slug must be at most %d characters.", MaxSlugLen))
	case !slugRE.MatchString(in.Slug):
		p.add("slug", "Use only lower-case letters, digits and hyphens in the slug, starting with a letter or digit.")
	}
	if in.NavOrder < -1000 || in.NavOrder > 1000 {
		p.add("nav_order", "Navigation order must be between -1000 and 1000.")
	}
	return p.err()
}

const (
	pageColumns      = `id, slug, title, body, visible, nav_order, created_at, updated_at`
	selectPages      = `SELECT ` + pageColumns + ` FROM pages WHERE website_id = $1 AND (visible OR NOT $2::boolean) ORDER BY nav_order, title, id`
	selectPageByID   = `SELECT ` + pageColumns + ` FROM pages WHERE website_id = $1 AND id = $2`
	selectPageBySlug = `SELECT ` + pageColumns + ` FROM pages WHERE website_id = $1 AND slug = $2 AND visible`
	insertPage       = `INSERT INTO pages (id, website_id, slug, title, body, visible, nav_order)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ` + pageColumns
	updatePage = `UPDATE pages SET (slug, title, body, visible, nav_order, updated_at) =
		($3, $4, $5, $6, $7, now()) WHERE website_id = $1 AND id = $2 RETURNING ` + pageColumns
	deletePage = `DELETE FROM pages WHERE website_id = $1 AND id = $2`
)

func scanPage(row pgx.Row) (Page, error) {
	var p Page
	err := row.Scan(&p.ID, &p.Slug, &p.Title, &p.Body, &p.Visible, &p.NavOrder, &p.CreatedAt, &p.UpdatedAt)
	return p, err
}

// ListPages returns the website's pages in navigation order, then by title;
// with visibleOnly, only the visible ones.
func ListPages(ctx context.Context, s tenant.Scope, visibleOnly bool) ([]Page, error) {
	rows, err := s.Query(ctx, selectPages, s.WebsiteID, visibleOnly)
	if err != nil {
		return nil, fmt.Errorf("listing pages of tenant %d: %w", s.WebsiteID, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Page, error) { return scanPage(r) })
	if err != nil {
		return nil, fmt.Errorf("listing pages of tenant %d: %w", s.WebsiteID, err)
	}
	return ps, nil
}

// GetPage returns a page of the website, visible or not, for its admin.
func GetPage(ctx context.Context, s tenant.Scope, id uuid.UUID) (Page, error) {
	p, err := scanPage(s.QueryRow(ctx, selectPageByID, s.WebsiteID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Page{}, fmt.Errorf("reading page %s of tenant %d: %w", id, s.WebsiteID, err)
	}
	return p, nil
}

// GetVisiblePage returns a visible page by slug, for the public site.
func GetVisiblePage(ctx context.Context, s tenant.Scope, slug string) (Page, error) {
	if !isSlug(slug) {
		return Page{}, fmt.Errorf("reading page %q of tenant %d: %w", slug, s.WebsiteID, ErrNotFound)
	}
	p, err := scanPage(s.QueryRow(ctx, selectPageBySlug, s.WebsiteID, slug))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Page{}, fmt.Errorf("reading page %q of tenant %d: %w", slug, s.WebsiteID, err)
	}
	return p, nil
}

// CreatePage validates in and adds the page. A slug already used in the
// website is ErrConflict.
func CreatePage(ctx context.Context, s tenant.Scope, in PageInput) (Page, error) {
	if err := in.Validate(); err != nil {
		return Page{}, err
	}
	id, err := newID()
	if err != nil {
		return Page{}, err
	}
	var p Page
	err = s.Write(ctx, func(tx tenant.Tx) error {
		var err error
		p, err = scanPage(tx.QueryRow(ctx, insertPage, id, s.WebsiteID, in.Slug, in.Title, in.Body, in.Visible, in.NavOrder))
		return err
	})
	if err != nil {
		return Page{}, fmt.Errorf("creating page %q of tenant %d: %w", in.Slug, s.WebsiteID, pageWriteError(err, in.Slug))
	}
	return p, nil
}

// UpdatePage validates in and replaces the page's fields. A slug used by
// another page of the website is ErrConflict.
func UpdatePage(ctx context.Context, s tenant.Scope, id uuid.UUID, in PageInput) (Page, error) {
	if err := in.Validate(); err != nil {
		return Page{}, err
	}
	var p Page
	err := s.Write(ctx, func(tx tenant.Tx) error {
		var err error
		p, err = scanPage(tx.QueryRow(ctx, updatePage, s.WebsiteID, id, in.Slug, in.Title, in.Body, in.Visible, in.NavOrder))
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return Page{}, fmt.Errorf("updating page %s of tenant %d: %w", id, s.WebsiteID, pageWriteError(err, in.Slug))
	}
	return p, nil
}

func pageWriteError(err error, slug string) error {
	if code, _ := pgError(err); code == uniqueViolation {
		return fmt.Errorf("slug %q is used by another page: %w", slug, ErrConflict)
	}
	return err
}

// DeletePage removes a page of the website.
func DeletePage(ctx context.Context, s tenant.Scope, id uuid.UUID) error {
	err := s.Write(ctx, func(tx tenant.Tx) error {
		tag, err := tx.Exec(ctx, deletePage, s.WebsiteID, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting page %s of tenant %d: %w", id, s.WebsiteID, err)
	}
	return nil
}
