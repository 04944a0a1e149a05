package account_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

func TestMain(m *testing.M) {
	// Set once before any test runs: parallel tests read it.
	account.Cost = bcrypt.MinCost
	os.Exit(m.Run())
}

// primary is a fresh database with the global set applied.
func primary(t *testing.T) *pgxpool.Pool { return pgtest.MigratedPrimary(t) }

func website(t *testing.T, db *pgxpool.Pool, subdomain string) registry.Website {
	t.Helper()
	w, err := registry.Create(context.Background(), db, registry.New{Subdomain: subdomain, Name: subdomain})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func user(t *testing.T, db *pgxpool.Pool, email, password string) account.User {
	t.Helper()
	u, err := account.CreateUser(context.Background(), db, email, password)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func member(t *testing.T, db *pgxpool.Pool, u account.User, w registry.Website, role string) {
	t.Helper()
	if err := account.AddMember(context.Background(), db, u.ID, w.ID, role); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"alice@example.com":         "alice@example.com",
		"  Alice@Example.COM\t":     "alice@example.com",
		"a.b+tag@sub.example.co.uk": "a.b+tag@sub.example.co.uk",
		"a@b":                       "a@b",
		strings.Repeat("x", 64) + "@" + strings.Repeat("y", 185) + ".com": strings.Repeat("x", 64) + "@" + strings.Repeat("y", 185) + ".com",
	} {
		if got, err := account.NormalizeEmail(in); err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "   ", "alice", "alice@", "@example.com", "alice@@example.com",
		"Alice <alice@example.com>", "<alice@example.com>", "alice@example.com, bob@example.com",
		`"al ice"@example.com`, "alice@example.com (work)", "al ice@example.com",
		strings.Repeat("x", 64) + "@" + strings.Repeat("y", 186) + ".com"} {
		if got, err := account.NormalizeEmail(in); !errors.Is(err, account.ErrInvalid) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{"12345678", strings.Repeat("p", 72), "correct horse battery staple"} {
		if err := account.ValidatePassword(pw); err != nil {
			t.Errorf("ValidatePassword(%d bytes): %v", len(pw), err)
		}
	}
	for pw, says := range map[string]string{
		"":                      "at least 8",
		"1234567":               "at least 8",
		strings.Repeat("p", 73): "at most 72 bytes",
		strings.Repeat("é", 37): "at most 72 bytes", // 37 characters, 74 bytes
	} {
		err := account.ValidatePassword(pw)
		if !errors.Is(err, account.ErrInvalid) || !strings.Contains(err.Error(), says) {
			t.Errorf("ValidatePassword(%d bytes): %v; want ErrInvalid saying %q", len(pw), err, says)
		}
	}
}

func TestHashPassword_IsBcryptAtCost(t *testing.T) {
	t.Parallel()
	h, err := account.HashPassword("secret-password")
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != bcrypt.MinCost {
		t.Errorf("cost %d, %v; want account.Cost (%d)", cost, err, bcrypt.MinCost)
	}
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("secret-password")) != nil {
		t.Error("hash does not match its password")
	}
	if _, err := account.HashPassword("short"); !errors.Is(err, account.ErrInvalid) {
		t.Errorf("HashPassword(short): %v", err)
	}
}

func TestCreateUser_NormalizesAndRefusesDuplicatesInAnyCase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)

	u, err := account.CreateUser(ctx, db, "  Alice@Example.COM ", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Email != "alice@example.com" || u.CreatedAt.IsZero() {
		t.Errorf("created %+v", u)
	}
	var hash string
	db.QueryRow(ctx, "SELECT password_hash FROM users WHERE id = $1", u.ID).Scan(&hash)
	if !strings.HasPrefix(hash, "$2") || strings.Contains(hash, "alice-password") {
		t.Errorf("stored password %q; want a bcrypt hash", hash)
	}

	for _, email := range []string{"alice@example.com", "ALICE@EXAMPLE.COM", " alice@Example.com"} {
		if _, err := account.CreateUser(ctx, db, email, "another-password"); !errors.Is(err, account.ErrConflict) {
			t.Errorf("CreateUser(%q) again: %v; want ErrConflict", email, err)
		}
	}
	for _, c := range []struct{ email, password string }{
		{"not-an-email", "good-password"},
		{"Bob <bob@example.com>", "good-password"},
		{"bob@example.com", "short"},
		{"bob@example.com", strings.Repeat("x", 73)},
	} {
		if _, err := account.CreateUser(ctx, db, c.email, c.password); !errors.Is(err, account.ErrInvalid) {
			t.Errorf("CreateUser(%q, %d-byte password): %v; want ErrInvalid", c.email, len(c.password), err)
		}
	}
	if n := count(t, db, "users"); n != 1 {
		t.Errorf("%d users after refusals; want 1", n)
	}

	for _, email := range []string{"alice@example.com", "ALICE@example.com "} {
		got, err := account.FindUserByEmail(ctx, db, email)
		if err != nil || got != u {
			t.Errorf("FindUserByEmail(%q) = %+v, %v; want %+v", email, got, err, u)
		}
	}
	if _, err := account.FindUserByEmail(ctx, db, "nobody@example.com"); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("FindUserByEmail(nobody): %v", err)
	}
	if _, err := account.FindUserByEmail(ctx, db, "nonsense"); !errors.Is(err, account.ErrInvalid) {
		t.Errorf("FindUserByEmail(nonsense): %v", err)
	}
}

func TestAuthenticate_OnlyMembersWithTheRightPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)
	a, b := website(t, db, "acme"), website(t, db, "bravo")
	alice := user(t, db, "alice@example.com", "alice-password")
	user(t, db, "bob@example.com", "bob-password") // a member of nothing
	member(t, db, alice, a, account.RoleOwner)

	m, err := account.Authenticate(ctx, db, a.ID, " ALICE@example.com", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	if m.User != alice || m.WebsiteID != a.ID || m.Role != account.RoleOwner {
		t.Errorf("authenticated %+v", m)
	}

	for _, c := range []struct {
		name, email, password string
		website               int64
	}{
		{"wrong password", "alice@example.com", "alice-passworD", a.ID},
		{"empty password", "alice@example.com", "", a.ID},
		{"unknown email", "carol@example.com", "alice-password", a.ID},
		{"malformed email", "alice", "alice-password", a.ID},
		{"not a member of that website", "alice@example.com", "alice-password", b.ID},
		{"not a member of any website", "bob@example.com", "bob-password", a.ID},
		{"no such website", "alice@example.com", "alice-password", 999},
	} {
		_, err := account.Authenticate(ctx, db, c.website, c.email, c.password)
		// The very same error every time, so the answer reveals nothing.
		if err != account.ErrBadCredentials {
			t.Errorf("%s: %v; want exactly ErrBadCredentials", c.name, err)
		}
	}

	// AddMember changes the role of an existing member.
	member(t, db, alice, a, account.RoleAdmin)
	if m, err := account.Authenticate(ctx, db, a.ID, "alice@example.com", "alice-password"); err != nil || m.Role != account.RoleAdmin {
		t.Errorf("after changing the role: %+v, %v", m, err)
	}
	if n := count(t, db, "memberships"); n != 1 {
		t.Errorf("%d memberships; want the role updated in place", n)
	}
	if err := account.AddMember(ctx, db, alice.ID, a.ID, "superuser"); !errors.Is(err, account.ErrInvalid) {
		t.Errorf("AddMember(superuser): %v", err)
	}
	if err := account.AddMember(ctx, db, alice.ID, 999, account.RoleAdmin); !errors.Is(err, account.ErrNotFound) || !strings.Contains(err.Error(), "website") {
		t.Errorf("AddMember(no such website): %v", err)
	}
	if err := account.AddMember(ctx, db, 999, a.ID, account.RoleAdmin); !errors.Is(err, account.ErrNotFound) || !strings.Contains(err.Error(), "user") {
		t.Errorf("AddMember(no such user): %v", err)
	}

	// SetPassword: the old password stops working, the new one works; a
	// refused new password changes nothing.
	if err := account.SetPassword(ctx, db, alice.ID, "short"); !errors.Is(err, account.ErrInvalid) {
		t.Errorf("SetPassword(short): %v", err)
	}
	if _, err := account.Authenticate(ctx, db, a.ID, "alice@example.com", "alice-password"); err != nil {
		t.Errorf("after a refused SetPassword the old password fails: %v", err)
	}
	if err := account.SetPassword(ctx, db, alice.ID, "new-alice-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := account.Authenticate(ctx, db, a.ID, "alice@example.com", "alice-password"); err != account.ErrBadCredentials {
		t.Errorf("old password after SetPassword: %v", err)
	}
	if _, err := account.Authenticate(ctx, db, a.ID, "alice@example.com", "new-alice-password"); err != nil {
		t.Errorf("new password after SetPassword: %v", err)
	}
	if err := account.SetPassword(ctx, db, 999, "good-password"); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("SetPassword(no such user): %v", err)
	}
}
