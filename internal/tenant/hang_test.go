package tenant_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// hangSlack is what a call may take past its deadline: pgx notices the
// deadline on the socket, and a busy test machine is slow to schedule.
const hangSlack = 300 * time.Millisecond

// timedOut reports whether err is a deadline as pgx reports it, in any of its
// forms.
func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
}

// A query or write on a hung shard ends at its context's deadline, the
// connection it was stuck on is not given back to the pool, and once the
// server runs again the scope works without anything being reset.
func TestScope_HungShardEndsAtTheDeadline(t *testing.T) {
	t.Parallel()
	c, set, _, prem := platform(t)
	s, err := tenant.Resolve(set, prem)
	if err != nil {
		t.Fatal(err)
	}
	count := func(ctx context.Context) (int, error) {
		var n int
		err := s.QueryRow(ctx, "SELECT count(*) FROM pages WHERE website_id = $1", s.WebsiteID).Scan(&n)
		return n, err
	}
	if _, err := count(context.Background()); err != nil {
		t.Fatal(err)
	}
	pool, _ := set.Pool("shard_1")
	if idle := pool.Stat().IdleConns(); idle != 1 {
		t.Fatalf("%d idle connections after one query, want 1", idle)
	}

	resume := pgtest.Hang(t, c.Servers[1])
	const deadline = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	start := time.Now()
	_, err = count(ctx)
	cancel()
	if took := time.Since(start); err == nil || !timedOut(err) || took > deadline+hangSlack {
		t.Fatalf("query on a hung shard: %v after %s; want a timeout at %s", err, took, deadline)
	}
	if idle := pool.Stat().IdleConns(); idle != 0 {
		t.Errorf("%d idle connections after the query stuck on one; want it discarded", idle)
	}

	ctx, cancel = context.WithTimeout(context.Background(), deadline)
	start = time.Now()
	err = s.Write(ctx, func(tx tenant.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'hung', 'Hung')", s.WebsiteID)
		return err
	})
	cancel()
	if took := time.Since(start); err == nil || !timedOut(err) || took > deadline+hangSlack {
		t.Fatalf("write on a hung shard: %v after %s; want a timeout at %s", err, took, deadline)
	}

	resume()
	waitFor(t, 10*time.Second, "the scope to work again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := count(ctx)
		return err == nil
	})
	if n := pgtest.QueryValue[int64](t, c.URL["shard_1"], "SELECT count(*) FROM pages WHERE slug = 'hung'"); n != 0 {
		t.Errorf("the write that timed out left %d row(s)", n)
	}
}

// A write whose registry check waits on a hung primary ends at its deadline,
// rolls back on the tenant's shard, and leaves the write fence free there.
func TestScope_WriteWithPrimaryHungEndsAtTheDeadline(t *testing.T) {
	t.Parallel()
	c, set, _, prem := platform(t)
	s, err := tenant.Resolve(set, prem)
	if err != nil {
		t.Fatal(err)
	}
	write := func(ctx context.Context) error {
		return s.Write(ctx, func(tx tenant.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'hung-primary', 'x')", s.WebsiteID)
			return err
		})
	}
	resume := pgtest.Hang(t, c.Servers[0])
	const deadline = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	start := time.Now()
	err = write(ctx)
	cancel()
	if took := time.Since(start); err == nil || !timedOut(err) || took > deadline+hangSlack {
		t.Fatalf("write with primary hung: %v after %s; want a timeout at %s", err, took, deadline)
	}
	// The shard is not hung: its side of the write is gone, fence and all,
	// while primary is still stopped.
	shardPool, _ := set.Pool("shard_1")
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitFor(t, 5*time.Second, "the write fence to be free", func() bool {
		var got bool
		err := pgx.BeginFunc(ctx, shardPool, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", s.WebsiteID).Scan(&got)
		})
		return err == nil && got
	})
	resume()
	if err := write(ctx); err != nil {
		t.Fatalf("write once primary runs again: %v", err)
	}
	if n := pgtest.QueryValue[int64](t, c.URL["shard_1"], "SELECT count(*) FROM pages WHERE slug = 'hung-primary'"); n != 1 {
		t.Errorf("%d row(s) written; want only the one written after primary came back", n)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
