package web

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"math/rand/v2"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/benchenv"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

// TestBench_ConnectionsCappedVersusUncapped serves 100 shards, one tenant
// on each, from one process, capped at max_connections_total 30 and
// uncapped, in alternating rounds of the same load: the connections the
// servers see from the process (pg_stat_activity, sampled), and the
// requests per second.
//
// Environment: PWB_BENCH_CONNS=1 runs it; PWB_BENCH_ROUNDS (default 5) sets
// the rounds of each; PWB_BENCH_SECONDS (default 8s) each round's length;
// PWB_BENCH_OUT names a file to write a markdown summary to.
func TestBench_ConnectionsCappedVersusUncapped(t *testing.T) {
	if os.Getenv("PWB_BENCH_CONNS") == "" {
		t.Skip("set PWB_BENCH_CONNS=1 (make bench-conns) to run the connection budget benchmark")
	}
	const shards, limit, workers = 100, 30, 16
	rounds := benchenv.Int(t, "PWB_BENCH_ROUNDS", 5)
	length := benchenv.Duration(t, "PWB_BENCH_SECONDS", 8*time.Second)
	many, sites := startBudgetShards(t, shards, pgtest.Options{MaxConnections: 400})
	ctx := context.Background()
	var monitors []*pgx.Conn
	for _, srv := range many.Servers {
		c, err := pgx.Connect(ctx, srv.URL("postgres")+"&application_name=pwb-bench-monitor")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		monitors = append(monitors, c)
	}
	configs := map[string]pgtest.ConfigOptions{
		"capped":   {Env: map[string]string{"max_connections_total": strconv.Itoa(limit)}, Entry: map[string]string{"pool": "5"}},
		"uncapped": {Entry: map[string]string{"pool": "5"}},
	}
	type result struct {
		name          string
		rps           float64
		peak, typical int
		failed        int64
		// newConns is connections opened per request (with the cap: idle
		// connections of other shards closed to make room).
		newConns float64
	}
	// pick returns worker w's i-th tenant: uniform over all shards, or
	// skewed (Zipf: a few tenants get most requests, as sites do), from the
	// same seeded sequence in every run.
	run := func(name string, skewed bool) result {
		p := serveBudget(t, many, sites, configs[name])
		defer p.set.Close()
		defer p.http.Close()
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
		defer client.CloseIdleConnections()
		// Warm: every tenant once, so both start with the registry cached.
		for _, s := range sites {
			p.get(client, s, "/")
		}
		stealsBefore := p.set.Budget().Steals
		stop := make(chan struct{})
		var samples []int
		var mu sync.Mutex
		monitored := make(chan struct{})
		go func() {
			defer close(monitored)
			for {
				if n, err := serverConnections(ctx, monitors); err == nil {
					mu.Lock()
					samples = append(samples, n)
					mu.Unlock()
				}
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		var done, failed atomic.Int64
		deadline := time.Now().Add(length)
		start := time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				zipf := rand.NewZipf(rand.New(rand.NewPCG(uint64(w), 7)), 1.2, 1, shards-1)
				for i := w; time.Now().Before(deadline); i += workers {
					site := sites[(i*37)%shards]
					if skewed {
						site = sites[zipf.Uint64()]
					}
					status, _, err := p.get(client, site, "/")
					if err != nil || status != http.StatusOK {
						failed.Add(1)
					}
					done.Add(1)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		close(stop)
		<-monitored
		if skewed {
			name += ", skewed"
		}
		r := result{name: name, rps: float64(done.Load()) / elapsed.Seconds(), failed: failed.Load()}
		r.newConns = float64(p.set.Budget().Steals-stealsBefore) / float64(done.Load())
		vals := make([]float64, len(samples))
		for i, n := range samples {
			r.peak = max(r.peak, n)
			vals[i] = float64(n)
		}
		r.typical = int(benchenv.Median(vals))
		return r
	}
	run("capped", false) // untimed warm-up of the databases' caches
	contenders := []struct {
		config string
		skewed bool
	}{{"capped", false}, {"uncapped", false}, {"capped", true}, {"uncapped", true}}
	results := make([][]result, len(contenders))
	var lines []string
	for i := range rounds {
		order := []int{0, 1, 2, 3}
		if i%2 == 1 {
			order = []int{3, 2, 1, 0}
		}
		got := make([]result, len(contenders))
		var names []string
		for _, c := range order {
			got[c] = run(contenders[c].config, contenders[c].skewed)
			results[c] = append(results[c], got[c])
			names = append(names, got[c].name)
			if got[c].failed > 0 {
				t.Errorf("round %d, %s: %d requests failed", i+1, got[c].name, got[c].failed)
			}
			if contenders[c].config == "capped" && got[c].peak > limit {
				t.Errorf("round %d, %s: peaked at %d connections, over the cap of %d", i+1, got[c].name, got[c].peak, limit)
			}
		}
		line := fmt.Sprintf("| %d | %s | %.0f / %d | %.0f / %d | %.3f | %.0f / %d | %.0f / %d | %.3f |", i+1, strings.Join(names, "; "),
			got[0].rps, got[0].peak, got[1].rps, got[1].peak, got[0].rps/got[1].rps,
			got[2].rps, got[2].peak, got[3].rps, got[3].peak, got[2].rps/got[3].rps)
		lines = append(lines, line)
		t.Log(line)
	}
	med := func(c int, f func(result) float64) float64 {
		v := make([]float64, len(results[c]))
		for i, r := range results[c] {
			v[i] = f(r)
		}
		return benchenv.Median(v)
	}
	ratio := func(a, b int) float64 {
		v := make([]float64, rounds)
		for i := range rounds {
			v[i] = results[a][i].rps / results[b][i].rps
		}
		return benchenv.Median(v)
	}
	rps := func(r result) float64 { return r.rps }
	peak := func(r result) float64 { return float64(r.peak) }
	typical := func(r result) float64 { return float64(r.typical) }
	summary := fmt.Sprintf(`Machine: %s, %s. Load average %s.

| median of %d rounds | uniform, capped at %d | uniform, uncapped | skewed, capped at %d | skewed, uncapped |
|---|---:|---:|---:|---:|
| requests per second | %.0f | %.0f | %.0f | %.0f |
| connections on the servers, peak | %.0f | %.0f | %.0f | %.0f |
| connections on the servers, median sample | %.0f | %.0f | %.0f | %.0f |
| idle connections closed to make room, per request | %.2f | - | %.2f | - |
| **capped / uncapped requests per second** | **%.3f** | | **%.3f** | |

| round | order | uniform capped req/s / peak | uniform uncapped req/s / peak | ratio | skewed capped req/s / peak | skewed uncapped req/s / peak | ratio |
|---:|---|---:|---:|---:|---:|---:|---:|
%s
`, benchenv.CPUModel(), time.Now().UTC().Format(time.RFC1123), benchenv.LoadAverage(), rounds, limit, limit,
		med(0, rps), med(1, rps), med(2, rps), med(3, rps),
		med(0, peak), med(1, peak), med(2, peak), med(3, peak),
		med(0, typical), med(1, typical), med(2, typical), med(3, typical),
		med(0, func(r result) float64 { return r.newConns }), med(2, func(r result) float64 { return r.newConns }),
		ratio(0, 1), ratio(2, 3), strings.Join(lines, "\n"))
	t.Log("\n" + summary)
	if out := os.Getenv("PWB_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(summary), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
