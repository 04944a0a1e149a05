package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Primary and shard_1 are reached only through Debian's PgBouncer in
// transaction pooling mode (prepared_statements: false, advisory_locks:
// false): their schemas migrate through the pooler, shard_1's tenant's site
// reads and writes, the write fence holds across pooled server connections,
// and a tenant moves onto shard_1 and back off it with every row intact, its
// journal and registry on the pooled primary.
func TestPgBouncer_TransactionModeInFrontOfAShard(t *testing.T) {
	ctx := context.Background()
	servers := pgtest.Start(t, 3)
	dbs := []string{"pwb_test_primary", "pwb_test_shard_1", "pwb_test_shard_2"}
	direct := map[string]string{}
	for i, name := range []string{shard.Default, "shard_1", "shard_2"} {
		direct[name] = pgtest.CreateDatabase(t, servers[i], dbs[i])
	}
	bouncer := pgtest.StartPgBouncer(t, servers[1], dbs[1])
	viaPooler := map[string]string{"prepared_statements": "false", "advisory_locks": "false"}
	path := pgtest.WriteConfig(t,
		pgtest.Shard{Key: "primary", Server: servers[0], DB: dbs[0], Port: pgtest.StartPgBouncer(t, servers[0], dbs[0]), Settings: viaPooler},
		pgtest.Shard{Key: "shard_1", Server: servers[1], DB: dbs[1], Port: bouncer, Settings: viaPooler},
		pgtest.Shard{Key: "shard_2", Server: servers[2], DB: dbs[2]},
	)
	cfg, err := config.Load(path, "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg, shard.WithConnectTimeout(2*time.Second))
	t.Cleanup(set.Close)

	// Migrations: through the pooler they lock with a table row.
	for i, r := range migrations.MigrateShards(ctx, set, migrations.Options{}, nil) {
		if r.Err != nil {
			t.Fatalf("migrating %s: %v", r.Shard, r.Err)
		}
		if r.TenantApplied == 0 {
			t.Errorf("shard %d (%s): no tenant migration applied", i, r.Shard)
		}
	}
	for _, r := range migrations.MigrateShards(ctx, set, migrations.Options{}, nil) {
		if r.Err != nil || r.Applied() != 0 {
			t.Errorf("second migrate of %s: %d applied, %v; want nothing to do", r.Shard, r.Applied(), r.Err)
		}
	}
	for name, want := range map[string]bool{shard.Default: true, "shard_1": true, "shard_2": false} {
		if got := pgtest.QueryValue[bool](t, direct[name], "SELECT to_regclass('pwb_tenant_schema_version_lock') IS NOT NULL"); got != want {
			t.Errorf("%s: migration lock table = %v; want it only behind the pooler", name, got)
		}
		if name != "shard_2" {
			if n := pgtest.QueryValue[int64](t, direct[name], "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"); n != 0 {
				t.Errorf("%d advisory locks left on %s's server after migrating", n, name)
			}
		}
	}

	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	pooled, err := registry.Create(ctx, primary, registry.New{Subdomain: "pooled", Name: "Pooled Homes", Tier: registry.TierPremium, ShardName: "shard_1"})
	if err != nil {
		t.Fatal(err)
	}
	mobile, err := registry.Create(ctx, primary, registry.New{Subdomain: "mobile", Name: "Mobile Homes", Tier: registry.TierPremium, ShardName: "shard_2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []registry.Website{pooled, mobile} {
		conn, err := pgx.Connect(ctx, direct[w.ShardName])
		if err != nil {
			t.Fatal(err)
		}
		if err := movertest.Fill(ctx, conn, w.ID, movertest.Options{Properties: 40, Photos: 2}); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
	}

	// As serve does for a pooled primary: no LISTEN, the TTL alone.
	cache := registry.NewCache(primary, registry.CacheOptions{TTL: 5 * time.Second, NoListen: cfg.Primary().ThroughPooler()})
	if err := cache.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	srv, err := New(Options{Shards: set, Registry: cache, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, host, path string, form url.Values) (int, string) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, hs.URL+path, body)
		req.Host = host
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	// The pooler really pools by transaction: a client's next statement
	// runs on the server connection another client's transaction freed.
	bouncerURL := strings.Replace(direct["shard_1"], fmt.Sprintf(":%d/", servers[1].Port()), fmt.Sprintf(":%d/", bouncer), 1)
	x, err := pgx.Connect(ctx, bouncerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close(ctx)
	y, err := pgx.Connect(ctx, bouncerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close(ctx)
	pid := func(q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) (p int) {
		t.Helper()
		if err := q.QueryRow(ctx, "SELECT pg_backend_pid()", pgx.QueryExecModeSimpleProtocol).Scan(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	xtx, err := x.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := pid(xtx)
	other := pid(y)
	xtx.Commit(ctx)
	ytx, err := y.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	taken := pid(ytx)
	again := pid(x)
	ytx.Commit(ctx)
	if first == other || taken != first || again == first {
		t.Fatalf("server connections %d %d %d %d: PgBouncer is not pooling by transaction", first, other, taken, again)
	}

	// Reads and writes of the pooled tenant's site, from many clients at
	// once, so the pooler hands each transaction whatever server connection
	// is free.
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if status, body := do(http.MethodGet, "pooled.localhost", "/", nil); status != http.StatusOK || !strings.Contains(body, "Pooled Homes") {
					failures.Add(1)
				}
				if status, _ := do(http.MethodGet, "pooled.localhost", "/buy", nil); status != http.StatusOK {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of 160 concurrent reads through the pooler failed", n)
	}
	for i := range 5 {
		status, _ := do(http.MethodPost, "pooled.localhost", "/contact", url.Values{
			"name": {"Ann"}, "email": {"ann@example.com"}, "message": {"Round " + string(rune('a'+i))}})
		if status != http.StatusSeeOther {
			t.Fatalf("enquiry %d through the pooler: status %d", i, status)
		}
	}
	if n := pgtest.QueryValue[int64](t, direct["shard_1"], "SELECT count(*) FROM messages WHERE website_id = $1 AND body LIKE 'Round %'", pooled.ID); n != 5 {
		t.Errorf("enquiries on shard_1: %d, want 5", n)
	}

	// The write fence is transaction-level, so it holds through the pooler:
	// a write waits while the fence is taken exclusively in another pooled
	// transaction, and goes on when that ends.
	pool, err := set.Pool("shard_1")
	if err != nil {
		t.Fatal(err)
	}
	freeze, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tenant.Freeze(ctx, freeze, pooled.ID); err != nil {
		t.Fatal(err)
	}
	sc, err := tenant.Resolve(set, pooled)
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		wrote <- sc.Write(ctx, func(tx tenant.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE agencies SET name = 'Written after the fence' WHERE website_id = $1", pooled.ID)
			return err
		})
	}()
	select {
	case err := <-wrote:
		t.Fatalf("a write went through while the fence was held (err %v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := freeze.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("the write after the fence: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write did not go on after the fence was released")
	}

	// A move onto the pooled shard and back off it.
	digest := func(name string, id int64) movertest.Digest {
		conn, err := pgx.Connect(ctx, direct[name])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		d, err := movertest.TakeDigest(ctx, conn, id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	before, pooledBefore := digest("shard_2", mobile.ID), digest("shard_1", pooled.ID)
	m, err := mover.New(set, mover.Options{CleanupDelay: mover.NoCleanupDelay})
	if err != nil {
		t.Fatal(err)
	}
	for _, leg := range []struct{ from, to string }{{"shard_2", "shard_1"}, {"shard_1", "shard_2"}} {
		plan, err := m.Plan(ctx, "mobile", leg.to, journal.ModeFreeze)
		if err != nil {
			t.Fatalf("plan %s → %s: %v", leg.from, leg.to, err)
		}
		id, err := m.Start(ctx, plan, "test")
		if err != nil {
			t.Fatal(err)
		}
		if mv, err := m.Run(ctx, id); err != nil || mv.State != journal.StateDone {
			t.Fatalf("move %s → %s: %v (%s)", leg.from, leg.to, err, mv.State)
		}
		if got := digest(leg.to, mobile.ID); !cmp.Equal(got, before) {
			t.Fatalf("after the move %s → %s the tenant's rows differ", leg.from, leg.to)
		}
		if !digest(leg.from, mobile.ID).Empty() {
			t.Errorf("rows of the tenant left on %s", leg.from)
		}
		if status, body := do(http.MethodGet, "mobile.localhost", "/", nil); status != http.StatusOK || !strings.Contains(body, "Mobile Homes") {
			t.Errorf("mobile's site after the move to %s: %d", leg.to, status)
		}
	}
	if !cmp.Equal(digest("shard_1", pooled.ID), pooledBefore) {
		t.Error("the pooled shard's own tenant changed while another moved through")
	}

	// The job queue on the pooled primary polls instead of listening, and
	// runs a move as the admin starts it.
	queue := startQueue(t, set, slog.New(slog.NewTextHandler(io.Discard, nil)))
	plan, err := queue.Mover().Plan(ctx, "mobile", "shard_1", journal.ModeFreeze)
	if err != nil {
		t.Fatal(err)
	}
	id, err := queue.Start(ctx, plan, "test", true)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		mv, err := journal.Get(ctx, primary, id)
		if err != nil {
			t.Fatal(err)
		}
		if mv.State == journal.StateDone {
			break
		}
		if mv.State == journal.StateFailed || time.Now().After(deadline) {
			t.Fatalf("the queued move through the pooled primary: %s %s", mv.State, mv.Error)
		}
	}
	if got := digest("shard_1", mobile.ID); !cmp.Equal(got, before) {
		t.Fatal("after the queued move the tenant's rows differ")
	}
}
