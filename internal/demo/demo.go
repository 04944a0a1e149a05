package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// DefaultProperties is how many properties a demo site gets when Options
// does not say.
const DefaultProperties = 30

// Options for one tenant's demo content.
type Options struct {
	Properties    int    // default DefaultProperties
	OwnerEmail    string // default owner@<subdomain>.localhost
	OwnerPassword string // needed only when the owner's user does not exist yet
	Seed          int64  // deterministic variety per tenant (e.g. website id)
	// Progress, when set, is called after each property with its photos.
	Progress func(done, total int)
}

// Result says what Seed did. The counts are of what this call created.
type Result struct {
	Created                             bool
	Properties, Photos, Pages, Messages int
	OwnerEmail                          string
}

// Seed fills a tenant's site with demo content unless it already has
// properties (then Created is false and no content is written), and in
// either case ensures an owner login: the user is created if missing (an
// existing user keeps its password) and made the website's owner. primary
// is where users and memberships live.
//
// The owner comes first, so a bad password fails before any content is
// written. Content is written one piece at a time, as an editor would; if a
// seed is interrupted after its first property, the next one sees a site
// with properties and leaves it as it is.
func Seed(ctx context.Context, s tenant.Scope, primary dbq.Querier, w registry.Website, o Options) (Result, error) {
	if s.WebsiteID != w.ID {
		return Result{}, fmt.Errorf("seeding demo content: scope of tenant %d given for tenant %d", s.WebsiteID, w.ID)
	}
	if o.Properties <= 0 {
		o.Properties = DefaultProperties
	}
	if strings.TrimSpace(o.OwnerEmail) == "" {
		o.OwnerEmail = "owner@" + w.Subdomain + ".localhost"
	}

	owner, err := ensureOwner(ctx, primary, w.ID, o.OwnerEmail, o.OwnerPassword)
	if err != nil {
		return Result{}, fmt.Errorf("seeding demo owner of tenant %d (%s): %w", w.ID, w.Subdomain, err)
	}
	res := Result{OwnerEmail: owner}

	counts, err := content.CountAll(ctx, s)
	if err != nil {
		return res, fmt.Errorf("seeding demo content of tenant %d (%s): %w", w.ID, w.Subdomain, err)
	}
	if counts.Properties > 0 {
		return res, nil
	}
	res.Created = true
	if err := writeContent(ctx, s, w, o, &res); err != nil {
		return res, fmt.Errorf("seeding demo content of tenant %d (%s): %w", w.ID, w.Subdomain, err)
	}
	return res, nil
}

// ensureOwner makes sure email can sign in to website id as its owner and
// returns the normalised address.
func ensureOwner(ctx context.Context, q dbq.Querier, websiteID int64, email, password string) (string, error) {
	u, err := account.FindUserByEmail(ctx, q, email)
	if errors.Is(err, account.ErrNotFound) {
		u, err = account.CreateUser(ctx, q, email, password)
		if errors.Is(err, account.ErrConflict) {
			// Created concurrently, by another seed or an operator.
			u, err = account.FindUserByEmail(ctx, q, email)
		}
	}
	if err != nil {
		return "", err
	}
	if err := account.AddMember(ctx, q, u.ID, websiteID, account.RoleOwner); err != nil {
		return "", err
	}
	return u.Email, nil
}

// writeContent writes the planned content, counting it into res as it goes.
func writeContent(ctx context.Context, s tenant.Scope, w registry.Website, o Options, res *Result) error {
	// Photos are drawn while the agency and pages are written. The channel
	// has room for the answer, so the drawing ends even if an error returns
	// before it is read.
	type drawn struct {
		set *photoSet
		err error
	}
	photos := make(chan drawn, 1)
	go func() {
		set, err := drawPhotos(o.Seed)
		photos <- drawn{set, err}
	}()

	pl := newPlan(w, o.Seed, o.Properties)

	// An agency the site's admin already filled in is kept.
	a, err := content.GetAgency(ctx, s)
	if err != nil {
		return err
	}
	if a == (content.Agency{}) {
		if err := content.SaveAgency(ctx, s, pl.agency); err != nil {
			return err
		}
	}
	for _, in := range pl.pages {
		_, err := content.CreatePage(ctx, s, in)
		if errors.Is(err, content.ErrConflict) {
			continue // the site already has a page with this slug
		}
		if err != nil {
			return err
		}
		res.Pages++
	}

	d := <-photos
	if d.err != nil {
		return d.err
	}
	// The demo's photos pass the checks an editor's would.
	def := config.DefaultSettings()
	limits := content.PhotoLimits{PerProperty: def.PhotosPerProperty, MaxSide: def.PhotoMaxSide}
	ids := make([]uuid.UUID, len(pl.properties))
	for i, pp := range pl.properties {
		p, err := content.CreateProperty(ctx, s, pp.in)
		if err != nil {
			return err
		}
		ids[i] = p.ID
		res.Properties++
		for _, shot := range d.set.shots[pp.kind][pp.building][:pp.photos] {
			if _, err := content.AddPhoto(ctx, s, p.ID, shot, limits); err != nil {
				return err
			}
			res.Photos++
		}
		if o.Progress != nil {
			o.Progress(i+1, len(pl.properties))
		}
	}

	for _, pe := range pl.enquiries {
		e := pe.e
		if pe.property >= 0 {
			e.PropertyID = &ids[pe.property]
		}
		if _, err := content.SubmitEnquiry(ctx, s, e); err != nil {
			return err
		}
		res.Messages++
	}
	return nil
}
