package content

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Agency is the contact details of the estate agency that owns the site.
type Agency struct {
	Name, Email, Phone, Address string
}

// Validate trims and checks a. Every field is optional. Its *InvalidError
// uses the fields name, email, phone and address.
func (a *Agency) Validate() error {
	p := problems{}
	p.text("name", "Name", &a.Name, 200, false)
	p.email("email", &a.Email, false)
	p.text("phone", "Phone", &a.Phone, 50, false)
	p.text("address", "Address", &a.Address, 500, false)
	return p.err()
}

const (
	selectAgency = `SELECT name, email, phone, address FROM agencies WHERE website_id = $1`
	upsertAgency = `INSERT INTO agencies (id, website_id, name, email, phone, address)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (website_id) DO UPDATE SET
			name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone,
			address = EXCLUDED.address, updated_at = now()`
)

// GetAgency returns the website's agency details; all empty when none were
// saved yet.
func GetAgency(ctx context.Context, s tenant.Scope) (Agency, error) {
	var a Agency
	err := s.QueryRow(ctx, selectAgency, s.WebsiteID).Scan(&a.Name, &a.Email, &a.Phone, &a.Address)
	if errors.Is(err, pgx.ErrNoRows) {
		return Agency{}, nil
	}
	if err != nil {
		return Agency{}, fmt.Errorf("reading agency of tenant %d: %w", s.WebsiteID, err)
	}
	return a, nil
}

// SaveAgency validates a and stores it as the website's agency details.
func SaveAgency(ctx context.Context, s tenant.Scope, a Agency) error {
	if err := a.Validate(); err != nil {
		return err
	}
	id, err := newID()
	if err != nil {
		return err
	}
	err = s.Write(ctx, func(tx tenant.Tx) error {
		_, err := tx.Exec(ctx, upsertAgency, id, s.WebsiteID, a.Name, a.Email, a.Phone, a.Address)
		return err
	})
	if err != nil {
		return fmt.Errorf("saving agency of tenant %d: %w", s.WebsiteID, err)
	}
	return nil
}
