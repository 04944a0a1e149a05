package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// platform starts primary and shard_1 on separate servers, migrated, and
// registers a standard tenant on default and a premium one on shard_1.
func platform(t *testing.T) (*pgtest.Cluster, *shard.Set, registry.Website, registry.Website) {
	t.Helper()
	ctx := context.Background()
	c, set := pgtest.MigratedCluster(t, 1)
	primary, _ := set.Primary()
	std, err := registry.Create(ctx, primary, registry.New{Subdomain: "standard-co", Name: "Standard"})
	if err != nil {
		t.Fatal(err)
	}
	prem, err := registry.Create(ctx, primary, registry.New{Subdomain: "premium-co", Name: "Premium", Tier: "premium", ShardName: "shard_1"})
	if err != nil {
		t.Fatal(err)
	}
	return c, set, std, prem
}

func currentDatabase(t *testing.T, s tenant.Scope) string {
	t.Helper()
	var db string
	if err := s.QueryRow(context.Background(), "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	return db
}

// The basic promise: a tenant on shard_1 reaches shard_1's database, a
// standard tenant reaches primary's.
func TestScope_ReachesTheTenantsShard(t *testing.T) {
	t.Parallel()
	c, set, std, prem := platform(t)
	ps, err := tenant.Resolve(set, prem)
	if err != nil {
		t.Fatal(err)
	}
	if got := currentDatabase(t, ps); got != c.Database["shard_1"] {
		t.Errorf("premium tenant's scope is on %s, want %s", got, c.Database["shard_1"])
	}
	ss, err := tenant.Resolve(set, std)
	if err != nil {
		t.Fatal(err)
	}
	if got := currentDatabase(t, ss); got != c.Database["default"] {
		t.Errorf("standard tenant's scope is on %s, want %s", got, c.Database["default"])
	}
}

// Isolation: a row written for a tenant on primary is not
// visible on shard_1, and the other way round.
func TestScope_RowsStayOnTheirShard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, set, std, prem := platform(t)
	for _, w := range []registry.Website{std, prem} {
		s, err := tenant.Resolve(set, w)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, func(tx tenant.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'about', $2)", s.WebsiteID, w.Name)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(url string, id int64) int64 {
		return pgtest.QueryValue[int64](t, url, "SELECT count(*) FROM pages WHERE website_id = $1", id)
	}
	if count(c.URL["default"], std.ID) != 1 || count(c.URL["shard_1"], std.ID) != 0 {
		t.Error("standard tenant's page should be on primary only")
	}
	if count(c.URL["shard_1"], prem.ID) != 1 || count(c.URL["default"], prem.ID) != 0 {
		t.Error("premium tenant's page should be on shard_1 only")
	}
	for _, w := range []registry.Website{std, prem} {
		s, _ := tenant.Resolve(set, w)
		has, err := tenant.HasRows(ctx, s, w.ID)
		if err != nil || !has {
			t.Errorf("HasRows(%s) = %v, %v", w.Subdomain, has, err)
		}
	}
}

func TestScope_FailsClosedOnMissingShard(t *testing.T) {
	t.Parallel()
	_, set, std, _ := platform(t)
	std.ShardName = "shard_9"
	if _, err := tenant.Resolve(set, std); !errors.Is(err, tenant.ErrShardMissing) {
		t.Errorf("Resolve on an unconfigured shard: %v, want ErrShardMissing", err)
	}
}

// Write takes the shared fence: an exclusive holder of the tenant's fence
// blocks writers until it lets go.
func TestScope_WriteWaitsForExclusiveFence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, set, std, _ := platform(t)
	s, _ := tenant.Resolve(set, std)
	pool, _ := set.Primary()
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", std.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Write(ctx, func(tx tenant.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'fenced', 'F')", s.WebsiteID)
			return err
		})
	}()
	// The writer must be waiting on the fence, seen from the server's side.
	waiting := false
	for range 500 { // up to 10 s on a busy machine
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = $1`, std.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			waiting = true
			break
		}
		select {
		case err := <-done:
			t.Fatalf("write finished while the fence was held exclusively: %v", err)
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !waiting {
		t.Fatal("writer never waited on the fence")
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write after the fence was released: %v", err)
	}
}

// Writes of a tenant on primary check the registry inside their own
// transaction, so more concurrent writes than the pool has connections do not
// wait on each other forever.
func TestScope_ConcurrentWritesOnPrimaryDoNotExhaustThePool(t *testing.T) {
	t.Parallel()
	_, set, std, _ := platform(t)
	s, err := tenant.Resolve(set, std)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := set.Primary()
	n := int(pool.Config().MaxConns) * 3
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- s.Write(ctx, func(tx tenant.Tx) error {
				_, err := tx.Exec(ctx, "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, $2, 'x')",
					std.ID, fmt.Sprintf("p%d", i))
				time.Sleep(20 * time.Millisecond)
				return err
			})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
