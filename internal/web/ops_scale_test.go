package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/ops"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// The platform admin with a thousand shards: 1,000 shard databases over two
// servers, a tenant on each and 2,000 more on primary, a cap of 40
// connections, and one health poller checking every shard each second.
const (
	scaleShards   = 1000
	scaleStandard = 2000
	scaleBudget   = 40
	scaleInterval = time.Second
	scaleViewers  = 3
	// scaleLimit is the most any admin page may take.
	scaleLimit = time.Second
)

// healthLine is a health check's line in a server log whose prefix is
// log_line_prefix '%m [%p] %d ': the database is the submatch.
var healthLine = regexp.MustCompile(`\[\d+\] (\S+) LOG:\s+(?:execute [^:]*|statement): /\* pwb health \*/`)

// scalePlatform is the 1,000-shard platform, served.
type scalePlatform struct {
	many   *pgtest.ManyShards
	set    *shard.Set
	poller *ops.Poller
	http   *httptest.Server
	client *http.Client
	cookie *http.Cookie
}

// get fetches path from the platform host as the signed-in super-admin and
// returns the status, the body and how long it took.
func (p *scalePlatform) get(path string) (int, string, time.Duration, error) {
	req, _ := http.NewRequest(http.MethodGet, p.http.URL+path, nil)
	req.Host = "localhost"
	req.AddCookie(p.cookie)
	start := time.Now()
	res, err := p.client.Do(req)
	if err != nil {
		return 0, "", time.Since(start), err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(b), time.Since(start), err
}

// waitFor waits up to two minutes for cond to hold of the poller.
func (p *scalePlatform) waitFor(t *testing.T, what string, cond func(ops.Snapshot) bool) ops.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.poller.Wait(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return p.poller.Snapshot()
}

// logSizes is how long each server's log is now.
func logSizes(t *testing.T, servers []*pglocal.Server) []int64 {
	t.Helper()
	out := make([]int64, len(servers))
	for i, srv := range servers {
		st, err := os.Stat(srv.LogFile())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = st.Size()
	}
	return out
}

// healthChecks counts the health statements each database's log shows
// between the offsets from and to of each server's log.
func healthChecks(t *testing.T, servers []*pglocal.Server, from, to []int64) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i, srv := range servers {
		f, err := os.Open(srv.LogFile())
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(io.NewSectionReader(f, from[i], to[i]-from[i]))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := healthLine.FindStringSubmatch(sc.Text()); m != nil {
				counts[m[1]]++
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return counts
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestOps_ThousandShards(t *testing.T) {
	began := time.Now()
	ctx := context.Background()
	many, _ := startBudgetShards(t, scaleShards)
	pgtest.Exec(t, many.URL[shard.Default], fmt.Sprintf(`INSERT INTO websites (subdomain, name, tier, shard_name)
		SELECT 'std-' || g, 'Standard ' || g, 'standard', 'default' FROM generate_series(1, %d) g`, scaleStandard))
	// Every statement in the servers' logs, with its database, to count the
	// health checks.
	for _, srv := range many.Servers {
		for _, sql := range []string{"ALTER SYSTEM SET log_statement = 'all'", "ALTER SYSTEM SET log_line_prefix = '%m [%p] %d '",
			"SELECT pg_reload_conf()"} {
			pgtest.Exec(t, srv.URL("postgres"), sql)
		}
	}
	t.Logf("%d shard databases on %d servers and %d tenants in %s", scaleShards, len(many.Servers), scaleShards+scaleStandard,
		time.Since(began).Round(time.Second))

	set, primary, cache := budgetSet(t, many, pgtest.ConfigOptions{Env: map[string]string{"max_connections_total": strconv.Itoa(scaleBudget)}})
	poller := ops.NewPoller(set, primary, ops.PollerOptions{Interval: scaleInterval})
	srv, err := New(Options{Shards: set, Registry: cache, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Health: poller})
	if err != nil {
		t.Fatal(err)
	}
	p := &scalePlatform{many: many, set: set, poller: poller, http: httptest.NewServer(srv),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	t.Cleanup(p.http.Close)
	u, err := account.CreateSuperAdmin(ctx, primary, "ops@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	token, err := account.CreatePlatformSession(ctx, primary, u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p.cookie = &http.Cookie{Name: opsCookie, Value: token}

	t.Run("before the first round every shard is checking, none down", func(t *testing.T) {
		status, body, took, err := p.get("/admin")
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET /admin: %d, %v", status, err)
		}
		if n := strings.Count(body, `data-health="checking"`); n != opsCardsPerPage || strings.Contains(body, `data-health="red"`) ||
			!strings.Contains(body, `<span class="health checking">Checking…</span>`) || strings.Contains(body, `class="health red"`) {
			t.Errorf("before the first round: %d cards checking, want a page of %d and none down\n%s", n, opsCardsPerPage, excerpt(body))
		}
		if !strings.Contains(body, `data-state-count="checking"><b>1,001</b>`) || !strings.Contains(body, "gathering…") {
			t.Errorf("the summary should count 1,001 shards checking and the totals be gathering\n%s", excerpt(body))
		}
		t.Logf("the dashboard before any round: %s", took.Round(time.Millisecond))
	})

	rctx, stop := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() { ended <- poller.Run(rctx) }()
	t.Cleanup(func() { stop(); <-ended })
	start := time.Now()
	s := p.waitFor(t, "the first round", func(s ops.Snapshot) bool { return s.Round >= 1 })
	b := set.Budget()
	t.Logf("the first health round of %d shards took %s (cold connections, a cap of %d: %d open, peak %d, %d dials waited %s in all, %d idle connections closed for others)",
		len(s.Shards), time.Since(start).Round(time.Millisecond), scaleBudget, b.Used, b.Peak, b.Waits, b.Waited.Round(time.Millisecond), b.Steals)
	for _, c := range s.Shards {
		if c.Health == ops.Red || c.Health == ops.Checking {
			t.Fatalf("%s after the first round: %s (%s: %s)", c.Name, c.Health, c.Why, c.Error)
		}
	}

	// Three people watch the dashboard, each loading it and its refresh
	// fragment over and over, on various pages and filters, for a few
	// intervals; the servers' logs show what the shards were asked
	// meanwhile.
	t.Run("viewers: fast pages, one health check per shard per round", func(t *testing.T) {
		paths := []string{"/admin", "/admin/shards", "/admin?page=7", "/admin/shards?page=42", "/admin?state=green&page=3",
			"/admin/shards?state=amber", "/admin?q=shard_77", "/admin/shards?q=99&page=2"}
		// Rounds that end before the round count is read logged their
		// checks before the logs' sizes are read; at the end, the other way
		// round. So each shard's count is the rounds counted, give or take
		// the round running at either end.
		fromRound := p.poller.Snapshot().Round
		fromLog := logSizes(t, many.Servers)
		watchStart := time.Now()
		// At least five intervals and three rounds, at most 45 seconds: a
		// round of a thousand shards under a cap of forty connections opens
		// a connection for nearly every shard, which takes several seconds
		// on a small machine (more while the first figures round runs), so
		// rounds follow each other without a pause.
		watching := func() bool {
			d := time.Since(watchStart)
			return d < 5*scaleInterval || d < 45*time.Second && p.poller.Snapshot().Round < fromRound+3
		}
		var mu sync.Mutex
		var took []time.Duration
		var wg sync.WaitGroup
		for v := range scaleViewers {
			wg.Go(func() {
				for i := v; watching(); i++ {
					path := paths[i%len(paths)]
					status, body, d, err := p.get(path)
					mu.Lock()
					took = append(took, d)
					mu.Unlock()
					if err != nil || status != http.StatusOK || !strings.Contains(body, "data-state-count") {
						t.Errorf("GET %s: %d, %v\n%s", path, status, err, excerpt(body))
						return
					}
					if d > scaleLimit {
						t.Errorf("GET %s took %s", path, d)
					}
				}
			})
		}
		wg.Wait()
		watch := time.Since(watchStart)
		toLog := logSizes(t, many.Servers)
		toRound := p.poller.Snapshot().Round
		snap := p.poller.Snapshot()
		t.Logf("%d viewers made %d dashboard requests in %s: median %s, slowest %s; the poller finished %d rounds, the last in %s; "+
			"%d figures rounds, the last in %s",
			scaleViewers, len(took), watch.Round(time.Millisecond), median(took).Round(time.Microsecond), slices.Max(took).Round(time.Microsecond),
			toRound-fromRound, snap.RoundTook.Round(time.Millisecond), snap.FiguresRound, snap.FiguresTook.Round(time.Millisecond))
		if toRound-fromRound < 2 {
			t.Errorf("only %d health rounds in %s at an interval of %s", toRound-fromRound, watch, scaleInterval)
		}

		counts := healthChecks(t, many.Servers, fromLog, toLog)
		rounds := toRound - fromRound
		var off []string
		total := 0
		for _, sh := range many.Shards {
			n := counts[sh.DB]
			total += n
			if n < rounds-1 || n > rounds+1 {
				off = append(off, fmt.Sprintf("%s: %d", sh.DB, n))
			}
		}
		b := set.Budget()
		t.Logf("%d health statements over %d databases in %d rounds (%d viewers made %d requests); connections: peak %d of %d",
			total, len(many.Shards), rounds, scaleViewers, len(took), b.Peak, scaleBudget)
		if b.Peak > scaleBudget {
			t.Errorf("the process held %d connections at once; the cap is %d", b.Peak, scaleBudget)
		}
		if len(off) > 0 {
			t.Errorf("%d databases saw a number of health checks other than the %d rounds (±1): %v", len(off), rounds, off[:min(len(off), 20)])
		}
	})

	t.Run("tenant list pages", func(t *testing.T) {
		p.waitFor(t, "the figures", func(s ops.Snapshot) bool { return s.FiguresRound >= 1 })
		for _, c := range []struct {
			path  string
			first string // the first row's tenant, when known
			rows  int
		}{
			{"/admin/tenants", "std-1", opsPerPage},
			{"/admin/tenants?page=40", "", opsPerPage},
			{"/admin/tenants?premium=1&page=3", "", opsPerPage},
			{"/admin/tenants?shard=shard_500", "t500", 1},
			{"/admin/tenants?q=tenant+99&sort=shard", "", 11},
			{"/admin/tenants?sort=id&dir=desc&page=2", fmt.Sprintf("std-%d", scaleStandard-opsPerPage), opsPerPage},
			{"/admin/tenants?sort=properties&dir=desc", "", opsPerPage},
			{"/admin/tenants?sort=properties&page=100", "", opsPerPage},
			{"/admin/tenants?page=1000", "", 0},
		} {
			status, body, took, err := p.get(c.path)
			if err != nil || status != http.StatusOK {
				t.Fatalf("GET %s: %d, %v\n%s", c.path, status, err, excerpt(body))
			}
			rows := regexp.MustCompile(`<tr data-tenant="([^"]+)"`).FindAllStringSubmatch(body, -1)
			if len(rows) != c.rows || c.first != "" && (len(rows) == 0 || rows[0][1] != c.first) {
				t.Errorf("GET %s: %d rows, the first %v; want %d, the first %q", c.path, len(rows), rows[:min(1, len(rows))], c.rows, c.first)
			}
			if strings.Contains(c.path, "sort=properties") && !strings.Contains(body, `data-field="counts-age"`) {
				t.Errorf("GET %s does not say how old its property counts are\n%s", c.path, excerpt(body))
			}
			if strings.Contains(body, "unavailable") {
				t.Errorf("GET %s shows a property count unavailable\n%s", c.path, excerpt(body))
			}
			if took > scaleLimit {
				t.Errorf("GET %s took %s", c.path, took)
			}
			t.Logf("GET %s: %s", c.path, took.Round(time.Millisecond))
		}
	})

	// Five shards stop taking connections: they turn red, and only they.
	t.Run("five unreachable shards are red, and only those", func(t *testing.T) {
		down := []string{"shard_7", "shard_123", "shard_500", "shard_777", "shard_1000"}
		for _, name := range down {
			i, _ := strconv.Atoi(strings.TrimPrefix(name, "shard_"))
			srv := many.Servers[(i-1)%len(many.Servers)]
			db := "pwb_test_" + name
			pgtest.Exec(t, srv.URL("postgres"), "ALTER DATABASE "+db+" ALLOW_CONNECTIONS false")
			pgtest.Exec(t, srv.URL("postgres"), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", db)
		}
		closed := time.Now()
		s := p.waitFor(t, "the five shards checked since", func(s ops.Snapshot) bool {
			for _, name := range down {
				if c, _ := s.Card(name); c.CheckedAt.Before(closed) {
					return false
				}
			}
			return true
		})
		var red []string
		for _, c := range s.Shards {
			if c.Health == ops.Red {
				red = append(red, c.Name)
			}
		}
		slices.SortFunc(red, ops.NaturalCompare)
		if !slices.Equal(red, down) {
			t.Errorf("red shards %v, want %v", red, down)
		}
		status, body, took, err := p.get("/admin?state=red")
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET /admin?state=red: %d, %v", status, err)
		}
		var shown []string
		for _, m := range regexp.MustCompile(`data-shard="([^"]+)" data-health="([^"]+)"`).FindAllStringSubmatch(body, -1) {
			shown = append(shown, m[1])
			if m[2] != ops.Red {
				t.Errorf("the red filter shows %s, %s", m[1], m[2])
			}
		}
		if !slices.Equal(shown, down) || !regexp.MustCompile(`data-state-count="red"[^>]*><b>5</b>`).MatchString(body) {
			t.Errorf("the red filter shows %v, want %v, and the summary 5 red\n%s", shown, down, excerpt(body))
		}
		// Worst first: the first page of the whole list starts with them.
		_, body, _, _ = p.get("/admin")
		first := regexp.MustCompile(`data-shard="([^"]+)"`).FindAllStringSubmatch(body, 5)
		for i, m := range first {
			if m[1] != down[i] {
				t.Errorf("the dashboard's first cards are %v, want the red ones %v first", first, down)
				break
			}
		}
		t.Logf("the red filter's page: %s", took.Round(time.Millisecond))
	})
	t.Logf("whole test before clean-up: %s", time.Since(began).Round(time.Second))
}
