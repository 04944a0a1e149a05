package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// tenantTableRE finds statements that touch a tenant table.
var tenantTableRE = regexp.MustCompile(`\b(` + strings.Join(tenant.Tables, "|") + `)\b`)

// A tenant whose shard is not in the configuration gets a 503 page, never the
// primary's rows of the same website id, and not one query reaches primary's
// tenant tables while it is served.
func TestFailClosed_ShardMissingFromConfig(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := context.Background()
	w := p.tenant("lost", "shard_1")
	// A trap: rows of the same website id on primary, which a
	// fall-back-to-default would have served.
	pgtest.Exec(t, p.cluster.URL[shard.Default], `INSERT INTO pages (id, website_id, slug, title, body)
		VALUES (gen_random_uuid(), $1, 'about', 'TRAP PAGE', 'primary data')`, w.ID)
	if err := registry.SetShard(ctx, p.primary, w.ID, "shard_9"); err != nil {
		t.Fatal(err)
	}

	logFile := p.cluster.Servers[0].LogFile()
	pgtest.Exec(t, p.cluster.URL[shard.Default], "ALTER SYSTEM SET log_statement = 'all'")
	pgtest.Exec(t, p.cluster.URL[shard.Default], "SELECT pg_reload_conf()")
	time.Sleep(200 * time.Millisecond) // let every backend take the reload
	before, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{"/", "/p/about", "/buy", "/site_admin/login"} {
		r := p.get("lost.localhost", path)
		wantStatus(t, r, http.StatusServiceUnavailable)
		if strings.Contains(r.Body, "TRAP") || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: want a 503 page with Retry-After and no primary data; got %v\n%s", path, r.Header, r.Body)
		}
	}
	r := p.postForm("lost.localhost", "/contact", url.Values{"name": {"A"}, "email": {"a@example.com"}, "message": {"hi"}})
	wantStatus(t, r, http.StatusServiceUnavailable)

	// Control: a statement on a tenant table does show in the log.
	pgtest.Exec(t, p.cluster.URL[shard.Default], "SELECT count(*) FROM messages /* control */")
	after, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	newLog := string(after[len(before):])
	var control bool
	for _, line := range strings.Split(newLog, "\n") {
		if !strings.Contains(line, "statement:") || !tenantTableRE.MatchString(line) {
			continue
		}
		if strings.Contains(line, "/* control */") {
			control = true
			continue
		}
		t.Errorf("a query reached primary's tenant tables: %s", line)
	}
	if !control {
		t.Fatalf("statement logging is not working; the control query is not in the log:\n%s", newLog)
	}
	if got := count(t, p.cluster.URL[shard.Default], "messages", w.ID); got != 0 {
		t.Errorf("messages written on primary: %d", got)
	}
	if !strings.Contains(p.log.String(), "shard_9") {
		t.Errorf("the server log does not name the missing shard:\n%s", p.log.String())
	}
}

// Stopping one shard's server takes down only its tenants, quickly, and
// starting it again brings them back without restarting pwb.
func TestFailClosed_ShardDownThenBack(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 2})
	ctx := context.Background()
	hosts := map[string]string{}
	for sub, sh := range map[string]string{"std": shard.Default, "one": "shard_1", "two": "shard_2"} {
		w := p.tenant(sub, sh)
		if _, err := content.CreatePage(ctx, p.scope(w), content.PageInput{Slug: "about", Title: "About " + sub, Visible: true}); err != nil {
			t.Fatal(err)
		}
		hosts[sh] = sub + ".localhost"
	}
	for _, h := range hosts {
		wantStatus(t, p.get(h, "/p/about"), http.StatusOK)
	}

	// A fast shutdown: test servers do not sync commits, so an immediate one
	// could lose the schema.
	if err := p.cluster.Servers[2].Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := p.get(hosts["shard_2"], "/p/about")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("503 took %v, want within 2s", took)
	}
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(r.Body, "cannot be reached right now") || r.Header.Get("Retry-After") == "" {
		t.Errorf("want the unavailable page with Retry-After; got %v\n%s", r.Header, r.Body)
	}
	// Again, now that the pool has no connection left at all.
	start = time.Now()
	wantStatus(t, p.get(hosts["shard_2"], "/"), http.StatusServiceUnavailable)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("second 503 took %v, want within 2s", took)
	}
	for _, sh := range []string{shard.Default, "shard_1"} {
		wantStatus(t, p.get(hosts[sh], "/p/about"), http.StatusOK)
	}

	if err := p.cluster.Servers[2].Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := p.get(hosts["shard_2"], "/p/about")
		if r.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shard_2's tenant did not recover after its server started again: %d\n%s\nlog:\n%s", r.StatusCode, r.Body, p.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A write in flight holds the shared fence; flipping the tenant to read_only
// and taking the fence exclusively waits for it; writes after the flip get 503
// and change nothing, while reads keep working.
func TestFence_FreezeWaitsForWritesInFlightAndRefusesLaterOnes(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := context.Background()
	w := p.tenant("fenced", "shard_1")
	sc := p.scope(w)
	shardURL := p.cluster.URL["shard_1"]

	inWrite, release, writeDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		writeDone <- sc.Write(ctx, func(tx tenant.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO agencies (id, website_id, name) VALUES (gen_random_uuid(), $1, 'In flight')`, w.ID); err != nil {
				return err
			}
			close(inWrite)
			<-release
			return nil
		})
	}()
	<-inWrite

	if err := registry.SetStatus(ctx, p.primary, w.ID, registry.StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	pool, err := p.set.Pool("shard_1")
	if err != nil {
		t.Fatal(err)
	}
	frozen := make(chan error, 1)
	var freezeTx pgx.Tx
	go func() {
		tx, err := pool.Begin(ctx)
		if err == nil {
			freezeTx = tx
			err = tenant.Freeze(ctx, tx, w.ID)
		}
		frozen <- err
	}()
	// The freeze is waiting on the writer's lock, as the server sees it.
	waitFor(t, func() bool {
		return pgtest.QueryValue[int64](t, shardURL,
			"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == 1
	})
	select {
	case err := <-frozen:
		t.Fatalf("freeze returned while a write was in flight: %v", err)
	default:
	}
	close(release)
	if err := <-writeDone; err != nil {
		t.Fatalf("the write in flight failed: %v", err)
	}
	if err := <-frozen; err != nil {
		t.Fatal(err)
	}
	if got := count(t, shardURL, "agencies", w.ID); got != 1 {
		t.Fatalf("the write in flight did not commit: %d agencies", got)
	}

	// While frozen, a new write waits for the fence; once the mover lets go
	// it reads the registry and stops, even through a scope resolved before
	// the flip. The site answers writes with 503 and Retry-After.
	staleWrite := make(chan error, 1)
	go func() {
		staleWrite <- sc.Write(ctx, func(tenant.Tx) error { return errors.New("must not run") })
	}()
	waitFor(t, func() bool {
		return pgtest.QueryValue[int64](t, shardURL,
			"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == 1
	})
	if err := freezeTx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-staleWrite; !errors.Is(err, tenant.ErrWritesPaused) {
		t.Fatalf("write with a stale scope: %v, want ErrWritesPaused", err)
	}
	waitFor(t, func() bool { return p.get("fenced.localhost", "/").StatusCode == http.StatusOK })
	r := p.postForm("fenced.localhost", "/contact", url.Values{"name": {"Ann"}, "email": {"ann@example.com"}, "message": {"Hello"}})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "cannot take changes right now") {
		t.Errorf("want the paused-writes page with Retry-After; got %v\n%s", r.Header, r.Body)
	}
	if got := count(t, shardURL, "messages", w.ID); got != 0 {
		t.Errorf("a write after the flip landed: %d messages", got)
	}
	wantStatus(t, p.get("fenced.localhost", "/contact"), http.StatusOK)

	// Maintenance: every page is a 503 maintenance page.
	if err := registry.SetStatus(ctx, p.primary, w.ID, registry.StatusMaintenance); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		r := p.get("fenced.localhost", "/")
		return r.StatusCode == http.StatusServiceUnavailable && strings.Contains(r.Body, "down for maintenance")
	})
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
