package mover_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/benchenv"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// benchProperties sizes the benchmark's tenant: movertest.Fill writes about
// 5.5 rows per property, so 182,000 properties make just over a million rows.
const benchProperties = 182_000

// TestBench_MoveVersusRawPipe is the tenant-move benchmark quoted in
// docs/benchmarks.md, run with `make bench-move`: a tenant of over a million
// rows is moved from the primary's server to shard_1's, and in the same run
// the same rows are copied with a raw psql pipe per table, in alternating
// rounds. It measures and reports; it is not part of `make test`.
//
// Environment: PWB_BENCH_MOVE=1 runs it; PWB_BENCH_ROUNDS (default 5) sets
// the rounds; PWB_BENCH_PROPERTIES overrides the tenant's size (for a quick
// trial; the figures quoted use the default); PWB_BENCH_OUT names a file to
// write a markdown summary to.
func TestBench_MoveVersusRawPipe(t *testing.T) {
	if os.Getenv("PWB_BENCH_MOVE") == "" {
		t.Skip("set PWB_BENCH_MOVE=1 (make bench-move) to run the tenant move benchmark")
	}
	rounds := benchenv.Int(t, "PWB_BENCH_ROUNDS", 5)
	fill := movertest.Options{Properties: benchenv.Int(t, "PWB_BENCH_PROPERTIES", benchProperties), Photos: 12}
	psql := psqlBinary(t)
	ctx := context.Background()

	c, set := pgtest.MigratedCluster(t, 1)
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	src, err := set.Pool(shard.Default)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := set.Pool("shard_1")
	if err != nil {
		t.Fatal(err)
	}
	w, err := registry.Create(ctx, primary, registry.New{Subdomain: "bench-co", Name: "Bench Co", ShardName: shard.Default})
	if err != nil {
		t.Fatal(err)
	}
	filled := time.Now()
	if err := movertest.Fill(ctx, src, w.ID, fill); err != nil {
		t.Fatal(err)
	}
	wantRows := fill.Rows()
	t.Logf("filled tenant %d with %d rows in %s", w.ID, wantRows, time.Since(filled).Round(time.Millisecond))
	if wantRows < 1_000_000 && os.Getenv("PWB_BENCH_PROPERTIES") == "" {
		t.Fatalf("the tenant has %d rows, the benchmark wants at least 1,000,000", wantRows)
	}
	settle(t, src, dst)

	b := &moveBench{t: t, psql: psql, site: w, src: src, dst: dst, srcURL: c.URL[shard.Default], dstURL: c.URL["shard_1"]}
	for _, name := range tenant.Tables {
		cols := tableColumns(t, src, name)
		b.tables = append(b.tables, rawTable{name: name, cols: cols})
	}
	b.load = benchenv.LoadAverage()
	t.Logf("load average %s; raw pipe, e.g. for %s:\n%s", b.load, b.tables[0].name, b.tables[0].pipeline(psql, "SRC_URL", "DST_URL", w.ID))

	rec := &phaseRecorder{t: t}
	m, err := mover.New(set, mover.Options{Progress: rec.event}) // the default clean-up delay
	if err != nil {
		t.Fatal(err)
	}
	// The move back only resets the round: no delay.
	if b.back, err = mover.New(set, mover.Options{CleanupDelay: mover.NoCleanupDelay}); err != nil {
		t.Fatal(err)
	}

	var results []roundResult
	for i := range rounds {
		var raw rawResult
		var mv moveResult
		last := i == rounds-1 // nothing to reset after the last round
		t.Logf("round %d: load average %s", i+1, benchenv.LoadAverage())
		if i%2 == 0 { // alternate which goes first
			raw = b.rawPipe(false)
			mv = b.move(m, rec, last)
		} else {
			mv = b.move(m, rec, false)
			raw = b.rawPipe(last)
		}
		if raw.rows != wantRows || mv.rows != wantRows {
			t.Fatalf("round %d: raw pipe copied %d rows, mover %d, want %d", i+1, raw.rows, mv.rows, wantRows)
		}
		r := roundResult{raw: raw, move: mv}
		results = append(results, r)
		t.Logf("round %d (%s first): raw pipe %s (%.0f rows/s); mover copy %s (%.0f rows/s), ratio %.3f; "+
			"read-only %s (journal frozen->switched %s); whole move %s (%s without the %s clean-up delay), ratio whole/raw %.2f (%.2f)",
			i+1, map[bool]string{true: "raw", false: "mover"}[i%2 == 0],
			sec(raw.dur), raw.rate(), sec(mv.copy), mv.copyRate(), r.copyRatio(),
			sec(mv.readOnly), sec(mv.readOnlyJournal), sec(mv.whole), sec(mv.wholeNoDelay()), mover.DefaultCleanupDelay,
			r.wholeRatio(), r.wholeNoDelayRatio())
		t.Logf("round %d phases: plan %s, start %s, freeze %s, copy %s, verify %s, switch %s, wait+clean-up %s, done %s; journal started->finished %s; move back %s; "+
			"the plan estimated %s read-only and %s in all for %d rows, %d bytes",
			i+1, sec(mv.plan), sec(mv.start), sec(mv.freeze), sec(mv.copy), sec(mv.verify), sec(mv.switchOver), sec(mv.cleanup),
			sec(mv.finish), sec(mv.journalWhole), sec(mv.back), sec(mv.preflight.ReadOnly), sec(mv.preflight.Estimate), mv.preflight.Rows(), mv.preflight.Bytes())
		t.Logf("round %d per table (raw pipe / mover copy): %s", i+1, perTable(raw.tables, mv.tables))
	}

	s := summarize(results)
	status := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	t.Logf("medians of %d rounds, %d rows: raw pipe %s (%.0f rows/s); mover copy %s (%.0f rows/s); ratio copy/raw %.3f (target >= 0.8: %s); "+
		"read-only window %s; whole move %s, ratio whole/raw %.2f (target <= 2.5: %s); without the clean-up delay %s, ratio %.2f (%s)",
		rounds, wantRows, sec(s.raw), s.rawRate, sec(s.copy), s.copyRate, s.copyRatio, status(s.copyRatio >= 0.8),
		sec(s.readOnly), sec(s.whole), s.wholeRatio, status(s.wholeRatio <= 2.5), sec(s.wholeNoDelay), s.wholeNoDelayRatio,
		status(s.wholeNoDelayRatio <= 2.5))
	fmt.Printf("tenant move, %d rounds, %d rows: median raw pipe %.0f rows/s, mover copy %.0f rows/s, ratio %.3f; "+
		"read-only %s; whole move %s (%.2fx raw), %s without the clean-up delay (%.2fx)\n",
		rounds, wantRows, s.rawRate, s.copyRate, s.copyRatio, sec(s.readOnly), sec(s.whole), s.wholeRatio, sec(s.wholeNoDelay), s.wholeNoDelayRatio)
	if out := os.Getenv("PWB_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.markdown(rounds, wantRows, results, s)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type moveBench struct {
	t              *testing.T
	psql           string
	site           registry.Website
	src, dst       *pgxpool.Pool
	srcURL, dstURL string
	tables         []rawTable
	load           string       // load average when the rounds began
	back           *mover.Mover // moves the tenant back between rounds
}

// rawTable is one tenant table as the raw pipe copies it.
type rawTable struct {
	name string
	cols []string
}

// statements are the two psql commands an operator would copy the table with: a text-format
// \copy of the tenant's rows out of the source and a \copy into the target,
// with the same column list on both sides.
func (r rawTable) statements(websiteID int64) (out, in string) {
	list := strings.Join(r.cols, ", ")
	out = fmt.Sprintf(`\copy (SELECT %s FROM %s WHERE website_id = %d) TO STDOUT`, list, r.name, websiteID)
	in = fmt.Sprintf(`\copy %s (%s) FROM STDIN`, r.name, list)
	return out, in
}

// pipeline is the shell pipeline rawPipe runs for the table, for the log.
func (r rawTable) pipeline(psql, srcURL, dstURL string, websiteID int64) string {
	out, in := r.statements(websiteID)
	return fmt.Sprintf("%s -X -d '%s' -c \"%s\" | %s -X -d '%s' -c \"%s\"", psql, srcURL, out, psql, dstURL, in)
}

var copyTag = regexp.MustCompile(`(?m)^COPY (\d+)$`)

type rawResult struct {
	dur    time.Duration
	rows   int64
	tables []time.Duration
}

func (r rawResult) rate() float64 { return float64(r.rows) / r.dur.Seconds() }

// rawPipe runs the pipeline for every table in order, timed as a whole, then
// deletes the copied rows from the target, children first (untimed), unless
// last.
func (b *moveBench) rawPipe(last bool) rawResult {
	t := b.t
	var res rawResult
	start := time.Now()
	for _, tb := range b.tables {
		out, in := tb.statements(b.site.ID)
		began := time.Now()
		// URLs and statements are the script's arguments, so nothing needs quoting.
		cmd := exec.Command("bash", "-c", `set -o pipefail; "$0" -X -d "$1" -c "$2" | "$0" -X -d "$3" -c "$4"`,
			b.psql, b.srcURL, out, b.dstURL, in)
		output, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("raw pipe of %s: %v\n%s", tb.name, err, output)
		}
		res.tables = append(res.tables, time.Since(began))
		m := copyTag.FindSubmatch(output)
		if m == nil {
			t.Fatalf("raw pipe of %s: no COPY count in psql's output:\n%s", tb.name, output)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		res.rows += n
	}
	res.dur = time.Since(start)
	t.Logf("raw pipe: %d rows in %s", res.rows, sec(res.dur))
	if last {
		return res
	}
	ctx := context.Background()
	reset := time.Now()
	for i := len(tenant.Tables) - 1; i >= 0; i-- {
		if _, err := b.dst.Exec(ctx, "DELETE FROM "+pgx.Identifier{tenant.Tables[i]}.Sanitize()+" WHERE website_id = $1", b.site.ID); err != nil {
			t.Fatalf("removing the raw pipe's rows: %v", err)
		}
	}
	deleted := time.Since(reset)
	settle(t, b.src, b.dst)
	t.Logf("raw pipe reset: deleted in %s, vacuumed and checkpointed in %s", sec(deleted), sec(time.Since(reset)-deleted))
	return res
}

type moveResult struct {
	rows int64
	// wall clock of the benchmark process
	whole, plan, start                                          time.Duration
	readOnly, freeze, copy, verify, switchOver, cleanup, finish time.Duration
	tables                                                      []time.Duration
	// from the journal (the primary's clock)
	readOnlyJournal, journalWhole time.Duration
	preflight                     mover.Plan    // what the pre-flight found and estimated
	back                          time.Duration // the untimed move back, for the log
}

func (r moveResult) copyRate() float64 { return float64(r.rows) / r.copy.Seconds() }

// wholeNoDelay is the whole move less the clean-up delay, during which the
// mover only waits for app processes' registry caches to expire.
func (r moveResult) wholeNoDelay() time.Duration { return r.whole - mover.DefaultCleanupDelay }

// phaseRecorder notes when each progress phase was first seen, and when each
// table's copy ended.
type phaseRecorder struct {
	t        *testing.T
	mu       sync.Mutex
	began    time.Time
	first    map[journal.Phase]time.Time
	tableEnd map[string]time.Time
	step     string // the last phase and table logged
}

func (p *phaseRecorder) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.first, p.tableEnd = map[journal.Phase]time.Time{}, map[string]time.Time{}
	p.began, p.step = time.Now(), ""
}

func (p *phaseRecorder) event(e mover.Event) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first == nil {
		return
	}
	if _, ok := p.first[e.Phase]; !ok {
		p.first[e.Phase] = now
	}
	if e.Phase == journal.StateCopying.Phase() && e.Table != "" {
		p.tableEnd[e.Table] = now // the last copying event of a table is sent when it is done
	}
	// Log each phase (and table) as it starts, so a slow step shows in a
	// long run's output while it happens.
	if step := string(e.Phase) + " " + e.Table; step != p.step {
		p.step = step
		p.t.Logf("  move at %7.2fs: %s %s (%d of %d rows)", now.Sub(p.began).Seconds(), e.Phase, e.Table, e.Rows, e.RowsTotal)
	}
}

func (p *phaseRecorder) at(phase journal.Phase) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.first[phase]
	if !ok {
		panic("no progress event of phase " + string(phase))
	}
	return at
}

// move runs Plan, Start and Run from the default shard to shard_1, then,
// unless last, moves the tenant back (without the clean-up delay; untimed, but logged) so the next round starts the same.
func (b *moveBench) move(m *mover.Mover, rec *phaseRecorder, last bool) moveResult {
	t := b.t
	ctx := context.Background()
	var res moveResult
	rec.reset()
	began := time.Now()
	plan, err := m.Plan(ctx, b.site.Subdomain, "shard_1", journal.ModeFreeze)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	planned := time.Now()
	id, err := m.Start(ctx, plan, "bench")
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	running := time.Now()
	mv, err := m.Run(ctx, id)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	ended := time.Now()
	res.whole, res.plan, res.start = ended.Sub(began), planned.Sub(began), running.Sub(planned)
	res.preflight = plan
	if mv.State != journal.StateDone || mv.FrozenAt == nil || mv.SwitchedAt == nil || mv.FinishedAt == nil {
		t.Fatalf("journal after the move: %+v", mv)
	}
	res.rows = mv.RowsCopied()
	copying, copied := rec.at(journal.StateCopying.Phase()), rec.at(journal.StateCopied.Phase())
	verified, switched := rec.at(journal.StateVerified.Phase()), rec.at(journal.StateSwitched.Phase())
	cleaned := rec.at(journal.StateCleaned.Phase())
	// The tenant turns read_only at the start of the freeze, the first step
	// of Run, and active again on the target at the switch.
	res.readOnly = switched.Sub(running)
	res.freeze = rec.at(journal.StateFrozen.Phase()).Sub(running)
	res.copy = copied.Sub(copying)
	res.verify = verified.Sub(copied)
	res.switchOver = switched.Sub(verified)
	res.cleanup = cleaned.Sub(switched)
	res.finish = ended.Sub(cleaned)
	res.readOnlyJournal = mv.SwitchedAt.Sub(*mv.FrozenAt)
	res.journalWhole = mv.FinishedAt.Sub(mv.StartedAt)
	prev := copying
	for _, tb := range b.tables {
		end, ok := rec.tableEnd[tb.name]
		if !ok {
			t.Fatalf("no copy event for table %s", tb.name)
		}
		res.tables = append(res.tables, end.Sub(prev))
		prev = end
	}
	t.Logf("move: %d rows in %s", res.rows, sec(res.whole))
	if last {
		return res
	}
	settle(t, b.src, b.dst)

	back := time.Now()
	plan, err = b.back.Plan(ctx, b.site.Subdomain, shard.Default, journal.ModeFreeze)
	if err != nil {
		t.Fatalf("plan back: %v", err)
	}
	if id, err = b.back.Start(ctx, plan, "bench"); err != nil {
		t.Fatalf("start back: %v", err)
	}
	if _, err := b.back.Run(ctx, id); err != nil {
		t.Fatalf("run back: %v", err)
	}
	res.back = time.Since(back)
	settle(t, b.src, b.dst)
	t.Logf("move back: %s, then vacuumed and checkpointed in %s", sec(res.back), sec(time.Since(back)-res.back))
	return res
}

// settle vacuums and checkpoints both servers, so every measured copy starts
// from tables without dead rows or unset hint bits and from a fresh
// checkpoint, whatever ran before it.
func settle(t *testing.T, pools ...*pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	var names []string
	for _, n := range tenant.Tables {
		names = append(names, pgx.Identifier{n}.Sanitize())
	}
	for _, p := range pools {
		if _, err := p.Exec(ctx, "VACUUM (ANALYZE) "+strings.Join(names, ", ")); err != nil {
			t.Fatalf("vacuum: %v", err)
		}
		if _, err := p.Exec(ctx, "CHECKPOINT"); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
	}
}

type roundResult struct {
	raw  rawResult
	move moveResult
}

func (r roundResult) copyRatio() float64  { return r.move.copyRate() / r.raw.rate() }
func (r roundResult) wholeRatio() float64 { return r.move.whole.Seconds() / r.raw.dur.Seconds() }
func (r roundResult) wholeNoDelayRatio() float64 {
	return r.move.wholeNoDelay().Seconds() / r.raw.dur.Seconds()
}

type summary struct {
	raw, copy, readOnly, readOnlyJournal, whole, wholeNoDelay, journalWhole time.Duration
	plan, freeze, verify, switchOver, cleanup, back                         time.Duration
	rawRate, copyRate, copyRatio, wholeRatio, wholeNoDelayRatio             float64
	rawTables, moveTables                                                   []time.Duration
}

func summarize(rs []roundResult) summary {
	dur := func(f func(roundResult) time.Duration) time.Duration {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = float64(f(r))
		}
		return time.Duration(benchenv.Median(v))
	}
	num := func(f func(roundResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return benchenv.Median(v)
	}
	s := summary{
		raw:               dur(func(r roundResult) time.Duration { return r.raw.dur }),
		copy:              dur(func(r roundResult) time.Duration { return r.move.copy }),
		readOnly:          dur(func(r roundResult) time.Duration { return r.move.readOnly }),
		readOnlyJournal:   dur(func(r roundResult) time.Duration { return r.move.readOnlyJournal }),
		whole:             dur(func(r roundResult) time.Duration { return r.move.whole }),
		wholeNoDelay:      dur(func(r roundResult) time.Duration { return r.move.wholeNoDelay() }),
		journalWhole:      dur(func(r roundResult) time.Duration { return r.move.journalWhole }),
		plan:              dur(func(r roundResult) time.Duration { return r.move.plan }),
		freeze:            dur(func(r roundResult) time.Duration { return r.move.freeze }),
		verify:            dur(func(r roundResult) time.Duration { return r.move.verify }),
		switchOver:        dur(func(r roundResult) time.Duration { return r.move.switchOver }),
		cleanup:           dur(func(r roundResult) time.Duration { return r.move.cleanup }),
		back:              dur(func(r roundResult) time.Duration { return r.move.back }),
		rawRate:           num(func(r roundResult) float64 { return r.raw.rate() }),
		copyRate:          num(func(r roundResult) float64 { return r.move.copyRate() }),
		copyRatio:         num(roundResult.copyRatio),
		wholeRatio:        num(roundResult.wholeRatio),
		wholeNoDelayRatio: num(roundResult.wholeNoDelayRatio),
	}
	for i := range tenant.Tables {
		s.rawTables = append(s.rawTables, dur(func(r roundResult) time.Duration { return r.raw.tables[i] }))
		s.moveTables = append(s.moveTables, dur(func(r roundResult) time.Duration { return r.move.tables[i] }))
	}
	return s
}

// markdown is the summary for docs/benchmarks.md: medians, then every round.
func (b *moveBench) markdown(rounds int, rows int64, rs []roundResult, s summary) string {
	var w strings.Builder
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	fmt.Fprintf(&w, "Run: %s; %d CPUs (%s); %s; PostgreSQL %s; %d rounds; %d rows; load average at the start %s, at the end %s.\n\n",
		time.Now().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), benchenv.CPUModel(), runtime.Version(), b.serverVersion(), rounds, rows,
		b.load, benchenv.LoadAverage())
	fmt.Fprintf(&w, "| median of %d rounds | time (s) | rows/s | vs raw pipe |\n|---|---:|---:|---:|\n", rounds)
	fmt.Fprintf(&w, "| raw psql pipe, 7 tables | %s | %.0f | |\n", sec(s.raw), s.rawRate)
	fmt.Fprintf(&w, "| mover, copy phase | %s | %.0f | **%.3f** (rows/s, target >= 0.8: %s) |\n", sec(s.copy), s.copyRate, s.copyRatio, met(s.copyRatio >= 0.8))
	fmt.Fprintf(&w, "| mover, read-only window (Run start to switch) | %s | | |\n", sec(s.readOnly))
	fmt.Fprintf(&w, "| mover, whole move (Plan+Start+Run, %s clean-up delay included) | %s | | **%.2fx** (time, target <= 2.5x: %s) |\n",
		mover.DefaultCleanupDelay, sec(s.whole), s.wholeRatio, met(s.wholeRatio <= 2.5))
	fmt.Fprintf(&w, "| mover, whole move less the %s delay | %s | | %.2fx (%s) |\n\n",
		mover.DefaultCleanupDelay, sec(s.wholeNoDelay), s.wholeNoDelayRatio, met(s.wholeNoDelayRatio <= 2.5))
	fmt.Fprintf(&w, "Mover phases (medians, s): plan %s, freeze %s, copy %s, verify %s, switch %s, delay + clean-up %s; "+
		"journal frozen_at to switched_at %s, started_at to finished_at %s.\n\n",
		sec(s.plan), sec(s.freeze), sec(s.copy), sec(s.verify), sec(s.switchOver), sec(s.cleanup), sec(s.readOnlyJournal), sec(s.journalWhole))
	fmt.Fprintf(&w, "| table (median s) | raw pipe | mover copy |\n|---|---:|---:|\n")
	for i, tb := range b.tables {
		fmt.Fprintf(&w, "| %s | %s | %s |\n", tb.name, sec(s.rawTables[i]), sec(s.moveTables[i]))
	}
	fmt.Fprintf(&w, "\n| round | first | raw pipe (s) | copy phase (s) | copy/raw rows/s | read-only (s) | whole (s) | whole/raw | less delay/raw |\n")
	fmt.Fprintf(&w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, r := range rs {
		first := "raw"
		if i%2 == 1 {
			first = "mover"
		}
		fmt.Fprintf(&w, "| %d | %s | %s | %s | %.3f | %s | %s | %.2f | %.2f |\n", i+1, first, sec(r.raw.dur), sec(r.move.copy),
			r.copyRatio(), sec(r.move.readOnly), sec(r.move.whole), r.wholeRatio(), r.wholeNoDelayRatio())
	}
	return w.String()
}

func (b *moveBench) serverVersion() string {
	var v string
	if err := b.src.QueryRow(context.Background(), "SHOW server_version").Scan(&v); err != nil {
		return "?"
	}
	return v
}

func perTable(raw, moved []time.Duration) string {
	var parts []string
	for i, name := range tenant.Tables {
		parts = append(parts, fmt.Sprintf("%s %s/%s", name, sec(raw[i]), sec(moved[i])))
	}
	return strings.Join(parts, ", ")
}

func tableColumns(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT attname FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, table)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plain := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	for _, c := range cols {
		if !plain.MatchString(c) {
			t.Fatalf("column %s.%q would need quoting in the raw pipe", table, c)
		}
	}
	return cols
}

// psqlBinary is the psql beside the server binaries the tests use, else the
// one on PATH.
func psqlBinary(t *testing.T) string {
	t.Helper()
	if dir, err := pglocal.FindBinaries(); err == nil {
		if p := filepath.Join(dir, "psql"); fileExists(p) {
			return p
		}
	}
	p, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql is not installed (it comes with the postgresql-client package)")
	}
	return p
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func sec(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) }
