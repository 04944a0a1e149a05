package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

func primary(t *testing.T) *pgxpool.Pool { return pgtest.MigratedPrimary(t) }

func TestNormalizeSubdomain(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"acme": "acme", " Acme ": "acme", "a1": "a1", "my-agency-2": "my-agency-2",
		strings.Repeat("x", 63): strings.Repeat("x", 63),
	} {
		got, err := registry.NormalizeSubdomain(in)
		if err != nil || got != want {
			t.Errorf("NormalizeSubdomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", strings.Repeat("x", 64), "-acme", "acme-", "ac_me", "ac.me", "ac me",
		"ümlaut", "admin", "WWW", "api", "app", "mail", "static", "<script>", "a'b"} {
		if _, err := registry.NormalizeSubdomain(in); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("NormalizeSubdomain(%q): %v, want ErrInvalid", in, err)
		}
	}
}

func TestNormalizeDomain(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"": "", "WWW.Example.COM": "www.example.com", " acme-homes.co.uk. ": "acme-homes.co.uk"} {
		if got, err := registry.NormalizeDomain(in); err != nil || got != want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"localhost", "https://example.com", "example.com/path", "example.com:8080", "exa mple.com",
		"-bad.example.com", "a..b", strings.Repeat("a", 64) + ".com", strings.Repeat("abcdefghi.", 26) + "com", "ex_ample.com"} {
		if _, err := registry.NormalizeDomain(in); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("NormalizeDomain(%q): %v, want ErrInvalid", in, err)
		}
	}
}

func TestRegistry_CRUD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)

	w, err := registry.Create(ctx, db, registry.New{Subdomain: "Acme", Name: " Acme Realty ", CustomDomain: "WWW.Acme.Example"})
	if err != nil {
		t.Fatal(err)
	}
	if w.ID == 0 || w.Subdomain != "acme" || w.Name != "Acme Realty" || w.Tier != "standard" ||
		w.ShardName != "default" || w.Status != "active" || w.CustomDomain != "www.acme.example" || w.CreatedAt.IsZero() {
		t.Errorf("created %+v", w)
	}
	p, err := registry.Create(ctx, db, registry.New{Subdomain: "prestige", Name: "Prestige", Tier: "premium", ShardName: "shard_1"})
	if err != nil {
		t.Fatal(err)
	}

	for _, ref := range []string{"acme", "ACME", " acme", "1"} {
		got, err := registry.Find(ctx, db, ref)
		if err != nil || got.ID != w.ID {
			t.Errorf("Find(%q) = %+v, %v", ref, got, err)
		}
	}
	if _, err := registry.Find(ctx, db, "nobody"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Find(nobody): %v", err)
	}
	if _, err := registry.Get(ctx, db, 999); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Get(999): %v", err)
	}

	if err := registry.SetShard(ctx, db, w.ID, "shard_2"); err != nil {
		t.Fatal(err)
	}
	if err := registry.SetStatus(ctx, db, w.ID, registry.StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	got, _ := registry.Get(ctx, db, w.ID)
	if got.ShardName != "shard_2" || got.Status != "read_only" || !got.UpdatedAt.After(w.UpdatedAt) {
		t.Errorf("after updates: %+v", got)
	}
	if err := registry.SetStatus(ctx, db, w.ID, "deleted"); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("SetStatus(deleted): %v", err)
	}
	if err := registry.SetShard(ctx, db, 999, "default"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("SetShard(999): %v", err)
	}
	if err := registry.SetTier(ctx, db, w.ID, registry.TierPremium); err != nil {
		t.Fatal(err)
	}
	if got, _ := registry.Get(ctx, db, w.ID); got.Tier != registry.TierPremium {
		t.Errorf("after SetTier(premium): %+v", got)
	}
	for tier, want := range map[string]error{"gold": registry.ErrInvalid, "": registry.ErrInvalid, "Premium": registry.ErrInvalid} {
		if err := registry.SetTier(ctx, db, w.ID, tier); !errors.Is(err, want) {
			t.Errorf("SetTier(%q): %v, want %v", tier, err, want)
		}
	}
	if err := registry.SetTier(ctx, db, 999, registry.TierPremium); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("SetTier(999): %v", err)
	}
	if err := registry.SetTier(ctx, db, w.ID, registry.TierStandard); err != nil {
		t.Fatal(err)
	}
	if got, _ := registry.Get(ctx, db, w.ID); got.Tier != registry.TierStandard {
		t.Errorf("after SetTier(standard): %+v", got)
	}

	counts, err := registry.CountByShard(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if counts["shard_2"] != (registry.ShardCount{Tenants: 1}) || counts["shard_1"] != (registry.ShardCount{Tenants: 1, Premium: 1}) {
		t.Errorf("counts %+v", counts)
	}
	all, err := registry.List(ctx, db)
	if err != nil || len(all) != 2 || all[0].ID != w.ID || all[1].ID != p.ID {
		t.Errorf("List = %+v, %v", all, err)
	}
}

func TestRegistry_CreateRefusesConflictsAndBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := primary(t)
	if _, err := registry.Create(ctx, db, registry.New{Subdomain: "acme", Name: "Acme", CustomDomain: "acme.example"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []registry.New{
		{Subdomain: "ACME", Name: "Dup"},
		{Subdomain: "other", Name: "Dup domain", CustomDomain: "Acme.Example"},
	} {
		if _, err := registry.Create(ctx, db, n); !errors.Is(err, registry.ErrConflict) {
			t.Errorf("Create(%+v): %v, want ErrConflict", n, err)
		}
	}
	for _, n := range []registry.New{
		{Subdomain: "ok", Name: ""},
		{Subdomain: "ok", Name: "X", Tier: "gold"},
		{Subdomain: "admin", Name: "X"},
	} {
		if _, err := registry.Create(ctx, db, n); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Create(%+v): %v, want ErrInvalid", n, err)
		}
	}
	// The table enforces the rules too, for writers that bypass this package.
	if _, err := db.Exec(ctx, "INSERT INTO websites (subdomain, name) VALUES ('Bad_Sub', 'x')"); err == nil {
		t.Error("the websites table accepted an invalid subdomain")
	}
	if _, err := db.Exec(ctx, "INSERT INTO websites (subdomain, name, tier) VALUES ('fine', 'x', 'gold')"); err == nil {
		t.Error("the websites table accepted an invalid tier")
	}
	if n := pgtest.QueryValue[int64](t, db.Config().ConnString(), "SELECT count(*) FROM websites"); n != 1 {
		t.Errorf("refused creates wrote rows: %d websites", n)
	}
}

// Every change to the registry is announced, so app processes can drop
// their cached copy at once.
func TestRegistry_ChangesAreNotified(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := primary(t)
	conn, err := pgx.Connect(ctx, db.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "LISTEN pwb_websites"); err != nil {
		t.Fatal(err)
	}
	w, err := registry.Create(ctx, db, registry.New{Subdomain: "acme", Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	if err := registry.SetShard(ctx, db, w.ID, "shard_1"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n.Payload != "1" {
			t.Errorf("notification payload %q, want the website id", n.Payload)
		}
	}
}
