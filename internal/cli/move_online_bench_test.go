package cli

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/benchenv"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// onlBenchProperties sizes the benchmark's tenant: movertest.Fill writes
// about 5.5 rows per property, so 182,000 properties make just over a
// million rows.
const onlBenchProperties = 182_000

// TestBench_OnlineVersusFreezeMove is the online-move benchmark, run with
// `make bench-online`: a tenant of over a million rows is moved between two
// PostgreSQL servers (shard_1 and shard_2) by `pwb sharding migrate`, back
// and forth, online and freeze in alternating order, while a steady load of
// enquiries and property edits reaches its site through two `pwb serve`
// processes. Per move it measures the longest a write waited for its answer,
// the writes refused, the journal's blocked time and the whole move's wall
// time. It measures and reports; it is not part of `make test`.
//
// Environment: PWB_BENCH_ONLINE=1 runs it; PWB_BENCH_ROUNDS (default 3) sets
// the rounds, each one online and one freeze move; PWB_BENCH_PROPERTIES
// overrides the tenant's size (for a quick trial; the figures quoted use the
// default); PWB_BENCH_RATE (default 30) is the write load in writes per
// second; PWB_BENCH_CLEANUP_DELAY (default 0s) is the moves'
// --cleanup-delay; PWB_BENCH_OUT names a file to write the markdown summary
// to.
func TestBench_OnlineVersusFreezeMove(t *testing.T) {
	if os.Getenv("PWB_BENCH_ONLINE") == "" {
		t.Skip("set PWB_BENCH_ONLINE=1 (make bench-online) to run the online versus freeze move benchmark")
	}
	rounds := benchenv.Int(t, "PWB_BENCH_ROUNDS", 3)
	fill := movertest.Options{Properties: benchenv.Int(t, "PWB_BENCH_PROPERTIES", onlBenchProperties), Photos: 12}
	rate := benchenv.Int(t, "PWB_BENCH_RATE", 30)
	cleanupDelay := time.Duration(0)
	if os.Getenv("PWB_BENCH_CLEANUP_DELAY") != "" {
		cleanupDelay = benchenv.Duration(t, "PWB_BENCH_CLEANUP_DELAY", 0)
	}
	wantRows := fill.Rows()
	if wantRows < 1_000_000 && os.Getenv("PWB_BENCH_PROPERTIES") == "" {
		t.Fatalf("the tenant has %d rows, the benchmark wants at least 1,000,000", wantRows)
	}

	c := migratedCluster(t, 2)
	cfg := c.ConfigPath
	const sub, name = "bench-online", "Bench Online"
	mustPWB(t, cfg, "tenants", "create", "--subdomain", sub, "--name", name, "--tier", "premium", "--shard", "shard_1")
	siteID := pgtest.QueryValue[int64](t, c.URL["default"], "SELECT id FROM websites WHERE subdomain = $1", sub)
	filled := time.Now()
	onlFill(t, c.URL["shard_1"], siteID, fill)
	t.Logf("filled tenant %d with %d rows in %s", siteID, wantRows, time.Since(filled).Round(time.Millisecond))
	onlSettle(t, c.URL["shard_1"], c.URL["shard_2"])
	ids := onlMap(t, c.URL["shard_1"], `SELECT slug, id::text FROM properties WHERE website_id = $1 AND slug = ANY($2)`,
		siteID, onlSlugs(11, 19))

	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": cfg}
	if r := pwbInput(env, onlPassword+"\n", "tenants", "add-member", sub, "--email", "owner@bench.example"); r.code != 0 {
		t.Fatalf("add-member: %+v", r)
	}
	// A long request deadline: a write that waits is measured, not cut off
	// at the default 1.5 s.
	serveEnv := []string{"PWB_ENQUIRY_LIMIT=100000000", "PWB_REQUEST_TIMEOUT=60s"}
	procs := []*serveProcess{startServeEnv(t, cfg, serveEnv...), startServeEnv(t, cfg, serveEnv...)}
	admin := onlNewSite(procs, sub+".localhost")
	admin.signIn(t, "owner@bench.example", onlPassword)
	visitors := onlNewSite(procs, sub+".localhost")

	// The load: two visitors sending enquiries and one editor, each at a
	// third of the rate, for the whole run.
	pace := 3 * time.Second / time.Duration(rate)
	load := onlNewLoad(t)
	load.visitorWriters(visitors, pace, "bench")
	load.editWriter(admin, ids, pace)
	loadStart := benchenv.LoadAverage()
	time.Sleep(3 * time.Second) // the load settles in before the first move

	var moves []onlBenchMove
	at := "shard_1"
	for i := range rounds {
		order := []journal.Mode{journal.ModeOnline, journal.ModeFreeze}
		if i%2 == 1 { // alternate which goes first
			order = []journal.Mode{journal.ModeFreeze, journal.ModeOnline}
		}
		for _, mode := range order {
			to := map[string]string{"shard_1": "shard_2", "shard_2": "shard_1"}[at]
			t.Logf("round %d: %s move %s -> %s, load average %s", i+1, mode, at, to, benchenv.LoadAverage())
			run := onlMigrate(t, cfg, sub, to, mode, cleanupDelay, 30*time.Minute)
			m := onlBenchMove{round: i + 1, mode: mode, from: at, to: to, run: run}
			moves = append(moves, m)
			at = to
			time.Sleep(2 * time.Second) // writes right after the move count in its window
			onlSettle(t, c.URL["shard_1"], c.URL["shard_2"])
		}
	}
	writes := load.stop()
	// A write the site did not answer says nothing of the move: the
	// figures would be wrong.
	var unanswered []onlWrite
	for _, w := range writes {
		if w.err != nil {
			unanswered = append(unanswered, w)
		}
	}
	if len(unanswered) > 0 {
		t.Errorf("%d writes got no answer from pwb serve, the first: %v", len(unanswered), unanswered[0])
	}

	for i := range moves {
		m := &moves[i]
		m.measure(t, writes)
		if m.run.move.RowsTotal() < wantRows {
			t.Errorf("move %d copied %d rows, want at least %d", m.run.move.ID, m.run.move.RowsTotal(), wantRows)
		}
		t.Logf("%s", m)
	}
	onlBenchCheck(t, c.URL, at, siteID, writes)

	s := onlBenchSummarize(moves)
	md := onlBenchMarkdown(t, c.URL["shard_1"], rounds, wantRows, rate, cleanupDelay, loadStart, writes, moves, s)
	t.Logf("summary:\n%s", md)
	fmt.Print(md)
	if out := os.Getenv("PWB_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// onlBenchMove is one measured move.
type onlBenchMove struct {
	round    int
	mode     journal.Mode
	from, to string
	run      onlMoveRun

	whole    time.Duration // the migrate process's wall time
	blocked  time.Duration // the journal's
	writes   int           // writes in flight at some time during the move
	longest  onlWrite      // the one that waited longest
	refused  int
	statuses map[string]int // of the refused
}

// measure takes the move's figures from the journal and the writes in
// flight during it.
func (m *onlBenchMove) measure(t *testing.T, writes []onlWrite) {
	mv := m.run.move
	if mv.State != journal.StateDone || mv.Mode != m.mode {
		t.Fatalf("move %d: state %s, mode %s; want done, %s", mv.ID, mv.State, mv.Mode, m.mode)
	}
	b, ok := mv.Blocked()
	if !ok {
		t.Fatalf("move %d records no blocked time: %+v", mv.ID, mv)
	}
	m.whole, m.blocked, m.statuses = m.run.took(), b, map[string]int{}
	for _, w := range writes {
		if w.end.Before(m.run.start) || w.start.After(m.run.end) {
			continue
		}
		m.writes++
		if w.took() > m.longest.took() {
			m.longest = w
		}
		if !onlOK(w) {
			m.refused++
			m.statuses[w.answer()]++
		}
	}
}

func (m onlBenchMove) String() string {
	return fmt.Sprintf("round %d %s move %d %s -> %s: whole %s (journal %s), blocked %s, %d writes during it, %d refused %v, longest wait %s (%s), %d changes streamed; phases %s",
		m.round, m.mode, m.run.move.ID, m.from, m.to, onlSec(m.whole), onlSec(m.run.move.FinishedAt.Sub(m.run.move.StartedAt)),
		onlSecMS(m.blocked), m.writes, m.refused, m.statuses, onlSecMS(m.longest.took()), m.longest, m.run.move.ChangesApplied, m.run.timeline)
}

// onlBenchStat is the median, least and most of a figure over the moves of
// one mode.
type onlBenchStat struct{ median, min, max float64 }

func onlStat(v []float64) onlBenchStat {
	if len(v) == 0 {
		return onlBenchStat{}
	}
	return onlBenchStat{median: benchenv.Median(v), min: slices.Min(v), max: slices.Max(v)}
}

type onlBenchSummary struct {
	wait, blocked, refused, whole, writes map[journal.Mode]onlBenchStat
	statuses                              map[journal.Mode]map[string]int
	ratios                                []float64 // online whole / freeze whole, per round
	ratio                                 float64   // their median
	onlineBlockedMax                      float64
	onlineRefused                         int
}

func onlBenchSummarize(moves []onlBenchMove) onlBenchSummary {
	s := onlBenchSummary{
		wait: map[journal.Mode]onlBenchStat{}, blocked: map[journal.Mode]onlBenchStat{}, refused: map[journal.Mode]onlBenchStat{},
		whole: map[journal.Mode]onlBenchStat{}, writes: map[journal.Mode]onlBenchStat{}, statuses: map[journal.Mode]map[string]int{},
	}
	for _, mode := range []journal.Mode{journal.ModeOnline, journal.ModeFreeze} {
		var wait, blocked, refused, whole, writes []float64
		s.statuses[mode] = map[string]int{}
		for _, m := range moves {
			if m.mode != mode {
				continue
			}
			wait = append(wait, m.longest.took().Seconds())
			blocked = append(blocked, m.blocked.Seconds())
			refused = append(refused, float64(m.refused))
			whole = append(whole, m.whole.Seconds())
			writes = append(writes, float64(m.writes))
			for k, n := range m.statuses {
				s.statuses[mode][k] += n
			}
			if mode == journal.ModeOnline {
				s.onlineBlockedMax = max(s.onlineBlockedMax, m.blocked.Seconds())
				s.onlineRefused += m.refused
			}
		}
		s.wait[mode], s.blocked[mode], s.refused[mode] = onlStat(wait), onlStat(blocked), onlStat(refused)
		s.whole[mode], s.writes[mode] = onlStat(whole), onlStat(writes)
	}
	byRound := map[int]map[journal.Mode]time.Duration{}
	for _, m := range moves {
		if byRound[m.round] == nil {
			byRound[m.round] = map[journal.Mode]time.Duration{}
		}
		byRound[m.round][m.mode] = m.whole
	}
	rounds := make([]int, 0, len(byRound))
	for r := range byRound {
		rounds = append(rounds, r)
	}
	sort.Ints(rounds)
	for _, r := range rounds {
		if on, fr := byRound[r][journal.ModeOnline], byRound[r][journal.ModeFreeze]; on > 0 && fr > 0 {
			s.ratios = append(s.ratios, on.Seconds()/fr.Seconds())
		}
	}
	if len(s.ratios) > 0 {
		s.ratio = benchenv.Median(s.ratios)
	}
	return s
}

// onlBenchMarkdown is the summary for docs/benchmarks.md: the machine, the
// medians per mode with the targets, then every move.
func onlBenchMarkdown(t *testing.T, dbURL string, rounds int, rows int64, rate int, cleanupDelay time.Duration, loadStart string,
	writes []onlWrite, moves []onlBenchMove, s onlBenchSummary) string {
	var w strings.Builder
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	achieved := 0.0
	if len(writes) > 1 {
		achieved = float64(len(writes)) / writes[len(writes)-1].end.Sub(writes[0].start).Seconds()
	}
	fmt.Fprintf(&w, "Run: %s; `nproc` %d (%s); %s memory; %s; PostgreSQL %s; %d rounds (one online and one freeze move each); %d rows; "+
		"write load %d/s asked, %.1f/s sent (%d writes); --cleanup-delay %s; load average at the start %s, at the end %s.\n\n",
		time.Now().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), benchenv.CPUModel(), onlMemory(), runtime.Version(),
		pgtest.QueryValue[string](t, dbURL, "SHOW server_version"), rounds, rows, rate, achieved, len(writes), cleanupDelay,
		loadStart, benchenv.LoadAverage())
	stat := func(v onlBenchStat, f string) string {
		return fmt.Sprintf(f+" ("+f+" to "+f+")", v.median, v.min, v.max)
	}
	statuses := func(m map[string]int) string {
		if len(m) == 0 {
			return "none"
		}
		var parts []string
		for _, k := range onlSortedKeys(m) {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
		}
		return strings.Join(parts, ", ")
	}
	on, fr := journal.ModeOnline, journal.ModeFreeze
	fmt.Fprintf(&w, "| median (min to max) of %d moves each | online | freeze |\n|---|---:|---:|\n", rounds)
	fmt.Fprintf(&w, "| longest write wait (s) | %s | %s |\n", stat(s.wait[on], "%.3f"), stat(s.wait[fr], "%.3f"))
	fmt.Fprintf(&w, "| writes blocked, journal (s) | %s | %s |\n", stat(s.blocked[on], "%.3f"), stat(s.blocked[fr], "%.2f"))
	fmt.Fprintf(&w, "| writes refused | %s | %s |\n", stat(s.refused[on], "%.0f"), stat(s.refused[fr], "%.0f"))
	fmt.Fprintf(&w, "| statuses of the refused, all moves | %s | %s |\n", statuses(s.statuses[on]), statuses(s.statuses[fr]))
	fmt.Fprintf(&w, "| writes during the move | %s | %s |\n", stat(s.writes[on], "%.0f"), stat(s.writes[fr], "%.0f"))
	fmt.Fprintf(&w, "| whole move, `pwb sharding migrate` wall time (s) | %s | %s |\n\n", stat(s.whole[on], "%.2f"), stat(s.whole[fr], "%.2f"))
	var ratios []string
	for _, r := range s.ratios {
		ratios = append(ratios, fmt.Sprintf("%.2f", r))
	}
	fmt.Fprintf(&w, "Targets: online whole / freeze whole **%.2f** (median of the rounds' ratios %s; target <= 1.5: %s); "+
		"online blocked time at most **%.3f s** (target < 1 s every round: %s); online writes refused **%d** (target 0: %s).\n\n",
		s.ratio, strings.Join(ratios, ", "), met(s.ratio > 0 && s.ratio <= 1.5), s.onlineBlockedMax, met(s.onlineBlockedMax < 1),
		s.onlineRefused, met(s.onlineRefused == 0))
	fmt.Fprintf(&w, "| round | mode | from → to | whole (s) | blocked (s) | longest wait (s) | writes | refused | changes streamed |\n")
	fmt.Fprintf(&w, "|---:|---|---|---:|---:|---:|---:|---|---:|\n")
	for _, m := range moves {
		refused := "0"
		if m.refused > 0 {
			refused = fmt.Sprintf("%d (%s)", m.refused, statuses(m.statuses))
		}
		streamed := "–"
		if m.mode == on {
			streamed = strconv.FormatInt(m.run.move.ChangesApplied, 10)
		}
		fmt.Fprintf(&w, "| %d | %s | %s → %s | %s | %s | %s | %d | %s | %s |\n", m.round, m.mode, m.from, m.to, onlSec(m.whole),
			onlSecMS(m.blocked), onlSecMS(m.longest.took()), m.writes, refused, streamed)
	}
	return w.String()
}

// onlBenchCheck checks what the load left on the tenant's last shard: every
// enquiry done is there once and no refused one, each edited property has
// its last edit done; and that no move left a slot or publication.
func onlBenchCheck(t *testing.T, urls map[string]string, at string, siteID int64, writes []onlWrite) {
	t.Helper()
	sent, titles := map[string]bool{}, map[string]string{}
	for _, w := range writes {
		if !onlOK(w) {
			continue
		}
		if w.kind == "edit" {
			titles[w.target] = w.key
		} else {
			sent[w.key] = true
		}
	}
	got := onlMarkers(t, urls[at], siteID)
	bad := 0
	for m := range sent {
		if got[m] != 1 {
			bad++
		}
	}
	for m := range got {
		if !sent[m] {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d enquiries on %s are not those done, once each (%d done, %d there)", bad, at, len(sent), len(got))
	}
	for id, title := range titles {
		if got := pgtest.QueryValue[string](t, urls[at], "SELECT title FROM properties WHERE id = $1", id); got != title {
			t.Errorf("property %s on %s is titled %q, want the last edit done, %q", id, at, got, title)
		}
	}
	if left := onlArtifacts(t, urls); len(left) > 0 {
		t.Errorf("the moves left replication artifacts: %v", left)
	}
}

// onlSettle vacuums and checkpoints the servers, so every measured move
// starts without dead rows or unset hint bits and from a fresh checkpoint,
// whatever ran before it.
func onlSettle(t *testing.T, urls ...string) {
	t.Helper()
	var names []string
	for _, n := range tenant.Tables {
		names = append(names, pgx.Identifier{n}.Sanitize())
	}
	for _, u := range urls {
		pgtest.Exec(t, u, "VACUUM (ANALYZE) "+strings.Join(names, ", "))
		pgtest.Exec(t, u, "CHECKPOINT")
	}
}

// onlMemory is the machine's memory, from /proc/meminfo.
func onlMemory() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				return fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	return "unknown"
}

func onlSec(d time.Duration) string   { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) }
func onlSecMS(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }
