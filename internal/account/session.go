package account

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/dbq"
)

// tokenBytes is the length of a session token before encoding: 256 bits, far
// beyond guessing.
const tokenBytes = 32

// Session is a signed-in member, as of the moment it was looked up: the role is
// the membership's current one.
type Session struct {
	Member
	ExpiresAt time.Time
}

// hashToken decodes a token and returns the SHA-256 the sessions table keys
// it by; ok is false for anything CreateSession cannot have issued.
func hashToken(token string) (hash []byte, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != tokenBytes {
		return nil, false
	}
	h := sha256.Sum256(raw)
	return h[:], true
}

// CreateSession opens a session for m on m.WebsiteID that lasts ttl and
// returns its token (base64url, no padding) for the cookie. Only the token's
// SHA-256 is stored.
func CreateSession(ctx context.Context, q dbq.Querier, m Member, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("%w session lifetime %v: must be positive", ErrInvalid, ttl)
	}
	token, hash := newToken()
	_, err := q.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, website_id, expires_at)
		VALUES ($1, $2, $3, now() + $4 * interval '1 microsecond')`,
		hash, m.ID, m.WebsiteID, ttl.Microseconds())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return "", fmt.Errorf("%w session: user %d is not a member of website %d", ErrInvalid, m.ID, m.WebsiteID)
	}
	if err != nil {
		return "", fmt.Errorf("opening session for user %d on website %d: %w", m.ID, m.WebsiteID, err)
	}
	return token, nil
}

// LookupSession returns the session behind token on website websiteID. A
// token that is malformed, unknown, expired, issued for another website, or
// whose membership has been removed is ErrNoSession.
func LookupSession(ctx context.Context, q dbq.Querier, token string, websiteID int64) (Session, error) {
	hash, ok := hashToken(token)
	if !ok {
		return Session{}, ErrNoSession
	}
	var s Session
	err := q.QueryRow(ctx, `SELECT u.id, u.email, u.created_at, m.website_id, m.role, s.expires_at
		FROM sessions s
		JOIN users u ON u.id = s.user_id
		JOIN memberships m ON m.user_id = s.user_id AND m.website_id = s.website_id
		WHERE s.token_hash = $1 AND s.website_id = $2 AND s.expires_at > now()`, hash, websiteID).
		Scan(&s.ID, &s.Email, &s.CreatedAt, &s.WebsiteID, &s.Role, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("reading session on website %d: %w", websiteID, err)
	}
	return s, nil
}

// DeleteSession ends the session behind token (signing out). A token with no
// session is not an error: signing out twice is fine.
func DeleteSession(ctx context.Context, q dbq.Querier, token string) error {
	hash, ok := hashToken(token)
	if !ok {
		return nil
	}
	if _, err := q.Exec(ctx, "DELETE FROM sessions WHERE token_hash = $1", hash); err != nil {
		return fmt.Errorf("ending session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions past their expiry and returns how
// many. Expired sessions are already refused; this only keeps the table small.
func DeleteExpiredSessions(ctx context.Context, q dbq.Querier) (int64, error) {
	tag, err := q.Exec(ctx, "DELETE FROM sessions WHERE expires_at <= now()")
	if err != nil {
		return 0, fmt.Errorf("deleting expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
