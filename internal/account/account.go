package account

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/crypto/bcrypt"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/fault"
)

// Sentinel errors callers branch on.
var (
	// ErrBadCredentials is the one answer to a failed sign-in, whether the
	// email is unknown, the password wrong, or the user not a member of the
	// website, so the sign-in form does not reveal which emails exist.
	ErrBadCredentials = errors.New("wrong email or password")
	// ErrNoSession means the session token is missing, unknown, expired, for
	// another website, or its membership has ended. Neither it nor
	// ErrBadCredentials is of a fault kind: the sign-in pages answer them.
	ErrNoSession = errors.New("not signed in")
	ErrInvalid   = fault.New(fault.Invalid, "invalid")
	ErrConflict  = fault.New(fault.Conflict, "already exists")
	ErrNotFound  = fault.New(fault.NotFound, "not found")
)

// Roles a member can have on a website.
const (
	RoleOwner = "owner"
	RoleAdmin = "admin"
)

// Password length limits. bcrypt reads only the first 72 bytes, so a longer
// password would be silently truncated; it is refused instead.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 72
)

// Cost is the bcrypt cost of new password hashes. Tests lower it to
// bcrypt.MinCost.
var Cost = bcrypt.DefaultCost

// User is a platform-wide login.
type User struct {
	ID        int64
	Email     string
	CreatedAt time.Time
}

// Member is a user in their role on one website.
type Member struct {
	User
	WebsiteID int64
	Role      string
}

// NormalizeEmail trims and lower-cases an email address and checks that it is
// one bare address (no display name, comment or quoting) of at most 254
// characters.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", fmt.Errorf("%w email: must not be empty", ErrInvalid)
	}
	if len(s) > 254 {
		return "", fmt.Errorf("%w email: at most 254 characters", ErrInvalid)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", fmt.Errorf("%w email %q: give one plain address such as name@example.com", ErrInvalid, s)
	}
	return s, nil
}

// ValidatePassword checks a new password's length: 8 to 72 bytes.
func ValidatePassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return fmt.Errorf("%w password: must be at least %d characters", ErrInvalid, MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("%w password: must be at most %d bytes (fewer characters if it has accented or other non-ASCII letters)", ErrInvalid, MaxPasswordLen)
	}
	return nil
}

// HashPassword validates pw and returns its bcrypt hash at Cost.
func HashPassword(pw string) (string, error) {
	if err := ValidatePassword(pw); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), Cost)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return string(h), nil
}

// CreateUser adds a user. The email is normalised; an email already taken in
// any letter case is ErrConflict.
func CreateUser(ctx context.Context, q dbq.Querier, email, password string) (User, error) {
	return createUser(ctx, q, email, password, nil)
}

// createUser adds a user with platform role role, if not nil, in one
// statement.
func createUser(ctx context.Context, q dbq.Querier, email, password string, role *string) (User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return User{}, err
	}
	var u User
	err = q.QueryRow(ctx, `INSERT INTO users (email, password_hash, platform_role) VALUES ($1, $2, $3)
		RETURNING id, email, created_at`, email, hash, role).Scan(&u.ID, &u.Email, &u.CreatedAt)
	if isUniqueViolation(err) {
		return User{}, fmt.Errorf("user %q: %w", email, ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("creating user %q: %w", email, err)
	}
	return u, nil
}

// SetPassword replaces a user's password and ends all of the user's sessions,
// so a password reset after a leak also signs out whoever used the old one.
func SetPassword(ctx context.Context, q dbq.Querier, userID int64, password string) error {
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	var found bool
	err = q.QueryRow(ctx, `WITH u AS (
			UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1 RETURNING id
		), s AS (
			DELETE FROM sessions WHERE user_id IN (SELECT id FROM u)
		), p AS (
			DELETE FROM platform_sessions WHERE user_id IN (SELECT id FROM u)
		)
		SELECT EXISTS (SELECT 1 FROM u)`, userID, hash).Scan(&found)
	if err != nil {
		return fmt.Errorf("setting password of user %d: %w", userID, err)
	}
	if !found {
		return fmt.Errorf("user %d: %w", userID, ErrNotFound)
	}
	return nil
}

// FindUserByEmail returns the user with the given email, in any letter case.
func FindUserByEmail(ctx context.Context, q dbq.Querier, email string) (User, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	var u User
	err = q.QueryRow(ctx, "SELECT id, email, created_at FROM users WHERE lower(email) = $1", email).
		Scan(&u.ID, &u.Email, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("user %q: %w", email, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("reading user %q: %w", email, err)
	}
	return u, nil
}

// AddMember gives a user a role on a website, or changes the role they have.
func AddMember(ctx context.Context, q dbq.Querier, userID, websiteID int64, role string) error {
	if role != RoleOwner && role != RoleAdmin {
		return fmt.Errorf("%w role %q: must be owner or admin", ErrInvalid, role)
	}
	_, err := q.Exec(ctx, `INSERT INTO memberships (user_id, website_id, role) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, website_id) DO UPDATE SET role = EXCLUDED.role`, userID, websiteID, role)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		if strings.Contains(pgErr.ConstraintName, "website") {
			return fmt.Errorf("adding user %d to website %d: website %w", userID, websiteID, ErrNotFound)
		}
		return fmt.Errorf("adding user %d to website %d: user %w", userID, websiteID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("adding user %d to website %d: %w", userID, websiteID, err)
	}
	return nil
}

// RemoveMember takes a user's role on a website away. Their sessions on that
// website end with it.
func RemoveMember(ctx context.Context, q dbq.Querier, userID, websiteID int64) error {
	tag, err := q.Exec(ctx, "DELETE FROM memberships WHERE user_id = $1 AND website_id = $2", userID, websiteID)
	if err != nil {
		return fmt.Errorf("removing user %d from website %d: %w", userID, websiteID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("user %d on website %d: membership %w", userID, websiteID, ErrNotFound)
	}
	return nil
}

// Authenticate checks an email and password for signing in to one website.
// An unknown or malformed email, a wrong password and a user who is not a
// member of websiteID are all ErrBadCredentials, and each costs one bcrypt
// comparison, so neither the answer nor its timing tells which emails exist.
func Authenticate(ctx context.Context, q dbq.Querier, websiteID int64, email, password string) (Member, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return Member{}, ErrBadCredentials
	}
	var m Member
	var hash string
	var role *string
	err = q.QueryRow(ctx, `SELECT u.id, u.email, u.created_at, u.password_hash, m.role
		FROM users u
		LEFT JOIN memberships m ON m.user_id = u.id AND m.website_id = $2
		WHERE lower(u.email) = $1`, email, websiteID).
		Scan(&m.ID, &m.Email, &m.CreatedAt, &hash, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return Member{}, ErrBadCredentials
	}
	if err != nil {
		return Member{}, fmt.Errorf("signing in to website %d: %w", websiteID, err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || role == nil {
		return Member{}, ErrBadCredentials
	}
	m.WebsiteID, m.Role = websiteID, *role
	return m, nil
}

var (
	dummyMu     sync.Mutex
	dummyHashes = map[int][]byte{}
)

// dummyHash is a hash at the current Cost that no password matches, compared
// against when there is no real hash so that the comparison takes as long.
func dummyHash() []byte {
	dummyMu.Lock()
	defer dummyMu.Unlock()
	cost := Cost
	if h, ok := dummyHashes[cost]; ok {
		return h
	}
	h, err := bcrypt.GenerateFromPassword([]byte("pwb dummy password, never valid"), cost)
	if err != nil {
		// Only an out-of-range Cost gets here; real hashes fail the same way.
		h, _ = bcrypt.GenerateFromPassword([]byte("pwb dummy password, never valid"), bcrypt.DefaultCost)
	}
	dummyHashes[cost] = h
	return h
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
