package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/metrics"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// budgetPlatform serves n shards, one tenant on each, through a web server
// whose shard set has the config's connection settings.
type budgetPlatform struct {
	many    *pgtest.ManyShards
	set     *shard.Set
	http    *httptest.Server
	metrics *httptest.Server // the metrics handler, served apart as pwb serve does
	sites   []registry.Website
}

func newBudgetPlatform(t *testing.T, n int, o pgtest.ConfigOptions) *budgetPlatform {
	t.Helper()
	many, sites := startBudgetShards(t, n)
	return serveBudget(t, many, sites, o)
}

// startBudgetShards starts n migrated shards over 2 servers, with one tenant
// registered on each.
func startBudgetShards(t testing.TB, n int, opts ...pgtest.Options) (*pgtest.ManyShards, []registry.Website) {
	t.Helper()
	ctx := context.Background()
	many := pgtest.StartManyShards(t, n, 2, opts...)
	conn, err := pgx.Connect(ctx, many.URL[shard.Default])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var sites []registry.Website
	for i := 1; i <= n; i++ {
		w, err := registry.Create(ctx, conn, registry.New{Subdomain: fmt.Sprintf("t%d", i), Name: fmt.Sprintf("Tenant %d", i),
			Tier: registry.TierPremium, ShardName: fmt.Sprintf("shard_%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		sites = append(sites, w)
	}
	return many, sites
}

// budgetSet opens the shards of many as a web server would, with the
// config's connection settings, and starts a registry cache on primary;
// both end with the test.
func budgetSet(t testing.TB, many *pgtest.ManyShards, o pgtest.ConfigOptions) (*shard.Set, *pgxpool.Pool, *registry.Cache) {
	t.Helper()
	path := pgtest.WriteConfigWith(t, o, many.Shards...)
	cfg, err := config.Load(path, "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg, shard.WithConnectTimeout(2*time.Second))
	t.Cleanup(set.Close)
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	cache := registry.NewCache(primary, registry.CacheOptions{TTL: 5 * time.Second})
	if err := cache.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	return set, primary, cache
}

// serveBudget serves the shards of many through a web server whose shard
// set has the config's connection settings.
func serveBudget(t testing.TB, many *pgtest.ManyShards, sites []registry.Website, o pgtest.ConfigOptions) *budgetPlatform {
	t.Helper()
	set, _, cache := budgetSet(t, many, o)
	p := &budgetPlatform{many: many, set: set, sites: sites}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.New(set, cache, log)
	srv, err := New(Options{Shards: set, Registry: cache, Logger: log, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	p.http = httptest.NewServer(srv)
	t.Cleanup(p.http.Close)
	p.metrics = httptest.NewServer(m.Handler())
	t.Cleanup(p.metrics.Close)
	return p
}

// get fetches path from tenant site's host and returns the status.
func (p *budgetPlatform) get(client *http.Client, site registry.Website, path string) (int, http.Header, error) {
	req, _ := http.NewRequest(http.MethodGet, p.http.URL+path, nil)
	req.Host = site.Subdomain + ".localhost"
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header, nil
}

// serverConnections counts the connections the pwb code under test holds
// to each server (application_name pwb), read from pg_stat_activity. The
// servers are asked at the same moment: asked one after the other, a
// connection closed on the first and another opened on the second between
// the two reads would both be counted.
func serverConnections(ctx context.Context, conns []*pgx.Conn) (int, error) {
	counts := make([]int, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			errs[i] = c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pwb'").Scan(&counts[i])
		})
	}
	wg.Wait()
	total := 0
	for i := range conns {
		if errs[i] != nil {
			return 0, errs[i]
		}
		total += counts[i]
	}
	return total, nil
}

// 100 shard databases, one tenant on each, a cap of 30 connections: pages
// of every tenant, requested at once, all succeed; the servers never see
// more than 30 connections from this process; and once the load stops,
// every shard's pool closes its connections after the idle time.
func TestConnectionBudget_HundredShardsCapThirty(t *testing.T) {
	const shards, limit = 100, 30
	p := newBudgetPlatform(t, shards, pgtest.ConfigOptions{
		Env:   map[string]string{"max_connections_total": strconv.Itoa(limit)},
		Entry: map[string]string{"pool": "5", "idle_timeout": "1"},
	})
	ctx := context.Background()
	var monitors []*pgx.Conn
	for _, srv := range p.many.Servers {
		c, err := pgx.Connect(ctx, srv.URL("postgres")+"&application_name=pwb-test-monitor")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		monitors = append(monitors, c)
	}

	stop := make(chan struct{})
	var peak atomic.Int64
	var samples atomic.Int64
	monitorDone := make(chan error, 1)
	go func() {
		for {
			n, err := serverConnections(ctx, monitors)
			if err != nil {
				monitorDone <- err
				return
			}
			samples.Add(1)
			if int64(n) > peak.Load() {
				peak.Store(int64(n))
			}
			select {
			case <-stop:
				monitorDone <- nil
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const workers, rounds = 24, 3
	var failed atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				for i := w; i < shards; i += workers {
					site := p.sites[(i+r*7)%shards]
					status, _, err := p.get(client, site, "/")
					if err != nil || status != http.StatusOK {
						failed.Add(1)
						firstErr.Do(func() { t.Errorf("GET %s.localhost/: status %d, %v", site.Subdomain, status, err) })
					}
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-monitorDone; err != nil {
		t.Fatal(err)
	}
	b := p.set.Budget()
	t.Logf("%d requests over %d tenants, %d failed; pg_stat_activity peak %d in %d samples; budget peak %d, %d dials waited",
		workers*((shards+workers-1)/workers)*rounds, shards, failed.Load(), peak.Load(), samples.Load(), b.Peak, b.Waits)
	if peak.Load() > limit || b.Peak > limit {
		t.Errorf("connections peaked at %d (servers) and %d (budget); the cap is %d", peak.Load(), b.Peak, limit)
	}
	if b.Peak < limit/2 {
		t.Errorf("the budget peaked at %d: the load did not press on the cap of %d, so the test shows nothing", b.Peak, limit)
	}

	// Idle pools close their connections: after the idle time and a health
	// check, only the registry listener remains.
	deadline := time.Now().Add(15 * time.Second)
	for {
		open := 0
		for name, st := range p.set.Stats() {
			if name != shard.Default {
				open += int(st.TotalConns())
			}
		}
		n, err := serverConnections(ctx, monitors)
		if err != nil {
			t.Fatal(err)
		}
		if open == 0 && n <= 2 {
			t.Logf("idle: %d shard connections in the pools, %d on the servers (the registry listener and primary)", open, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the idle time, shard pools still hold %d connections and the servers see %d", open, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Waiting for a connection ends in a 503 with Retry-After, not a hang: when
// the shard's own pool is full for longer than checkout_timeout, and when
// the process's budget is spent with nothing idle to close. A connection
// that comes back idle to another shard's pool is closed to make room.
func TestConnectionBudget_WaitBecomes503(t *testing.T) {
	p := newBudgetPlatform(t, 2, pgtest.ConfigOptions{
		Env:   map[string]string{"max_connections_total": "2"},
		Entry: map[string]string{"pool": "1", "checkout_timeout": "0.3"},
	})
	ctx := context.Background()
	client := &http.Client{Timeout: 30 * time.Second}
	t1, t2 := p.sites[0], p.sites[1]
	for _, site := range p.sites { // the registry cache now knows both
		if status, _, err := p.get(client, site, "/"); err != nil || status != http.StatusOK {
			t.Fatalf("GET %s: %d, %v", site.Subdomain, status, err)
		}
	}
	pool := func(name string) *pgxpool.Pool {
		pl, err := p.set.Pool(name)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}
	// Nothing idle anywhere; the registry listener holds one slot.
	pool(shard.Default).Reset()
	pool("shard_2").Reset()
	pool("shard_1").Reset()
	held, err := pool("shard_1").Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}

	wait503 := func(what string, site registry.Website) {
		t.Helper()
		start := time.Now()
		status, h, err := p.get(client, site, "/")
		took := time.Since(start)
		if err != nil || status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
			t.Errorf("%s: GET %s: status %d, Retry-After %q, %v; want 503 with Retry-After", what, site.Subdomain, status, h.Get("Retry-After"), err)
		}
		if took > 3*time.Second {
			t.Errorf("%s: the 503 took %s; the wait should end at checkout_timeout (0.3s) or the connect timeout (2s)", what, took)
		}
	}
	// shard_1's only connection is held: its pool is full.
	wait503("pool full", t1)
	// The budget (2) is spent by the listener and the held connection.
	if b := p.set.Budget(); b.Used != 2 {
		t.Fatalf("budget in use = %d, want 2 (the registry listener and the held connection)", b.Used)
	}
	wait503("budget spent, nothing idle", t2)

	// Back in its pool, the held connection is idle: shard_2 closes it to
	// make room, and t2 is served.
	held.Release()
	if status, _, err := p.get(client, t2, "/"); err != nil || status != http.StatusOK {
		t.Fatalf("after the release: GET t2: %d, %v; want 200", status, err)
	}
	if st := p.set.Stats()["shard_1"]; st.TotalConns() != 0 {
		t.Errorf("shard_1 still has %d connection(s): its idle one should have been closed for shard_2", st.TotalConns())
	}
	if b := p.set.Budget(); b.Used > 2 || b.Peak > 2 {
		t.Errorf("budget used %d, peak %d; the cap is 2", b.Used, b.Peak)
	}
	// /metrics shows the cap, what is open, and that connections waited.
	res, err := client.Get(p.metrics.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	waits := regexp.MustCompile(`(?m)^pwb_db_connection_budget_waits_total (\d+)$`).FindSubmatch(body)
	if !strings.Contains(string(body), `pwb_db_connections{state="max"} 2`) || !strings.Contains(string(body), `pwb_db_connections{state="open"}`) ||
		waits == nil || string(waits[1]) == "0" {
		t.Errorf("/metrics lacks the connection budget or its waits:\n%s", body)
	}
}
