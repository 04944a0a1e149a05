package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// ocShards are the shards of the online crash test's cluster, each
// on a server of its own. Moves go from each to the next, so every server is
// the source of a third of the scenarios: a server has 10 replication slots
// and 10 WAL senders, and an online move takes up to two of each.
var ocShards = []string{"default", "shard_1", "shard_2"}

// ocFill sizes every moving tenant: 3,316 rows, enough that the
// copy takes a moment while writes go on.
var ocFill = movertest.Options{Properties: 600, Photos: 12}

// ocNeighbourFill sizes the neighbour that writes on the same source.
var ocNeighbourFill = movertest.Options{Properties: 50, Photos: 2}

// ocWritePause spaces each writer's writes: with a few dozen writers on
// two cores, 5 ms would starve the moves themselves.
const ocWritePause = 15 * time.Millisecond

// ocPerSource bounds the scenarios running at once from one source
// server, for its replication slots and WAL senders: a pre-flight needs two
// of each free.
const ocPerSource = 3

// ocMaxWait is the longest any write that started after the kill may
// take: the process's death must not hold the tenant's writes, and a
// resumed cut-over holds them for under a second.
const ocMaxWait = time.Second

// ocFenceHold is how long the test keeps a mover paused at the cut-over
// before killing it, to see that the fence really holds the tenant's
// writes.
const ocFenceHold = 400 * time.Millisecond

// ocPoints are the online mover's pause points, in the order a move
// reaches them, with the journal state a move killed there is left in,
// whether the registry has switched the tenant by then, and what the move
// has left on the shards: its publication and slot on the source, its
// applied position on the target.
var ocPoints = []struct {
	point                       string
	state                       journal.State
	switched                    bool
	publication, slot, position bool
}{
	{point: "planned", state: journal.StatePlanned},
	{point: "prepared", state: journal.StatePrepared, publication: true},
	{point: "copying", state: journal.StateCopying, publication: true},
	{point: "slot-created", state: journal.StateCopying, publication: true, slot: true},
	{point: "mid-copy:properties", state: journal.StateCopying, publication: true, slot: true},
	{point: "mid-copy:property_photos", state: journal.StateCopying, publication: true, slot: true},
	{point: "copied", state: journal.StateCopied, publication: true, slot: true},
	{point: "mid-stream", state: journal.StateCopied, publication: true, slot: true, position: true},
	{point: "verified", state: journal.StateVerified, publication: true, slot: true, position: true},
	{point: "cutover", state: journal.StateVerified, publication: true, slot: true, position: true},
	{point: "switched", state: journal.StateSwitched, switched: true, publication: true, slot: true, position: true},
	{point: "mid-cleanup", state: journal.StateSwitched, switched: true},
	{point: "cleaned", state: journal.StateCleaned, switched: true},
}

// ocEnv is the online crash test's platform: one cluster, the shard set
// the test's writers write through (as the app does), and a pool per shard
// for the checks.
type ocEnv struct {
	*crashEnv // its pools, and register, website, journal, waitUnclaimed
	cfg       string
	set       *shard.Set
	sem       map[string]chan struct{}
}

// ocScenario is one tenant moved online from source to target while it
// and a neighbour on the same source keep writing, its mover killed at
// point (none: an uninterrupted move), then resumed or aborted.
type ocScenario struct {
	name     string
	point    string
	state    journal.State
	switched bool
	// What the kill leaves on the shards (see ocPoints).
	publication, slot, position bool
	abort                       bool
	source, target, other       string
	site, neighbour             registry.Website
	// The tenants' rows before anything wrote them.
	siteBefore, neighbourBefore ocRows
}

// TestMoveOnline_Crash kills `pwb sharding migrate --mode online` with
// SIGKILL at every pause point of an online move while the moving tenant
// and a neighbour on the same source shard keep writing the way the app
// does. After the kill the tenant is still active and its writes go on
// without waiting (the cut-over's fence dies with the process's
// connection); `resume` then finishes the move with every acknowledged
// write on the target and nothing left on the source, and before the
// switch `abort` instead leaves the tenant on its source with every
// acknowledged write and nothing on the target. Neither leaves a slot, a
// publication or a stream position behind. Not one write is refused.
func TestMoveOnline_Crash(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := migratedCluster(t, len(ocShards)-1)
	ctx := context.Background()
	cfg, err := config.Load(c.ConfigPath, "test")
	if err != nil {
		t.Fatal(err)
	}
	// The writers of every scenario share this set, as an app process's
	// requests share its pools; the default pool of 4 would make them queue.
	for i := range cfg.Shards {
		cfg.Shards[i].Pool = 24
	}
	env := &ocEnv{crashEnv: &crashEnv{cluster: c, pools: map[string]*pgxpool.Pool{}}, cfg: c.ConfigPath, set: shard.NewSet(cfg),
		sem: map[string]chan struct{}{}}
	t.Cleanup(env.set.Close)
	for _, s := range ocShards {
		pool, err := pgxpool.New(ctx, c.URL[s])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		env.pools[s] = pool
		env.sem[s] = make(chan struct{}, ocPerSource)
	}

	scenarios := []*ocScenario{{name: "uninterrupted"}}
	for _, p := range ocPoints {
		scenarios = append(scenarios, &ocScenario{name: "resume_at_" + p.point, point: p.point, state: p.state, switched: p.switched,
			publication: p.publication, slot: p.slot, position: p.position})
	}
	for _, p := range ocPoints {
		if !p.switched {
			scenarios = append(scenarios, &ocScenario{name: "abort_at_" + p.point, point: p.point, state: p.state,
				publication: p.publication, slot: p.slot, position: p.position, abort: true})
		}
	}
	var wg sync.WaitGroup
	for i, sc := range scenarios {
		n := len(ocShards)
		sc.source, sc.target, sc.other = ocShards[i%n], ocShards[(i+1)%n], ocShards[(i+2)%n]
		wg.Go(func() {
			sc.site = env.register(t, "onl-"+crashSlug(sc.name), sc.source, ocFill)
			sc.neighbour = env.register(t, "onl-nb-"+crashSlug(sc.name), sc.source, ocNeighbourFill)
			sc.siteBefore = env.rows(t, sc.source, sc.site.ID)
			sc.neighbourBefore = env.rows(t, sc.source, sc.neighbour.ID)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("cluster and %d tenants ready in %s", 2*len(scenarios), time.Since(start).Round(time.Millisecond))

	// Every scenario has tenants of its own, so they run side by side, as
	// many at a time from one source as its slots allow.
	for _, sc := range scenarios {
		wg.Go(func() {
			sem := env.sem[sc.source]
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(sc.name, func(t *testing.T) { env.run(t, sc) })
		})
	}
	wg.Wait()

	// Whatever any move made for streaming is gone from every shard.
	for _, s := range ocShards {
		var slots, pubs, positions int64
		err := env.pools[s].QueryRow(ctx, `SELECT
			(SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pwb\_move\_%'),
			(SELECT count(*) FROM pg_publication WHERE pubname LIKE 'pwb\_move\_%'),
			(SELECT count(*) FROM move_positions)`).Scan(&slots, &pubs, &positions)
		if err != nil {
			t.Fatal(err)
		}
		if slots != 0 || pubs != 0 || positions != 0 {
			t.Errorf("after every move, shard %s keeps %d slot(s), %d publication(s) and %d stream position(s) of moves", s, slots, pubs, positions)
		}
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// run plays one scenario.
func (e *ocEnv) run(t *testing.T, sc *ocScenario) {
	site, neighbour := e.writer(t, sc.site), e.writer(t, sc.neighbour)
	ctx, stop := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	writers.Go(func() { site.Run(ctx, sc.site.ID) })
	writers.Go(func() { neighbour.Run(ctx, sc.neighbour.ID) })
	stopped := false
	stopWriters := func() {
		if !stopped {
			stopped = true
			stop()
			writers.Wait()
		}
	}
	defer stopWriters()
	site.waitAcked(t, time.Time{}, 3, "before the move")
	neighbour.waitAcked(t, time.Time{}, 3, "before the move")

	var id int64
	var killed time.Time
	if sc.point == "" {
		r := pwb(t, e.cfg, "sharding", "migrate", sc.site.Subdomain, sc.target, "--mode", "online", "--yes", "--cleanup-delay", "0s")
		if r.code != 0 {
			t.Fatalf("migrate: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		id = crashStartedID(t, r.stdout)
		if !strings.Contains(r.stdout, fmt.Sprintf("Move %d done (online)", id)) {
			t.Errorf("migrate should say the online move is done: %q", r.stdout)
		}
	} else {
		id, killed = e.crash(t, sc, site, neighbour)
	}

	idArg := strconv.FormatInt(id, 10)
	if sc.abort {
		r := pwb(t, e.cfg, "sharding", "abort", idArg, "--yes")
		if r.code != 0 {
			e.logMove(t, sc.site)
			t.Fatalf("abort %d: exit %d\nstdout: %s\nstderr: %s", id, r.code, r.stdout, r.stderr)
		}
	} else if sc.point != "" {
		if sc.switched {
			wantRefused(t, pwb(t, e.cfg, "sharding", "abort", idArg, "--yes"), "has already switched")
		}
		r := pwb(t, e.cfg, "sharding", "resume", idArg, "--cleanup-delay", "0s")
		if r.code != 0 {
			e.logMove(t, sc.site)
			t.Fatalf("resume %d: exit %d\nstdout: %s\nstderr: %s", id, r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, fmt.Sprintf("Move %d done (online)", id)) {
			t.Errorf("resume should say the online move is done: %q", r.stdout)
		}
	}
	// Writes go on for a moment on whichever shard the tenant is on now.
	site.waitAcked(t, time.Now(), 3, "after the move ended")
	stopWriters()

	t.Logf("%s: site %d writes acknowledged, longest %s (%s after the kill); neighbour %d, longest %s",
		sc.name, site.Acked, site.MaxWait.Round(time.Millisecond), site.maxWaitSince(killed).Round(time.Millisecond),
		neighbour.Acked, neighbour.MaxWait.Round(time.Millisecond))
	// In an online move the tenant stays active throughout, whether its
	// mover runs, is dead, is resumed or aborted: the only write that meets
	// the move is one that finds the tenant switched, and that one is made
	// again on the new shard. So no write may fail, before, during or after
	// the process's death.
	if site.Refused != 0 {
		t.Errorf("%d write(s) of the moving tenant refused: %v", site.Refused, site.Failures)
	}
	if neighbour.Refused != 0 {
		t.Errorf("%d write(s) of the neighbour refused: %v", neighbour.Refused, neighbour.Failures)
	}
	// The neighbour's writes never wait for the move; the tenant's, once
	// its mover is dead, wait for nothing but a resumed cut-over.
	if d := neighbour.MaxWait; d >= ocMaxWait {
		t.Errorf("a write of the neighbour waited %s", d)
	}
	if d := site.maxWaitSince(killed); d >= ocMaxWait {
		t.Errorf("a write of the moving tenant that started after the kill waited %s", d)
	}

	if sc.abort {
		e.wantAborted(t, sc, id, site)
		wantRefused(t, pwb(t, e.cfg, "sharding", "resume", idArg), "already aborted")
		wantRefused(t, pwb(t, e.cfg, "sharding", "abort", idArg, "--yes"), "already aborted")
	} else {
		e.wantMoved(t, sc, id, site)
		wantRefused(t, pwb(t, e.cfg, "sharding", "resume", idArg), "already done")
		wantRefused(t, pwb(t, e.cfg, "sharding", "abort", idArg, "--yes"), "already done")
	}
	e.wantNoArtifacts(t, sc, id)

	// The neighbour: every acknowledged write on the source, its other rows
	// as they were, and nothing of it anywhere else.
	source := e.pools[sc.source]
	if err := neighbour.Check(context.Background(), source, sc.neighbour.ID); err != nil {
		t.Errorf("the neighbour's rows on the source %s:\n%v", sc.source, err)
	}
	if diff := neighbour.exact(sc.neighbourBefore, e.rows(t, sc.source, sc.neighbour.ID)); diff != "" {
		t.Errorf("the neighbour's rows on the source %s:\n%s", sc.source, diff)
	}
	for _, s := range []string{sc.target, sc.other} {
		if n := e.rows(t, s, sc.neighbour.ID).count(); n != 0 {
			t.Errorf("%d row(s) of the neighbour on %s", n, s)
		}
	}
}

// crash starts the move as a process that pauses at sc.point, kills it
// there with SIGKILL, checks what it left, and waits for the tenant's
// writes to go on. It returns the move's id and when the process was dead.
func (e *ocEnv) crash(t *testing.T, sc *ocScenario, site, neighbour *ocWriter) (int64, time.Time) {
	child := crashStart(t, e.cfg, sc.point, "sharding", "migrate", sc.site.Subdomain, sc.target, "--mode", "online", "--yes", "--cleanup-delay", "0s")
	child.waitPause(t)
	paused := time.Now()
	if sc.point == "cutover" {
		// The fence is held exclusively: the tenant's writes wait, the
		// neighbour's do not.
		time.Sleep(ocFenceHold)
		from, to := paused.Add(100*time.Millisecond), time.Now()
		if n := site.completedBetween(from, to); n != 0 {
			t.Errorf("%d write(s) of the tenant completed while the mover held its fence at the cut-over", n)
		}
		if n := neighbour.completedBetween(from, to); n == 0 {
			t.Errorf("no write of the neighbour completed while the mover held the tenant's fence for %s", to.Sub(from).Round(time.Millisecond))
		}
	}
	child.kill(t)
	killed := time.Now()

	mv := e.journal(t, sc.site)
	if sc.point != "planned" { // the planned pause comes before the id is printed
		if got := crashStartedID(t, child.stdout.String()); got != mv.ID {
			t.Errorf("migrate printed move %d, the journal has move %d", got, mv.ID)
		}
	}
	if mv.State != sc.state || mv.Finished() || !mv.Online() {
		t.Errorf("journal after a kill at %s: %s move %d is %q (failed state %q, error %q), want %q",
			sc.point, mv.Mode, mv.ID, mv.State, mv.FailedState, mv.Error, sc.state)
	}
	if mv.Source != sc.source || mv.Target != sc.target {
		t.Errorf("journal: move from %q to %q, want from %q to %q", mv.Source, mv.Target, sc.source, sc.target)
	}

	// The tenant never stops being active: on its source until the switch,
	// on its target after.
	want := sc.source
	if sc.switched {
		want = sc.target
	}
	if w := e.website(t, sc.site.ID); w.ShardName != want || w.Status != registry.StatusActive {
		t.Errorf("registry after a kill at %s: tenant %s on %s, want active on %s", sc.point, w.Status, w.ShardName, want)
	}

	// What the move made for streaming is there from the step that makes
	// it to the step that drops it.
	pub, slot, pos := e.artifacts(t, sc, mv.ID)
	if pub != sc.publication || slot != sc.slot || pos != sc.position {
		t.Errorf("after a kill at %s: publication %t, slot %t, position on the target %t; want %t, %t, %t",
			sc.point, pub, slot, pos, sc.publication, sc.slot, sc.position)
	}
	if sc.point == "mid-cleanup" {
		if n := e.rows(t, sc.source, sc.site.ID).count(); n == 0 {
			t.Errorf("a kill in the middle of the clean-up should leave some source rows")
		}
		var deleted int64
		for _, tb := range mv.Tables {
			deleted += tb.RowsDeleted
		}
		if deleted == 0 || deleted >= mv.RowsTotal() {
			t.Errorf("journal after a kill in the middle of the clean-up: %d of %d rows deleted", deleted, mv.RowsTotal())
		}
	}

	// With its mover dead, the tenant takes writes at once.
	site.waitAcked(t, killed, 3, "after the kill")
	e.waitUnclaimed(t, mv.ID)
	return mv.ID, killed
}

// wantMoved checks a resumed (or uninterrupted) move: the tenant active on
// the target with exactly the rows its acknowledged writes left, none left
// on the source or elsewhere, and a complete journal.
func (e *ocEnv) wantMoved(t *testing.T, sc *ocScenario, id int64, site *ocWriter) {
	t.Helper()
	if w := e.website(t, sc.site.ID); w.ShardName != sc.target || w.Status != registry.StatusActive {
		t.Errorf("registry: tenant is %s on %s, want active on %s", w.Status, w.ShardName, sc.target)
	}
	if err := site.Check(context.Background(), e.pools[sc.target], sc.site.ID); err != nil {
		t.Errorf("the target %s does not hold what the acknowledged writes left:\n%v", sc.target, err)
	}
	if diff := site.exact(sc.siteBefore, e.rows(t, sc.target, sc.site.ID)); diff != "" {
		t.Errorf("the tenant's rows on the target %s:\n%s", sc.target, diff)
	}
	for _, s := range []string{sc.source, sc.other} {
		if n := e.rows(t, s, sc.site.ID).count(); n != 0 {
			t.Errorf("%d row(s) of the tenant remain on %s", n, s)
		}
	}
	mv := e.journal(t, sc.site)
	if mv.ID != id || mv.State != journal.StateDone || !mv.Online() || mv.FailedState != "" || mv.Error != "" ||
		mv.SwitchedAt == nil || mv.FinishedAt == nil || mv.FrozenAt != nil || !mv.ArtifactsDropped || !mv.VerifiedEqual() {
		t.Errorf("journal after the move: %+v", mv)
	}
	// A move killed while copying copies again; any later one goes on
	// streaming from where the target got.
	wantCopies := 1
	if sc.state == journal.StateCopying {
		wantCopies = 2
	}
	if mv.CopyAttempts != wantCopies {
		t.Errorf("journal: %d copies, want %d", mv.CopyAttempts, wantCopies)
	}
	// A run that streamed (every one that resumed before the switch) had
	// writes to stream: those made since the copy, and since the kill.
	if !sc.switched && mv.ChangesApplied == 0 {
		t.Errorf("journal: no change streamed by the run that switched, while the tenant kept writing")
	}
	if d, ok := mv.Blocked(); !ok || d <= 0 || d >= ocMaxWait {
		t.Errorf("journal: writes blocked for %s (recorded %t), want under %s", d, ok, ocMaxWait)
	}
	for _, tb := range mv.Tables {
		if !tb.Copied || tb.RowsCopied != tb.RowsTotal {
			t.Errorf("journal table after the move: %+v", tb)
		}
	}
}

// wantAborted checks an aborted move: the tenant active on its source with
// every acknowledged write and its other rows as they were, nothing of it on
// the target, and the journal says so.
func (e *ocEnv) wantAborted(t *testing.T, sc *ocScenario, id int64, site *ocWriter) {
	t.Helper()
	if w := e.website(t, sc.site.ID); w.ShardName != sc.source || w.Status != registry.StatusActive {
		t.Errorf("registry: tenant is %s on %s, want active on %s", w.Status, w.ShardName, sc.source)
	}
	if err := site.Check(context.Background(), e.pools[sc.source], sc.site.ID); err != nil {
		t.Errorf("the source %s does not hold what the acknowledged writes left:\n%v", sc.source, err)
	}
	if diff := site.exact(sc.siteBefore, e.rows(t, sc.source, sc.site.ID)); diff != "" {
		t.Errorf("the tenant's rows on the source %s:\n%s", sc.source, diff)
	}
	for _, s := range []string{sc.target, sc.other} {
		if n := e.rows(t, s, sc.site.ID).count(); n != 0 {
			t.Errorf("%d row(s) of the tenant remain on %s", n, s)
		}
	}
	mv := e.journal(t, sc.site)
	if mv.ID != id || mv.State != journal.StateAborted || !mv.TargetCleared || mv.FinishedAt == nil || mv.Error != "" ||
		(mv.Slot != "" && !mv.ArtifactsDropped) {
		t.Errorf("journal after the abort: %+v", mv)
	}
}

// wantNoArtifacts checks that move id left no slot or publication on any
// shard, and no stream position on any target.
func (e *ocEnv) wantNoArtifacts(t *testing.T, sc *ocScenario, id int64) {
	t.Helper()
	name := "pwb_move_" + strconv.FormatInt(id, 10)
	for _, s := range ocShards {
		var slots, pubs, positions int64
		err := e.pools[s].QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM pg_replication_slots WHERE slot_name IN ($1::text, $1::text || '_verify')),
			(SELECT count(*) FROM pg_publication WHERE pubname = $1),
			(SELECT count(*) FROM move_positions WHERE move_id = $2)`, name, id).Scan(&slots, &pubs, &positions)
		if err != nil {
			t.Fatal(err)
		}
		if slots != 0 || pubs != 0 || positions != 0 {
			t.Errorf("shard %s keeps %d slot(s), %d publication(s) and %d stream position(s) of move %d", s, slots, pubs, positions, id)
		}
	}
}

// artifacts reports whether move id's publication and slot exist on the
// source and its applied position on the target.
func (e *ocEnv) artifacts(t *testing.T, sc *ocScenario, id int64) (pub, slot, pos bool) {
	t.Helper()
	ctx := context.Background()
	name := "pwb_move_" + strconv.FormatInt(id, 10)
	err := e.pools[sc.source].QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1),
		EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, name).Scan(&pub, &slot)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.pools[sc.target].QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM move_positions WHERE move_id = $1)", id).Scan(&pos); err != nil {
		t.Fatal(err)
	}
	return pub, slot, pos
}

// logMove shows the tenant's move as the journal has it, for a failure.
func (e *ocEnv) logMove(t *testing.T, site registry.Website) {
	t.Helper()
	if moves, err := journal.List(context.Background(), e.pools["default"], site.ID); err == nil && len(moves) > 0 {
		t.Logf("journal: %+v", moves[0])
	}
}

// ocWriter is a movertest.Writer that writes the way the app does
// (through the tenant's scope, resolved from the registry for each write,
// and once more on the new shard when the first attempt finds the tenant
// moved), and also records when each write started and ended and which
// rows the acknowledged writes renamed or deleted.
type ocWriter struct {
	*movertest.Writer

	mu      sync.Mutex
	log     []ocWriteRecord
	renamed map[string]bool // properties an acknowledged write renamed
	deleted map[string]bool // contacts an acknowledged write deleted
}

type ocWriteRecord struct {
	start, end time.Time
	err        error
}

// ocStmt is a statement a write ran.
type ocStmt struct {
	sql  string
	args []any
}

// ocRecordingTx notes the statements a write runs.
type ocRecordingTx struct {
	tenant.Tx
	stmts *[]ocStmt
}

func (r ocRecordingTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := r.Tx.Exec(ctx, sql, args...)
	if err == nil {
		*r.stmts = append(*r.stmts, ocStmt{sql, args})
	}
	return tag, err
}

func (e *ocEnv) writer(t *testing.T, w registry.Website) *ocWriter {
	t.Helper()
	primary, err := e.set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	ow := &ocWriter{renamed: map[string]bool{}, deleted: map[string]bool{}}
	write := func(ctx context.Context, fn func(tenant.Tx) error) error {
		// The writer's ctx ends when the test stops writing; the statements
		// of fn then fail and its transaction rolls back. The commit itself
		// never gets a cancelled context, so every write ends known: done
		// or not done. The timeout only keeps a failed test from hanging.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		var stmts []ocStmt
		recorded := func(tx tenant.Tx) error {
			stmts = stmts[:0]
			return fn(ocRecordingTx{Tx: tx, stmts: &stmts})
		}
		attempt := func() error {
			now, err := registry.Get(wctx, primary, w.ID)
			if err != nil {
				return err
			}
			sc, err := tenant.Resolve(e.set, now)
			if err != nil {
				return err
			}
			return sc.Write(wctx, recorded)
		}
		start := time.Now()
		err := attempt()
		if errors.Is(err, tenant.ErrMoved) {
			err = attempt()
		}
		ow.mu.Lock()
		defer ow.mu.Unlock()
		ow.log = append(ow.log, ocWriteRecord{start: start, end: time.Now(), err: err})
		if err == nil {
			for _, s := range stmts {
				switch {
				case strings.HasPrefix(s.sql, "UPDATE properties"):
					ow.renamed[fmt.Sprint(s.args[1])] = true
				case strings.HasPrefix(s.sql, "DELETE FROM contacts"):
					ow.deleted[fmt.Sprint(s.args[1])] = true
				}
			}
		}
		return err
	}
	ow.Writer = &movertest.Writer{Write: write, Pause: ocWritePause}
	pool, err := e.set.Pool(w.ShardName)
	if err != nil {
		t.Fatal(err)
	}
	if err := ow.Load(context.Background(), pool, w.ID); err != nil {
		t.Fatal(err)
	}
	return ow
}

// waitAcked waits until n writes that started at or after since have been
// acknowledged.
func (w *ocWriter) waitAcked(t *testing.T, since time.Time, n int, when string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		acked := 0
		var last error
		for _, r := range w.log {
			if !r.start.Before(since) {
				if r.err == nil {
					acked++
				} else {
					last = r.err
				}
			}
		}
		w.mu.Unlock()
		if acked >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes acknowledged within 10s %s (last failure: %v)", acked, n, when, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// maxWaitSince is the longest a write that started at or after since took.
func (w *ocWriter) maxWaitSince(since time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d time.Duration
	for _, r := range w.log {
		if !r.start.Before(since) {
			d = max(d, r.end.Sub(r.start))
		}
	}
	return d
}

// completedBetween counts the acknowledged writes that ended between from
// and to.
func (w *ocWriter) completedBetween(from, to time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.log {
		if r.err == nil && r.end.After(from) && r.end.Before(to) {
			n++
		}
	}
	return n
}

// ocRows is a tenant's rows on one shard: per table, per id, hashes of
// the row.
type ocRows map[string]map[string]ocRowHash

type ocRowHash struct {
	full     string // the whole row
	untitled string // the row less title and updated_at, which a rename sets
	contact  string // contact_id, of a message
	slug     string // of a page
}

// rows reads the tenant's rows on shardName.
func (e *ocEnv) rows(t *testing.T, shardName string, websiteID int64) ocRows {
	t.Helper()
	ctx := context.Background()
	out := ocRows{}
	for _, table := range tenant.Tables {
		rows, err := e.pools[shardName].Query(ctx, `SELECT id::text, md5(to_jsonb(t)::text),
			md5((to_jsonb(t) - 'title' - 'updated_at')::text),
			COALESCE(to_jsonb(t)->>'contact_id', ''), COALESCE(to_jsonb(t)->>'slug', '')
			FROM `+table+` t WHERE website_id = $1`, websiteID)
		if err != nil {
			t.Fatal(err)
		}
		out[table] = map[string]ocRowHash{}
		for rows.Next() {
			var id string
			var h ocRowHash
			if err := rows.Scan(&id, &h.full, &h.untitled, &h.contact, &h.slug); err != nil {
				t.Fatal(err)
			}
			out[table][id] = h
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// count is the number of rows over all tables.
func (r ocRows) count() int {
	n := 0
	for _, rows := range r {
		n += len(rows)
	}
	return n
}

// exact compares got with the rows before the writes, changed as the
// acknowledged writes changed them: every row there once and as it was,
// except the renamed properties (whose titles Writer.Check compares), the
// deleted contacts and their messages (gone), and the pages the writer
// made (which Writer.Check compares). It returns the differences, if any.
func (w *ocWriter) exact(before, got ocRows) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var diffs []string
	for _, table := range tenant.Tables {
		for id, b := range before[table] {
			g, ok := got[table][id]
			gone := table == "contacts" && w.deleted[id] || table == "messages" && w.deleted[b.contact]
			switch {
			case gone && ok:
				diffs = append(diffs, fmt.Sprintf("%s %s: still there after its acknowledged delete", table, id))
			case gone:
			case !ok:
				diffs = append(diffs, fmt.Sprintf("%s %s: missing", table, id))
			case table == "properties" && w.renamed[id]:
				if g.untitled != b.untitled {
					diffs = append(diffs, fmt.Sprintf("%s %s: changed beyond its title", table, id))
				}
			case g.full != b.full:
				diffs = append(diffs, fmt.Sprintf("%s %s: changed", table, id))
			}
		}
		for id, g := range got[table] {
			if _, ok := before[table][id]; !ok && !(table == "pages" && strings.HasPrefix(g.slug, "w-")) {
				diffs = append(diffs, fmt.Sprintf("%s %s: not there before and not written by the site", table, id))
			}
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("and %d more", len(diffs)-10))
	}
	return strings.Join(diffs, "\n")
}
