package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// MigratedCluster is StartCluster with both migration sets applied, and the
// shard set the test talks to it through (closed at cleanup). opts apply to
// the set, such as a short connect timeout.
func MigratedCluster(t testing.TB, shards int, opts ...shard.Option) (*Cluster, *shard.Set) {
	t.Helper()
	c := StartCluster(t, shards)
	cfg, err := config.Load(c.ConfigPath, "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg, opts...)
	t.Cleanup(set.Close)
	for _, r := range migrations.MigrateShards(context.Background(), set, migrations.Options{}, nil) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	return c, set
}

// MigratedPrimary is one fresh database with the global set applied: the
// registry, users and sessions, for tests that need nothing else.
func MigratedPrimary(t testing.TB) *pgxpool.Pool {
	t.Helper()
	srv := Start(t, 1)[0]
	pool, err := pgxpool.New(context.Background(), CreateDatabase(t, srv, "primary"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := migrations.Up(context.Background(), pool, migrations.Global); err != nil {
		t.Fatal(err)
	}
	return pool
}
