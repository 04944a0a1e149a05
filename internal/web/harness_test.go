package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/jobs"
	"github.com/propertywebbuilder/pwb/internal/metrics"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/moves"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

func TestMain(m *testing.M) {
	account.Cost = bcrypt.MinCost
	os.Exit(m.Run())
}

// platform is a running pwb web server on real PostgreSQL: primary and N
// dedicated shards, each on its own server instance, migrated.
type platform struct {
	t       testing.TB
	cluster *pgtest.Cluster
	set     *shard.Set
	primary *pgxpool.Pool
	cache   *registry.Cache
	server  *Server
	http    *httptest.Server
	client  *http.Client
	log     *logBuffer
	metrics *metrics.Metrics
}

type platformOptions struct {
	shards int
	// signIn, if set, is the per-account sign-in rule (the per-address
	// rule keeps its default).
	signIn throttle.Rule
	// signInAddress, if set, is the per-address sign-in rule.
	signInAddress throttle.Rule
	// enquiries, if set, is the enquiry rule.
	enquiries throttle.Rule
	// trusted are the trusted proxies (default none: the test client is a
	// stranger, as every client is by default).
	trusted []netip.Prefix
	// platformDomains, if set, replaces the default platform domains.
	platformDomains []string
	quiet           bool // discard the server log (benchmarks)
	jobs            bool // run a job queue, so the platform admin can move tenants
	// requestTimeout, if set, replaces the default request deadline.
	requestTimeout time.Duration
	// staleCache makes the registry cache deaf to changes: it does not
	// listen and trusts what it read for an hour, so it goes on naming a
	// tenant's old shard after a move until told to forget it.
	staleCache bool
}

func newPlatform(t testing.TB, o platformOptions) *platform {
	t.Helper()
	ctx := context.Background()
	c, set := pgtest.MigratedCluster(t, o.shards, shard.WithConnectTimeout(time.Second))
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	cacheOpts := registry.CacheOptions{TTL: 5 * time.Second}
	if o.staleCache {
		cacheOpts = registry.CacheOptions{TTL: time.Hour, NoListen: true}
	}
	cache := registry.NewCache(primary, cacheOpts)
	if err := cache.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	logs := &logBuffer{}
	var logTo io.Writer = logs
	if o.quiet {
		logTo = io.Discard
	}
	log := slog.New(slog.NewTextHandler(logTo, nil))
	var queue *moves.Service
	if o.jobs {
		queue = startQueue(t, set, log)
	}
	m := metrics.New(set, cache, log)
	srv, err := New(Options{
		Shards: set, Registry: cache, SignInAccount: o.signIn, SignInAddress: o.signInAddress, Enquiries: o.enquiries,
		TrustedProxies: o.trusted, PlatformDomains: o.platformDomains, Logger: log,
		Metrics: m, Moves: queue, RequestTimeout: o.requestTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &platform{t: t, cluster: c, set: set, primary: primary, cache: cache, server: srv, http: hs, client: client, log: logs, metrics: m}
}

// startQueue runs a job queue that works moves (with no clean-up delay) on
// set until the test ends.
func startQueue(t testing.TB, set *shard.Set, log *slog.Logger) *moves.Service {
	t.Helper()
	svc, err := moves.New(set, moves.Options{Mover: mover.Options{CleanupDelay: mover.NoCleanupDelay}})
	if err != nil {
		t.Fatal(err)
	}
	queue, err := jobs.New(set, svc, jobs.Options{Logger: log, Work: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		queue.Stop(sctx)
	})
	return svc
}

// tenant registers a website on shardName.
func (p *platform) tenant(subdomain, shardName string) registry.Website {
	p.t.Helper()
	tier := registry.TierPremium
	if shardName == shard.Default {
		tier = registry.TierStandard
	}
	w, err := registry.Create(context.Background(), p.primary, registry.New{
		Subdomain: subdomain, Name: strings.ToUpper(subdomain[:1]) + subdomain[1:] + " Homes", Tier: tier, ShardName: shardName})
	if err != nil {
		p.t.Fatal(err)
	}
	return w
}

func (p *platform) scope(w registry.Website) tenant.Scope {
	p.t.Helper()
	sc, err := tenant.Resolve(p.set, w)
	if err != nil {
		p.t.Fatal(err)
	}
	return sc
}

// member creates a user with a membership of w and returns its email and
// password.
func (p *platform) member(w registry.Website, email string) (string, string) {
	p.t.Helper()
	ctx := context.Background()
	const password = "correct horse battery"
	u, err := account.CreateUser(ctx, p.primary, email, password)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := account.AddMember(ctx, p.primary, u.ID, w.ID, account.RoleOwner); err != nil {
		p.t.Fatal(err)
	}
	return email, password
}

// superAdmin creates a platform super-admin, signs it in at /admin and
// returns its session cookie and CSRF token.
func (p *platform) superAdmin(email string) (*http.Cookie, string) {
	p.t.Helper()
	const password = "correct horse battery"
	if _, err := account.CreateSuperAdmin(context.Background(), p.primary, email, password); err != nil {
		p.t.Fatal(err)
	}
	return p.opsLogin(email, password)
}

// opsLogin signs in at /admin/login and returns the session cookie and its
// CSRF token.
func (p *platform) opsLogin(email, password string) (*http.Cookie, string) {
	p.t.Helper()
	r := p.postForm("localhost", "/admin/login", url.Values{"email": {email}, "password": {password}})
	if r.StatusCode != http.StatusSeeOther {
		p.t.Fatalf("signing in %s at /admin: status %d\n%s", email, r.StatusCode, excerpt(r.Body))
	}
	for _, c := range r.Cookies() {
		if c.Name == "pwb_platform" {
			return c, account.CSRFToken(c.Value)
		}
	}
	p.t.Fatalf("signing in %s at /admin: no session cookie", email)
	return nil, ""
}

// response is a finished HTTP exchange.
type response struct {
	*http.Response
	Body string
}

// do sends req to the platform as if addressed to host.
func (p *platform) do(host string, req *http.Request) response {
	p.t.Helper()
	u, _ := url.Parse(p.http.URL)
	req.URL.Scheme, req.URL.Host = u.Scheme, u.Host
	req.Host = host
	res, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s%s: %v", req.Method, host, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{Response: res, Body: string(b)}
}

func (p *platform) get(host, path string, cookies ...*http.Cookie) response {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return p.do(host, req)
}

func (p *platform) postForm(host, path string, form url.Values, cookies ...*http.Cookie) response {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return p.do(host, req)
}

// count returns the number of rows of table for website on the database url.
func count(t *testing.T, dbURL, table string, websiteID int64) int {
	t.Helper()
	return int(pgtest.QueryValue[int64](t, dbURL, "SELECT count(*) FROM "+table+" WHERE website_id = $1", websiteID))
}

func wantStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", r.Request.Method, r.Request.URL.Path, r.StatusCode, want, excerpt(r.Body))
	}
}

func excerpt(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "..."
	}
	return s
}

// logBuffer keeps the server's log for assertions; the server writes it from
// many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(b)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
