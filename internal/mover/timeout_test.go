package mover_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// lock takes table's ACCESS EXCLUSIVE lock in the database at url, on a
// connection of its own, until release.
func lock(t *testing.T, url, table string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "BEGIN; LOCK TABLE "+pgx.Identifier{table}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		conn.Close(ctx)
		t.Fatal(err)
	}
	return func() { conn.Close(ctx) }
}

// holdLock takes table's lock and lets it go after d, so that the next
// statement on the table waits about that long whatever it is.
func holdLock(t *testing.T, url, table string, d time.Duration) {
	t.Helper()
	release := lock(t, url, table)
	time.AfterFunc(d, release)
}

// pwb serve runs moves on pools whose sessions have a statement_timeout
// meant for web requests. A move whose every long statement (the counts, the
// copy on both sides, the checksums, the clean-up's deletes) takes longer
// than that still completes: each lifts the timeout in its own transaction.
// A lock held elsewhere makes each of them slow; the wait counts towards the
// timeout as the work of a big tenant would.
func TestMove_LongStatementsLiftTheStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, movertest.Options{Properties: 20, Photos: 2})
	cfg, err := config.Load(p.cluster.ConfigPath, "test")
	if err != nil {
		t.Fatal(err)
	}
	const timeout, wait = 150 * time.Millisecond, 500 * time.Millisecond
	set := shard.NewSet(cfg, shard.WithStatementTimeout(timeout))
	t.Cleanup(set.Close)
	src, dst := p.cluster.URL[shard.Default], p.cluster.URL["shard_1"]
	first, last := tenant.Tables[0], tenant.Tables[len(tenant.Tables)-1]

	// Control: a statement that waits as long, without lifting, fails.
	pool, err := set.Pool("shard_1")
	if err != nil {
		t.Fatal(err)
	}
	release := lock(t, dst, first)
	_, err = pool.Exec(ctx, "SELECT count(*) FROM "+pgx.Identifier{first}.Sanitize())
	release()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("a statement waiting on a lock past the statement timeout: %v; want it cancelled (57014)", err)
	}

	m, err := mover.New(set, mover.Options{CleanupDelay: mover.NoCleanupDelay, Pause: func(point string) {
		switch journal.State(point) {
		case journal.StatePlanned: // the freeze's exact counts
			holdLock(t, src, first, wait)
		case journal.StateCopying: // the target's delete, then the source's COPY
			holdLock(t, dst, first, wait)
			holdLock(t, src, first, 2*wait)
		case journal.StateCopied: // the checksums on both sides
			holdLock(t, src, first, wait)
			holdLock(t, dst, first, wait)
		case journal.StateSwitched: // the clean-up's deletes, children first
			holdLock(t, src, last, wait)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	before := p.digests(t)
	holdLock(t, src, first, wait) // the plan's counts
	start := time.Now()
	mv := p.move(t, m, "shard_1")
	if took := time.Since(start); took < 5*wait {
		t.Errorf("the move took %s; the locks should have held it up at least %s", took, 5*wait)
	}
	if mv.State != journal.StateDone {
		t.Errorf("move %+v, want done", mv)
	}
	p.wantMoved(t, before, shard.Default, "shard_1")
}
