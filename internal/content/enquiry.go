package content

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Enquiry is what a visitor sends from the contact form or a property's
// page.
type Enquiry struct {
	Name, Email, Phone, Body string
	PropertyID               *uuid.UUID // the property asked about, if any
}

const maxEmailLen = 254

// Validate trims and checks e. Its *InvalidError uses the fields name,
// email, phone and body.
func (e *Enquiry) Validate() error {
	p := problems{}
	p.text("name", "Name", &e.Name, 200, true)
	p.email("email", &e.Email, true)
	p.text("phone", "Phone", &e.Phone, 50, false)
	p.text("body", "Message", &e.Body, 5000, true)
	return p.err()
}

// email trims *s and checks that it is one bare address such as
// name@example.com (no display name, no angle brackets).
func (p problems) email(field string, s *string, required bool) {
	p.text(field, "Email", s, maxEmailLen, required)
	if _, bad := p[field]; bad || *s == "" {
		return
	}
	if a, err := mail.ParseAddress(*s); err != nil || a.Address != *s {
		p.add(field, "Enter an email address such as name@example.com.")
	}
}

const (
	lockVisibleProperty = `SELECT 1 FROM properties
		WHERE website_id = $1 AND id = $2 AND visible FOR KEY SHARE`
	// The unique index is on lower(email), so the first spelling of an
	// address is kept. Anyone can type an address into the form, so a later
	// enquiry never replaces the name or phone a contact has: it only fills
	// one that is still empty, which loses nothing. Each message keeps what
	// was sent with it anyway. DO UPDATE rather than DO NOTHING, so that
	// RETURNING gives the existing contact's id.
	upsertContact = `INSERT INTO contacts (id, website_id, email, name, phone)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (website_id, lower(email)) DO UPDATE SET
			name = CASE WHEN contacts.name = '' THEN EXCLUDED.name ELSE contacts.name END,
			phone = CASE WHEN contacts.phone = '' THEN EXCLUDED.phone ELSE contacts.phone END,
			updated_at = CASE WHEN (contacts.name = '' AND EXCLUDED.name <> '')
				OR (contacts.phone = '' AND EXCLUDED.phone <> '') THEN now() ELSE contacts.updated_at END
		RETURNING id`
	insertMessage = `INSERT INTO messages (id, website_id, contact_id, property_id, body,
			sender_name, sender_email, sender_phone)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
)

// SubmitEnquiry validates e and records it as a message from the contact
// with its email address, creating the contact the first time, all in one
// write. The message keeps e's name, email and phone as sent. A PropertyID
// that is not a visible property of the website is ErrNotFound. It returns
// the message's id.
func SubmitEnquiry(ctx context.Context, s tenant.Scope, e Enquiry) (uuid.UUID, error) {
	if err := e.Validate(); err != nil {
		return uuid.Nil, err
	}
	contactID, err := newID()
	if err != nil {
		return uuid.Nil, err
	}
	messageID, err := newID()
	if err != nil {
		return uuid.Nil, err
	}
	err = s.Write(ctx, func(tx tenant.Tx) error {
		if e.PropertyID != nil {
			var one int
			err := tx.QueryRow(ctx, lockVisibleProperty, s.WebsiteID, *e.PropertyID).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("property %s: %w", *e.PropertyID, ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("checking property %s: %w", *e.PropertyID, err)
			}
		}
		if err := tx.QueryRow(ctx, upsertContact, contactID, s.WebsiteID, e.Email, e.Name, e.Phone).Scan(&contactID); err != nil {
			return fmt.Errorf("saving contact: %w", err)
		}
		if _, err := tx.Exec(ctx, insertMessage, messageID, s.WebsiteID, contactID, e.PropertyID, e.Body,
			e.Name, e.Email, e.Phone); err != nil {
			return fmt.Errorf("saving message: %w", err)
		}
		return nil
	})
	if err != nil {
		return uuid.Nil, fmt.Errorf("submitting enquiry to tenant %d: %w", s.WebsiteID, err)
	}
	return messageID, nil
}

// Message is an enquiry as the site's admin reads it.
type Message struct {
	ID        uuid.UUID
	Body      string
	ReadAt    *time.Time
	CreatedAt time.Time
	// The sender's name, email and phone as sent with this message, not the
	// contact's current ones: a later enquiry from the same address, by
	// anyone, must not change what an earlier message shows.
	ContactName, ContactEmail, ContactPhone string
	PropertyID                              *uuid.UUID // nil when none, or the property was deleted
	PropertyTitle                           string
}

// DefaultMessagesPerPage is the page size of ListMessages when none is
// given.
const DefaultMessagesPerPage = 20

const (
	selectMessages = `SELECT m.id, m.body, m.read_at, m.created_at, m.sender_name, m.sender_email, m.sender_phone,
		m.property_id, COALESCE(p.title, '')
		FROM messages m
		LEFT JOIN properties p ON p.website_id = m.website_id AND p.id = m.property_id
		WHERE m.website_id = $1`
	selectMessagePage = selectMessages + ` ORDER BY m.created_at DESC, m.id DESC LIMIT $2 OFFSET $3`
	selectMessageByID = selectMessages + ` AND m.id = $2`
	countMessages     = `SELECT count(*) FROM messages WHERE website_id = $1`
	setMessageRead    = `UPDATE messages SET read_at = CASE WHEN $3::boolean THEN COALESCE(read_at, now()) END
		WHERE website_id = $1 AND id = $2`
)

func scanMessage(row pgx.Row) (Message, error) {
	var m Message
	err := row.Scan(&m.ID, &m.Body, &m.ReadAt, &m.CreatedAt, &m.ContactName, &m.ContactEmail,
		&m.ContactPhone, &m.PropertyID, &m.PropertyTitle)
	return m, err
}

// ListMessages returns one page of the website's messages, newest first,
// and how many there are in all. page counts from 1; perPage defaults to
// DefaultMessagesPerPage and is at most MaxPerPage.
func ListMessages(ctx context.Context, s tenant.Scope, page, perPage int) ([]Message, int, error) {
	_, perPage, offset := pageBounds(page, perPage, DefaultMessagesPerPage)
	var total int
	if err := s.QueryRow(ctx, countMessages, s.WebsiteID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting messages of tenant %d: %w", s.WebsiteID, err)
	}
	rows, err := s.Query(ctx, selectMessagePage, s.WebsiteID, perPage, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("listing messages of tenant %d: %w", s.WebsiteID, err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("listing messages of tenant %d: %w", s.WebsiteID, err)
	}
	return ms, total, nil
}

// GetMessage returns a message of the website.
func GetMessage(ctx context.Context, s tenant.Scope, id uuid.UUID) (Message, error) {
	m, err := scanMessage(s.QueryRow(ctx, selectMessageByID, s.WebsiteID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("reading message %s of tenant %d: %w", id, s.WebsiteID, err)
	}
	return m, nil
}

// SetMessageRead marks a message read (keeping when it was first read) or
// unread.
func SetMessageRead(ctx context.Context, s tenant.Scope, id uuid.UUID, read bool) error {
	err := s.Write(ctx, func(tx tenant.Tx) error {
		tag, err := tx.Exec(ctx, setMessageRead, s.WebsiteID, id, read)
		if err == nil && tag.RowsAffected() == 0 {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("marking message %s of tenant %d: %w", id, s.WebsiteID, err)
	}
	return nil
}
