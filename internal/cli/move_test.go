package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/units"
)

// mvTenant creates tenant sub on shard and fills it, returning its id.
func mvTenant(t *testing.T, c *pgtest.Cluster, sub, shardName string, o movertest.Options) int64 {
	t.Helper()
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", sub, "--name", sub, "--shard", shardName)
	id := pgtest.QueryValue[int64](t, c.URL[shard.Default], "SELECT id FROM websites WHERE subdomain = $1", sub)
	pool, err := pgxpool.New(context.Background(), c.URL[shardName])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := movertest.Fill(context.Background(), pool, id, o); err != nil {
		t.Fatal(err)
	}
	return id
}

// mvWhere returns the tenant's shard and status from the registry.
func mvWhere(t *testing.T, c *pgtest.Cluster, id int64) string {
	t.Helper()
	return pgtest.QueryValue[string](t, c.URL[shard.Default], "SELECT shard_name || ' ' || status FROM websites WHERE id = $1", id)
}

func mvJournalSize(t *testing.T, c *pgtest.Cluster) int64 {
	t.Helper()
	return pgtest.QueryValue[int64](t, c.URL[shard.Default], "SELECT count(*) FROM moves")
}

func mvRows(t *testing.T, c *pgtest.Cluster, shardName string, id int64) int64 {
	t.Helper()
	return pgtest.QueryValue[int64](t, c.URL[shardName], "SELECT (SELECT count(*) FROM properties WHERE website_id = $1) + (SELECT count(*) FROM messages WHERE website_id = $1)", id)
}

func TestMigrate_DryRunConfirmationAndJSON(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 2)
	cfg := c.ConfigPath
	fill := movertest.Options{Properties: 40, Photos: 4}
	id := mvTenant(t, c, "dry-co", shard.Default, fill)
	rows := mvRows(t, c, shard.Default, id)

	// --dry-run prints the plan and changes nothing.
	out := mustPWB(t, cfg, "sharding", "migrate", "--mode", "freeze", "dry-co", "shard_1", "--dry-run")
	for _, want := range []string{"Plan: move tenant " + strconv.FormatInt(id, 10) + " (dry-co) from default to shard_1",
		"property_photos", "ID COLLISIONS", "total", "Estimated time: about", "Dry run: nothing was changed."} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, strconv.FormatInt(fill.Rows(), 10)) && !strings.Contains(out, units.Count(fill.Rows())) {
		t.Errorf("dry run should total %d rows:\n%s", fill.Rows(), out)
	}
	var plan mover.Plan
	if err := json.Unmarshal([]byte(mustPWB(t, cfg, "sharding", "migrate", "--mode", "freeze", "dry-co", "shard_1", "--dry-run", "--json")), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Rows() != fill.Rows() || len(plan.Tables) != 7 || plan.Target != "shard_1" || plan.Collisions != 0 {
		t.Errorf("JSON plan: %+v", plan)
	}
	// Sizes in the units the platform admin shows them in.
	if size := units.Bytes(plan.Bytes()); !strings.Contains(out, size) || !strings.HasSuffix(size, "iB") {
		t.Errorf("dry run should total %s:\n%s", size, out)
	}
	if got := mvWhere(t, c, id); got != "default active" || mvJournalSize(t, c) != 0 || mvRows(t, c, "shard_1", id) != 0 {
		t.Fatalf("dry run changed something: registry %q, journal %d", got, mvJournalSize(t, c))
	}

	// Without --yes it asks; anything but yes changes nothing.
	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": cfg}
	for stdin, want := range map[string]string{"no\n": "pwb: not confirmed: nothing was changed\n", "": "(pass --yes to skip the question)\n"} {
		r := pwbInput(env, stdin, "sharding", "migrate", "--mode", "freeze", "dry-co", "shard_1")
		question := "Move tenant " + strconv.FormatInt(id, 10) + " (dry-co) from default to shard_1: " + units.Count(fill.Rows()) + " rows, " + units.Bytes(plan.Bytes()) + "?"
		if r.code != ExitFailed || !strings.HasPrefix(r.stderr, question) || !strings.Contains(r.stderr, "read-only for about") || !strings.HasSuffix(r.stderr, want) {
			t.Errorf("answer %q: exit %d, stderr %q; want the question, then %q", stdin, r.code, r.stderr, want)
		}
	}
	if got := mvWhere(t, c, id); got != "default active" || mvJournalSize(t, c) != 0 {
		t.Fatalf("an unconfirmed move changed something: registry %q, journal %d", got, mvJournalSize(t, c))
	}

	// yes moves it, and --json streams progress then the result.
	r := pwbInput(env, "yes\n", "sharding", "migrate", "--mode", "freeze", "dry-co", "shard_1", "--json")
	if r.code != 0 {
		t.Fatalf("confirmed move: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var phases []string
	var last struct {
		Event string       `json:"event"`
		Move  journal.Move `json:"move"`
	}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var line struct {
			Event   string  `json:"event"`
			Phase   string  `json:"phase"`
			Rows    int64   `json:"rows"`
			Total   int64   `json:"rows_total"`
			Percent float64 `json:"percent"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		if line.Event == "progress" && (len(phases) == 0 || phases[len(phases)-1] != line.Phase) {
			phases = append(phases, line.Phase)
		}
		if line.Event == "progress" && line.Phase == "copying" && (line.Total != fill.Rows() || line.Percent < 0 || line.Percent > 100) {
			t.Errorf("copy progress line %s", sc.Text())
		}
		json.Unmarshal(sc.Bytes(), &last)
	}
	if !strings.Contains(strings.Join(phases, " "), "frozen copying copied verifying verified switched") {
		t.Errorf("progress phases %v", phases)
	}
	if last.Event != "done" || last.Move.State != journal.StateDone || last.Move.RowsCopied() != fill.Rows() {
		t.Errorf("last JSON line: %+v", last)
	}
	if got := mvWhere(t, c, id); got != "shard_1 active" || mvRows(t, c, "shard_1", id) != rows || mvRows(t, c, shard.Default, id) != 0 {
		t.Errorf("after the move: registry %q, rows on shard_1 %d (want %d), on default %d", got, mvRows(t, c, "shard_1", id), rows, mvRows(t, c, shard.Default, id))
	}

	// The plain output: a line per phase and the summary.
	out = mustPWB(t, cfg, "sharding", "migrate", "--mode", "freeze", "dry-co", "default", "--yes")
	for _, want := range []string{"Move 2 started", "copying", "Move 2 done (freeze): tenant " + strconv.FormatInt(id, 10) + " (dry-co) is on default", "read-only for"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate output lacks %q:\n%s", want, out)
		}
	}

	// The journal, all and per tenant.
	out = mustPWB(t, cfg, "sharding", "moves")
	if !strings.Contains(out, "MOVE") || strings.Count(out, " done ") != 2 {
		t.Errorf("moves:\n%s", out)
	}
	var moves []journal.Move
	if err := json.Unmarshal([]byte(mustPWB(t, cfg, "sharding", "moves", "dry-co", "--json")), &moves); err != nil {
		t.Fatal(err)
	}
	if len(moves) != 2 || moves[0].ID != 2 || moves[0].Source != "shard_1" || moves[1].Target != "shard_1" || moves[0].StartedBy == "" {
		t.Errorf("moves --json: %+v", moves)
	}
	mustPWB(t, cfg, "tenants", "create", "--subdomain", "never-moved", "--name", "N")
	if out := mustPWB(t, cfg, "sharding", "moves", "never-moved"); !strings.Contains(out, "No moves.") {
		t.Errorf("moves of a tenant never moved:\n%s", out)
	}
	if out := mustPWB(t, cfg, "sharding", "verify", "dry-co"); !strings.Contains(out, "Tenant "+strconv.FormatInt(id, 10)+" (dry-co) on shard default") ||
		!strings.Contains(out, "Last move 2 from shard_1 to default, done") || !strings.Contains(out, "its verify step found every table equal on both shards") {
		t.Errorf("verify after moves:\n%s", out)
	}
	if out := mustPWB(t, cfg, "sharding", "moves", "never-moved", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("moves --json of a tenant never moved: %q", out)
	}
}

// verify reports counts and checksums, compares the two sides of an
// unfinished move, and fails when a finished copy differs from its source;
// so does resume, which then refuses to switch.
func TestVerify_CatchesADamagedCopy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := migratedCluster(t, 1)
	cfg := c.ConfigPath
	id := mvTenant(t, c, "check-co", shard.Default, movertest.Options{Properties: 30, Photos: 3})

	out := mustPWB(t, cfg, "sharding", "verify", "check-co")
	if !strings.Contains(out, "TABLE") || !strings.Contains(out, "property_photos  3") && !strings.Contains(out, "property_photos") {
		t.Errorf("verify:\n%s", out)
	}

	// A move stopped after its copy, as a crash would leave it.
	conf, err := config.Load(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(conf)
	defer set.Close()
	stop, cancel := context.WithCancel(ctx)
	m, err := mover.New(set, mover.Options{Pause: func(p string) {
		if p == string(journal.StateCopied) {
			cancel()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := m.Plan(ctx, "check-co", "shard_1", journal.ModeFreeze)
	if err != nil {
		t.Fatal(err)
	}
	moveID, err := m.Start(ctx, plan, "test")
	if err != nil {
		t.Fatal(err)
	}
	m.Run(stop, moveID)
	if step := pgtest.QueryValue[string](t, c.URL[shard.Default], "SELECT failed_state FROM moves WHERE id = $1 AND state = 'failed'", moveID); step != string(journal.StateCopied) {
		t.Fatalf("move stopped in %s, want interrupted after its copy", step)
	}

	out = mustPWB(t, cfg, "sharding", "verify", "check-co")
	if !strings.Contains(out, "Unfinished move 1 from default to shard_1 is failed (copied)") || strings.Contains(out, "DIFFER") || strings.Count(out, "equal") != 7 {
		t.Errorf("verify of a complete copy:\n%s", out)
	}
	pgtest.Exec(t, c.URL["shard_1"], "UPDATE pages SET title = 'Tampered' WHERE website_id = $1 AND slug = 'contact'", id)
	r := pwb(t, cfg, "sharding", "verify", "check-co")
	if r.code != ExitFailed || !strings.Contains(r.stdout, "DIFFER") || !strings.Contains(r.stderr, "differs") {
		t.Errorf("verify of a damaged copy: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep mover.Report
	json.Unmarshal([]byte(pwb(t, cfg, "sharding", "verify", "check-co", "--json").stdout), &rep)
	if len(rep.Tables) != 7 || rep.Other != "shard_1" || !rep.Mismatched() {
		t.Errorf("verify --json: %+v", rep)
	}

	r = pwb(t, cfg, "sharding", "resume", "1")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "failed while copied") || !strings.Contains(r.stderr, "pages: source") || !strings.Contains(r.stderr, "pwb sharding abort 1") {
		t.Errorf("resume over a damaged copy: exit %d\n%s", r.code, r.stderr)
	}
	if got := mvWhere(t, c, id); got != "default read_only" {
		t.Errorf("after a failed verify the tenant is %q, want still read_only on default", got)
	}
	out = mustPWB(t, cfg, "sharding", "abort", "1", "--yes")
	if !strings.Contains(out, "Move 1 aborted") {
		t.Errorf("abort: %s", out)
	}
	if got := mvWhere(t, c, id); got != "default active" || mvRows(t, c, "shard_1", id) != 0 {
		t.Errorf("after abort: %q, %d rows left on shard_1", got, mvRows(t, c, "shard_1", id))
	}
}

// Every command's refusals: one line, exit 1 (2 for wrong usage), nothing
// changed.
func TestMoveCommands_Refusals(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	cfg := c.ConfigPath
	id := mvTenant(t, c, "refuse-co", shard.Default, movertest.Options{Properties: 5, Photos: 1})

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sharding", "migrate", "--mode", "freeze", "nobody", "shard_1", "--yes"}, "no such tenant"},
		{[]string{"sharding", "migrate", "--mode", "freeze", "refuse-co", "shard_7", "--yes"}, `target shard "shard_7" is not configured`},
		{[]string{"sharding", "migrate", "--mode", "freeze", "refuse-co", "default", "--yes"}, "already on shard"},
		{[]string{"sharding", "migrate", "--mode", "freeze", "refuse-co", "shard_7", "--dry-run"}, "is not configured"},
		{[]string{"sharding", "resume", "77"}, "no such move"},
		{[]string{"sharding", "abort", "77", "--yes"}, "no such move"},
		{[]string{"sharding", "abort", "77"}, "no such move"},
		{[]string{"sharding", "verify", "nobody"}, "no such tenant"},
		{[]string{"sharding", "moves", "nobody"}, "no such tenant"},
	} {
		wantRefused(t, pwb(t, cfg, tc.args...), tc.want)
	}
	for _, args := range [][]string{
		{"sharding", "migrate", "--mode", "freeze", "refuse-co"},
		{"sharding", "resume", "abc"},
		{"sharding", "abort", "-3"},
		{"sharding", "resume"},
		{"sharding", "verify"},
		{"sharding", "migrate", "--mode", "freeze", "refuse-co", "shard_1", "--yes", "--cleanup-delay", "-1s"},
		{"sharding", "migrate", "--mode", "freeze", "refuse-co", "shard_1", "--yes", "--cleanup-delay", "soon"},
	} {
		if r := pwb(t, cfg, args...); r.code != ExitUsage {
			t.Errorf("pwb %s: exit %d, want %d (usage)\n%s", strings.Join(args, " "), r.code, ExitUsage, r.stderr)
		}
	}
	if mvJournalSize(t, c) != 0 || mvWhere(t, c, id) != "default active" {
		t.Fatal("a refused command changed something")
	}

	// While a move is unfinished: no second move, no status change or
	// provision by hand, and the journal says how to go on.
	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": cfg, pauseEnv: "frozen"}
	r := pwbInput(env, "", "sharding", "migrate", "--mode", "freeze", "refuse-co", "shard_1", "--yes") // the pause reads EOF and goes on
	if r.code != 0 {
		t.Fatalf("move: %d %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "pwb: test pause at frozen") {
		t.Errorf("the test hook did not announce its pause: %q", r.stderr)
	}
	mustPWB(t, cfg, "sharding", "migrate", "--mode", "freeze", "refuse-co", "default", "--yes", "--cleanup-delay", "0s")

	ctx := context.Background()
	conf, _ := config.Load(cfg, "test")
	set := shard.NewSet(conf)
	defer set.Close()
	m, _ := mover.New(set, mover.Options{})
	plan, err := m.Plan(ctx, "refuse-co", "shard_1", journal.ModeFreeze)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx, plan, "test"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"sharding", "migrate", "--mode", "freeze", "refuse-co", "shard_1", "--yes"},
		{"tenants", "set-status", "refuse-co", "active"},
		{"sharding", "provision", "refuse-co", "shard_1"},
	} {
		wantRefused(t, pwb(t, cfg, args...), "move 3 of tenant")
	}
	if out := mustPWB(t, cfg, "sharding", "moves", "refuse-co"); !strings.Contains(out, "planned") {
		t.Errorf("moves should show the planned move:\n%s", out)
	}
	mustPWB(t, cfg, "sharding", "abort", "3", "--yes")
	wantRefused(t, pwb(t, cfg, "sharding", "abort", "3", "--yes"), "already aborted")
	wantRefused(t, pwb(t, cfg, "sharding", "resume", "3"), "already aborted")
	wantRefused(t, pwb(t, cfg, "sharding", "resume", "2"), "already done")
}

// Ctrl-C stops a move where it is, records it failed with the reason, and
// the one-line error says how to go on; resume then finishes it.
func TestMigrate_InterruptedByCtrlC(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	cfg := c.ConfigPath
	id := mvTenant(t, c, "ctrlc-co", shard.Default, movertest.Options{Properties: 30, Photos: 2})
	rows := mvRows(t, c, shard.Default, id)

	ch := crashStart(t, cfg, "copying", "sharding", "migrate", "--mode", "freeze", "ctrlc-co", "shard_1", "--yes")
	ch.waitPause(t)
	if err := ch.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	ch.stdin.Close() // the pause returns; the next step sees the interrupt
	<-ch.closed
	err := ch.cmd.Wait()
	if ch.cmd.ProcessState.ExitCode() != ExitFailed {
		t.Fatalf("interrupted move: %v\nstdout: %s\nstderr: %s", err, ch.stdout.String(), ch.stderr.String())
	}
	last := strings.TrimSpace(ch.stderr.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	for _, want := range []string{"pwb: move 1 failed while copying", "interrupted", "pwb sharding resume 1", "pwb sharding abort 1"} {
		if !strings.Contains(last, want) {
			t.Errorf("last stderr line %q lacks %q", last, want)
		}
	}
	state := pgtest.QueryValue[string](t, c.URL[shard.Default], "SELECT state || ' ' || failed_state || ' ' || error FROM moves WHERE id = 1")
	if !strings.HasPrefix(state, "failed copying interrupted while copying") {
		t.Errorf("journal after Ctrl-C: %q", state)
	}
	if got := mvWhere(t, c, id); got != "default read_only" {
		t.Errorf("tenant after Ctrl-C: %q, want read_only on default until resumed or aborted", got)
	}
	out := mustPWB(t, cfg, "sharding", "resume", "1", "--cleanup-delay", "0s")
	if !strings.Contains(out, "Move 1 done") || mvWhere(t, c, id) != "shard_1 active" || mvRows(t, c, "shard_1", id) != rows || mvRows(t, c, shard.Default, id) != 0 {
		t.Errorf("resume after Ctrl-C:\n%s", out)
	}
}

// Two `pwb sharding migrate` processes of one tenant at the same moment: one
// moves it, the other refuses with a reason that names the first.
func TestMigrate_TwoProcessesAtOnce(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 2)
	cfg := c.ConfigPath
	id := mvTenant(t, c, "twice-co", shard.Default, movertest.Options{Properties: 200, Photos: 4})
	rows := mvRows(t, c, shard.Default, id)

	type outcome struct {
		code           int
		stdout, stderr string
	}
	results := make([]outcome, 2)
	var wg sync.WaitGroup
	for i, target := range []string{"shard_1", "shard_2"} {
		wg.Go(func() {
			cmd := pwbProcess(context.Background(), cfg, "sharding", "migrate", "--mode", "freeze", "twice-co", target, "--yes", "--cleanup-delay", "0s")
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			cmd.Run()
			results[i] = outcome{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
		})
	}
	wg.Wait()
	won, lost := results[0], results[1]
	if won.code != 0 {
		won, lost = lost, won
	}
	if won.code != 0 || lost.code != ExitFailed {
		t.Fatalf("want one move to succeed and one to refuse, got exits %d and %d\n%+v", results[0].code, results[1].code, results)
	}
	// The loser is refused at its start: by the winner's unfinished move, by
	// a start at the same moment, or, when the winner was quick enough to
	// finish first, because the tenant is no longer where its plan found it.
	if !strings.HasPrefix(lost.stderr, "pwb: ") || strings.Count(lost.stderr, "\n") != 1 ||
		!strings.Contains(lost.stderr, "unfinished move") && !strings.Contains(lost.stderr, "same moment") &&
			!strings.Contains(lost.stderr, "changed since the plan: it is now active on shard") {
		t.Errorf("the refused move should say why on one line: %q", lost.stderr)
	}
	where := mvWhere(t, c, id)
	target := strings.Fields(where)[0]
	if where != target+" active" || target == shard.Default || mvRows(t, c, target, id) != rows {
		t.Errorf("after the race the tenant is %q with %d rows there", where, mvRows(t, c, target, id))
	}
	if n := mvJournalSize(t, c); n != 1 {
		t.Errorf("journal has %d moves, want 1", n)
	}
}

// An online move from the CLI: the plan says the mode, the move keeps the
// site writable and reports the catch-up and the blocked time, and the
// journal listing shows them. A source reached through a pooler without a
// replication_url falls back to freeze mode and says why, and --mode online
// is refused with that reason; a mode that does not exist is a usage error.
func TestMigrate_OnlineFromTheCLI(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	cfg := c.ConfigPath
	id := mvTenant(t, c, "online-co", shard.Default, movertest.Options{Properties: 60, Photos: 4})
	out := mustPWB(t, cfg, "sharding", "migrate", "online-co", "shard_1", "--dry-run")
	if !strings.Contains(out, "Mode: online\n") || !strings.Contains(out, "writes are held for under a second") {
		t.Errorf("dry run does not say the move is online:\n%s", out)
	}
	out = mustPWB(t, cfg, "sharding", "migrate", "online-co", "shard_1", "--yes", "--cleanup-delay", "0s")
	for _, want := range []string{"prepared: the site keeps taking changes", "streaming the changes", "changes applied, ", "cutting over",
		"Move 1 done (online): tenant " + strconv.FormatInt(id, 10) + " (online-co) is on shard_1", "changes streamed, writes held for "} {
		if !strings.Contains(out, want) {
			t.Errorf("online migrate output lacks %q:\n%s", want, out)
		}
	}
	if got := mvWhere(t, c, id); got != "shard_1 active" {
		t.Errorf("after the move the tenant is %q", got)
	}
	list := mustPWB(t, cfg, "sharding", "moves")
	if !strings.Contains(list, "MODE") || !strings.Contains(list, "BLOCKED") || !strings.Contains(list, " online ") {
		t.Errorf("the journal listing lacks the mode and blocked time:\n%s", list)
	}

	// The same cluster, its source now said to be behind a pooler.
	pooled := pgtest.WriteConfig(t,
		pgtest.Shard{Key: "primary", Server: c.Servers[0], DB: c.Database["default"]},
		pgtest.Shard{Key: "shard_1", Server: c.Servers[1], DB: c.Database["shard_1"], Settings: map[string]string{"advisory_locks": "false"}})
	out = mustPWB(t, pooled, "sharding", "migrate", "online-co", "default", "--dry-run")
	if !strings.Contains(out, "Mode: freeze (shard \"shard_1\" is reached through a transaction pooler") || !strings.Contains(out, "replication_url") {
		t.Errorf("a pooled source should fall back to freeze mode and say why:\n%s", out)
	}
	before := mvJournalSize(t, c)
	wantRefused(t, pwb(t, pooled, "sharding", "migrate", "online-co", "default", "--mode", "online", "--yes"),
		"an online move of tenant "+strconv.FormatInt(id, 10)+" (online-co) is not possible: shard \"shard_1\" is reached through a transaction pooler")
	if r := pwb(t, pooled, "sharding", "migrate", "online-co", "default", "--mode", "live", "--yes"); r.code != ExitUsage || !strings.Contains(r.stderr, `--mode "live": want online or freeze`) {
		t.Errorf("--mode live: exit %d, %q; want usage", r.code, r.stderr)
	}
	if after := mvJournalSize(t, c); after != before {
		t.Errorf("refusals recorded %d move(s)", after-before)
	}
}

// The shipped pwb has no pause hook: built as a user builds it, with the
// tests' pause variable set, a move runs straight through instead of
// stopping to wait on its input.
func TestShippedBinaryIgnoresThePauseVariable(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "pwb")
	build := exec.Command("go", "build", "-o", bin, "github.com/propertywebbuilder/pwb/cmd/pwb")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building pwb: %v\n%s", err, out)
	}
	c := migratedCluster(t, 1)
	id := mvTenant(t, c, "shipped-co", shard.Default, movertest.Options{Properties: 10, Photos: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "sharding", "migrate", "shipped-co", "shard_1", "--mode", "freeze", "--yes", "--cleanup-delay", "0s")
	cmd.Env = append(os.Environ(), "PWB_ENV=test", "PWB_CONFIG="+c.ConfigPath, pauseEnv+"=frozen")
	stdin, err := cmd.StdinPipe() // open, and never written: a pause would wait on it
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "test pause") {
		t.Fatalf("the shipped pwb: %v\n%s", err, out)
	}
	if got := mvWhere(t, c, id); got != "shard_1 active" {
		t.Errorf("after the move the tenant is %q", got)
	}
}
