package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

// crashShards are the shards of the crash test's cluster.
var crashShards = []string{"default", "shard_1", "shard_2"}

// crashFill sizes every tenant the crash test moves.
var crashFill = movertest.Options{Properties: 150, Photos: 12}

// crashPoints are the mover's pause points, in the order a move reaches them,
// with the journal state a move killed there is left in and whether the
// registry has switched the tenant by then.
var crashPoints = []struct {
	point    string
	state    journal.State
	switched bool
}{
	{"planned", journal.StatePlanned, false},
	{"frozen", journal.StateFrozen, false},
	{"copying", journal.StateCopying, false},
	{"mid-copy:property_features", journal.StateCopying, false},
	{"mid-copy:property_photos", journal.StateCopying, false},
	{"copied", journal.StateCopied, false},
	{"verified", journal.StateVerified, false},
	{"switched", journal.StateSwitched, true},
	{"mid-cleanup", journal.StateSwitched, true},
	{"cleaned", journal.StateCleaned, true},
}

// crashMoveLockClass is the mover's advisory lock class for claiming a move
// ("mov", mover.lockClass).
const crashMoveLockClass = 0x6d6f76

// crashPauseTimeout bounds the wait for a child to reach its pause point.
const crashPauseTimeout = time.Minute

// crashEnv is the crash test's platform: one cluster, a pool per shard, and
// a neighbour tenant on every shard that no move may touch.
type crashEnv struct {
	cluster    *pgtest.Cluster
	pools      map[string]*pgxpool.Pool
	neighbours []registry.Website
	// neighboursBefore is every neighbour's digest on every shard, taken
	// before any move.
	neighboursBefore map[string]movertest.Digest
}

// crashScenario is one tenant moved from default to target, its mover killed
// at point (none for the happy path), then resumed or aborted.
type crashScenario struct {
	name     string
	point    string
	state    journal.State
	switched bool
	abort    bool
	target   string
	site     registry.Website
}

// TestMove_Crash kills the mover process with SIGKILL at every step
// boundary, in the middle of the copy and in the middle of the clean-up.
// `resume` then finishes the move with the same result as an uninterrupted
// move; before the switch, `abort` instead leaves the tenant active on its
// source with its rows unchanged and nothing of it on the target.
func TestMove_Crash(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := migratedCluster(t, 2)
	ctx := context.Background()
	env := &crashEnv{cluster: c, pools: map[string]*pgxpool.Pool{}}
	for _, s := range crashShards {
		pool, err := pgxpool.New(ctx, c.URL[s])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		env.pools[s] = pool
	}
	for _, s := range crashShards {
		env.neighbours = append(env.neighbours, env.register(t, "crash-neighbour-"+crashSlug(s), s, movertest.Options{Properties: 20, Photos: 2}))
	}
	env.neighboursBefore = env.neighbourDigests(t)

	r := pwb(t, c.ConfigPath, "sharding", "resume", "999999")
	wantRefused(t, r, "no such move")
	if r.stdout != "" {
		t.Errorf("resuming an unknown move printed %q before refusing", r.stdout)
	}
	wantRefused(t, pwb(t, c.ConfigPath, "sharding", "abort", "999999", "--yes"), "no such move")

	// The uninterrupted move every resumed one must match, then a resume at
	// every point and an abort at every point before the switch. Targets
	// alternate so both shards receive tenants.
	scenarios := []*crashScenario{{name: "happy_path", target: "shard_1"}}
	for _, p := range crashPoints {
		scenarios = append(scenarios, &crashScenario{name: "resume_at_" + p.point, point: p.point, state: p.state, switched: p.switched})
	}
	for _, p := range crashPoints {
		if !p.switched {
			scenarios = append(scenarios, &crashScenario{name: "abort_at_" + p.point, point: p.point, state: p.state, abort: true})
		}
	}
	for i, sc := range scenarios {
		if sc.target == "" {
			sc.target = []string{"shard_1", "shard_2"}[i%2]
		}
		sc.site = env.register(t, "crash-"+crashSlug(sc.name), "default", crashFill)
	}
	t.Logf("cluster and %d tenants ready in %s", len(scenarios)+len(env.neighbours), time.Since(start).Round(time.Millisecond))

	// Every scenario has its own tenant, so they run side by side: most of a
	// resumed move is the mover's clean-up delay. t.Parallel would cap them
	// at GOMAXPROCS; a semaphore bounds the servers' connections instead.
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, sc := range scenarios {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(sc.name, func(t *testing.T) { env.run(t, sc) })
		})
	}
	wg.Wait()

	if diff := cmp.Diff(env.neighboursBefore, env.neighbourDigests(t)); diff != "" {
		t.Errorf("neighbours' rows changed (-before +after):\n%s", diff)
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// run plays one scenario.
func (e *crashEnv) run(t *testing.T, sc *crashScenario) {
	cfg := e.cluster.ConfigPath
	before := e.digest(t, "default", sc.site.ID)
	if before.Empty() {
		t.Fatal("the fixture wrote no rows")
	}
	if d := e.digest(t, sc.target, sc.site.ID); !d.Empty() {
		t.Fatalf("the target has rows of the tenant before the move: %v", d)
	}

	var id int64
	if sc.point == "" {
		out := mustPWB(t, cfg, "sharding", "migrate", "--mode", "freeze", sc.site.Subdomain, sc.target, "--yes")
		id = crashStartedID(t, out)
		if !strings.Contains(out, fmt.Sprintf("Move %d done", id)) {
			t.Errorf("migrate should say the move is done: %q", out)
		}
	} else {
		id = e.crash(t, sc)
	}

	idArg := strconv.FormatInt(id, 10)
	if sc.abort {
		r := pwb(t, cfg, "sharding", "abort", idArg, "--yes")
		if r.code != 0 {
			t.Fatalf("abort %d: exit %d\nstdout: %s\nstderr: %s", id, r.code, r.stdout, r.stderr)
		}
		e.wantAborted(t, sc, id, before)
		wantRefused(t, pwb(t, cfg, "sharding", "resume", idArg), "already aborted")
		wantRefused(t, pwb(t, cfg, "sharding", "abort", idArg, "--yes"), "already aborted")
	} else {
		if sc.point != "" {
			r := pwb(t, cfg, "sharding", "resume", idArg)
			if r.code != 0 {
				t.Fatalf("resume %d: exit %d\nstdout: %s\nstderr: %s", id, r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, fmt.Sprintf("Move %d done", id)) {
				t.Errorf("resume should say the move is done: %q", r.stdout)
			}
		}
		e.wantMoved(t, sc, id, before)
		wantRefused(t, pwb(t, cfg, "sharding", "resume", idArg), "already done")
		wantRefused(t, pwb(t, cfg, "sharding", "abort", idArg, "--yes"), "already done")
	}
	if diff := cmp.Diff(e.neighboursBefore, e.neighbourDigests(t)); diff != "" {
		t.Errorf("neighbours' rows changed (-before +after):\n%s", diff)
	}
}

// crash starts `pwb sharding migrate` as a process that pauses at sc.point,
// kills it there with SIGKILL, checks what the journal and the registry say
// and returns the move's id.
func (e *crashEnv) crash(t *testing.T, sc *crashScenario) int64 {
	cfg := e.cluster.ConfigPath
	child := crashStart(t, cfg, sc.point, "sharding", "migrate", "--mode", "freeze", sc.site.Subdomain, sc.target, "--yes")
	child.waitPause(t)
	child.kill(t)

	mv := e.journal(t, sc.site)
	if sc.point != "planned" { // the planned pause comes before the id is printed
		if got := crashStartedID(t, child.stdout.String()); got != mv.ID {
			t.Errorf("migrate printed move %d, the journal has move %d", got, mv.ID)
		}
	}
	if mv.State != sc.state || mv.Finished() {
		t.Errorf("journal after a kill at %s: move %d is %q (failed state %q, error %q), want %q", sc.point, mv.ID, mv.State, mv.FailedState, mv.Error, sc.state)
	}
	if mv.Source != "default" || mv.Target != sc.target {
		t.Errorf("journal: move from %q to %q, want from default to %q", mv.Source, mv.Target, sc.target)
	}

	w := e.website(t, sc.site.ID)
	switch {
	case sc.switched:
		if w.ShardName != sc.target || w.Status != registry.StatusActive {
			t.Errorf("registry after a kill at %s: tenant %s on %s, want active on %s", sc.point, w.Status, w.ShardName, sc.target)
		}
	case sc.point == "planned":
		if w.ShardName != "default" || w.Status != registry.StatusActive {
			t.Errorf("registry after a kill at %s: tenant %s on %s, want active on default", sc.point, w.Status, w.ShardName)
		}
	default:
		if w.ShardName != "default" || w.Status != registry.StatusReadOnly {
			t.Errorf("registry after a kill at %s: tenant %s on %s, want read_only on default", sc.point, w.Status, w.ShardName)
		}
	}
	if sc.point == "mid-cleanup" {
		src := e.digest(t, "default", sc.site.ID)
		if src.Empty() || cmp.Equal(src, e.digest(t, sc.target, sc.site.ID)) {
			t.Errorf("a kill in the middle of the clean-up should leave some but not all source rows: %v", src)
		}
		var deleted int64
		for _, tb := range mv.Tables {
			deleted += tb.RowsDeleted
		}
		if deleted == 0 || deleted >= mv.RowsTotal() {
			t.Errorf("journal after a kill in the middle of the clean-up: %d of %d rows deleted", deleted, mv.RowsTotal())
		}
	}
	e.waitUnclaimed(t, mv.ID)
	return mv.ID
}

// wantMoved checks a finished move: the tenant active on the target with
// exactly the rows it had on the source, none left on the source, and a
// complete journal.
func (e *crashEnv) wantMoved(t *testing.T, sc *crashScenario, id int64, before movertest.Digest) {
	t.Helper()
	w := e.website(t, sc.site.ID)
	if w.ShardName != sc.target || w.Status != registry.StatusActive {
		t.Errorf("registry: tenant is %s on %s, want active on %s", w.Status, w.ShardName, sc.target)
	}
	if diff := cmp.Diff(before, e.digest(t, sc.target, sc.site.ID)); diff != "" {
		t.Errorf("rows on the target differ from the source's before the move (-before +target):\n%s", diff)
	}
	if d := e.digest(t, "default", sc.site.ID); !d.Empty() {
		t.Errorf("rows of the tenant remain on the source: %v", d)
	}
	for _, s := range crashShards {
		if s != "default" && s != sc.target {
			if d := e.digest(t, s, sc.site.ID); !d.Empty() {
				t.Errorf("rows of the tenant on the uninvolved shard %s: %v", s, d)
			}
		}
	}
	mv := e.journal(t, sc.site)
	if mv.ID != id || mv.State != journal.StateDone || mv.FailedState != "" || mv.Error != "" ||
		mv.FrozenAt == nil || mv.SwitchedAt == nil || mv.FinishedAt == nil {
		t.Errorf("journal after the move: %+v", mv)
	}
	if got, want := mv.RowsTotal(), crashFill.Rows(); got != want || mv.RowsCopied() != want {
		t.Errorf("journal: %d of %d rows copied, want %d", mv.RowsCopied(), got, want)
	}
	for _, tb := range mv.Tables {
		if !tb.Copied || tb.RowsCopied != tb.RowsTotal || tb.SourceChecksum == "" || tb.SourceChecksum != tb.TargetChecksum ||
			tb.RowsDeleted != tb.RowsTotal {
			t.Errorf("journal table after the move: %+v", tb)
		}
	}
}

// wantAborted checks an aborted move: the tenant active on its source with
// its rows unchanged, nothing of it on the target, and the journal says so.
func (e *crashEnv) wantAborted(t *testing.T, sc *crashScenario, id int64, before movertest.Digest) {
	t.Helper()
	w := e.website(t, sc.site.ID)
	if w.ShardName != "default" || w.Status != registry.StatusActive {
		t.Errorf("registry: tenant is %s on %s, want active on default", w.Status, w.ShardName)
	}
	if diff := cmp.Diff(before, e.digest(t, "default", sc.site.ID)); diff != "" {
		t.Errorf("rows on the source changed (-before +after):\n%s", diff)
	}
	if d := e.digest(t, sc.target, sc.site.ID); !d.Empty() {
		t.Errorf("rows of the tenant remain on the target: %v", d)
	}
	mv := e.journal(t, sc.site)
	if mv.ID != id || mv.State != journal.StateAborted || !mv.TargetCleared || mv.FinishedAt == nil || mv.Error != "" {
		t.Errorf("journal after the abort: %+v", mv)
	}
}

// register creates a tenant on shardName and fills it.
func (e *crashEnv) register(t *testing.T, sub, shardName string, o movertest.Options) registry.Website {
	t.Helper()
	ctx := context.Background()
	w, err := registry.Create(ctx, e.pools["default"], registry.New{Subdomain: sub, Name: sub, ShardName: shardName})
	if err != nil {
		t.Fatal(err)
	}
	if err := movertest.Fill(ctx, e.pools[shardName], w.ID, o); err != nil {
		t.Fatal(err)
	}
	return w
}

func (e *crashEnv) website(t *testing.T, id int64) registry.Website {
	t.Helper()
	w, err := registry.Get(context.Background(), e.pools["default"], id)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// digest reads the tenant's rows on shardName.
func (e *crashEnv) digest(t *testing.T, shardName string, id int64) movertest.Digest {
	t.Helper()
	ctx := context.Background()
	conn, err := e.pools[shardName].Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	d, err := movertest.TakeDigest(ctx, conn.Conn(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// neighbourDigests reads every neighbour's rows on every shard.
func (e *crashEnv) neighbourDigests(t *testing.T) map[string]movertest.Digest {
	t.Helper()
	out := map[string]movertest.Digest{}
	for _, w := range e.neighbours {
		for _, s := range crashShards {
			out[w.Subdomain+" on "+s] = e.digest(t, s, w.ID)
		}
	}
	return out
}

// journal returns the tenant's only move as `pwb sharding moves --json`
// lists it.
func (e *crashEnv) journal(t *testing.T, site registry.Website) journal.Move {
	t.Helper()
	out := mustPWB(t, e.cluster.ConfigPath, "sharding", "moves", site.Subdomain, "--json")
	var moves []journal.Move
	if err := json.Unmarshal([]byte(out), &moves); err != nil {
		t.Fatalf("sharding moves --json: %v\n%s", err, out)
	}
	if len(moves) != 1 {
		t.Fatalf("the journal should have one move of %s, has %d:\n%s", site.Subdomain, len(moves), out)
	}
	return moves[0]
}

// waitUnclaimed waits until the primary has noticed the killed process's
// connection is gone and dropped its claim on move id, as it does within
// moments of the process dying.
func (e *crashEnv) waitUnclaimed(t *testing.T, id int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var held bool
		err := e.pools["default"].QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE locktype = 'advisory' AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 2)`,
			crashMoveLockClass, id).Scan(&held)
		if err != nil {
			t.Fatal(err)
		}
		if !held {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("move %d is still claimed 10s after its process was killed", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var crashStartedRE = regexp.MustCompile(`(?m)^Move (\d+) started$`)

// crashStartedID reads the move id from the `Move N started` line.
func crashStartedID(t *testing.T, stdout string) int64 {
	t.Helper()
	m := crashStartedRE.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no `Move N started` line in %q", stdout)
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// crashSlug turns a name into subdomain characters.
func crashSlug(s string) string {
	return strings.NewReplacer("_", "-", ":", "-").Replace(s)
}

// crashBuffer is a bytes.Buffer safe to write from a process's output
// goroutine while the test reads it.
type crashBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *crashBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *crashBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// crashChild is pwb running as a process with the mover's pause hook set,
// its stdin an open pipe so it blocks at the pause.
type crashChild struct {
	point  string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout crashBuffer
	stderr crashBuffer
	paused chan struct{} // closed when the pause line appears on stderr
	closed chan struct{} // closed when stderr ends
}

func crashStart(t *testing.T, cfg, point string, args ...string) *crashChild {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	ch := &crashChild{point: point, cmd: pwbProcess(ctx, cfg, args...), paused: make(chan struct{}), closed: make(chan struct{})}
	ch.cmd.Env = append(ch.cmd.Env, "PWB_TEST_PAUSE_AT="+point)
	ch.cmd.Stdout = &ch.stdout
	var err error
	if ch.stdin, err = ch.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stderr, err := ch.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ch.cmd.Process.Kill() // if the test failed before killing it
		cancel()
	})
	go func() {
		defer close(ch.closed)
		want := "pwb: test pause at " + point
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			ch.stderr.Write([]byte(sc.Text() + "\n"))
			if !seen && sc.Text() == want {
				seen = true
				close(ch.paused)
			}
		}
	}()
	return ch
}

// waitPause waits for the child to stop at its pause point.
func (ch *crashChild) waitPause(t *testing.T) {
	t.Helper()
	select {
	case <-ch.paused:
		return
	case <-ch.closed:
		err := ch.cmd.Wait()
		t.Fatalf("pwb ended (%v) without pausing at %s\nstdout: %s\nstderr: %s", err, ch.point, ch.stdout.String(), ch.stderr.String())
	case <-time.After(crashPauseTimeout):
		ch.cmd.Process.Kill()
		<-ch.closed
		ch.cmd.Wait()
		t.Fatalf("pwb did not pause at %s within %s\nstdout: %s\nstderr: %s", ch.point, crashPauseTimeout, ch.stdout.String(), ch.stderr.String())
	}
}

// kill sends SIGKILL and waits for the child to die of it.
func (ch *crashChild) kill(t *testing.T) {
	t.Helper()
	if err := ch.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-ch.closed
	err := ch.cmd.Wait()
	ch.stdin.Close()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("pwb paused at %s: wait: %v", ch.point, err)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("pwb paused at %s ended with %v, not killed\nstdout: %s\nstderr: %s", ch.point, err, ch.stdout.String(), ch.stderr.String())
	}
}
