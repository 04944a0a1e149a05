package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

// Moves started from the platform admin run as jobs of `pwb serve`. These
// tests run serve as real processes, kill or stop them in the middle of a
// move, and check that a move is run to done once, by one process at a time,
// with the tenant's rows intact.

const (
	jobsOpsEmail    = "ops@example.com"
	jobsOpsPassword = "correct horse battery staple"
	// jobsResumeLimit bounds how long a restarted serve may take to finish a
	// move whose process was killed: River elects a new leader only once
	// the dead one's term has expired (up to about 15s plus a 5s election
	// interval), its watcher then needs the dead job to be 5s stale, and a
	// move waits 5s after its switch before cleaning up.
	jobsResumeLimit = 60 * time.Second
	// jobsStopLimit bounds a graceful stop of serve.
	jobsStopLimit = 30 * time.Second
)

// jobsFill sizes a moved tenant: some hundreds of properties and real photos.
var jobsFill = movertest.Options{Properties: 300, Photos: 12}

// jobsEnv is a platform of primary and shard_1 with a super-admin.
type jobsEnv struct {
	*crashEnv
	cfg     string
	primary *pgxpool.Pool
}

func newJobsEnv(t *testing.T) *jobsEnv {
	t.Helper()
	c := migratedCluster(t, 1)
	ctx := context.Background()
	e := &jobsEnv{crashEnv: &crashEnv{cluster: c, pools: map[string]*pgxpool.Pool{}}, cfg: c.ConfigPath}
	for _, s := range []string{"default", "shard_1"} {
		pool, err := pgxpool.New(ctx, c.URL[s])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		e.pools[s] = pool
	}
	e.primary = e.pools["default"]
	if _, err := account.CreateSuperAdmin(ctx, e.primary, jobsOpsEmail, jobsOpsPassword); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *jobsEnv) move(t *testing.T, id int64) journal.Move {
	t.Helper()
	m, err := journal.Get(context.Background(), e.primary, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitDone waits until move id is done, at most limit, and returns how long
// it took. While waiting it fails fast if the move ends otherwise.
func (e *jobsEnv) waitDone(t *testing.T, id int64, limit time.Duration, logs ...*jobsServe) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		m := e.move(t, id)
		if m.State == journal.StateDone {
			return time.Since(start)
		}
		if m.State == journal.StateAborted || time.Since(start) > limit {
			var out strings.Builder
			for _, s := range logs {
				fmt.Fprintf(&out, "\n--- %s stderr:\n%s", s.base, s.stderr.String())
			}
			t.Fatalf("move %d after %s: %s (failed while %q: %q), want done%s", id, time.Since(start).Round(time.Millisecond),
				m.State, m.FailedState, m.Error, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jobsRow is a move job as River's table has it.
type jobsRow struct {
	ID        int64
	State     string
	Attempt   int
	Recovered bool
	Cancelled bool // cancel_attempted_at in its metadata
	Snoozes   int
}

func (e *jobsEnv) jobs(t *testing.T, moveID int64) []jobsRow {
	t.Helper()
	rows, err := e.primary.Query(context.Background(), `SELECT id, state::text, attempt,
			COALESCE((args->>'recovered')::boolean, false), metadata ? 'cancel_attempted_at',
			COALESCE((metadata->>'snoozes')::int, 0)
		FROM river_job WHERE kind = 'move' AND (args->>'move_id')::bigint = $1 ORDER BY id`, moveID)
	if err != nil {
		t.Fatal(err)
	}
	js, err := pgx.CollectRows(rows, pgx.RowToStructByPos[jobsRow])
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// waitJobs polls move id's jobs until ok passes: River records a job's
// end a moment after its work returns.
func (e *jobsEnv) waitJobs(t *testing.T, moveID int64, ok func([]jobsRow) bool) []jobsRow {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		js := e.jobs(t, moveID)
		if ok(js) || time.Now().After(deadline) {
			return js
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// audit returns move id's audit lines, oldest first, as "action outcome:
// detail".
func (e *jobsEnv) audit(t *testing.T, id int64) []string {
	t.Helper()
	rows, err := e.primary.Query(context.Background(), `SELECT action || ' ' || outcome || ': ' || detail
		FROM audit_log WHERE move_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// wantAudit checks that move id's audit lines start with the wanted
// prefixes, one for one.
func (e *jobsEnv) wantAudit(t *testing.T, id int64, want ...string) {
	t.Helper()
	got := e.audit(t, id)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Errorf("audit log of move %d:\n  %s\nwant lines starting:\n  %s", id, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// claimed reports whether some process holds move id's claim.
func (e *jobsEnv) claimed(t *testing.T, id int64) bool {
	t.Helper()
	c, err := mover.Claimed(context.Background(), e.primary, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantMoved checks a tenant after its move: active on shard_1 with exactly
// the rows it had on default, none left there.
func (e *jobsEnv) wantMoved(t *testing.T, site registry.Website, before movertest.Digest) {
	t.Helper()
	if w := e.website(t, site.ID); w.ShardName != "shard_1" || w.Status != registry.StatusActive {
		t.Errorf("registry: %s is %s on %s, want active on shard_1", site.Subdomain, w.Status, w.ShardName)
	}
	if diff := cmp.Diff(before, e.digest(t, "shard_1", site.ID)); diff != "" {
		t.Errorf("rows of %s on shard_1 differ from those on default before the move (-before +after):\n%s", site.Subdomain, diff)
	}
	if d := e.digest(t, "default", site.ID); !d.Empty() {
		t.Errorf("rows of %s remain on default: %v", site.Subdomain, d)
	}
}

// jobsServe is `pwb serve` as a child process, its output kept as it comes
// (crashChild's buffers, safe to read while it runs), its stdin a pipe for
// the mover's test pause.
type jobsServe struct {
	*crashChild
	base   string
	client *http.Client
}

// jobsStartServe starts `pwb serve` on a free port, pausing moves at point
// (none when empty), and waits until it listens.
func jobsStartServe(t *testing.T, cfg, point string) *jobsServe {
	t.Helper()
	ch := crashStart(t, cfg, point, "serve", "--addr", "127.0.0.1:0")
	deadline := time.Now().Add(time.Minute)
	for {
		if m := servingRE.FindStringSubmatch(ch.stdout.String()); m != nil {
			return &jobsServe{crashChild: ch, base: "http://127.0.0.1:" + m[1], client: &http.Client{Timeout: 10 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		}
		select {
		case <-ch.closed:
			err := ch.cmd.Wait()
			t.Fatalf("pwb serve ended (%v) before serving\nstdout: %s\nstderr: %s", err, ch.stdout.String(), ch.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pwb serve did not listen within a minute\nstdout: %s\nstderr: %s", ch.stdout.String(), ch.stderr.String())
		}
	}
}

// do sends a request to host with the platform admin's session cookie, if
// any, and returns the response and its body.
func (s *jobsServe) do(t *testing.T, method, host, path string, form url.Values, session string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if session != "" {
		req.AddCookie(&http.Cookie{Name: "pwb_platform", Value: session})
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// signIn signs the super-admin in to the platform admin and returns the
// session cookie's value.
func (s *jobsServe) signIn(t *testing.T) string {
	t.Helper()
	res, body := s.do(t, "POST", "localhost", "/admin/login", url.Values{"email": {jobsOpsEmail}, "password": {jobsOpsPassword}}, "")
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing in: %d\n%s", res.StatusCode, body)
	}
	for _, c := range res.Cookies() {
		if c.Name == "pwb_platform" && c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("signing in set no session cookie: %v", res.Header)
	return ""
}

var jobsQueuedRE = regexp.MustCompile(`^/admin/moves/(\d+)\?done=queued$`)

// migrate submits the admin's "Migrate Database" form for site and returns
// the id of the move it queued.
func (s *jobsServe) migrate(t *testing.T, session string, site registry.Website, target string) int64 {
	t.Helper()
	res, body := s.do(t, "POST", "localhost", fmt.Sprintf("/admin/tenants/%d/migrate", site.ID),
		url.Values{"csrf": {account.CSRFToken(session)}, "target": {target}}, session)
	m := jobsQueuedRE.FindStringSubmatch(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("migrating %s: %d, Location %q\n%s", site.Subdomain, res.StatusCode, res.Header.Get("Location"), body)
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// stop sends SIGTERM and waits for a clean exit, returning how long it took.
func (s *jobsServe) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return s.waitExit(t, start)
}

// waitExit waits for the process to exit 0, at most jobsStopLimit after
// start.
func (s *jobsServe) waitExit(t *testing.T, start time.Time) time.Duration {
	t.Helper()
	select {
	case <-s.closed:
	case <-time.After(jobsStopLimit - time.Since(start)):
		s.cmd.Process.Kill()
		<-s.closed
		s.cmd.Wait()
		t.Fatalf("pwb serve did not stop within %s\nstdout: %s\nstderr: %s", jobsStopLimit, s.stdout.String(), s.stderr.String())
	}
	err := s.cmd.Wait()
	took := time.Since(start)
	s.stdin.Close()
	if err != nil || !strings.Contains(s.stdout.String(), "pwb: stopped") {
		t.Errorf("pwb serve stopped with %v\nstdout: %s\nstderr: %s", err, s.stdout.String(), s.stderr.String())
	}
	return took
}

// waitLog waits until the process's stderr contains want.
func (s *jobsServe) waitLog(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(s.stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("pwb serve did not log %q within %s\nstderr: %s", want, limit, s.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var jobsStartedRE = regexp.MustCompile(`msg="move job started" move=(\d+) `)

// startedMoves counts the "move job started" lines of each move in log.
func startedMoves(log string) map[int64]int {
	out := map[int64]int{}
	for _, m := range jobsStartedRE.FindAllStringSubmatch(log, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		out[id]++
	}
	return out
}

// A `pwb serve` killed with SIGKILL in the middle of a move's copy leaves
// its job running in River's eyes and the move unclaimed. The next serve to
// start, with no operator, finds the dead job, cancels it, queues a new one
// and finishes the move: the tenant on shard_1 with exactly its rows, none
// left on default, its neighbour untouched, the audit log saying the move
// was queued and then done after a resume, and the site served.
func TestServe_KilledMidMoveResumesOnRestart(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newJobsEnv(t)
	ctx := context.Background()
	site := e.register(t, "resume-homes", "default", jobsFill)
	neighbour := e.register(t, "resume-neighbour", "default", movertest.Options{Properties: 20, Photos: 2})
	before, neighbourBefore := e.digest(t, "default", site.ID), e.digest(t, "default", neighbour.ID)

	first := jobsStartServe(t, e.cfg, "mid-copy:properties")
	session := first.signIn(t)
	id := first.migrate(t, session, site, "shard_1")
	first.waitPause(t)
	if !e.claimed(t, id) {
		t.Fatalf("move %d is paused but unclaimed", id)
	}
	first.kill(t)
	e.waitUnclaimed(t, id)

	m := e.move(t, id)
	if m.State != journal.StateCopying || m.Finished() {
		t.Fatalf("journal after the kill: move %d is %s (failed while %q), want copying", id, m.State, m.FailedState)
	}
	// The admin's moves are online here: the site kept taking changes.
	if w := e.website(t, site.ID); w.ShardName != "default" || w.Status != registry.StatusActive {
		t.Errorf("registry after the kill: %s on %s, want active on default", w.Status, w.ShardName)
	}
	dead := e.jobs(t, id)
	if len(dead) != 1 || dead[0].State != "running" || dead[0].Cancelled || dead[0].Attempt != 1 {
		t.Fatalf("jobs after the kill: %+v, want one running", dead)
	}
	t.Logf("killed at mid-copy:properties %s after the start", time.Since(start).Round(time.Millisecond))

	second := jobsStartServe(t, e.cfg, "")
	took := e.waitDone(t, id, jobsResumeLimit, second)
	t.Logf("the restarted serve finished move %d %s after it listened", id, took.Round(time.Millisecond))

	e.wantMoved(t, site, before)
	if diff := cmp.Diff(neighbourBefore, e.digest(t, "default", neighbour.ID)); diff != "" {
		t.Errorf("the neighbour's rows changed (-before +after):\n%s", diff)
	}
	m = e.move(t, id)
	if m.Error != "" || m.FinishedAt == nil || m.RowsCopied() != jobsFill.Rows() {
		t.Errorf("journal after the move: %+v", m)
	}
	js := e.waitJobs(t, id, func(js []jobsRow) bool { return len(js) == 2 && js[1].State == "completed" })
	// The dead job is marked cancelled at once; River finalises it when it
	// rescues stuck jobs, RescueStuckJobsAfter after it started.
	if len(js) != 2 || js[0].ID != dead[0].ID || !js[0].Cancelled || (js[0].State != "running" && js[0].State != "cancelled") ||
		!js[1].Recovered || js[1].State != "completed" || js[1].Attempt != 1 {
		t.Errorf("jobs after the move: %+v; want the dead one cancelled and one recovered job, completed on attempt 1", js)
	}
	if n := startedMoves(second.stderr.String())[id]; n != 1 {
		t.Errorf("the restarted serve started move %d's job %d times, want once", id, n)
	}
	if !strings.Contains(second.stderr.String(), "requeued") {
		t.Errorf("the restarted serve did not log the requeue:\n%s", second.stderr.String())
	}
	e.wantAudit(t, id, "move queued", "move done: resumed after the process running it stopped")

	// The restarted process serves the site, and the admin shows the move
	// done, in the session opened on the killed one.
	if res, body := second.do(t, "GET", site.Subdomain+".localhost", "/", nil, ""); res.StatusCode != 200 || !strings.Contains(body, site.Name) {
		t.Errorf("the site after the move: %d\n%s", res.StatusCode, body)
	}
	if res, body := second.do(t, "GET", "localhost", fmt.Sprintf("/admin/moves/%d/progress", id), nil, session); res.StatusCode != 200 ||
		!strings.Contains(body, `"done":true`) {
		t.Errorf("the move's progress after the move: %d\n%s", res.StatusCode, body)
	}
	second.stop(t)
	if r, err := registry.Get(ctx, e.primary, site.ID); err != nil || r.ShardName != "shard_1" {
		t.Errorf("registry at the end: %+v, %v", r, err)
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

// Two `pwb serve` processes work the same job queue. Moves of three tenants
// queued through one of them are each run once, by one process: one job per
// move, completed on its first attempt, never snoozed, started once across
// both processes' logs; every tenant's rows arrive intact.
func TestServe_TwoProcessesRunAMoveOnce(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newJobsEnv(t)
	fill := movertest.Options{Properties: 150, Photos: 6}
	var sites []registry.Website
	befores := map[int64]movertest.Digest{}
	for _, sub := range []string{"twice-a", "twice-b", "twice-c"} {
		w := e.register(t, sub, "default", fill)
		sites = append(sites, w)
		befores[w.ID] = e.digest(t, "default", w.ID)
	}
	neighbour := e.register(t, "twice-neighbour", "default", movertest.Options{Properties: 20, Photos: 2})
	neighbourBefore := e.digest(t, "default", neighbour.ID)

	procs := []*jobsServe{jobsStartServe(t, e.cfg, ""), jobsStartServe(t, e.cfg, "")}
	session := procs[0].signIn(t)
	ids := map[int64]registry.Website{}
	for _, w := range sites {
		ids[procs[0].migrate(t, session, w, "shard_1")] = w
	}
	for id := range ids {
		took := e.waitDone(t, id, jobsResumeLimit, procs...)
		t.Logf("move %d done %s after it was queued, or after the one before", id, took.Round(time.Millisecond))
	}
	for id, w := range ids {
		js := e.waitJobs(t, id, func(js []jobsRow) bool { return len(js) == 1 && js[0].State == "completed" })
		if len(js) != 1 || js[0].State != "completed" || js[0].Attempt != 1 || js[0].Snoozes != 0 || js[0].Recovered {
			t.Errorf("jobs of move %d: %+v, want one, completed on attempt 1, never snoozed", id, js)
		}
		e.wantMoved(t, w, befores[w.ID])
		e.wantAudit(t, id, "move queued", "move done")
	}
	if diff := cmp.Diff(neighbourBefore, e.digest(t, "default", neighbour.ID)); diff != "" {
		t.Errorf("the neighbour's rows changed (-before +after):\n%s", diff)
	}

	for _, p := range procs {
		p.stop(t)
	}
	total := map[int64]int{}
	var ran []string
	for i, p := range procs {
		log := p.stderr.String()
		if strings.Contains(log, "requeued") || strings.Contains(log, "move job failed") {
			t.Errorf("process %d requeued or failed a move:\n%s", i, log)
		}
		started := startedMoves(log)
		for id, n := range started {
			total[id] += n
		}
		ran = append(ran, fmt.Sprintf("process %d ran %v", i, started))
	}
	for id := range ids {
		if total[id] != 1 {
			t.Errorf("move %d's job started %d times across both processes, want once", id, total[id])
		}
	}
	if len(total) != len(ids) {
		t.Errorf("jobs started: %v, want one per move of %v", total, ids)
	}
	t.Logf("%s; took %s", strings.Join(ran, ", "), time.Since(start).Round(time.Millisecond))
}

// A `pwb serve` stopped with SIGTERM in the middle of a move exits
// promptly: the move is interrupted and recorded failed in its journal, and
// its job snoozed for the next process, which finishes it without an
// operator.
func TestServe_GracefulStopMidMoveSnoozesTheJob(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := newJobsEnv(t)
	site := e.register(t, "stop-homes", "default", jobsFill)
	neighbour := e.register(t, "stop-neighbour", "default", movertest.Options{Properties: 20, Photos: 2})
	before, neighbourBefore := e.digest(t, "default", site.ID), e.digest(t, "default", neighbour.ID)

	first := jobsStartServe(t, e.cfg, "mid-copy:properties")
	session := first.signIn(t)
	id := first.migrate(t, session, site, "shard_1")
	first.waitPause(t)
	job := e.jobs(t, id)
	if len(job) != 1 || job[0].State != "running" {
		t.Fatalf("jobs of the paused move: %+v", job)
	}

	// Stop, and let the mover go on only once the queue has cancelled it.
	stopAt := time.Now()
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	first.waitLog(t, "Hard stop started", jobsStopLimit)
	if _, err := io.WriteString(first.stdin, "\n"); err != nil {
		t.Fatal(err)
	}
	took := first.waitExit(t, stopAt)
	t.Logf("serve stopped %s after SIGTERM", took.Round(time.Millisecond))
	if !strings.Contains(first.stderr.String(), "move job interrupted") {
		t.Errorf("serve did not log the interruption:\n%s", first.stderr.String())
	}

	m := e.move(t, id)
	if m.State != journal.StateFailed || !strings.Contains(m.Error, "interrupted") || m.Switched() {
		t.Errorf("journal after the stop: %s (failed while %q: %q), want failed before the switch, interrupted", m.State, m.FailedState, m.Error)
	}
	if e.claimed(t, id) {
		t.Error("the stopped process's move is still claimed")
	}
	js := e.jobs(t, id)
	// A snooze shorter than River's scheduler interval makes the job
	// available at once, to be fetched from its scheduled_at; a longer one
	// scheduled. Either way it waits for a process, and a snooze is not an
	// attempt.
	if len(js) != 1 || js[0].ID != job[0].ID || (js[0].State != "available" && js[0].State != "scheduled") ||
		js[0].Snoozes != 1 || js[0].Attempt != 0 || js[0].Cancelled {
		t.Fatalf("jobs after the stop: %+v, want the one job waiting to run again (snoozed)", js)
	}

	second := jobsStartServe(t, e.cfg, "")
	took = e.waitDone(t, id, jobsResumeLimit, second)
	t.Logf("the restarted serve finished move %d %s after it listened", id, took.Round(time.Millisecond))
	e.wantMoved(t, site, before)
	if diff := cmp.Diff(neighbourBefore, e.digest(t, "default", neighbour.ID)); diff != "" {
		t.Errorf("the neighbour's rows changed (-before +after):\n%s", diff)
	}
	js = e.waitJobs(t, id, func(js []jobsRow) bool { return len(js) == 1 && js[0].State == "completed" })
	if len(js) != 1 || js[0].ID != job[0].ID || js[0].State != "completed" || js[0].Attempt != 1 || js[0].Recovered {
		t.Errorf("jobs after the move: %+v, want the same job completed on attempt 1 (a snooze is no attempt)", js)
	}
	if n := startedMoves(second.stderr.String())[id]; n != 1 || strings.Contains(second.stderr.String(), "requeued") {
		t.Errorf("the restarted serve started move %d's job %d times (want once), or requeued it:\n%s", id, n, second.stderr.String())
	}
	e.wantAudit(t, id, "move queued", "move done")
	if res, body := second.do(t, "GET", site.Subdomain+".localhost", "/", nil, ""); res.StatusCode != 200 || !strings.Contains(body, site.Name) {
		t.Errorf("the site after the move: %d\n%s", res.StatusCode, body)
	}
	second.stop(t)
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}
