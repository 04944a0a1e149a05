package pgtest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
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

// ManyShards is a platform of many shard databases spread over a few
// servers: primary (both sets migrated) on the first server, and shard_1 to
// shard_n, each a copy of a migrated tenant database on its server.
type ManyShards struct {
	Servers []*pglocal.Server
	Shards  []Shard // primary first
	URL     map[string]string
}

// StartManyShards starts servers servers and creates n migrated shard
// databases over them, round robin. Copying a migrated template database
// takes a fraction of migrating each.
func StartManyShards(t testing.TB, n, servers int, opts ...Options) *ManyShards {
	t.Helper()
	ctx := context.Background()
	m := &ManyShards{Servers: Start(t, servers, opts...), URL: map[string]string{}}
	var wg sync.WaitGroup
	for i, srv := range m.Servers {
		wg.Go(func() {
			tmpl := CreateDatabase(t, srv, "pwb_test_template")
			migrate(t, tmpl, migrations.Tenant)
			if i == 0 {
				m.URL["default"] = CreateDatabase(t, srv, "pwb_test_primary")
			}
		})
	}
	wg.Wait()
	migrate(t, m.URL["default"], migrations.Global, migrations.Tenant)
	m.Shards = append(m.Shards, Shard{Key: "primary", Server: m.Servers[0], DB: "pwb_test_primary"})
	names := make([][]string, servers)
	for i := 1; i <= n; i++ {
		names[(i-1)%servers] = append(names[(i-1)%servers], fmt.Sprintf("shard_%d", i))
	}
	urls := make([]map[string]string, servers)
	for s, srv := range m.Servers {
		urls[s] = map[string]string{}
		wg.Go(func() {
			conn, err := pgx.Connect(ctx, srv.URL("postgres"))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(ctx)
			for _, name := range names[s] {
				db := "pwb_test_" + name
				if _, err := conn.Exec(ctx, "CREATE DATABASE "+db+" TEMPLATE pwb_test_template"); err != nil {
					t.Error(err)
					return
				}
				urls[s][name] = srv.URL(db)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("shard_%d", i)
		s := (i - 1) % servers
		m.URL[name] = urls[s][name]
		m.Shards = append(m.Shards, Shard{Key: name, Server: m.Servers[s], DB: "pwb_test_" + name})
	}
	return m
}

func migrate(t testing.TB, url string, sets ...migrations.Set) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, s := range sets {
		if _, err := migrations.Up(context.Background(), pool, s); err != nil {
			t.Fatal(err)
		}
	}
	if slices.ContainsFunc(sets, func(s migrations.Set) bool { return s.Name == migrations.Global.Name }) {
		if _, err := migrations.RiverUp(context.Background(), pool); err != nil {
			t.Fatal(err)
		}
	}
}
