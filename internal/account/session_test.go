package account_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/account"
)

func TestSession_ValidOnlyOnItsOwnWebsite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)
	a, b := website(t, db, "acme"), website(t, db, "bravo")
	alice := user(t, db, "alice@example.com", "alice-password")
	// Alice administers both sites, so only the binding keeps a session on
	// one from opening the other.
	member(t, db, alice, a, account.RoleOwner)
	member(t, db, alice, b, account.RoleAdmin)

	m, err := account.Authenticate(ctx, db, a.ID, "alice@example.com", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	token, err := account.CreateSession(ctx, db, m, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, err := account.LookupSession(ctx, db, token, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s.Member != m {
		t.Errorf("session member %+v; want %+v", s.Member, m)
	}
	if d := s.ExpiresAt.Sub(before); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("expires in %v; want an hour", d)
	}

	if _, err := account.LookupSession(ctx, db, token, b.ID); !errors.Is(err, account.ErrNoSession) {
		t.Errorf("acme's session on bravo: %v; want ErrNoSession", err)
	}
	other := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, tok := range []string{"", "nonsense", token + "A", token[:len(token)-1], other} {
		if _, err := account.LookupSession(ctx, db, tok, a.ID); !errors.Is(err, account.ErrNoSession) {
			t.Errorf("LookupSession(%q): %v; want ErrNoSession", tok, err)
		}
	}

	// The role is read at lookup time, so a demotion applies at once.
	member(t, db, alice, a, account.RoleAdmin)
	if s, err := account.LookupSession(ctx, db, token, a.ID); err != nil || s.Role != account.RoleAdmin {
		t.Errorf("after demotion: %+v, %v", s, err)
	}
}

func TestSession_Ends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)
	a, b := website(t, db, "acme"), website(t, db, "bravo")
	alice := user(t, db, "alice@example.com", "alice-password")
	member(t, db, alice, a, account.RoleOwner)
	m := account.Member{User: alice, WebsiteID: a.ID, Role: account.RoleOwner}
	open := func(ttl time.Duration) string {
		t.Helper()
		token, err := account.CreateSession(ctx, db, m, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := account.LookupSession(ctx, db, token, a.ID); err != nil {
			t.Fatalf("fresh session: %v", err)
		}
		return token
	}
	gone := func(what, token string) {
		t.Helper()
		if _, err := account.LookupSession(ctx, db, token, a.ID); !errors.Is(err, account.ErrNoSession) {
			t.Errorf("%s: %v; want ErrNoSession", what, err)
		}
	}

	short := open(50 * time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	gone("after its lifetime", short)
	backdated := open(time.Hour)
	if _, err := db.Exec(ctx, "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE expires_at > now()"); err != nil {
		t.Fatal(err)
	}
	gone("after expires_at", backdated)
	live := open(time.Hour)
	if n, err := account.DeleteExpiredSessions(ctx, db); err != nil || n != 2 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 2", n, err)
	}
	if n := count(t, db, "sessions"); n != 1 {
		t.Errorf("%d sessions left; want the live one", n)
	}

	if err := account.DeleteSession(ctx, db, live); err != nil {
		t.Fatal(err)
	}
	gone("after DeleteSession", live)
	for _, tok := range []string{live, "nonsense", ""} {
		if err := account.DeleteSession(ctx, db, tok); err != nil {
			t.Errorf("DeleteSession(%q) with no session: %v", tok, err)
		}
	}

	removed := open(time.Hour)
	if err := account.RemoveMember(ctx, db, alice.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	gone("after the membership was removed", removed)
	member(t, db, alice, a, account.RoleOwner)
	gone("after the membership was given back", removed)
	if err := account.RemoveMember(ctx, db, alice.ID, b.ID); !errors.Is(err, account.ErrNotFound) {
		t.Errorf("RemoveMember(not a member): %v", err)
	}

	reset := open(time.Hour)
	if err := account.SetPassword(ctx, db, alice.ID, "new-alice-password"); err != nil {
		t.Fatal(err)
	}
	gone("after the password was changed", reset)

	if _, err := account.CreateSession(ctx, db, account.Member{User: alice, WebsiteID: b.ID}, time.Hour); !errors.Is(err, account.ErrInvalid) {
		t.Errorf("CreateSession for a non-member: %v; want ErrInvalid", err)
	}
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := account.CreateSession(ctx, db, m, ttl); !errors.Is(err, account.ErrInvalid) {
			t.Errorf("CreateSession(ttl %v): %v; want ErrInvalid", ttl, err)
		}
	}
}

func TestSession_TokenIsRandomAndNotStoredInClear(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)
	a := website(t, db, "acme")
	alice := user(t, db, "alice@example.com", "alice-password")
	member(t, db, alice, a, account.RoleOwner)
	m := account.Member{User: alice, WebsiteID: a.ID, Role: account.RoleOwner}

	seen := map[string]bool{}
	for range 20 {
		token, err := account.CreateSession(ctx, db, m, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(raw) != 32 || len(token) != 43 {
			t.Fatalf("token %q: %d bytes, %v; want 32 random bytes, base64url without padding", token, len(raw), err)
		}
		if seen[token] {
			t.Fatalf("token %q issued twice", token)
		}
		seen[token] = true

		want := sha256.Sum256(raw)
		var stored []byte
		if err := db.QueryRow(ctx, "SELECT token_hash FROM sessions WHERE token_hash = $1", want[:]).Scan(&stored); err != nil {
			t.Fatalf("no session row keyed by the token's SHA-256: %v", err)
		}
		// Nothing in the table, in any column, holds the token itself.
		var leaks int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM sessions s
			WHERE strpos(s::text, $1) > 0 OR strpos(s::text, $2) > 0`,
			token, hex.EncodeToString(raw)).Scan(&leaks); err != nil {
			t.Fatal(err)
		}
		if leaks != 0 {
			t.Fatalf("token %q found in clear in the sessions table", token)
		}
	}
}
