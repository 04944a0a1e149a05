package registry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

// These tests sit inside the package to reach the cache's test hook and
// generation counter; registry_test.go tests the package from outside.

func cachePrimary(t testing.TB) *pgxpool.Pool { return pgtest.MigratedPrimary(t) }

// newTestCache returns a cache that logs into the test's output and is
// closed before the pool and the server go away.
func newTestCache(t testing.TB, pool *pgxpool.Pool, ttl time.Duration) *Cache {
	t.Helper()
	c := NewCache(pool, CacheOptions{TTL: ttl, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	t.Cleanup(c.Close)
	return c
}

func mustCreate(t testing.TB, q dbq.Querier, n New) Website {
	t.Helper()
	w, err := Create(context.Background(), q, n)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// eventually polls cond every 5ms until it holds or within has passed.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(t *testing.T, c *Cache, sub string) string {
	t.Helper()
	w, err := c.BySubdomain(context.Background(), sub)
	if err != nil {
		t.Fatalf("BySubdomain(%q): %v", sub, err)
	}
	return w.Status
}

func cached(c *Cache, sub string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.bySub[sub]
	return ok
}

func TestCache_ServesHitsAndRemembersNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := cachePrimary(t)
	acme := mustCreate(t, db, New{Subdomain: "acme", Name: "Acme", CustomDomain: "acme.example"})
	beta := mustCreate(t, db, New{Subdomain: "beta", Name: "Beta", CustomDomain: "www.beta.example"})
	// Both forms of one domain, owned by different tenants: exact wins.
	gamma := mustCreate(t, db, New{Subdomain: "gamma", Name: "Gamma", CustomDomain: "gamma.example"})
	wwwGamma := mustCreate(t, db, New{Subdomain: "www-gamma", Name: "Gamma WWW", CustomDomain: "www.gamma.example"})
	delta := mustCreate(t, db, New{Subdomain: "delta", Name: "Delta"})
	// Written by hand in mixed case, as a writer bypassing this package might.
	if _, err := db.Exec(ctx, "UPDATE websites SET custom_domain = 'Delta.Example' WHERE id = $1", delta.ID); err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, db, time.Hour) // never started: only what is cached answers

	for host, want := range map[string]Website{
		"acme.example": acme, "www.acme.example": acme,
		"beta.example": beta, "www.beta.example": beta,
		"gamma.example": gamma, "www.gamma.example": wwwGamma,
		"delta.example": delta, "www.delta.example": delta,
		"acme.example.": acme, // a fully qualified Host header
	} {
		got, err := c.ByCustomDomain(ctx, host)
		if err != nil || got.ID != want.ID {
			t.Errorf("ByCustomDomain(%q) = %d, %v; want %d", host, got.ID, err, want.ID)
		}
	}
	for _, host := range []string{"nobody.example", "www.nobody.example", "acme.example.org", "example", "", "www."} {
		if _, err := c.ByCustomDomain(ctx, host); !errors.Is(err, ErrNotFound) {
			t.Errorf("ByCustomDomain(%q): %v, want ErrNotFound", host, err)
		}
	}

	if got, err := c.BySubdomain(ctx, "acme"); err != nil || got != acme {
		t.Fatalf("BySubdomain(acme) = %+v, %v; want %+v", got, err, acme)
	}
	for _, sub := range []string{"nobody", "", "x", "not_a_subdomain", "acme.example"} {
		if _, err := c.BySubdomain(ctx, sub); !errors.Is(err, ErrNotFound) {
			t.Errorf("BySubdomain(%q): %v, want ErrNotFound", sub, err)
		}
	}

	// Changes nobody announces to this cache stay unseen until the TTL or
	// an Invalidate: proof that the answers above are served from memory.
	if err := SetStatus(ctx, db, acme.ID, StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, db, New{Subdomain: "nobody", Name: "Now somebody", CustomDomain: "nobody.example"})
	if s := status(t, c, "acme"); s != StatusActive {
		t.Errorf("cached status %q, want active", s)
	}
	if w, err := c.ByCustomDomain(ctx, "www.acme.example"); err != nil || w.Status != StatusActive {
		t.Errorf("cached by domain: %+v, %v", w, err)
	}
	if _, err := c.BySubdomain(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cached not-found: %v", err)
	}
	if _, err := c.ByCustomDomain(ctx, "www.nobody.example"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cached not-found by domain: %v", err)
	}

	c.Invalidate()
	if s := status(t, c, "acme"); s != StatusReadOnly {
		t.Errorf("after Invalidate: status %q, want read_only", s)
	}
	if w, err := c.BySubdomain(ctx, "nobody"); err != nil || w.Name != "Now somebody" {
		t.Errorf("after Invalidate: BySubdomain(nobody) = %+v, %v", w, err)
	}
	if w, err := c.ByCustomDomain(ctx, "www.nobody.example"); err != nil || w.Subdomain != "nobody" {
		t.Errorf("after Invalidate: ByCustomDomain(www.nobody.example) = %+v, %v", w, err)
	}
}

func TestCache_DatabaseErrorsAreNotCached(t *testing.T) {
	t.Parallel()
	db := cachePrimary(t)
	mustCreate(t, db, New{Subdomain: "acme", Name: "Acme", CustomDomain: "acme.example"})
	c := newTestCache(t, db, time.Hour)

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.BySubdomain(gone, "acme"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("BySubdomain with a cancelled context: %v, want a database error", err)
	}
	if _, err := c.ByCustomDomain(gone, "acme.example"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("ByCustomDomain with a cancelled context: %v, want a database error", err)
	}
	if _, err := c.BySubdomain(context.Background(), "acme"); err != nil {
		t.Errorf("after a failed lookup: %v", err)
	}
	if _, err := c.ByCustomDomain(context.Background(), "acme.example"); err != nil {
		t.Errorf("after a failed lookup by domain: %v", err)
	}
}

// The TTL is 1 hour, so only the notification can explain a change being
// seen.
func TestCache_SeesChangesAtOnceThroughNotifications(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := cachePrimary(t)
	acme := mustCreate(t, db, New{Subdomain: "acme", Name: "Acme", CustomDomain: "acme.example"})
	c := newTestCache(t, db, time.Hour)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.Listening() {
		t.Fatal("Listening() = false after a successful Start")
	}
	// Changes come from another connection, as from another process.
	other, err := pgx.Connect(ctx, db.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)

	if s := status(t, c, "acme"); s != StatusActive {
		t.Fatalf("status %q", s)
	}
	if err := SetStatus(ctx, other, acme.ID, StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "status change seen", func() bool { return status(t, c, "acme") == StatusReadOnly })

	if w, err := c.ByCustomDomain(ctx, "www.acme.example"); err != nil || w.ShardName != "default" {
		t.Fatalf("ByCustomDomain = %+v, %v", w, err)
	}
	if err := SetShard(ctx, other, acme.ID, "shard_1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "shard change seen", func() bool {
		w, err := c.ByCustomDomain(ctx, "www.acme.example")
		return err == nil && w.ShardName == "shard_1"
	})

	if _, err := c.BySubdomain(ctx, "newco"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("BySubdomain(newco) before it exists: %v", err)
	}
	newco := mustCreate(t, other, New{Subdomain: "newco", Name: "NewCo"})
	eventually(t, time.Second, "new tenant seen", func() bool {
		w, err := c.BySubdomain(ctx, "newco")
		return err == nil && w.ID == newco.ID
	})
}

// A change announced while a miss is asking primary must not be overwritten
// by what that miss read before the change.
func TestCache_MissInFlightDuringAChangeIsNotStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := cachePrimary(t)
	acme := mustCreate(t, db, New{Subdomain: "acme", Name: "Acme"})

	t.Run("notification", func(t *testing.T) {
		c := newTestCache(t, db, time.Hour)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		c.afterFetch = func() {
			once.Do(func() {
				c.mu.RLock()
				gen := c.gen
				c.mu.RUnlock()
				if err := SetStatus(ctx, db, acme.ID, StatusMaintenance); err != nil {
					t.Error(err)
					return
				}
				eventually(t, 5*time.Second, "notification received", func() bool {
					c.mu.RLock()
					defer c.mu.RUnlock()
					return c.gen != gen
				})
			})
		}
		// The in-flight answer itself is from before the change; that is
		// the most any cache can promise.
		if s := status(t, c, "acme"); s != StatusActive {
			t.Fatalf("in-flight status %q, want active", s)
		}
		if cached(c, "acme") {
			t.Fatal("the answer read before the change was stored")
		}
		if s := status(t, c, "acme"); s != StatusMaintenance {
			t.Errorf("next lookup: status %q, want maintenance", s)
		}
	})

	t.Run("Invalidate", func(t *testing.T) {
		c := newTestCache(t, db, time.Hour)
		var once sync.Once
		c.afterFetch = func() {
			once.Do(func() {
				if err := SetStatus(ctx, db, acme.ID, StatusReadOnly); err != nil {
					t.Error(err)
				}
				c.Invalidate()
			})
		}
		if _, err := c.BySubdomain(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		if cached(c, "acme") {
			t.Fatal("the answer read before Invalidate was stored")
		}
		if s := status(t, c, "acme"); s != StatusReadOnly {
			t.Errorf("next lookup: status %q, want read_only", s)
		}
		if !cached(c, "acme") {
			t.Error("a lookup with no change meanwhile was not stored")
		}
	})
}

func listenerPID(t *testing.T, db *pgxpool.Pool) int32 {
	t.Helper()
	var pid int32
	err := db.QueryRow(context.Background(),
		"SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE application_name = $1",
		listenerAppName).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestCache_ReconnectsAndClearsAfterLosingTheListener(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := cachePrimary(t)
	acme := mustCreate(t, db, New{Subdomain: "acme", Name: "Acme"})
	c := newTestCache(t, db, time.Hour)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid := listenerPID(t, db)
	if pid == 0 {
		t.Fatal("no listen connection in pg_stat_activity")
	}
	if s := status(t, c, "acme"); s != StatusActive {
		t.Fatalf("status %q", s)
	}

	// Keep the listener out while the change is made, so it cannot be
	// heard: only the clear after reconnecting can reveal it. The pool's
	// open connection keeps working.
	cfg := db.Config().ConnConfig.Copy()
	cfg.Database = "postgres" // a database cannot shut itself off
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db.Config().ConnConfig.Database}.Sanitize()+" WITH ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "Listening() false after the backend is terminated", func() bool { return !c.Listening() })
	if s := status(t, c, "acme"); s != StatusActive || !cached(c, "acme") {
		t.Fatalf("while down: status %q, cached %v", s, cached(c, "acme"))
	}
	if err := SetStatus(ctx, db, acme.ID, StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a few failed reconnects
	if c.Listening() {
		t.Fatal("Listening() = true while the database refuses connections")
	}
	if s := status(t, c, "acme"); s != StatusActive {
		t.Fatalf("while down the cached entry should still answer (TTL 1h); status %q", s)
	}

	if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db.Config().ConnConfig.Database}.Sanitize()+" WITH ALLOW_CONNECTIONS true"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "Listening() true again", c.Listening)
	if s := status(t, c, "acme"); s != StatusReadOnly {
		t.Errorf("after reconnect: status %q, want read_only (cache cleared on reconnect)", s)
	}
	if p := listenerPID(t, db); p == 0 || p == pid {
		t.Errorf("listener backend after reconnect: pid %d (old %d)", p, pid)
	}
	// And it hears changes again.
	if err := SetStatus(ctx, db, acme.ID, StatusActive); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "change after reconnect seen", func() bool { return status(t, c, "acme") == StatusActive })
}

// A quiet listen connection is pinged now and then; the deadline that ends
// each wait must leave the connection usable.
func TestCache_KeepsListeningAcrossIdleChecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := cachePrimary(t)
	acme := mustCreate(t, db, New{Subdomain: "acme", Name: "Acme"})
	c := newTestCache(t, db, time.Hour)
	c.idleCheck = 20 * time.Millisecond
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid := listenerPID(t, db)
	for _, s := range []string{StatusReadOnly, StatusMaintenance, StatusActive} {
		status(t, c, "acme")
		time.Sleep(100 * time.Millisecond) // several idle checks
		if err := SetStatus(ctx, db, acme.ID, s); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Second, "change to "+s+" seen", func() bool { return status(t, c, "acme") == s })
	}
	if !c.Listening() || listenerPID(t, db) != pid {
		t.Errorf("the listen connection was replaced (pid %d, was %d) or is down", listenerPID(t, db), pid)
	}
}

func TestCache_EntriesExpireAfterTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := cachePrimary(t)
	acme := mustCreate(t, db, New{Subdomain: "acme", Name: "Acme"})
	const ttl = 200 * time.Millisecond
	c := newTestCache(t, db, ttl) // not started: nothing but the TTL

	loaded := time.Now()
	if s := status(t, c, "acme"); s != StatusActive {
		t.Fatalf("status %q", s)
	}
	if _, err := c.BySubdomain(ctx, "newco"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	lastLoad := time.Now() // no entry is younger than this
	if err := SetStatus(ctx, db, acme.ID, StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, db, New{Subdomain: "newco", Name: "NewCo"})
	if time.Since(loaded) < ttl/2 { // otherwise the machine is too slow to tell
		if s := status(t, c, "acme"); s != StatusActive {
			t.Errorf("within the TTL: status %q, want the cached active", s)
		}
		if _, err := c.BySubdomain(ctx, "newco"); !errors.Is(err, ErrNotFound) {
			t.Errorf("within the TTL: %v, want the cached ErrNotFound", err)
		}
	}
	time.Sleep(ttl - time.Since(lastLoad) + 10*time.Millisecond)
	if s := status(t, c, "acme"); s != StatusReadOnly {
		t.Errorf("after the TTL: status %q, want read_only", s)
	}
	if _, err := c.BySubdomain(ctx, "newco"); err != nil {
		t.Errorf("after the TTL: %v", err)
	}
}

func TestCache_StartFailsButKeepsTrying(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:"+strconv.Itoa(port)+"/none?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c := NewCache(pool, CacheOptions{Logger: slog.New(slog.DiscardHandler)})
	c.Close() // before Start: nothing to stop
	if err := c.Start(context.Background()); err == nil {
		t.Fatal("Start succeeded with no server")
	}
	if c.Listening() {
		t.Error("Listening() = true with no server")
	}
	if err := c.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
	if _, err := c.BySubdomain(context.Background(), "acme"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("lookup with no server: %v, want a database error", err)
	}
	closed := make(chan struct{})
	go func() { c.Close(); c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the retrying listener")
	}
}

// Lookups, misses and invalidations at once must keep the maps whole (run
// with -race) and never answer with another tenant.
func TestCache_ConcurrentLookupsAndInvalidations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := cachePrimary(t)
	subs := []string{"aa", "bb", "cc", "dd"}
	ids := map[string]int64{}
	for _, s := range subs {
		ids[s] = mustCreate(t, db, New{Subdomain: s, Name: s, CustomDomain: s + ".example"}).ID
	}
	c := newTestCache(t, db, time.Hour)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				c.Invalidate()
				time.Sleep(time.Millisecond)
			}
		}
	})
	var lookups sync.WaitGroup
	for g := range 8 {
		lookups.Go(func() {
			for i := range 300 {
				s := subs[(g+i)%len(subs)]
				w, err := c.BySubdomain(ctx, s)
				if err != nil || w.ID != ids[s] {
					t.Errorf("BySubdomain(%q) = %d, %v", s, w.ID, err)
					return
				}
				w, err = c.ByCustomDomain(ctx, "www."+s+".example")
				if err != nil || w.ID != ids[s] {
					t.Errorf("ByCustomDomain(www.%s.example) = %d, %v", s, w.ID, err)
					return
				}
				if _, err := c.BySubdomain(ctx, "zz"); !errors.Is(err, ErrNotFound) {
					t.Errorf("BySubdomain(zz): %v", err)
					return
				}
			}
		})
	}
	lookups.Wait()
	close(stop)
	wg.Wait()
}

// Not parallel: testing.AllocsPerRun refuses to run in a parallel test.
func TestCache_HitDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	db := cachePrimary(t)
	mustCreate(t, db, New{Subdomain: "acme", Name: "Acme", CustomDomain: "acme.example"})
	c := newTestCache(t, db, time.Hour)
	for _, lookup := range []func() error{
		func() error { _, err := c.BySubdomain(ctx, "acme"); return err },
		func() error { _, err := c.ByCustomDomain(ctx, "www.acme.example"); return err },
		func() error { _, err := c.BySubdomain(ctx, "nobody"); _ = err; return nil },
	} {
		if err := lookup(); err != nil { // the miss that fills the cache
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { lookup() }); n != 0 {
			t.Errorf("a cache hit allocates %v times", n)
		}
	}
}

func benchmarkHit(b *testing.B, lookup func(*Cache) (Website, error)) {
	db := cachePrimary(b)
	mustCreate(b, db, New{Subdomain: "acme", Name: "Acme", CustomDomain: "acme.example"})
	c := newTestCache(b, db, time.Hour)
	if _, err := lookup(c); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := lookup(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := lookup(c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkCache_BySubdomainHit(b *testing.B) {
	benchmarkHit(b, func(c *Cache) (Website, error) { return c.BySubdomain(context.Background(), "acme") })
}

func BenchmarkCache_ByCustomDomainHit(b *testing.B) {
	benchmarkHit(b, func(c *Cache) (Website, error) { return c.ByCustomDomain(context.Background(), "www.acme.example") })
}

// Forget drops one tenant's answers, found by subdomain or by custom domain,
// keeps the others', and keeps a lookup of that tenant already asking
// primary from storing what it read before.
func TestCache_ForgetDropsOneTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := cachePrimary(t)
	acme := mustCreate(t, db, New{Subdomain: "acme", Name: "Acme", CustomDomain: "acme.example"})
	mustCreate(t, db, New{Subdomain: "beta", Name: "Beta"})
	// No listener: only Forget (or the TTL) can make the cache see a change.
	c := NewCache(db, CacheOptions{TTL: time.Hour, NoListen: true, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	shardOf := func(w Website, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return w.ShardName
	}
	if s := shardOf(c.BySubdomain(ctx, "acme")); s != "default" {
		t.Fatalf("acme on %q", s)
	}
	if s := shardOf(c.ByCustomDomain(ctx, "www.acme.example")); s != "default" {
		t.Fatalf("www.acme.example on %q", s)
	}
	status(t, c, "beta")
	if _, err := c.BySubdomain(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("nobody: %v", err)
	}

	if err := SetShard(ctx, db, acme.ID, "shard_1"); err != nil {
		t.Fatal(err)
	}
	if s := shardOf(c.BySubdomain(ctx, "acme")); s != "default" {
		t.Fatalf("before Forget the cache should still say default (it does not listen), says %q", s)
	}
	c.Forget(acme.ID)
	if cached(c, "acme") {
		t.Error("acme's subdomain entry survived Forget")
	}
	if !cached(c, "beta") || !cached(c, "nobody") {
		t.Error("Forget dropped other entries")
	}
	if s := shardOf(c.BySubdomain(ctx, "acme")); s != "shard_1" {
		t.Errorf("after Forget, acme on %q, want shard_1", s)
	}
	if s := shardOf(c.ByCustomDomain(ctx, "www.acme.example")); s != "shard_1" {
		t.Errorf("after Forget, www.acme.example on %q, want shard_1", s)
	}

	// A lookup in flight when Forget runs does not store its older answer.
	var once sync.Once
	c.afterFetch = func() {
		once.Do(func() {
			if err := SetShard(ctx, db, acme.ID, "shard_2"); err != nil {
				t.Error(err)
			}
			c.Forget(acme.ID)
		})
	}
	c.Forget(acme.ID)
	if s := shardOf(c.BySubdomain(ctx, "acme")); s != "shard_1" {
		t.Fatalf("in-flight lookup read %q, want shard_1 (read before the change)", s)
	}
	if cached(c, "acme") {
		t.Fatal("the answer read before Forget was stored")
	}
	if s := shardOf(c.BySubdomain(ctx, "acme")); s != "shard_2" {
		t.Errorf("next lookup: %q, want shard_2", s)
	}
}
