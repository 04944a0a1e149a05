package shard_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// At the cap, a new connection closes an idle one of another pool, but
// primary's last only after waiting a moment for anything else: every
// request needs primary, and a background visit of many shards, which
// closes what it opens, would otherwise take it again and again.
func TestBudget_PrimaryKeepsItsLastIdleConnection(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, 1)[0]
	shards := []pgtest.Shard{{Key: "primary", Server: srv, DB: "main"}}
	pgtest.CreateDatabase(t, srv, "main")
	for _, name := range []string{"shard_1", "shard_2"} {
		pgtest.CreateDatabase(t, srv, name)
		shards = append(shards, pgtest.Shard{Key: name, Server: srv, DB: name})
	}
	path := pgtest.WriteConfigWith(t, pgtest.ConfigOptions{Env: map[string]string{"max_connections_total": "2"}}, shards...)
	cfg, err := config.Load(path, "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg)
	defer set.Close()
	ctx := context.Background()
	pool := func(name string) interface {
		Ping(context.Context) error
	} {
		p, err := set.Pool(name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	idle := func(name string) int32 { return set.Stats()[name].IdleConns() }

	// One idle connection on primary, one held on shard_1: the cap is
	// reached.
	if err := pool(shard.Default).Ping(ctx); err != nil {
		t.Fatal(err)
	}
	p1, _ := set.Pool("shard_1")
	conn, err := p1.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Released before the set is closed, even when the test stops early.
	release := sync.OnceFunc(conn.Release)
	defer release()
	// shard_2 waits for a slot, leaving primary's last idle connection
	// alone for a moment, then, under a cap this small, where nothing else
	// would ever free one, takes it all the same.
	start := time.Now()
	pinged := make(chan error, 1)
	go func() { pinged <- pool("shard_2").Ping(ctx) }()
	select {
	case err := <-pinged:
		t.Fatalf("shard_2 got a connection after %s (%v) with only primary's last one idle; want a wait first", time.Since(start), err)
	case <-time.After(150 * time.Millisecond):
	}
	if n := idle(shard.Default); n != 1 {
		t.Errorf("primary has %d idle connections while shard_2 waits; want its last one kept", n)
	}
	if err := <-pinged; err != nil {
		t.Fatalf("shard_2 waiting past the grace: %v", err)
	}
	if n := idle(shard.Default); n != 0 {
		t.Errorf("primary has %d idle connections; want its last one taken after the grace", n)
	}

	// Primary again (taking shard_2's idle connection), then shard_1's
	// connection idle too: shard_2 takes shard_1's, not primary's.
	if err := pool(shard.Default).Ping(ctx); err != nil {
		t.Fatal(err)
	}
	release()
	if err := pool("shard_2").Ping(ctx); err != nil {
		t.Fatalf("shard_2 with shard_1's connection idle: %v", err)
	}
	if n := idle(shard.Default); n != 1 {
		t.Errorf("primary has %d idle connections; want 1", n)
	}
	if b := set.Budget(); b.Steals != 3 || b.Peak > 2 {
		t.Errorf("budget %+v; want three connections closed for others, never over the cap", b)
	}
}
