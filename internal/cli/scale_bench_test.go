package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/benchenv"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

// benchScaleSizes are the platform sizes compared: shard databases over
// two servers, under max_connections_total 40.
var benchScaleSizes = []int{100, 300, 1000}

// benchScaleSteps are the commands timed at each size, in order.
var benchScaleSteps = []struct{ name, label string }{
	{"create", "`db create`"},
	{"migrate", "`db migrate` (fresh)"},
	{"noop", "`db migrate` (no-op)"},
	{"status", "`db status`"},
	{"totals", "`report totals`"},
	{"dashboard", "dashboard (`GET /admin`, median of 20)"},
}

// TestBench_ThousandShards times the commands and the page that visit every
// shard at 100, 300 and 1,000 shard databases on two local servers, sizes
// interleaved over three rounds, and prints the table of docs/benchmarks.md
// (`make bench-shards`). Each command runs as its own process; each round
// creates fresh databases and drops them afterwards.
func TestBench_ThousandShards(t *testing.T) {
	if os.Getenv("PWB_BENCH_SHARDS") == "" {
		t.Skip("set PWB_BENCH_SHARDS=1 to run (several minutes)")
	}
	rounds := benchenv.Int(t, "PWB_BENCH_ROUNDS", 3)
	ctx := context.Background()
	servers := pgtest.Start(t, 2, pgtest.Options{MaxConnections: 200})
	primaryURL := pgtest.CreateDatabase(t, servers[0], "pwb_bench_primary")
	primaryCfg := pgtest.WriteConfig(t, pgtest.Shard{Key: "primary", Server: servers[0], DB: "pwb_bench_primary"})
	mustPWB(t, primaryCfg, "db", "migrate")
	primary, err := pgxpool.New(ctx, primaryURL)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	if _, err := account.CreateSuperAdmin(ctx, primary, jobsOpsEmail, jobsOpsPassword); err != nil {
		t.Fatal(err)
	}

	took := map[string]map[int][]time.Duration{}
	for _, s := range benchScaleSteps {
		took[s.name] = map[int][]time.Duration{}
	}
	for round := 1; round <= rounds; round++ {
		for _, n := range benchScaleSizes {
			shards := []pgtest.Shard{{Key: "primary", Server: servers[0], DB: "pwb_bench_primary"}}
			for i := 1; i <= n; i++ {
				shards = append(shards, pgtest.Shard{Key: fmt.Sprintf("shard_%d", i), Server: servers[i%2], DB: fmt.Sprintf("pwb_bench_%d_%d_%d", round, n, i)})
			}
			cfg := pgtest.WriteConfigWith(t, pgtest.ConfigOptions{Env: map[string]string{"max_connections_total": "40"}}, shards...)
			for _, step := range []struct {
				name string
				args []string
			}{
				{"create", []string{"db", "create"}},
				{"migrate", []string{"db", "migrate"}},
				{"noop", []string{"db", "migrate"}},
				{"status", []string{"db", "status"}},
				{"totals", []string{"report", "totals"}},
			} {
				start := time.Now()
				out, err := pwbProcess(ctx, cfg, step.args...).CombinedOutput()
				if err != nil {
					t.Fatalf("%d shards, %s: %v\n%s", n, strings.Join(step.args, " "), err, lastLines(string(out), 5))
				}
				took[step.name][n] = append(took[step.name][n], time.Since(start))
			}
			took["dashboard"][n] = append(took["dashboard"][n], benchDashboard(t, cfg))
			t.Logf("round %d, %d shards: %v", round, n, func() []string {
				var s []string
				for _, st := range benchScaleSteps {
					d := took[st.name][n]
					s = append(s, st.name+" "+d[len(d)-1].Round(time.Millisecond).String())
				}
				return s
			}())
			dropBenchDatabases(t, shards[1:])
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "| step |")
	for _, n := range benchScaleSizes {
		fmt.Fprintf(&b, " %d shards |", n)
	}
	fmt.Fprintf(&b, " 1,000 / 100 |\n|---|")
	for range benchScaleSizes {
		b.WriteString("---:|")
	}
	b.WriteString("---:|\n")
	for _, s := range benchScaleSteps {
		fmt.Fprintf(&b, "| %s |", s.label)
		for _, n := range benchScaleSizes {
			fmt.Fprintf(&b, " %s |", benchSpread(took[s.name][n]))
		}
		fmt.Fprintf(&b, " %.1fx |\n", benchMedian(took[s.name][1000])/benchMedian(took[s.name][100]))
	}
	t.Logf("%s, load %s; medians (min–max) of %d rounds:\n%s", benchenv.CPUModel(), benchenv.LoadAverage(), rounds, b.String())
	if out := os.Getenv("PWB_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// benchDashboard starts pwb serve on cfg, signs in, waits until its health
// poller has reached every shard, and returns the median time of 20 views
// of the dashboard, half a second apart.
func benchDashboard(t *testing.T, cfg string) time.Duration {
	t.Helper()
	p := startServe(t, cfg)
	defer p.interrupt()
	s := &jobsServe{base: p.base, client: p.client}
	session := s.signIn(t)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, body := s.do(t, "GET", "localhost", "/admin/shards", nil, session)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /admin/shards: %d\n%s", res.StatusCode, body)
		}
		if noneChecking.MatchString(body) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the health poller had not reached every shard after 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Spread over ten seconds, the views meet the poller both resting and
	// in the middle of a round, as a viewer would.
	var views []time.Duration
	for i := range 20 {
		if i > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		start := time.Now()
		res, body := s.do(t, "GET", "localhost", "/admin", nil, session)
		views = append(views, time.Since(start))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /admin: %d\n%s", res.StatusCode, body)
		}
	}
	return time.Duration(benchMedian(views) * float64(time.Second))
}

// noneChecking finds the dashboard's count of shards not checked yet at 0.
var noneChecking = regexp.MustCompile(`data-state-count="checking"[^>]*><b>0</b>`)

// dropBenchDatabases drops the shard databases of a round, several at once.
func dropBenchDatabases(t *testing.T, shards []pgtest.Shard) {
	t.Helper()
	byServer := map[*pglocal.Server][]string{}
	for _, s := range shards {
		byServer[s.Server] = append(byServer[s.Server], s.DB)
	}
	var wg sync.WaitGroup
	for srv, dbs := range byServer {
		wg.Go(func() {
			conn, err := pgx.Connect(context.Background(), srv.URL("postgres"))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(context.Background())
			for _, db := range dbs {
				if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// benchMedian is the median of d in seconds.
func benchMedian(d []time.Duration) float64 {
	v := make([]float64, len(d))
	for i, x := range d {
		v[i] = x.Seconds()
	}
	return benchenv.Median(v)
}

// benchSpread writes a median with the smallest and largest: "1.20 s (1.10–1.31)".
func benchSpread(d []time.Duration) string {
	s := slices.Sorted(slices.Values(d))
	sec := func(x float64) string {
		if x < 1 {
			return fmt.Sprintf("%.0f ms", x*1000)
		}
		return fmt.Sprintf("%.2f s", x)
	}
	return fmt.Sprintf("%s (%s–%s)", sec(benchMedian(d)), sec(s[0].Seconds()), sec(s[len(s)-1].Seconds()))
}
