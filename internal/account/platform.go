package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/propertywebbuilder/pwb/internal/dbq"
)

// RoleSuperAdmin is the platform role that opens the platform admin (/admin).
// It is a property of the user, never of a website membership.
const RoleSuperAdmin = "super_admin"

// PlatformSession is a sign-in to the platform admin, as of the moment it was
// looked up: SuperAdmin is the user's current role, so taking the role away
// closes /admin to sessions already open.
type PlatformSession struct {
	User
	SuperAdmin bool
	ExpiresAt  time.Time
	// CSRF is the token the session's forms must send back.
	CSRF string
}

// CreateSuperAdmin adds a user with the super-admin role. An email that is
// already a user's is ErrConflict: a platform login is an account of its
// own, never a site admin's promoted.
func CreateSuperAdmin(ctx context.Context, q dbq.Querier, email, password string) (User, error) {
	role := RoleSuperAdmin
	return createUser(ctx, q, email, password, &role)
}

// ErrNotSuperAdmin is a right password of a user without the platform
// role: no platform session is opened for it.
var ErrNotSuperAdmin = errors.New("this account cannot open the platform admin")

// AuthenticatePlatform checks an email and password for the platform admin's
// sign-in. Unknown emails and wrong passwords are ErrBadCredentials, at the
// cost of one bcrypt comparison each. The right password of a user without
// the platform role is ErrNotSuperAdmin.
func AuthenticatePlatform(ctx context.Context, q dbq.Querier, email, password string) (User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return User{}, ErrBadCredentials
	}
	var u User
	var hash string
	var role *string
	err = q.QueryRow(ctx, "SELECT id, email, created_at, password_hash, platform_role FROM users WHERE lower(email) = $1", email).
		Scan(&u.ID, &u.Email, &u.CreatedAt, &hash, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("signing in to the platform admin: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return User{}, ErrBadCredentials
	}
	if role == nil || *role != RoleSuperAdmin {
		return u, ErrNotSuperAdmin
	}
	return u, nil
}

// newToken returns a random session token and the SHA-256 it is stored by.
func newToken() (token string, hash []byte) {
	raw := make([]byte, tokenBytes)
	rand.Read(raw) // never fails; crashes the program if the system has no randomness
	token = base64.RawURLEncoding.EncodeToString(raw)
	hash, _ = hashToken(token)
	return token, hash
}

// CreatePlatformSession opens a platform-admin session for userID that lasts
// ttl and returns its token for the cookie.
func CreatePlatformSession(ctx context.Context, q dbq.Querier, userID int64, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("%w session lifetime %v: must be positive", ErrInvalid, ttl)
	}
	token, hash := newToken()
	_, err := q.Exec(ctx, `INSERT INTO platform_sessions (token_hash, user_id, expires_at)
		VALUES ($1, $2, now() + $3 * interval '1 microsecond')`, hash, userID, ttl.Microseconds())
	if err != nil {
		return "", fmt.Errorf("opening platform session for user %d: %w", userID, err)
	}
	return token, nil
}

// LookupPlatformSession returns the platform session behind token. A token
// that is malformed, unknown or expired is ErrNoSession.
func LookupPlatformSession(ctx context.Context, q dbq.Querier, token string) (PlatformSession, error) {
	hash, ok := hashToken(token)
	if !ok {
		return PlatformSession{}, ErrNoSession
	}
	var s PlatformSession
	var role *string
	err := q.QueryRow(ctx, `SELECT u.id, u.email, u.created_at, u.platform_role, s.expires_at
		FROM platform_sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > now()`, hash).
		Scan(&s.ID, &s.Email, &s.CreatedAt, &role, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return PlatformSession{}, ErrNoSession
	}
	if err != nil {
		return PlatformSession{}, fmt.Errorf("reading platform session: %w", err)
	}
	s.SuperAdmin = role != nil && *role == RoleSuperAdmin
	s.CSRF = CSRFToken(token)
	return s, nil
}

// DeletePlatformSession ends the platform session behind token; a token
// with no session is not an error.
func DeletePlatformSession(ctx context.Context, q dbq.Querier, token string) error {
	hash, ok := hashToken(token)
	if !ok {
		return nil
	}
	if _, err := q.Exec(ctx, "DELETE FROM platform_sessions WHERE token_hash = $1", hash); err != nil {
		return fmt.Errorf("ending platform session: %w", err)
	}
	return nil
}

// CSRFToken derives the anti-forgery token of a session from its secret
// token: a page of the session embeds it in its forms, and another site,
// which cannot read the cookie, cannot compute it. Nothing is stored.
func CSRFToken(sessionToken string) string {
	h := sha256.Sum256([]byte("pwb csrf\x00" + sessionToken))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// ValidCSRF reports whether sent is the CSRF token of session s.
func (s PlatformSession) ValidCSRF(sent string) bool {
	return sent != "" && subtle.ConstantTimeCompare([]byte(sent), []byte(s.CSRF)) == 1
}

// DeleteExpiredPlatformSessions removes platform sessions past their expiry
// and returns how many. Expired sessions are already refused; this only
// keeps the table small.
func DeleteExpiredPlatformSessions(ctx context.Context, q dbq.Querier) (int64, error) {
	tag, err := q.Exec(ctx, "DELETE FROM platform_sessions WHERE expires_at <= now()")
	if err != nil {
		return 0, fmt.Errorf("deleting expired platform sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
