package shard_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// The statement timeout reaches every session of a direct entry, and none
// of an entry behind a transaction pooler, which would refuse the start-up
// parameter.
func TestStatementTimeout_DirectEntriesOnly(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, 1)[0]
	for _, db := range []string{"direct", "pooled", "unprepared"} {
		pgtest.CreateDatabase(t, srv, db)
	}
	path := pgtest.WriteConfig(t,
		pgtest.Shard{Key: "primary", Server: srv, DB: "direct"},
		pgtest.Shard{Key: "shard_1", Server: srv, DB: "pooled", Settings: map[string]string{"advisory_locks": "false"}},
		pgtest.Shard{Key: "shard_2", Server: srv, DB: "unprepared", Settings: map[string]string{"prepared_statements": "false"}})
	cfg, err := config.Load(path, "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg, shard.WithStatementTimeout(1500*time.Millisecond))
	t.Cleanup(set.Close)
	ctx := context.Background()
	for name, want := range map[string]string{shard.Default: "1500ms", "shard_1": "0", "shard_2": "0"} {
		pool, err := set.Pool(name)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: statement_timeout %s, want %s", name, got, want)
		}
	}
	plain := shard.NewSet(cfg)
	t.Cleanup(plain.Close)
	pool, err := plain.Primary()
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&got); err != nil || got != "0" {
		t.Errorf("without the option: statement_timeout %q (%v), want the server's 0", got, err)
	}
}

// Connections that sat idle past the ping threshold and that the network
// then silently dropped cost a caller one short ping each, not its whole
// deadline: the next query, under a 1.5 s deadline as a web request has, is
// answered on a new connection.
func TestLiveness_StaleConnectionsDoNotUseUpTheDeadline(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, 1)[0]
	pgtest.CreateDatabase(t, srv, "stale")
	proxy := pgtest.NewStallProxy(t, srv.Host()+":"+strconv.Itoa(srv.Port()))
	const conns = 4
	path := pgtest.WriteConfigWith(t, pgtest.ConfigOptions{Entry: map[string]string{"pool": strconv.Itoa(conns)}},
		pgtest.Shard{Key: "primary", Server: srv, DB: "stale", Port: proxy.Port()})
	cfg, err := config.Load(path, "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg, shard.WithConnectTimeout(time.Second))
	t.Cleanup(set.Close)
	pool, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	fill(t, pool, conns)
	time.Sleep(1200 * time.Millisecond) // idle past the ping threshold
	if n := proxy.Stall(); n != conns {
		t.Fatalf("%d connections stalled, want the pool's %d", n, conns)
	}
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		start := time.Now()
		var one int
		err := pool.QueryRow(ctx, "SELECT 1").Scan(&one)
		cancel()
		took := time.Since(start)
		t.Logf("query %d after the stall: %s", i+1, took)
		if err != nil {
			t.Fatalf("query %d after the pool's connections went stale: %v after %s", i+1, err, took)
		}
	}
	if got := pool.Stat().TotalConns(); got > conns {
		t.Errorf("%d connections in the pool, want at most %d", got, conns)
	}
}

// fill makes the pool hold n connections, each used once.
func fill(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	var held []*pgxpool.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c, err := pool.Acquire(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
				t.Error(err)
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, c := range held {
		c.Release()
	}
	if got := pool.Stat().IdleConns(); int(got) != n {
		t.Fatalf("%d idle connections, want %d", got, n)
	}
}
