package account_test

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/account"
)

// platformRole reads a user's platform_role, "" for none.
func platformRole(t *testing.T, db *pgxpool.Pool, userID int64) string {
	t.Helper()
	var role *string
	if err := db.QueryRow(context.Background(), "SELECT platform_role FROM users WHERE id = $1", userID).Scan(&role); err != nil {
		t.Fatal(err)
	}
	if role == nil {
		return ""
	}
	return *role
}

func TestCreateSuperAdmin_NeverPromotesAnExistingUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)
	site := user(t, db, "Site.Admin@example.com", "site-password")

	root, err := account.CreateSuperAdmin(ctx, db, "  Root@Example.com ", "root-password")
	if err != nil {
		t.Fatal(err)
	}
	if root.ID == 0 || root.Email != "root@example.com" || root.CreatedAt.IsZero() {
		t.Errorf("created %+v", root)
	}
	if role := platformRole(t, db, root.ID); role != account.RoleSuperAdmin {
		t.Errorf("platform_role %q; want %q", role, account.RoleSuperAdmin)
	}
	if role := platformRole(t, db, site.ID); role != "" {
		t.Errorf("a plain user has platform_role %q", role)
	}

	// A site admin's email, or a super-admin's, in any letter case: refused,
	// and the existing user keeps the role it had.
	for _, email := range []string{"SITE.ADMIN@EXAMPLE.COM", "site.admin@example.com", "ROOT@example.com"} {
		if _, err := account.CreateSuperAdmin(ctx, db, email, "other-password"); !errors.Is(err, account.ErrConflict) {
			t.Errorf("CreateSuperAdmin(%q): %v; want ErrConflict", email, err)
		}
	}
	for _, c := range []struct{ email, password string }{
		{"not-an-email", "good-password"},
		{"new@example.com", "short"},
	} {
		if _, err := account.CreateSuperAdmin(ctx, db, c.email, c.password); !errors.Is(err, account.ErrInvalid) {
			t.Errorf("CreateSuperAdmin(%q, %d-byte password): %v; want ErrInvalid", c.email, len(c.password), err)
		}
	}
	if role := platformRole(t, db, site.ID); role != "" {
		t.Errorf("the refused CreateSuperAdmin promoted the site admin to %q", role)
	}
	if n := count(t, db, "users"); n != 2 {
		t.Errorf("%d users after refusals; want 2", n)
	}
}

func TestAuthenticatePlatform_OnlyTheRightPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)
	root, err := account.CreateSuperAdmin(ctx, db, "root@example.com", "root-password")
	if err != nil {
		t.Fatal(err)
	}
	plain := user(t, db, "plain@example.com", "plain-password")

	u, err := account.AuthenticatePlatform(ctx, db, " ROOT@example.com", "root-password")
	if err != nil || u != root {
		t.Errorf("AuthenticatePlatform(root) = %+v, %v; want %+v", u, err, root)
	}
	// A user without the role is told so, and gets no session.
	if u, err := account.AuthenticatePlatform(ctx, db, "plain@example.com", "plain-password"); err != account.ErrNotSuperAdmin || u != plain {
		t.Errorf("AuthenticatePlatform(plain) = %+v, %v; want %+v, ErrNotSuperAdmin", u, err, plain)
	}
	for _, c := range []struct{ name, email, password string }{
		{"wrong password", "root@example.com", "root-passworD"},
		{"empty password", "root@example.com", ""},
		{"another user's password", "root@example.com", "plain-password"},
		{"unknown email", "nobody@example.com", "root-password"},
		{"malformed email", "root", "root-password"},
		{"empty email", "", "root-password"},
	} {
		// The very same error every time, so the answer reveals nothing.
		if _, err := account.AuthenticatePlatform(ctx, db, c.email, c.password); err != account.ErrBadCredentials {
			t.Errorf("%s: %v; want exactly ErrBadCredentials", c.name, err)
		}
	}
}

func TestPlatformSession_SaysWhetherTheUserIsASuperAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)
	root, err := account.CreateSuperAdmin(ctx, db, "root@example.com", "root-password")
	if err != nil {
		t.Fatal(err)
	}
	plain := user(t, db, "plain@example.com", "plain-password")

	before := time.Now()
	token, err := account.CreatePlatformSession(ctx, db, root.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := account.LookupPlatformSession(ctx, db, token)
	if err != nil {
		t.Fatal(err)
	}
	if s.User != root || !s.SuperAdmin {
		t.Errorf("session %+v; want %+v as a super-admin", s, root)
	}
	if d := s.ExpiresAt.Sub(before); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expires in %v; want an hour", d)
	}

	// The CSRF token is derived from the session token, and only it passes.
	if s.CSRF == "" || s.CSRF != account.CSRFToken(token) || s.CSRF == token {
		t.Errorf("CSRF %q; want CSRFToken(token) = %q, not the token itself", s.CSRF, account.CSRFToken(token))
	}
	if !s.ValidCSRF(account.CSRFToken(token)) {
		t.Error("ValidCSRF(its own token) = false")
	}
	other, err := account.CreatePlatformSession(ctx, db, root.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, sent := range []string{"", token, account.CSRFToken(other), s.CSRF[:len(s.CSRF)-1], s.CSRF + "A"} {
		if s.ValidCSRF(sent) {
			t.Errorf("ValidCSRF(%q) = true; want false", sent)
		}
	}

	// A user without the role gets a session that says so.
	plainToken, err := account.CreatePlatformSession(ctx, db, plain.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := account.LookupPlatformSession(ctx, db, plainToken); err != nil || s.User != plain || s.SuperAdmin {
		t.Errorf("plain user's session: %+v, %v; want SuperAdmin false", s, err)
	}
	// The role is read at lookup: taking it away closes sessions already open.
	if _, err := db.Exec(ctx, "UPDATE users SET platform_role = NULL WHERE id = $1", root.ID); err != nil {
		t.Fatal(err)
	}
	if s, err := account.LookupPlatformSession(ctx, db, token); err != nil || s.SuperAdmin {
		t.Errorf("after the role was taken away: %+v, %v; want SuperAdmin false", s, err)
	}

	unknown := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, tok := range []string{"", "nonsense", token + "A", token[:len(token)-1], unknown} {
		if _, err := account.LookupPlatformSession(ctx, db, tok); !errors.Is(err, account.ErrNoSession) {
			t.Errorf("LookupPlatformSession(%q): %v; want ErrNoSession", tok, err)
		}
	}
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := account.CreatePlatformSession(ctx, db, root.ID, ttl); !errors.Is(err, account.ErrInvalid) {
			t.Errorf("CreatePlatformSession(ttl %v): %v; want ErrInvalid", ttl, err)
		}
	}
}

func TestPlatformSession_Ends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)
	root, err := account.CreateSuperAdmin(ctx, db, "root@example.com", "root-password")
	if err != nil {
		t.Fatal(err)
	}
	other, err := account.CreateSuperAdmin(ctx, db, "other@example.com", "other-password")
	if err != nil {
		t.Fatal(err)
	}
	open := func(userID int64, ttl time.Duration) string {
		t.Helper()
		token, err := account.CreatePlatformSession(ctx, db, userID, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := account.LookupPlatformSession(ctx, db, token); err != nil {
			t.Fatalf("fresh session: %v", err)
		}
		return token
	}
	gone := func(what, token string) {
		t.Helper()
		if _, err := account.LookupPlatformSession(ctx, db, token); !errors.Is(err, account.ErrNoSession) {
			t.Errorf("%s: %v; want ErrNoSession", what, err)
		}
	}

	short := open(root.ID, 50*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	gone("after its lifetime", short)

	signedOut := open(root.ID, time.Hour)
	if err := account.DeletePlatformSession(ctx, db, signedOut); err != nil {
		t.Fatal(err)
	}
	gone("after DeletePlatformSession", signedOut)
	for _, tok := range []string{signedOut, "nonsense", ""} {
		if err := account.DeletePlatformSession(ctx, db, tok); err != nil {
			t.Errorf("DeletePlatformSession(%q) with no session: %v", tok, err)
		}
	}

	// A new password signs out every session of its user, and only those.
	first, second := open(root.ID, time.Hour), open(root.ID, time.Hour)
	others := open(other.ID, time.Hour)
	if err := account.SetPassword(ctx, db, root.ID, "new-root-password"); err != nil {
		t.Fatal(err)
	}
	gone("after the password was changed", first)
	gone("after the password was changed", second)
	if s, err := account.LookupPlatformSession(ctx, db, others); err != nil || s.User != other {
		t.Errorf("another user's session after SetPassword: %+v, %v", s, err)
	}
	if _, err := account.AuthenticatePlatform(ctx, db, "root@example.com", "new-root-password"); err != nil {
		t.Errorf("new password: %v", err)
	}
	if _, err := account.AuthenticatePlatform(ctx, db, "root@example.com", "root-password"); err != account.ErrBadCredentials {
		t.Errorf("old password after SetPassword: %v; want ErrBadCredentials", err)
	}
}
