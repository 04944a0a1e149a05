package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

// serveProcess is a running `pwb serve` child process.
type serveProcess struct {
	*runningPWB
	base    string // http://127.0.0.1:PORT
	metrics string // http://127.0.0.1:PORT/metrics, its own listener
	client  *http.Client
}

var (
	servingRE = regexp.MustCompile(`serving on http://localhost:(\d+)/`)
	metricsRE = regexp.MustCompile(`metrics on (http://\S+/metrics)`)
)

func startServe(t *testing.T, cfg string) *serveProcess {
	t.Helper()
	return startServeEnv(t, cfg)
}

// startServeEnv is startServe with env (NAME=value) added to the process's
// environment, such as settings.
func startServeEnv(t *testing.T, cfg string, env ...string) *serveProcess {
	t.Helper()
	p := startPWBEnv(t, cfg, env, "serving on", "serve", "--addr", "127.0.0.1:0")
	port := servingRE.FindStringSubmatch(p.out.String())
	if port == nil {
		t.Fatalf("pwb serve did not say its address:\n%s", p.out.String())
	}
	m := metricsRE.FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("pwb serve did not say where its metrics are:\n%s", p.out.String())
	}
	return &serveProcess{
		runningPWB: p,
		metrics:    m[1],
		base:       "http://127.0.0.1:" + port[1],
		client: &http.Client{Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// request sends method path to host on the process and returns status and body.
func (p *serveProcess) request(t *testing.T, method, host, path string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, p.base+path, body)
	req.Host = host
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// timed is one request of a load test: when it was sent, when its whole
// answer had arrived, and the answer.
type timed struct {
	start, end time.Time
	status     int
	header     http.Header
	body       []byte
	err        error // the request could not be sent, or its answer read
}

// sendTimed sends method path to host at base through client, with form as
// a url-encoded body when not nil, and times it.
func sendTimed(client *http.Client, base, host, method, path string, form url.Values) timed {
	var r timed
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		r.err = err
		return r
	}
	req.Host = host
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.start = time.Now()
	res, err := client.Do(req)
	if err != nil {
		r.end, r.err = time.Now(), err
		return r
	}
	r.body, err = io.ReadAll(res.Body)
	res.Body.Close()
	r.end = time.Now()
	if err != nil {
		r.err = fmt.Errorf("reading the response: %w", err)
	}
	r.status, r.header = res.StatusCode, res.Header
	return r
}

// within polls every process until each passes check, failing after limit.
func within(t *testing.T, limit time.Duration, what string, procs []*serveProcess, check func(*serveProcess) bool) {
	t.Helper()
	start := time.Now()
	for _, p := range procs {
		for !check(p) {
			if time.Since(start) > limit {
				t.Fatalf("%s: not obeyed by %s within %v", what, p.base, limit)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// A change of a tenant's shard or status made through the CLI is obeyed by
// every running pwb serve within a second, well before the cache TTL.
func TestServe_RegistryChangesReachEveryProcess(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	cfg := c.ConfigPath
	mustPWB(t, cfg, "tenants", "create", "--subdomain", "movable", "--name", "Movable Homes")
	procs := []*serveProcess{startServe(t, cfg), startServe(t, cfg)}
	const host = "movable.localhost"
	for _, p := range procs {
		if code, body := p.request(t, "GET", host, "/", nil); code != 200 || !strings.Contains(body, "Movable Homes") {
			t.Fatalf("home page: %d\n%s", code, body)
		}
		if code, _ := p.request(t, "GET", host, "/p/where", nil); code != 404 {
			t.Fatalf("page on primary should not exist: %d", code)
		}
		res, err := p.client.Get(p.metrics)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), `pwb_http_requests_total{route="GET /{$}",shard="default",status="200"} 1`) {
			t.Errorf("pwb serve's /metrics: %d\n%s", res.StatusCode, body)
		}
		// Never on the public listener, whatever the host.
		for _, h := range []string{"localhost", host, "127.0.0.1", "nobody.example"} {
			if code, _ := p.request(t, "GET", h, "/metrics", nil); code != 404 {
				t.Errorf("/metrics on the public listener for host %s: %d, want 404", h, code)
			}
		}
	}

	// Shard change: once provisioned to shard_1, both serve pages from
	// shard_1's database.
	mustPWB(t, cfg, "sharding", "provision", "movable", "shard_1")
	id := pgtest.QueryValue[int64](t, c.URL["default"], "SELECT id FROM websites WHERE subdomain = 'movable'")
	pgtest.Exec(t, c.URL["shard_1"], `INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'where', 'Served from shard_1')`, id)
	within(t, time.Second, "provision to shard_1", procs, func(p *serveProcess) bool {
		code, body := p.request(t, "GET", host, "/p/where", nil)
		return code == 200 && strings.Contains(body, "Served from shard_1")
	})

	mustPWB(t, cfg, "tenants", "set-status", "movable", "maintenance")
	within(t, time.Second, "maintenance", procs, func(p *serveProcess) bool {
		code, _ := p.request(t, "GET", host, "/", nil)
		return code == 503
	})

	mustPWB(t, cfg, "tenants", "set-status", "movable", "read_only")
	enquiry := url.Values{"name": {"Ann"}, "email": {"ann@example.com"}, "message": {"Is it still available?"}}
	within(t, time.Second, "read_only", procs, func(p *serveProcess) bool {
		get, _ := p.request(t, "GET", host, "/", nil)
		post, _ := p.request(t, "POST", host, "/contact", enquiry)
		return get == 200 && post == 503
	})

	mustPWB(t, cfg, "tenants", "set-status", "movable", "active")
	within(t, time.Second, "active", procs, func(p *serveProcess) bool {
		post, _ := p.request(t, "POST", host, "/contact", enquiry)
		return post == http.StatusSeeOther
	})
	if n := pgtest.QueryValue[int64](t, c.URL["shard_1"], "SELECT count(*) FROM messages WHERE website_id = $1", id); n != 2 {
		t.Errorf("messages on shard_1: %d, want one per process", n)
	}
	if n := pgtest.QueryValue[int64](t, c.URL["default"], "SELECT count(*) FROM messages"); n != 0 {
		t.Errorf("messages on primary: %d, want 0", n)
	}

	// Ctrl-C stops each process gracefully.
	for _, p := range procs {
		out, err := p.interrupt()
		if err != nil || !strings.Contains(out, "pwb: stopped") {
			t.Errorf("pwb serve after Ctrl-C: %v\n%s", err, out)
		}
	}
}

func TestServe_Refusals(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 0)
	wantUsage := func(r result, want string) {
		t.Helper()
		if r.code != ExitUsage || !strings.Contains(r.stderr, want) {
			t.Errorf("want exit 2 mentioning %q, got %d: %s", want, r.code, r.stderr)
		}
	}
	wantUsage(pwb(t, c.ConfigPath, "serve", "--addr", "nonsense"), "--addr")
	wantUsage(pwb(t, c.ConfigPath, "serve", "--log-format", "xml"), "--log-format")
	wantUsage(pwb(t, c.ConfigPath, "serve", "extra"), "takes 0 argument")

	// Before migrating, serve refuses to start and says what to do.
	bare := pgtest.StartCluster(t, 0)
	wantRefused(t, pwb(t, bare.ConfigPath, "serve", "--addr", "127.0.0.1:0"), "pwb db migrate")
}
