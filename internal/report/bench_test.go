package report_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/benchenv"
	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/report"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// The benchmark's platform: benchShards shards (primary "default" plus
// shard_1..shard_19) as databases spread round-robin over benchServers
// servers, and one of them, benchSlowShard, reached through a proxy that
// holds every chunk of bytes back by benchDelay each way (PWB_BENCH_DELAY
// overrides it).
const (
	benchShards    = 20
	benchServers   = 4
	benchSlowShard = "shard_10"
	benchDelay     = 50 * time.Millisecond
	// Each shard's tenant gets benchProperties + 10*i properties (i its
	// index), so each shard's counts differ and a mixed-up answer shows.
	benchProperties = 300
	// benchSettle is the pause before each timed contender. On the 2-core
	// VM of docs/benchmarks.md, right after a set of 20-40 connections is
	// closed, while their backends end, a new connection to any of the
	// servers waited 0.2-0.4 s instead of 12 ms, which would charge one
	// contender for the one before it. After a 0.5 s pause it did not.
	benchSettle = time.Second
)

// TestBench_ReportFanOut is the report fan-out benchmark quoted in
// docs/benchmarks.md, run with `make bench-report`: report.Gather over 20
// shards, one of them slowed by a proxy delay, against that slowest shard
// alone (report.ShardFigures) and against a sequential loop over every
// shard, in alternating rounds of one run. Every contender starts from a new
// shard set (cold connections, as a one-shot `pwb report totals` has), after
// a pause of benchSettle in which the previous contender's connections end.
// It measures and reports; it is not part of `make test`.
//
// Environment: PWB_BENCH_REPORT=1 runs it; PWB_BENCH_ROUNDS (default 9) sets
// the rounds; PWB_BENCH_DELAY (default 50ms) the slow shard's one-way delay;
// PWB_BENCH_OUT names a file to write a markdown summary to.
func TestBench_ReportFanOut(t *testing.T) {
	if os.Getenv("PWB_BENCH_REPORT") == "" {
		t.Skip("set PWB_BENCH_REPORT=1 (make bench-report) to run the report fan-out benchmark")
	}
	rounds := benchenv.Int(t, "PWB_BENCH_ROUNDS", 9)
	b := newFanOutBench(t, benchenv.Duration(t, "PWB_BENCH_DELAY", benchDelay))

	// One untimed round first, so every database's files and catalogue
	// caches are as warm for the first timed round as for the last.
	b.gather()
	time.Sleep(benchSettle)
	b.alone()
	time.Sleep(benchSettle)
	b.sequential()

	b.load = benchenv.LoadAverage()
	contenders := []string{"fan-out", "slowest", "sequential"}
	var results []fanOutRound
	for i := range rounds {
		// Rotate the order, and reverse it every other round: every six
		// rounds run each of the six orders once.
		order := make([]string, 0, len(contenders))
		for k := range contenders {
			order = append(order, contenders[(i/2+k)%len(contenders)])
		}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		var r fanOutRound
		r.order = order
		for _, c := range order {
			time.Sleep(benchSettle)
			switch c {
			case "fan-out":
				r.gather, r.gatherSlow, r.gatherOthers = b.gather()
			case "slowest":
				r.alone = b.alone()
			case "sequential":
				r.seq, _, _ = b.sequential()
			}
		}
		results = append(results, r)
		t.Logf("round %d (%s): fan-out %s (the slow shard's query %s inside it, the other shards' slowest %s); "+
			"slowest alone %s; sequential %s; fan-out/slowest %.3f, sequential/fan-out %.2f",
			i+1, strings.Join(order, ", "), ms(r.gather), ms(r.gatherSlow), ms(r.gatherOthers), ms(r.alone), ms(r.seq),
			r.fanOverSlow(), r.seqOverFan())
	}

	s := summarizeFanOut(results)
	status := "met"
	if s.fanOverSlow > 1.2 {
		status = "missed"
	}
	t.Logf("medians of %d rounds: fan-out %s; slowest shard alone %s; sequential %s; "+
		"fan-out/slowest %.3f (target <= 1.2: %s); sequential/fan-out %.2f",
		rounds, ms(s.gather), ms(s.alone), ms(s.seq), s.fanOverSlow, status, s.seqOverFan)
	fmt.Printf("report fan-out, %d shards, %s one way on %s, %d rounds: median fan-out %s, slowest alone %s, sequential %s; "+
		"fan-out/slowest %.3f, sequential/fan-out %.2f\n",
		benchShards, b.delay, benchSlowShard, rounds, ms(s.gather), ms(s.alone), ms(s.seq), s.fanOverSlow, s.seqOverFan)
	if out := os.Getenv("PWB_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.markdown(rounds, results, s)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type fanOutBench struct {
	t     *testing.T
	cfg   *config.Config
	names []string
	// want is each shard's figures as filled, tenants from the registry.
	want    map[string]report.Figures
	pg      string // server version
	load    string // load average when the rounds began
	timeout time.Duration
	delay   time.Duration // the slow shard's one-way delay
}

// newFanOutBench starts the servers, creates, configures and migrates the
// 20 shard databases, registers and fills one tenant on each, and vacuums
// them, so their sizes stay put while the rounds read them.
func newFanOutBench(t *testing.T, delay time.Duration) *fanOutBench {
	t.Helper()
	ctx := context.Background()
	began := time.Now()
	servers := pgtest.Start(t, benchServers)
	var shards []pgtest.Shard
	for i := range benchShards {
		key, name := "primary", shard.Default
		if i > 0 {
			key = fmt.Sprintf("shard_%d", i)
			name = key
		}
		srv := servers[i%benchServers]
		db := "pwb_bench_" + key
		pgtest.CreateDatabase(t, srv, db)
		s := pgtest.Shard{Key: key, Server: srv, DB: db}
		if name == benchSlowShard {
			s.Port = pgtest.DelayProxy(t, net.JoinHostPort(srv.Host(), strconv.Itoa(srv.Port())), delay)
		}
		shards = append(shards, s)
	}
	cfg, err := config.Load(pgtest.WriteConfig(t, shards...), "test")
	if err != nil {
		t.Fatal(err)
	}
	b := &fanOutBench{t: t, cfg: cfg, want: map[string]report.Figures{}, timeout: report.DefaultTimeout, delay: delay}
	b.names = cfg.ShardNames()
	if len(b.names) != benchShards || !slices.Contains(b.names, benchSlowShard) || b.names[0] != shard.Default {
		t.Fatalf("configured shards %v", b.names)
	}

	set := shard.NewSet(cfg)
	defer set.Close()
	for _, r := range migrations.MigrateShards(ctx, set, migrations.Options{}, nil) {
		if r.Err != nil {
			t.Fatalf("migrating %s: %v", r.Shard, r.Err)
		}
	}
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range b.names {
		w, err := registry.Create(ctx, primary, registry.New{
			Subdomain: fmt.Sprintf("bench-%d", i), Name: fmt.Sprintf("Bench %d", i), ShardName: name})
		if err != nil {
			t.Fatal(err)
		}
		pool, err := set.Pool(name)
		if err != nil {
			t.Fatal(err)
		}
		n := benchProperties + 10*i
		if err := movertest.Fill(ctx, pool, w.ID, movertest.Options{Properties: n}); err != nil {
			t.Fatalf("filling %s: %v", name, err)
		}
		b.want[name] = report.Figures{Tenants: 1, Properties: int64(n), Messages: int64(2 * (n / 2))}
		if _, err := pool.Exec(ctx, "VACUUM (ANALYZE)"); err != nil {
			t.Fatalf("vacuuming %s: %v", name, err)
		}
	}
	// Autovacuum would go on to clean up after the fill and the VACUUM
	// (catalogue rows, statistics), growing databases between the fan-out
	// and the sequential read that checks it, and taking CPU at random
	// moments of the rounds: the rounds run without it.
	for _, srv := range servers {
		pgtest.Exec(t, srv.URL("postgres"), "ALTER SYSTEM SET autovacuum = off")
		pgtest.Exec(t, srv.URL("postgres"), "SELECT pg_reload_conf()")
	}
	if err := primary.QueryRow(ctx, "SHOW server_version").Scan(&b.pg); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d shards on %d servers (%s through a %s one-way delay), migrated and filled in %s",
		benchShards, benchServers, benchSlowShard, delay, time.Since(began).Round(time.Millisecond))
	return b
}

// gather times report.Gather on a new set, and checks its answer against
// the filled figures. It also returns the slow shard's own Took inside
// the fan-out, and the slowest Took of the other shards.
func (b *fanOutBench) gather() (took, slow, others time.Duration) {
	t := b.t
	set := shard.NewSet(b.cfg)
	defer set.Close()
	start := time.Now()
	tot := report.Gather(context.Background(), set, fanout.Options{Timeout: b.timeout}, nil)
	took = time.Since(start)
	if tot.RegistryError != "" {
		t.Fatalf("fan-out: registry: %s", tot.RegistryError)
	}
	if len(tot.Shards) != benchShards {
		t.Fatalf("fan-out: %d shards in the report, want %d", len(tot.Shards), benchShards)
	}
	var want report.Figures
	for _, s := range tot.Shards {
		w := b.want[s.Name]
		if !s.Reachable || s.Tenants != w.Tenants || s.Properties != w.Properties || s.Messages != w.Messages || s.SizeBytes <= 0 {
			t.Fatalf("fan-out: %s: %+v, want %+v", s.Name, s, w)
		}
		want.Tenants += w.Tenants
		want.Properties += w.Properties
		want.Messages += w.Messages
		want.SizeBytes += s.SizeBytes
		if s.Name == benchSlowShard {
			slow = s.Took
		} else {
			others = max(others, s.Took)
		}
	}
	if tot.Total != want {
		t.Fatalf("fan-out: total %+v, want %+v", tot.Total, want)
	}
	// Sizes cannot be known beforehand: hold them against a sequential
	// read, untimed.
	_, seq, perShard := b.sequential()
	if tot.Total != seq {
		for _, s := range tot.Shards {
			if q := perShard[s.Name]; q != s.Figures {
				t.Logf("fan-out: %s: %+v, sequential: %+v", s.Name, s.Figures, q)
			}
		}
		t.Fatalf("fan-out total %+v differs from the sequential loop's %+v", tot.Total, seq)
	}
	return took, slow, others
}

// alone times report.ShardFigures for the slow shard on a new set.
func (b *fanOutBench) alone() time.Duration {
	t := b.t
	set := shard.NewSet(b.cfg)
	defer set.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	s := report.ShardFigures(ctx, set, benchSlowShard)
	cancel()
	took := time.Since(start)
	if w := b.want[benchSlowShard]; !s.Reachable || s.Properties != w.Properties || s.Messages != w.Messages {
		t.Fatalf("slowest alone: %+v, want %+v", s, w)
	}
	return took
}

// sequential times, on a new set, what Gather does one step after another:
// the registry's tenant counts on primary, then report.ShardFigures for
// each shard in the configuration's order. It returns the totals and each
// shard's figures.
func (b *fanOutBench) sequential() (time.Duration, report.Figures, map[string]report.Figures) {
	t := b.t
	ctx := context.Background()
	set := shard.NewSet(b.cfg)
	defer set.Close()
	var tot report.Figures
	shards := make(map[string]report.Figures, len(b.names))
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, b.timeout)
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	counts, err := registry.CountByShard(tctx, primary)
	cancel()
	if err != nil {
		t.Fatalf("sequential: registry: %v", err)
	}
	for _, name := range b.names {
		sctx, cancel := context.WithTimeout(ctx, b.timeout)
		s := report.ShardFigures(sctx, set, name)
		cancel()
		if !s.Reachable {
			t.Fatalf("sequential: %s: %s", name, s.Error)
		}
		tot.Properties += s.Properties
		tot.Messages += s.Messages
		tot.SizeBytes += s.SizeBytes
		shards[name] = s.Figures
	}
	took := time.Since(start)
	for name, c := range counts {
		tot.Tenants += c.Tenants
		f := shards[name]
		f.Tenants = c.Tenants
		shards[name] = f
	}
	var want report.Figures
	for _, w := range b.want {
		want.Tenants += w.Tenants
		want.Properties += w.Properties
		want.Messages += w.Messages
	}
	if tot.Tenants != want.Tenants || tot.Properties != want.Properties || tot.Messages != want.Messages {
		t.Fatalf("sequential: total %+v, want %+v", tot, want)
	}
	return took, tot, shards
}

type fanOutRound struct {
	order                    []string
	gather, alone, seq       time.Duration
	gatherSlow, gatherOthers time.Duration
}

func (r fanOutRound) fanOverSlow() float64 { return r.gather.Seconds() / r.alone.Seconds() }
func (r fanOutRound) seqOverFan() float64  { return r.seq.Seconds() / r.gather.Seconds() }

type fanOutSummary struct {
	gather, alone, seq, gatherSlow, gatherOthers time.Duration
	fanOverSlow, seqOverFan                      float64
	fanOverSlowMin, fanOverSlowMax               float64
}

func summarizeFanOut(rs []fanOutRound) fanOutSummary {
	dur := func(f func(fanOutRound) time.Duration) time.Duration {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = float64(f(r))
		}
		return time.Duration(benchenv.Median(v))
	}
	ratios := make([]float64, len(rs))
	for i, r := range rs {
		ratios[i] = r.fanOverSlow()
	}
	seqRatios := make([]float64, len(rs))
	for i, r := range rs {
		seqRatios[i] = r.seqOverFan()
	}
	return fanOutSummary{
		gather:         dur(func(r fanOutRound) time.Duration { return r.gather }),
		alone:          dur(func(r fanOutRound) time.Duration { return r.alone }),
		seq:            dur(func(r fanOutRound) time.Duration { return r.seq }),
		gatherSlow:     dur(func(r fanOutRound) time.Duration { return r.gatherSlow }),
		gatherOthers:   dur(func(r fanOutRound) time.Duration { return r.gatherOthers }),
		fanOverSlow:    benchenv.Median(ratios),
		seqOverFan:     benchenv.Median(seqRatios),
		fanOverSlowMin: slices.Min(ratios),
		fanOverSlowMax: slices.Max(ratios),
	}
}

// markdown is the summary for docs/benchmarks.md: medians, then every round.
func (b *fanOutBench) markdown(rounds int, rs []fanOutRound, s fanOutSummary) string {
	var w strings.Builder
	met := "met"
	if s.fanOverSlow > 1.2 {
		met = "**missed**"
	}
	fmt.Fprintf(&w, "Run: %s; %d CPUs (%s); %s; PostgreSQL %s; %d shards on %d servers, %s behind a %s one-way delay; "+
		"%d rounds; load average at the start %s, at the end %s.\n\n",
		time.Now().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), benchenv.CPUModel(), runtime.Version(), b.pg,
		benchShards, benchServers, benchSlowShard, b.delay, rounds, b.load, benchenv.LoadAverage())
	fmt.Fprintf(&w, "| median of %d rounds | ms |\n|---|---:|\n", rounds)
	fmt.Fprintf(&w, "| fan-out, `report.Gather` over %d shards | %s |\n", benchShards, ms(s.gather))
	fmt.Fprintf(&w, "| the slowest shard alone, `report.ShardFigures(%s)` | %s |\n", benchSlowShard, ms(s.alone))
	fmt.Fprintf(&w, "| sequential loop (registry count, then `ShardFigures` for each shard) | %s |\n", ms(s.seq))
	fmt.Fprintf(&w, "| inside the fan-out: %s's own query | %s |\n", benchSlowShard, ms(s.gatherSlow))
	fmt.Fprintf(&w, "| inside the fan-out: the slowest of the other %d shards | %s |\n", benchShards-1, ms(s.gatherOthers))
	fmt.Fprintf(&w, "| **fan-out / slowest alone** (median of per-round ratios; target <= 1.2: %s) | **%.3f** |\n", met, s.fanOverSlow)
	fmt.Fprintf(&w, "| sequential / fan-out (median of per-round ratios) | %.2f |\n\n", s.seqOverFan)
	fmt.Fprintf(&w, "Per-round fan-out/slowest ranged from %.3f to %.3f.\n\n", s.fanOverSlowMin, s.fanOverSlowMax)
	fmt.Fprintf(&w, "| round | order | fan-out (ms) | slowest alone (ms) | sequential (ms) | fan-out/slowest | sequential/fan-out |\n")
	fmt.Fprintf(&w, "|---:|---|---:|---:|---:|---:|---:|\n")
	for i, r := range rs {
		fmt.Fprintf(&w, "| %d | %s | %s | %s | %s | %.3f | %.2f |\n", i+1, strings.Join(r.order, ", "),
			ms(r.gather), ms(r.alone), ms(r.seq), r.fanOverSlow(), r.seqOverFan())
	}
	return w.String()
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}
