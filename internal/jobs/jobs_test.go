package jobs_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/jobs"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/moves"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// The environment of the worker process TestRecoverOrphans_RequeuesADead
// ProcessesJobOnce starts: the test binary re-executed with workerEnv set
// runs a job queue on the cluster of workerConfigEnv whose mover stops for
// good at workerPauseEnv, until it is killed.
const (
	workerEnv       = "PWB_JOBS_TEST_WORKER"
	workerConfigEnv = "PWB_JOBS_TEST_CONFIG"
	workerPauseEnv  = "PWB_JOBS_TEST_PAUSE_AT"
	workerPausedMsg = "worker paused at "
)

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(runWorker())
	}
	os.Exit(m.Run())
}

// runWorker is the worker process: a queue that works jobs, its mover
// blocking forever at the pause point. It exits by itself after two minutes
// in case its test died without killing it.
func runWorker() int {
	cfg, err := config.Load(os.Getenv(workerConfigEnv), "test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	set := shard.NewSet(cfg)
	at := os.Getenv(workerPauseEnv)
	svc, err := moves.New(set, moves.Options{Mover: mover.Options{Pause: func(point string) {
		if point == at {
			fmt.Fprintln(os.Stderr, workerPausedMsg+point)
			select {}
		}
	}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	q, err := jobs.New(set, svc, jobs.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), Work: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := q.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	time.Sleep(2 * time.Minute)
	return 2
}

const actor = "test:ops@example.com"

// moveLimit bounds the wait for a queued move to end; a move of these
// tenants takes a second or two on an idle machine.
const moveLimit = 45 * time.Second

// env is one throw-away platform: primary and shard_1. Its set is the
// test's own; every queue and mover under test gets a set of its own, with
// its own pools, as a process would.
type env struct {
	t       *testing.T
	cluster *pgtest.Cluster
	cfg     *config.Config
	set     *shard.Set
	primary *pgxpool.Pool
	// frees lets every paused mover go, before a queue stops at cleanup.
	frees []func()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c, set := pgtest.MigratedCluster(t, 1)
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(c.ConfigPath, "test")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, cluster: c, cfg: cfg, set: set, primary: primary}
}

// newSet is a shard set for code under test, closed at cleanup.
func (e *env) newSet() *shard.Set {
	set := shard.NewSet(e.cfg)
	e.t.Cleanup(set.Close)
	return set
}

func (e *env) pool(name string) *pgxpool.Pool {
	e.t.Helper()
	p, err := e.set.Pool(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// tenant registers a standard tenant on default and fills it.
func (e *env) tenant(sub string, o movertest.Options) registry.Website {
	e.t.Helper()
	ctx := context.Background()
	w, err := registry.Create(ctx, e.primary, registry.New{Subdomain: sub, Name: sub, ShardName: shard.Default})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := movertest.Fill(ctx, e.primary, w.ID, o); err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (e *env) website(id int64) registry.Website {
	e.t.Helper()
	w, err := registry.Get(context.Background(), e.primary, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (e *env) digest(shardName string, id int64) movertest.Digest {
	e.t.Helper()
	ctx := context.Background()
	conn, err := e.pool(shardName).Acquire(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Release()
	d, err := movertest.TakeDigest(ctx, conn.Conn(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// testQueue is a queue with the move service it runs moves for, and the
// service's queued operations under short names.
type testQueue struct {
	*jobs.Queue
	svc *moves.Service
}

func (q testQueue) EnqueueMove(ctx context.Context, p mover.Plan, actor string) (int64, error) {
	return q.svc.Start(ctx, p, actor, true)
}

func (q testQueue) EnqueueResume(ctx context.Context, id int64, actor string) error {
	_, err := q.svc.Resume(ctx, id, actor, true)
	return err
}

func (q testQueue) EnqueueAbort(ctx context.Context, id int64, actor string) error {
	_, err := q.svc.Abort(ctx, id, actor, true)
	return err
}

func (q testQueue) Mover() *mover.Mover { return q.svc.Mover() }

// queueOptions are a queue's options and its moves' mover options.
type queueOptions struct {
	jobs.Options
	Mover mover.Options
}

// queue builds a queue; one that works jobs is started, and stopped at
// cleanup.
func (e *env) queue(o queueOptions) testQueue {
	e.t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Mover.CleanupDelay == 0 {
		o.Mover.CleanupDelay = mover.NoCleanupDelay
	}
	set := e.newSet()
	svc, err := moves.New(set, moves.Options{Mover: o.Mover})
	if err != nil {
		e.t.Fatal(err)
	}
	q, err := jobs.New(set, svc, o.Options)
	if err != nil {
		e.t.Fatal(err)
	}
	if o.Work {
		if err := q.Start(context.Background()); err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() {
			for _, free := range e.frees {
				free()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := q.Stop(ctx); err != nil {
				e.t.Errorf("stopping the queue: %v", err)
			}
		})
	}
	return testQueue{Queue: q, svc: svc}
}

func (e *env) plan(q testQueue, w registry.Website) mover.Plan {
	e.t.Helper()
	p, err := q.Mover().Plan(context.Background(), w.Subdomain, "shard_1", journal.ModeFreeze)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) move(id int64) journal.Move {
	e.t.Helper()
	m, err := journal.Get(context.Background(), e.primary, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// waitMove polls the journal until move id passes ok.
func (e *env) waitMove(id int64, what string, ok func(journal.Move) bool) journal.Move {
	e.t.Helper()
	deadline := time.Now().Add(moveLimit)
	for {
		m := e.move(id)
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("move %d is not %s after %s: %+v", id, what, moveLimit, m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDone waits until move id is done or aborted, or failed with no job
// left to run it, and returns it.
func (e *env) waitDone(id int64) journal.Move {
	e.t.Helper()
	return e.waitMove(id, "done", func(m journal.Move) bool {
		if m.Finished() {
			return true
		}
		if m.State != journal.StateFailed {
			return false
		}
		for _, j := range e.jobs(id) {
			if !j.Cancelled && (j.State == "available" || j.State == "running" || j.State == "scheduled" || j.State == "retryable" || j.State == "pending") {
				return false
			}
		}
		return true
	})
}

// jobRow is a move job as River's table has it.
type jobRow struct {
	ID        int64
	State     string
	Attempt   int
	Action    string
	Actor     string
	Recovered bool
	Cancelled bool // cancel_attempted_at in its metadata
}

func (e *env) jobs(moveID int64) []jobRow {
	e.t.Helper()
	rows, err := e.primary.Query(context.Background(), `SELECT id, state::text, attempt, args->>'action', args->>'actor',
			COALESCE((args->>'recovered')::boolean, false), metadata ? 'cancel_attempted_at'
		FROM river_job WHERE kind = 'move' AND (args->>'move_id')::bigint = $1 ORDER BY id`, moveID)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[jobRow])
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// waitJobs polls until move id's jobs pass ok: River records a job's end
// a moment after the work returns.
func (e *env) waitJobs(id int64, what string, ok func([]jobRow) bool) []jobRow {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		js := e.jobs(id)
		if ok(js) {
			return js
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("jobs of move %d: want %s, have %+v", id, what, js)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// oneCompletedJob waits until move id has exactly one job, completed on its
// first attempt, and returns it.
func (e *env) oneCompletedJob(id int64, action string) jobRow {
	e.t.Helper()
	js := e.waitJobs(id, "one completed job", func(js []jobRow) bool { return len(js) != 1 || js[0].State == "completed" })
	if len(js) != 1 || js[0].State != "completed" || js[0].Attempt != 1 || js[0].Action != action || js[0].Recovered {
		e.t.Errorf("jobs of move %d: %+v, want one %s job, completed on attempt 1", id, js, action)
	}
	return js[0]
}

func (e *env) countMoveJobs() int {
	return pgtest.QueryValue[int](e.t, e.cluster.URL[shard.Default], "SELECT count(*)::int FROM river_job WHERE kind = 'move'")
}

// auditLine is one line of the audit log, as the tests compare it.
type auditLine struct{ Action, Outcome, Detail string }

func (a auditLine) String() string { return a.Action + " " + a.Outcome + " " + a.Detail }

func (e *env) audit(where string, arg any) []auditLine {
	e.t.Helper()
	rows, err := e.primary.Query(context.Background(), "SELECT action, outcome, detail FROM audit_log WHERE "+where+" ORDER BY id", arg)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[auditLine])
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// wantAudit checks the audit lines of move id: actions and outcomes exactly,
// and each detail contains the wanted one.
func (e *env) wantAudit(id int64, want ...auditLine) {
	e.t.Helper()
	got := e.audit("move_id = $1", id)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Action == want[i].Action && got[i].Outcome == want[i].Outcome && strings.Contains(got[i].Detail, want[i].Detail)
	}
	if !ok {
		e.t.Errorf("audit log of move %d:\n%v\nwant:\n%v", id, got, want)
	}
}

// wantRefused checks a refusal: journal.ErrRefused, saying want.
func wantRefused(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, journal.ErrRefused) || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want a refusal saying %q", err, want)
	}
}

// wantMoved checks a finished move of w: active on shard_1 with the rows it
// had, none left on default.
func (e *env) wantMoved(w registry.Website, before movertest.Digest) {
	e.t.Helper()
	if got := e.website(w.ID); got.ShardName != "shard_1" || got.Status != registry.StatusActive {
		e.t.Errorf("registry: %s is %s on %s, want active on shard_1", w.Subdomain, got.Status, got.ShardName)
	}
	if diff := cmp.Diff(before, e.digest("shard_1", w.ID)); diff != "" {
		e.t.Errorf("rows of %s on shard_1 differ from those on default before the move (-before +after):\n%s", w.Subdomain, diff)
	}
	if d := e.digest(shard.Default, w.ID); !d.Empty() {
		e.t.Errorf("rows of %s remain on default: %v", w.Subdomain, d)
	}
}

// gate is a pause hook that stops the mover at one point until released.
type gate struct {
	at       string
	reached  chan struct{}
	release  chan struct{}
	once     sync.Once
	freeOnce sync.Once
}

// gate returns a gate, opened at the latest when the test ends, before
// any queue stops, so that a failed test does not hang.
func (e *env) gate(at string) *gate {
	g := &gate{at: at, reached: make(chan struct{}), release: make(chan struct{})}
	e.frees = append(e.frees, g.free)
	e.t.Cleanup(g.free)
	return g
}

func (g *gate) pause(point string) {
	if point == g.at {
		g.once.Do(func() { close(g.reached) })
		<-g.release
	}
}

func (g *gate) free() { g.freeOnce.Do(func() { close(g.release) }) }

func (g *gate) wait(t *testing.T) {
	t.Helper()
	select {
	case <-g.reached:
	case <-time.After(moveLimit):
		t.Fatalf("the mover did not reach %s within %s", g.at, moveLimit)
	}
}

// A move queued with EnqueueMove runs to done in a queue that works jobs:
// one job, completed on its first attempt; the tenant's rows on shard_1
// exactly as they were on default; a neighbour untouched; the audit log has
// the queued and done lines. A resume or abort of the done move is refused.
func TestEnqueueMove_RunsTheMoveToDone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	site := e.tenant("enqueued", movertest.Options{Properties: 120, Photos: 4})
	neighbour := e.tenant("enqueued-neighbour", movertest.Options{Properties: 20, Photos: 2})
	before, neighbourBefore := e.digest(shard.Default, site.ID), e.digest(shard.Default, neighbour.ID)

	q := e.queue(queueOptions{Options: jobs.Options{Work: true}})
	start := time.Now()
	id, err := q.EnqueueMove(ctx, e.plan(q, site), actor)
	if err != nil {
		t.Fatal(err)
	}
	m := e.waitDone(id)
	t.Logf("move %d ended as %s in %s", id, m.State, time.Since(start).Round(time.Millisecond))
	if m.State != journal.StateDone || m.StartedBy != actor || m.Target != "shard_1" {
		t.Fatalf("journal: %+v", m)
	}
	e.wantMoved(site, before)
	if diff := cmp.Diff(neighbourBefore, e.digest(shard.Default, neighbour.ID)); diff != "" {
		t.Errorf("the neighbour's rows changed (-before +after):\n%s", diff)
	}
	job := e.oneCompletedJob(id, "move")
	if job.Actor != actor {
		t.Errorf("job actor %q, want %q", job.Actor, actor)
	}

	wantRefused(t, q.EnqueueResume(ctx, id, actor), "already done")
	wantRefused(t, q.EnqueueAbort(ctx, id, actor), "already done")
	e.wantAudit(id,
		auditLine{"move", "queued", ""}, auditLine{"move", "done", ""},
		auditLine{"resume", "refused", "already done"}, auditLine{"abort", "refused", "already done"})
	if n := e.countMoveJobs(); n != 1 {
		t.Errorf("%d move jobs, want 1: refusals queue nothing", n)
	}
}

// The journal row and the job are written in one transaction: a refused
// plan leaves neither (and a refused audit line), a job that cannot be
// written takes the journal row with it, and a move that is queued has
// both. Resume and abort refuse unknown moves and moves whose job waits.
func TestEnqueueMove_JournalAndJobCommitTogether(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	site := e.tenant("atomic", movertest.Options{Properties: 30, Photos: 1})
	q := e.queue(queueOptions{Options: jobs.Options{}}) // inserts only: queued jobs stay queued
	moves := func() int {
		return pgtest.QueryValue[int](t, e.cluster.URL[shard.Default], "SELECT count(*)::int FROM moves WHERE website_id = $1", site.ID)
	}

	// Refused: the tenant changed since the plan.
	plan := e.plan(q, site)
	if err := registry.SetStatus(ctx, e.primary, site.ID, registry.StatusMaintenance); err != nil {
		t.Fatal(err)
	}
	id, err := q.EnqueueMove(ctx, plan, actor)
	if !errors.Is(err, journal.ErrRefused) || !strings.Contains(err.Error(), "changed since the plan") || id != 0 {
		t.Errorf("EnqueueMove after the tenant changed: %d, %v; want a refusal saying it changed since the plan", id, err)
	}
	if n, j := moves(), e.countMoveJobs(); n != 0 || j != 0 {
		t.Errorf("after a refused move: %d journal rows and %d move jobs, want none", n, j)
	}
	if err := registry.SetStatus(ctx, e.primary, site.ID, registry.StatusActive); err != nil {
		t.Fatal(err)
	}

	// The job cannot be written: the journal row is rolled back with it.
	pgtest.Exec(t, e.cluster.URL[shard.Default], `CREATE FUNCTION refuse_move_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.kind = 'move' THEN RAISE EXCEPTION 'no move jobs today'; END IF; RETURN NEW; END $$`)
	pgtest.Exec(t, e.cluster.URL[shard.Default], `CREATE TRIGGER refuse_move_jobs BEFORE INSERT ON river_job
		FOR EACH ROW EXECUTE FUNCTION refuse_move_jobs()`)
	id, err = q.EnqueueMove(ctx, e.plan(q, site), actor)
	if err == nil || errors.Is(err, journal.ErrRefused) || !strings.Contains(err.Error(), "no move jobs today") || id != 0 {
		t.Errorf("EnqueueMove when the job cannot be written: %d, %v; want the insert's error", id, err)
	}
	if n, j := moves(), e.countMoveJobs(); n != 0 || j != 0 {
		t.Errorf("after a job that could not be written: %d journal rows and %d move jobs, want none", n, j)
	}
	pgtest.Exec(t, e.cluster.URL[shard.Default], "DROP TRIGGER refuse_move_jobs ON river_job")
	if got := e.website(site.ID); got.Status != registry.StatusActive || got.ShardName != shard.Default {
		t.Errorf("registry after the failed enqueue: %s on %s, want active on default", got.Status, got.ShardName)
	}

	// Queued: both, and the job carries the move's id.
	id, err = q.EnqueueMove(ctx, e.plan(q, site), actor)
	if err != nil {
		t.Fatal(err)
	}
	if m := e.move(id); m.State != journal.StatePlanned || moves() != 1 {
		t.Errorf("journal after EnqueueMove: %+v (%d rows of the tenant)", m, moves())
	}
	if js := e.jobs(id); len(js) != 1 || js[0].State != "available" || js[0].Action != "move" || js[0].Actor != actor {
		t.Errorf("jobs after EnqueueMove: %+v, want one available move job", js)
	}
	// A second move of the tenant is refused by the journal.
	if _, err := q.EnqueueMove(ctx, plan, actor); !errors.Is(err, journal.ErrRefused) || !strings.Contains(err.Error(), fmt.Sprintf("move %d", id)) {
		t.Errorf("second EnqueueMove: %v, want a refusal naming move %d", err, id)
	}
	wantRefused(t, q.EnqueueResume(ctx, id, actor), "running or queued already")
	wantRefused(t, q.EnqueueAbort(ctx, id, actor), "running or queued already")
	if n, j := moves(), e.countMoveJobs(); n != 1 || j != 1 {
		t.Errorf("after the refusals: %d journal rows and %d move jobs, want 1 and 1", n, j)
	}

	wantRefused(t, q.EnqueueResume(ctx, 999999, actor), "no such move")
	wantRefused(t, q.EnqueueAbort(ctx, 999999, actor), "no such move")

	want := []auditLine{
		{"move", "refused", "changed since the plan"},
		{"move", "failed", "no move jobs today"},
		{"move", "queued", ""},
		{"move", "refused", "unfinished move"},
		{"resume", "refused", "running or queued already"},
		{"abort", "refused", "running or queued already"},
	}
	got := e.audit("website_id = $1", site.ID)
	if len(got) != len(want) {
		t.Fatalf("audit log of the tenant:\n%v\nwant:\n%v", got, want)
	}
	for i := range want {
		if got[i].Action != want[i].Action || got[i].Outcome != want[i].Outcome || !strings.Contains(got[i].Detail, want[i].Detail) {
			t.Errorf("audit line %d: %v, want %v", i, got[i], want[i])
		}
	}
	if got := e.audit("move_id = $1", int64(999999)); len(got) != 2 || got[0].Outcome != "refused" || got[1].Outcome != "refused" {
		t.Errorf("audit log of the unknown move: %v, want two refused lines", got)
	}
}

// runUntil runs move id with a mover whose run is interrupted (as by
// Ctrl-C) right after point, leaving the move failed in the step after it
// and unclaimed.
func (e *env) runUntil(id int64, point string) journal.Move {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := mover.New(e.newSet(), mover.Options{CleanupDelay: mover.NoCleanupDelay, Pause: func(p string) {
		if p == point {
			cancel()
		}
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := m.Run(ctx, id); err == nil || !strings.Contains(err.Error(), "interrupted") {
		e.t.Fatalf("run of move %d interrupted at %s: %v", id, point, err)
	}
	return e.move(id)
}

// EnqueueAbort of a failed move that has not switched rolls it back: the
// tenant active on default with its rows unchanged, nothing on shard_1.
// Then both resume and abort are refused. A move that has switched cannot
// be aborted, only resumed.
func TestEnqueueAbort_RollsBackAFailedMove(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rollback := e.tenant("rollback", movertest.Options{Properties: 80, Photos: 3})
	forward := e.tenant("forward", movertest.Options{Properties: 40, Photos: 2})
	rollbackBefore, forwardBefore := e.digest(shard.Default, rollback.ID), e.digest(shard.Default, forward.ID)
	q := e.queue(queueOptions{Options: jobs.Options{Work: true}})

	// Both moves are recorded without a job, as the CLI does, and their runs
	// interrupted: one with its copy made and checked, one after the switch.
	start := func(w registry.Website) int64 {
		id, err := q.Mover().Start(ctx, e.plan(q, w), "cli:test")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	rollbackID, forwardID := start(rollback), start(forward)
	if m := e.runUntil(rollbackID, string(journal.StateVerified)); m.State != journal.StateFailed || m.FailedState != journal.StateVerified {
		t.Fatalf("interrupted after the check: %+v", m)
	}
	if d := e.digest("shard_1", rollback.ID); d.Empty() {
		t.Fatal("the interrupted move copied nothing")
	}
	if m := e.runUntil(forwardID, string(journal.StateSwitched)); m.State != journal.StateFailed || m.FailedState != journal.StateSwitched {
		t.Fatalf("interrupted after the switch: %+v", m)
	}

	if err := q.EnqueueAbort(ctx, rollbackID, actor); err != nil {
		t.Fatal(err)
	}
	m := e.waitMove(rollbackID, "aborted", func(m journal.Move) bool { return m.State == journal.StateAborted && m.TargetCleared })
	if m.Error != "" || m.FinishedAt == nil {
		t.Errorf("journal after the abort: %+v", m)
	}
	if got := e.website(rollback.ID); got.ShardName != shard.Default || got.Status != registry.StatusActive {
		t.Errorf("registry after the abort: %s on %s, want active on default", got.Status, got.ShardName)
	}
	if diff := cmp.Diff(rollbackBefore, e.digest(shard.Default, rollback.ID)); diff != "" {
		t.Errorf("rows on default changed (-before +after):\n%s", diff)
	}
	if d := e.digest("shard_1", rollback.ID); !d.Empty() {
		t.Errorf("rows remain on shard_1 after the abort: %v", d)
	}
	e.oneCompletedJob(rollbackID, "abort")
	wantRefused(t, q.EnqueueAbort(ctx, rollbackID, actor), "already aborted")
	wantRefused(t, q.EnqueueResume(ctx, rollbackID, actor), "already aborted")
	e.wantAudit(rollbackID,
		auditLine{"abort", "queued", ""}, auditLine{"abort", "done", ""},
		auditLine{"abort", "refused", "already aborted"}, auditLine{"resume", "refused", "already aborted"})

	wantRefused(t, q.EnqueueAbort(ctx, forwardID, actor), "already switched")
	if js := e.jobs(forwardID); len(js) != 0 {
		t.Errorf("a refused abort queued jobs: %+v", js)
	}
	if err := q.EnqueueResume(ctx, forwardID, actor); err != nil {
		t.Fatal(err)
	}
	if m := e.waitDone(forwardID); m.State != journal.StateDone {
		t.Fatalf("resumed move ended as %+v", m)
	}
	e.wantMoved(forward, forwardBefore)
	e.oneCompletedJob(forwardID, "resume")
	e.wantAudit(forwardID,
		auditLine{"abort", "refused", "already switched"}, auditLine{"resume", "queued", ""}, auditLine{"resume", "done", ""})
}

// RecoverOrphans leaves a running move alone, however old its job: its
// claim is held, whether by a job's run (paused here) or by a run without
// a job (the CLI's). Resume and abort of either are refused meanwhile.
func TestRecoverOrphans_LeavesAClaimedMoveAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	queued := e.tenant("claimed-job", movertest.Options{Properties: 60, Photos: 2})
	byHand := e.tenant("claimed-cli", movertest.Options{Properties: 20, Photos: 1})
	queuedBefore := e.digest(shard.Default, queued.ID)
	g := e.gate(string(journal.StateCopying))
	q := e.queue(queueOptions{Options: jobs.Options{Work: true}, Mover: mover.Options{Pause: g.pause}})
	// A watcher for which every job is old enough to be dead.
	watcher := e.queue(queueOptions{Options: jobs.Options{StaleAfter: time.Microsecond}})

	id, err := q.EnqueueMove(ctx, e.plan(q, queued), actor)
	if err != nil {
		t.Fatal(err)
	}
	g.wait(t)

	// The run without a job, stopped at its freeze.
	cli := e.gate(string(journal.StateFrozen))
	m, err := mover.New(e.newSet(), mover.Options{CleanupDelay: mover.NoCleanupDelay, Pause: cli.pause})
	if err != nil {
		t.Fatal(err)
	}
	cliID, err := m.Start(ctx, e.plan(q, byHand), "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	cliDone := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx, cliID)
		cliDone <- err
	}()
	cli.wait(t)

	for _, w := range []testQueue{watcher, q} {
		if got, err := w.RecoverOrphans(ctx); err != nil || len(got) != 0 {
			t.Errorf("RecoverOrphans while the moves run: %v, %v; want nothing", got, err)
		}
	}
	if js := e.jobs(id); len(js) != 1 || js[0].State != "running" || js[0].Cancelled {
		t.Errorf("the running move's jobs after RecoverOrphans: %+v, want one running, not cancelled", js)
	}
	for _, mv := range []int64{id, cliID} {
		wantRefused(t, q.EnqueueResume(ctx, mv, actor), "running or queued already")
		wantRefused(t, q.EnqueueAbort(ctx, mv, actor), "running or queued already")
	}
	if n := e.countMoveJobs(); n != 1 {
		t.Errorf("%d move jobs, want 1", n)
	}

	g.free()
	cli.free()
	if m := e.waitDone(id); m.State != journal.StateDone {
		t.Fatalf("move %d ended as %+v", id, m)
	}
	if err := <-cliDone; err != nil {
		t.Errorf("the run without a job: %v", err)
	}
	e.wantMoved(queued, queuedBefore)
	e.oneCompletedJob(id, "move")
	if n := e.countMoveJobs(); n != 1 {
		t.Errorf("%d move jobs, want 1", n)
	}
}

// worker is the worker process of a test.
type worker struct {
	cmd    *exec.Cmd
	paused chan struct{}
	ended  chan struct{}
	mu     sync.Mutex
	log    strings.Builder
}

func (w *worker) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

func startWorker(t *testing.T, cfgPath, at string) *worker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	w := &worker{cmd: exec.CommandContext(ctx, os.Args[0], "-test.run=^$"), paused: make(chan struct{}), ended: make(chan struct{})}
	w.cmd.Env = append(os.Environ(), workerEnv+"=1", workerConfigEnv+"="+cfgPath, workerPauseEnv+"="+at)
	stderr, err := w.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		cancel()
	})
	go func() {
		defer close(w.ended)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			w.mu.Lock()
			w.log.WriteString(sc.Text() + "\n")
			w.mu.Unlock()
			if !seen && sc.Text() == workerPausedMsg+at {
				seen = true
				close(w.paused)
			}
		}
	}()
	return w
}

// A move whose process died is requeued once, however many watchers look
// at the same time, and the new job runs it. The process is real: the test
// binary as a worker that runs the move's job, stops in the middle of the
// copy and is killed with SIGKILL, so River's table says the job runs and
// the primary drops the move's claim, exactly as after a crash. When the
// recovered run fails, the operator can resume at once, although River
// still has the dead job as running.
func TestRecoverOrphans_RequeuesADeadProcessesJobOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	site := e.tenant("orphan", movertest.Options{Properties: 150, Photos: 6})
	neighbour := e.tenant("orphan-neighbour", movertest.Options{Properties: 20, Photos: 2})
	before, neighbourBefore := e.digest(shard.Default, site.ID), e.digest(shard.Default, neighbour.ID)
	inserter := e.queue(queueOptions{Options: jobs.Options{}})
	id, err := inserter.EnqueueMove(ctx, e.plan(inserter, site), actor)
	if err != nil {
		t.Fatal(err)
	}

	w := startWorker(t, e.cluster.ConfigPath, "mid-copy:properties")
	select {
	case <-w.paused:
	case <-w.ended:
		w.cmd.Wait()
		t.Fatalf("the worker ended without pausing:\n%s", w.output())
	case <-time.After(moveLimit):
		t.Fatalf("the worker did not pause within %s:\n%s", moveLimit, w.output())
	}
	if claimed, err := mover.Claimed(ctx, e.primary, id); err != nil || !claimed {
		t.Fatalf("the paused worker's move: claimed %v, %v", claimed, err)
	}
	watchers := []testQueue{e.queue(queueOptions{Options: jobs.Options{StaleAfter: time.Microsecond}}), e.queue(queueOptions{Options: jobs.Options{StaleAfter: time.Microsecond}})}
	if got, err := watchers[0].RecoverOrphans(ctx); err != nil || len(got) != 0 {
		t.Errorf("RecoverOrphans while the worker lives: %v, %v; want nothing", got, err)
	}

	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-w.ended
	if err := w.cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("worker: %v, want killed", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		claimed, err := mover.Claimed(ctx, e.primary, id)
		if err != nil {
			t.Fatal(err)
		}
		if !claimed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed worker's claim is still held after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := e.move(id); m.State != journal.StateCopying {
		t.Fatalf("journal after the kill: %+v, want copying", m)
	}
	dead := e.jobs(id)
	if len(dead) != 1 || dead[0].State != "running" || dead[0].Cancelled {
		t.Fatalf("jobs after the kill: %+v, want one running", dead)
	}

	// Both watchers look at once.
	var wg sync.WaitGroup
	results := make([][]int64, len(watchers))
	errs := make([]error, len(watchers))
	ready := make(chan struct{})
	for i, q := range watchers {
		wg.Go(func() {
			<-ready
			results[i], errs[i] = q.RecoverOrphans(ctx)
		})
	}
	close(ready)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("RecoverOrphans: %v, %v", errs[0], errs[1])
	}
	if got := append(results[0], results[1]...); len(got) != 1 || got[0] != id {
		t.Fatalf("the two watchers requeued %v and %v; want move %d once", results[0], results[1], id)
	}
	js := e.jobs(id)
	if len(js) != 2 || js[0].ID != dead[0].ID || js[0].State != "running" || !js[0].Cancelled ||
		!js[1].Recovered || js[1].State != "available" || js[1].Action != "move" || js[1].Actor != actor {
		t.Fatalf("jobs after the recovery: %+v; want the dead one marked cancelled and one recovered, available", js)
	}
	for _, q := range watchers {
		if got, err := q.RecoverOrphans(ctx); err != nil || len(got) != 0 {
			t.Errorf("RecoverOrphans again: %v, %v; want nothing", got, err)
		}
	}
	wantRefused(t, inserter.EnqueueResume(ctx, id, actor), "running or queued already")

	// A process that works jobs runs the recovered job. Its run fails: the
	// tenant was taken out of read_only meanwhile.
	if err := registry.SetStatus(ctx, e.primary, site.ID, registry.StatusMaintenance); err != nil {
		t.Fatal(err)
	}
	q := e.queue(queueOptions{Options: jobs.Options{Work: true}})
	if m := e.waitDone(id); m.State != journal.StateFailed || m.FailedState != journal.StateCopying {
		t.Fatalf("recovered move ended as %+v, want failed while copying", m)
	}
	js = e.waitJobs(id, "the recovered job cancelled", func(js []jobRow) bool { return len(js) != 2 || js[1].State == "cancelled" })
	if len(js) != 2 || js[1].State != "cancelled" || js[1].Attempt != 1 || js[0].State != "running" || !js[0].Cancelled {
		t.Fatalf("jobs after the recovered run failed: %+v, want the dead one still running, marked cancelled, and the recovered one cancelled", js)
	}
	// The operator puts it right and resumes at once: the dead job, which
	// River finalises only minutes later, does not count as queued.
	if err := registry.SetStatus(ctx, e.primary, site.ID, registry.StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	if err := q.EnqueueResume(ctx, id, actor); err != nil {
		t.Fatalf("resume after the recovered run failed: %v", err)
	}
	if m := e.waitDone(id); m.State != journal.StateDone {
		t.Fatalf("resumed move ended as %+v", m)
	}
	e.wantMoved(site, before)
	if diff := cmp.Diff(neighbourBefore, e.digest(shard.Default, neighbour.ID)); diff != "" {
		t.Errorf("the neighbour's rows changed (-before +after):\n%s", diff)
	}
	js = e.waitJobs(id, "the resume completed", func(js []jobRow) bool { return len(js) != 3 || js[2].State == "completed" })
	if len(js) != 3 || js[2].State != "completed" || js[2].Attempt != 1 || js[2].Action != "resume" || js[2].Recovered ||
		(js[0].State != "running" && js[0].State != "cancelled") || !js[0].Cancelled {
		t.Errorf("jobs after the move: %+v", js)
	}
	e.wantAudit(id, auditLine{"move", "queued", ""}, auditLine{"resume", "refused", "running or queued already"},
		auditLine{"move", "failed", "resumed after the process running it stopped: move"},
		auditLine{"resume", "queued", ""}, auditLine{"resume", "done", ""})
}

// A job whose move has just ended is still running in River's eyes until
// its worker has written the audit line and River has recorded the
// outcome; the claim is already released by then. A watcher looking in that
// moment must not take it for dead. The moment is stretched here by holding
// a lock on the audit log, as a busy primary would; the job has been
// running longer than the watcher's staleness. Once the journal too is
// older than that, the job is taken for dead, but its move is over: it is
// cancelled, nothing is queued, and the worker still completes it.
func TestRecoverOrphans_LeavesAJobWhoseMoveJustEnded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	site := e.tenant("just-ended", movertest.Options{Properties: 40, Photos: 2})
	const stale = 2 * time.Second
	watcher := e.queue(queueOptions{Options: jobs.Options{StaleAfter: stale}})

	long := e.gate(string(journal.StateCopying))
	var lock pgx.Tx
	var lockErr error
	locked := make(chan struct{})
	pause := func(point string) {
		long.pause(point)
		if point == string(journal.StateCleaned) {
			// The last pause before done: from here on audit lines wait.
			if lock, lockErr = e.primary.Begin(ctx); lockErr == nil {
				_, lockErr = lock.Exec(ctx, "LOCK TABLE audit_log IN SHARE MODE")
			}
			close(locked)
		}
	}
	q := e.queue(queueOptions{Options: jobs.Options{Work: true}, Mover: mover.Options{Pause: pause}})
	id, err := q.EnqueueMove(ctx, e.plan(q, site), actor)
	if err != nil {
		t.Fatal(err)
	}
	long.wait(t)
	// Until the job is older than the watcher's staleness.
	deadline := time.Now().Add(moveLimit)
	for pgtest.QueryValue[bool](t, e.cluster.URL[shard.Default], `SELECT attempted_at > now() - $1 * interval '1 millisecond'
		FROM river_job WHERE kind = 'move' AND (args->>'move_id')::bigint = $2`, (stale + 500*time.Millisecond).Milliseconds(), id) {
		if time.Now().After(deadline) {
			t.Fatal("the job's attempted_at does not age")
		}
		time.Sleep(50 * time.Millisecond)
	}
	long.free()
	select {
	case <-locked:
	case <-time.After(moveLimit):
		t.Fatal("the move did not reach its clean-up")
	}
	if lockErr != nil {
		t.Fatal(lockErr)
	}
	released := false
	release := func() {
		if !released {
			released = true
			lock.Rollback(ctx)
		}
	}
	defer release()
	e.waitMove(id, "done", func(m journal.Move) bool { return m.State == journal.StateDone })
	// The runner records done, then lets its claim go.
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		claimed, err := mover.Claimed(ctx, e.primary, id)
		if err != nil {
			t.Fatal(err)
		}
		if !claimed {
			break
		}
		if time.Since(start) > 2*time.Second {
			t.Fatal("the done move is still claimed after 2 s")
		}
	}

	got, err := watcher.RecoverOrphans(ctx)
	// The window held open: the job was running, unclaimed and old throughout.
	js := e.jobs(id)
	if len(js) != 1 || js[0].State != "running" {
		t.Fatalf("jobs after the watcher looked: %+v, want the one job still running (the audit line waits)", js)
	}
	if err != nil || len(got) != 0 || js[0].Cancelled {
		t.Errorf("RecoverOrphans in the moment after the move ended: requeued %v, %v; job %+v", got, err, js[0])
	}

	// Held past the staleness (the audit line waits up to 5s), the job
	// looks dead; its move is over, so the watcher cancels it and queues
	// nothing. The worker, alive after all, still records it completed.
	for pgtest.QueryValue[bool](t, e.cluster.URL[shard.Default], `SELECT updated_at > now() - $1 * interval '1 millisecond'
		FROM moves WHERE id = $2`, (stale + 200*time.Millisecond).Milliseconds(), id) {
		time.Sleep(20 * time.Millisecond)
	}
	if js := e.jobs(id); len(js) == 1 && js[0].State == "running" {
		got, err := watcher.RecoverOrphans(ctx)
		if js := e.jobs(id); err != nil || len(got) != 0 || len(js) != 1 || !js[0].Cancelled {
			t.Errorf("RecoverOrphans once the ended move's job looks dead: requeued %v, %v; jobs %+v, want it cancelled, nothing queued", got, err, js)
		}
	} else {
		t.Logf("the job ended before it looked dead (a busy machine): %+v", js)
	}
	release()
	e.waitJobs(id, "completed", func(js []jobRow) bool { return len(js) != 1 || js[0].State == "completed" })
	if js := e.jobs(id); len(js) != 1 || js[0].State != "completed" || js[0].Attempt != 1 {
		t.Errorf("jobs at the end: %+v, want the one job completed", js)
	}
	if n := e.countMoveJobs(); n != 1 {
		t.Errorf("%d move jobs, want 1", n)
	}
	e.wantAudit(id, auditLine{"move", "queued", ""}, auditLine{"move", "done", ""})
}
