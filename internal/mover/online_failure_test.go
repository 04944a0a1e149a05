package mover_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// onlineRun is an online move of the platform's site to shard_1 with a
// writer on it and one on its neighbour running throughout.
type onlineRun struct {
	p               *platform
	site, neighbour *movertest.Writer
	stop            context.CancelFunc
	wg              sync.WaitGroup
	id              int64
	mv              journal.Move
	err             error
}

// startWriters starts the writers; with ambiguous, their servers will go
// away under them, so a refused write may have committed all the same.
func (p *platform) startWriters(t *testing.T, ambiguous bool) *onlineRun {
	t.Helper()
	o := &onlineRun{p: p, site: p.writerFor(t, p.site), neighbour: p.writerFor(t, p.neighbours[shard.Default])}
	o.site.Ambiguous, o.neighbour.Ambiguous = ambiguous, ambiguous
	ctx, stop := context.WithCancel(context.Background())
	o.stop = stop
	o.wg.Go(func() { o.site.Run(ctx, p.site.ID) })
	o.wg.Go(func() { o.neighbour.Run(ctx, p.neighbours[shard.Default].ID) })
	return o
}

// move runs the online move with m to its end, then stops the writers.
func (o *onlineRun) move(t *testing.T, m *mover.Mover) {
	t.Helper()
	ctx := context.Background()
	plan, err := m.Plan(ctx, o.p.site.Subdomain, "shard_1", journal.ModeOnline)
	if err != nil {
		t.Fatal(err)
	}
	if o.id, err = m.Start(ctx, plan, "test"); err != nil {
		t.Fatal(err)
	}
	o.mv, o.err = m.Run(ctx, o.id)
	time.Sleep(200 * time.Millisecond)
	o.stop()
	o.wg.Wait()
}

// wantDone checks the move finished with every acknowledged write on the
// target, nothing of the tenant on the source, nothing refused and nothing
// left behind.
func (o *onlineRun) wantDone(t *testing.T) {
	t.Helper()
	if o.err != nil || o.mv.State != journal.StateDone {
		t.Fatalf("move ended %s: %v", o.mv.State, o.err)
	}
	if o.site.Refused != 0 || o.neighbour.Refused != 0 {
		t.Errorf("refused writes: site %v, neighbour %v", o.site.Failures, o.neighbour.Failures)
	}
	target, _ := o.p.set.Pool("shard_1")
	if err := o.site.Check(context.Background(), target, o.p.site.ID); err != nil {
		t.Errorf("the target does not hold what the acknowledged writes left:\n%v", err)
	}
	source, _ := o.p.set.Pool(shard.Default)
	if err := o.neighbour.Check(context.Background(), source, o.p.neighbours[shard.Default].ID); err != nil {
		t.Errorf("the neighbour's rows:\n%v", err)
	}
	if d := o.p.digest(t, shard.Default, o.p.site.ID); !d.Empty() {
		t.Errorf("rows of the tenant remain on the source: %v", d)
	}
	o.p.wantNoArtifacts(t)
}

// A write transaction that holds the write fence makes cut-overs give up
// within their budget, and the move switches once it has ended; meanwhile
// no other write waits longer than the budget.
func TestOnlineMove_LongWriteHoldsOffTheCutover(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, movertest.Options{Properties: 300})
	const budget = 600 * time.Millisecond
	o := p.startWriters(t, false)
	long := make(chan error, 1)
	m := p.mover(t, mover.Options{CutoverBudget: budget, Pause: func(point string) {
		if point != string(journal.StateVerified) {
			return
		}
		held := make(chan struct{})
		go func() {
			sc, err := tenant.Resolve(p.set, p.website(t))
			if err != nil {
				long <- err
				return
			}
			long <- sc.Write(context.Background(), func(tenant.Tx) error {
				close(held)
				time.Sleep(3 * time.Second)
				return nil
			})
		}()
		<-held
	}})
	o.move(t, m)
	if err := <-long; err != nil {
		t.Errorf("the long write: %v", err)
	}
	o.wantDone(t)
	blocked, _ := o.mv.Blocked()
	t.Logf("%d cut-over attempts; writes blocked %s by the one that switched; the site's longest write waited %s, the neighbour's %s",
		o.mv.CutoverAttempts, blocked, o.site.MaxWait, o.neighbour.MaxWait)
	if o.mv.CutoverAttempts < 2 {
		t.Errorf("%d cut-over attempts: the long write should have made the first give up", o.mv.CutoverAttempts)
	}
	if blocked <= 0 || blocked > budget {
		t.Errorf("writes blocked for %s, want within the budget of %s", blocked, budget)
	}
	if o.site.MaxWait > budget || o.neighbour.MaxWait > budget {
		t.Errorf("a write waited longer than the budget of %s: site %s, neighbour %s", budget, o.site.MaxWait, o.neighbour.MaxWait)
	}
}

// A row changed by hand on the target is found by the verify, which fails
// the move before any switch: the tenant stays active on the source with
// all its writes, and an abort leaves nothing on the target.
func TestOnlineMove_VerifyCatchesAHandEdit(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, movertest.Options{Properties: 200})
	o := p.startWriters(t, false)
	m := p.mover(t, mover.Options{Pause: func(point string) {
		if point == string(journal.StateCopied) {
			pgtest.Exec(t, p.cluster.URL["shard_1"], `UPDATE properties SET description = 'changed by hand'
				WHERE website_id = $1 AND id = (SELECT id FROM properties WHERE website_id = $1 ORDER BY id LIMIT 1)`, p.site.ID)
		}
	}})
	o.move(t, m)
	if o.err == nil || !strings.Contains(o.err.Error(), "the copy differs from the source: properties") {
		t.Fatalf("move ended %s: %v; want a verify failure naming properties", o.mv.State, o.err)
	}
	if o.mv.State != journal.StateFailed || o.mv.FailedState != journal.StateCopied || o.mv.Switched() {
		t.Errorf("journal: %s while %s", o.mv.State, o.mv.FailedState)
	}
	if w := p.website(t); w.ShardName != shard.Default || w.Status != registry.StatusActive {
		t.Errorf("registry: %s on %s, want active on the source", w.Status, w.ShardName)
	}
	if o.site.Refused != 0 {
		t.Errorf("refused writes: %v", o.site.Failures)
	}
	if _, err := m.Abort(context.Background(), o.id); err != nil {
		t.Fatal(err)
	}
	source, _ := p.set.Pool(shard.Default)
	if err := o.site.Check(context.Background(), source, p.site.ID); err != nil {
		t.Errorf("after the abort the source does not hold every acknowledged write:\n%v", err)
	}
	if d := p.digest(t, "shard_1", p.site.ID); !d.Empty() {
		t.Errorf("rows of the tenant remain on the target after the abort: %v", d)
	}
	p.wantNoArtifacts(t)
}

// The stream's replication connection cut, then the target and the source
// restarted, while the move streams: the move starts its stream again from
// what the target recorded and finishes with nothing lost or doubled.
func TestOnlineMove_StreamSurvivesCutsAndRestarts(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, movertest.Options{Properties: 300})
	o := p.startWriters(t, true)
	ctx := context.Background()
	restart := func(i int) {
		// A fast shutdown: the test servers commit without waiting for the
		// disk, so an immediate one would lose acknowledged writes.
		srv := p.cluster.Servers[i]
		if err := srv.Stop(ctx, false); err != nil {
			t.Error(err)
		}
		time.Sleep(300 * time.Millisecond)
		if err := srv.Start(ctx); err != nil {
			t.Error(err)
		}
	}
	m := p.mover(t, mover.Options{Pause: func(point string) {
		if point != string(journal.StateVerified) {
			return
		}
		// The stream runs from the verify to the switch.
		time.Sleep(300 * time.Millisecond)
		pgtest.Exec(t, p.cluster.URL[shard.Default], `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
			WHERE slot_name LIKE 'pwb_move_%' AND active`)
		time.Sleep(time.Second)
		restart(1) // shard_1, the target
		time.Sleep(time.Second)
		restart(0) // the source, which is primary too
	}})
	o.move(t, m)
	// Writes fail while their shard or primary is down; those that failed
	// at their commit may have happened. Either way they are not a failure
	// of the move, and Check accepts both outcomes for them.
	o.site.Refused, o.neighbour.Refused = 0, 0
	o.wantDone(t)
}

// A slot the source invalidated (it fell further behind than
// max_slot_wal_keep_size) cannot stream: the move copies again with a new
// slot, and finishes.
func TestOnlineMove_LostSlotCopiesAgain(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, movertest.Options{Properties: 200})
	src := p.cluster.URL[shard.Default]
	pgtest.Exec(t, src, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
	pgtest.Exec(t, src, "SELECT pg_reload_conf()")
	o := p.startWriters(t, false)
	lost := false
	m := p.mover(t, mover.Options{Pause: func(point string) {
		if point != string(journal.StateCopied) || lost {
			return
		}
		lost = true
		pgtest.Exec(t, src, "CREATE TABLE IF NOT EXISTS wal_filler (b bytea)")
		for i := 0; i < 20 && pgtest.QueryValue[string](t, src,
			"SELECT COALESCE(max(wal_status), 'none') FROM pg_replication_slots WHERE slot_name LIKE 'pwb_move_%'") != "lost"; i++ {
			pgtest.Exec(t, src, "INSERT INTO wal_filler SELECT decode(repeat(md5(g::text), 64), 'hex') FROM generate_series(1, 2000) g")
			pgtest.Exec(t, src, "SELECT pg_switch_wal()")
			pgtest.Exec(t, src, "CHECKPOINT")
		}
	}})
	o.move(t, m)
	if !lost {
		t.Fatal("the move never reached its copy's end")
	}
	if o.mv.CopyAttempts != 2 {
		t.Errorf("%d copy attempts, want 2: the lost slot should have made the move copy again", o.mv.CopyAttempts)
	}
	o.wantDone(t)
}

// Without logical decoding on the source, a move runs in freeze mode and
// its plan says why; asking for online is refused with that reason.
func TestOnlineMove_FallsBackWithoutLogicalDecoding(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, movertest.Options{Properties: 20})
	ctx := context.Background()
	pgtest.Exec(t, p.cluster.URL[shard.Default], "ALTER SYSTEM SET wal_level = 'replica'")
	srv := p.cluster.Servers[0]
	if err := srv.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The pools' connections died with the server.
	for _, pool := range []*pgxpool.Pool{p.primary, mustPool(t, p.set, shard.Default)} {
		for i := 0; i < 20; i++ {
			if _, err := pool.Exec(ctx, "SELECT 1"); err == nil {
				break
			}
		}
	}
	m := p.mover(t, mover.Options{})
	plan, err := m.Plan(ctx, p.site.Subdomain, "shard_1", "")
	if err != nil {
		t.Fatal(err)
	}
	if plan.Mode != journal.ModeFreeze || !strings.Contains(plan.ModeReason, `wal_level is replica on shard "default"; set wal_level = logical`) {
		t.Errorf("plan: mode %s (%s); want freeze, saying wal_level is not logical", plan.Mode, plan.ModeReason)
	}
	_, err = m.Plan(ctx, p.site.Subdomain, "shard_1", journal.ModeOnline)
	if err == nil || !strings.Contains(err.Error(), "an online move of tenant") || !strings.Contains(err.Error(), "wal_level is replica") {
		t.Errorf("online plan: %v; want a refusal saying wal_level is not logical", err)
	}
	id, err := m.Start(ctx, plan, "test")
	if err != nil {
		t.Fatal(err)
	}
	mv, err := m.Run(ctx, id)
	if err != nil || mv.Mode != journal.ModeFreeze || mv.FrozenAt == nil || !strings.Contains(mv.ModeReason, "wal_level") {
		t.Errorf("move: %+v, %v; want a freeze move that records why", mv, err)
	}
}

func mustPool(t *testing.T, set *shard.Set, name string) *pgxpool.Pool {
	t.Helper()
	pool, err := set.Pool(name)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// The sweep drops the slots and publications of moves that are finished or
// that the journal does not know, and leaves an unfinished move's alone.
func TestSweep_DropsWhatFinishedMovesLeft(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, movertest.Options{Properties: 20})
	ctx := context.Background()
	m := p.mover(t, mover.Options{})
	src := p.cluster.URL[shard.Default]
	// An unfinished online move, stopped after its copy: its slot and
	// publication are in use.
	stop, cancel := context.WithCancel(ctx)
	live := p.mover(t, mover.Options{Pause: func(point string) {
		if point == string(journal.StateCopied) {
			cancel()
		}
	}})
	plan, err := live.Plan(ctx, p.site.Subdomain, "shard_1", journal.ModeOnline)
	if err != nil {
		t.Fatal(err)
	}
	id, err := live.Start(ctx, plan, "test")
	if err != nil {
		t.Fatal(err)
	}
	live.Run(stop, id)
	// What a move the journal does not know left, on two shards.
	for _, s := range []string{shard.Default, "shard_2"} {
		pgtest.Exec(t, p.cluster.URL[s], "CREATE PUBLICATION pwb_move_990 FOR TABLE pages WHERE (website_id = 1)")
		pgtest.Exec(t, p.cluster.URL[s], "SELECT pg_create_logical_replication_slot('pwb_move_990', 'pgoutput')")
	}
	swept, err := m.Sweep(ctx, 5*time.Second)
	if err != nil || len(swept.Failed) > 0 {
		t.Fatalf("sweep: %v, %v", err, swept.Failed)
	}
	want := []string{"default/pwb_move_990", "shard_2/pwb_move_990"}
	if strings.Join(swept.Slots, " ") != strings.Join(want, " ") || strings.Join(swept.Publications, " ") != strings.Join(want, " ") {
		t.Errorf("swept slots %v and publications %v, want %v of each", swept.Slots, swept.Publications, want)
	}
	name := fmt.Sprintf("pwb_move_%d", id)
	if n := pgtest.QueryValue[int64](t, src, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", name); n != 1 {
		t.Errorf("the unfinished move's slot is gone")
	}
	// Once the move is aborted, what remains of it is the sweep's.
	if _, err := m.Abort(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sweep(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.wantNoArtifacts(t)
}
