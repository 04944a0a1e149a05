package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// listenChannel is the channel the websites table's trigger announces every
// change on, with the website id as payload.
const listenChannel = "pwb_websites"

// listenerAppName is the application_name of the LISTEN connection, so
// operators can tell it apart in pg_stat_activity.
const listenerAppName = "pwb-registry-listener"

const (
	listenMinBackoff  = 100 * time.Millisecond
	listenMaxBackoff  = 5 * time.Second
	listenDialTimeout = 10 * time.Second
	listenPingTimeout = 5 * time.Second
	// listenIdleCheck is how long the listen connection may stay silent
	// before it is pinged: a connection lost without a FIN (a dead host, a
	// dropped NAT entry) would otherwise look up for ever, keeping /readyz
	// green while no change is heard.
	listenIdleCheck = 30 * time.Second
	// maxCacheEntries bounds each lookup map. The Host header is chosen by
	// the client, so without a bound, not-found entries for made-up hosts
	// would grow without end.
	maxCacheEntries = 100_000
)

// CacheOptions configures a Cache.
type CacheOptions struct {
	// TTL is the longest an entry, found or not found, is trusted; it bounds
	// staleness while the listen connection is down. Default 5s.
	TTL time.Duration
	// Logger receives listener errors and reconnects. Default slog.Default().
	Logger *slog.Logger
	// NoListen turns the change notifications off, for a primary reached
	// through a transaction pooler, where LISTEN is useless: only the TTL
	// bounds staleness, which moves allow for (their clean-up waits a TTL).
	NoListen bool
}

// Cache serves tenant lookups for the request hot path of an app process. It
// keeps what primary answered, found or not found, for at most the TTL, and
// drops everything as soon as primary announces a change of any website
// (see Start), so a tenant's shard or status change is obeyed at once.
//
// The listen connection must be a session connection: directly to
// PostgreSQL, or through a PgBouncer pool in session mode. In transaction
// mode LISTEN is silently useless and only the TTL bounds staleness.
type Cache struct {
	pool     *pgxpool.Pool
	ttl      time.Duration
	log      *slog.Logger
	noListen bool

	// mu guards the maps and gen. Two maps, one per lookup kind, so that a
	// hit is one map read with the caller's own string: no key to build.
	mu       sync.RWMutex
	bySub    map[string]cacheEntry
	byDomain map[string]cacheEntry
	// gen counts invalidations. A miss stores its result only if gen is
	// unchanged since its query started; otherwise a change announced while
	// the query ran could be overwritten by the value from before it.
	gen uint64

	listening atomic.Bool
	// hits and misses count lookups answered from memory and from primary.
	hits, misses atomic.Uint64

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}

	// Set by tests only: afterFetch runs between a miss's query and the
	// storing of its result; idleCheck replaces listenIdleCheck.
	afterFetch func()
	idleCheck  time.Duration
}

// cacheEntry is one answer of primary: a website, or err wrapping
// ErrNotFound. fetched carries a monotonic reading, so a wall-clock jump
// neither expires everything nor keeps entries for ever.
type cacheEntry struct {
	w       Website
	err     error
	fetched time.Time
}

// NewCache returns a cache over primary's pool. It serves lookups at once;
// call Start to hear of changes before the TTL runs out.
func NewCache(pool *pgxpool.Pool, opts CacheOptions) *Cache {
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Cache{
		pool:      pool,
		ttl:       opts.TTL,
		log:       opts.Logger,
		bySub:     map[string]cacheEntry{},
		byDomain:  map[string]cacheEntry{},
		idleCheck: listenIdleCheck,
		noListen:  opts.NoListen,
	}
}

// BySubdomain returns the website with subdomain sub, which the caller has
// already lower-cased, or an error wrapping ErrNotFound. Other errors come
// from the database and are never cached.
func (c *Cache) BySubdomain(ctx context.Context, sub string) (Website, error) {
	return c.lookup(ctx, false, sub)
}

// ByCustomDomain returns the website whose custom domain is host (lower-case,
// without port), also trying it with a leading "www." added or removed, or an
// error wrapping ErrNotFound. Other errors come from the database and are
// never cached.
func (c *Cache) ByCustomDomain(ctx context.Context, host string) (Website, error) {
	return c.lookup(ctx, true, host)
}

// lookup answers from the map of its kind while the entry is fresh, and asks
// primary otherwise.
func (c *Cache) lookup(ctx context.Context, byDomain bool, key string) (Website, error) {
	c.mu.RLock()
	m := c.bySub
	if byDomain {
		m = c.byDomain
	}
	e, ok := m[key]
	c.mu.RUnlock()
	if ok && time.Since(e.fetched) < c.ttl {
		c.hits.Add(1)
		return e.w, e.err
	}
	c.misses.Add(1)
	return c.load(ctx, byDomain, key)
}

// Stats returns how many lookups were answered from memory and how many
// asked primary, since the cache was made.
func (c *Cache) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

// load asks primary and caches the answer unless the cache was invalidated
// meanwhile. Concurrent misses of one key may each ask; the last to finish
// wins, and both answers are as fresh as the generation they were read in.
func (c *Cache) load(ctx context.Context, byDomain bool, key string) (Website, error) {
	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	// Taken before the query, so the TTL also covers the time it took.
	fetched := time.Now()

	var w Website
	var err error
	if byDomain {
		w, err = FindByCustomDomain(ctx, c.pool, key)
	} else {
		w, err = FindBySubdomain(ctx, c.pool, key)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Website{}, err
	}
	if c.afterFetch != nil {
		c.afterFetch()
	}

	c.mu.Lock()
	if c.gen == gen {
		m := &c.bySub
		if byDomain {
			m = &c.byDomain
		}
		c.storeLocked(m, key, cacheEntry{w: w, err: err, fetched: fetched})
	}
	c.mu.Unlock()
	return w, err
}

func (c *Cache) storeLocked(m *map[string]cacheEntry, key string, e cacheEntry) {
	if _, ok := (*m)[key]; !ok && len(*m) >= maxCacheEntries {
		now := time.Now()
		for k, old := range *m {
			if now.Sub(old.fetched) >= c.ttl {
				delete(*m, k)
			}
		}
		if len(*m) >= maxCacheEntries {
			*m = map[string]cacheEntry{}
		}
	}
	(*m)[key] = e
}

// Invalidate drops every cached answer, and keeps lookups already asking
// primary from storing what they read before now.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.gen++
	// New maps rather than clear(), so memory grown by a burst is given back.
	c.bySub = map[string]cacheEntry{}
	c.byDomain = map[string]cacheEntry{}
	c.mu.Unlock()
}

// Forget drops every cached answer about website id, so the next lookup of
// it asks primary, and keeps lookups already asking primary from storing
// what they read before now. Other tenants' answers stay. A caller that
// learned from primary, before the change was announced, that a tenant moved
// calls it so the following requests go to the new shard even when the
// notification is late or the cache does not listen.
func (c *Cache) Forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A lookup that started before now may have read the tenant as it was;
	// it stores nothing. Others' lookups lose only that one store.
	c.gen++
	for _, m := range []map[string]cacheEntry{c.bySub, c.byDomain} {
		for k, e := range m {
			if e.err == nil && e.w.ID == id {
				delete(m, k)
			}
		}
	}
}

// Listening reports whether the LISTEN connection is up, for readiness; a
// cache told not to listen has nothing to wait for.
func (c *Cache) Listening() bool { return c.noListen || c.listening.Load() }

// Start opens a dedicated connection to primary (not a pool slot held for
// ever), listens on the pwb_websites channel and invalidates the cache on every notification,
// until ctx is done or Close is called. It returns once the first LISTEN has
// succeeded or failed; on failure it returns the error and keeps retrying in
// the background, with backoff from 100ms doubling to 5s. The cache is
// cleared whenever the connection is lost and again after every (re)connect,
// since changes may have been missed meanwhile. A Cache starts at most once.
func (c *Cache) Start(ctx context.Context) error {
	if c.noListen {
		return nil
	}
	c.runMu.Lock()
	if c.done != nil {
		c.runMu.Unlock()
		return errors.New("registry cache: already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.cancel, c.done = cancel, done
	c.runMu.Unlock()

	first := make(chan error, 1)
	go c.listen(ctx, done, first)
	return <-first
}

// Close stops the listener, if started, and waits for it to finish.
func (c *Cache) Close() {
	c.runMu.Lock()
	cancel, done := c.cancel, c.done
	c.runMu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (c *Cache) listen(ctx context.Context, done chan<- struct{}, first chan<- error) {
	defer close(done)
	started := func(err error) {
		if first != nil {
			first <- err
			first = nil
		}
	}
	backoff := listenMinBackoff
	for {
		conn, err := c.connect(ctx)
		if err != nil {
			started(err)
		} else {
			backoff = listenMinBackoff
			// After LISTEN, so a change is either announced or was made
			// before this clear.
			c.Invalidate()
			c.listening.Store(true)
			c.log.Info("registry cache: listening for website changes", "channel", listenChannel)
			started(nil)

			err = c.receive(ctx, conn)
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Close(closeCtx)
			cancel()
			// Changes made from now until the next LISTEN go unheard, so
			// nothing read before is trusted beyond this point.
			c.Invalidate()
			c.listening.Store(false)
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Error("registry cache: listen connection down; changes are picked up within the TTL until it is back",
			"err", err, "retry_in", backoff, "ttl", c.ttl)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, listenMaxBackoff)
	}
}

func (c *Cache) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := c.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = listenerAppName
	ctx, cancel := context.WithTimeout(ctx, listenDialTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("registry cache: connecting to listen for changes: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+listenChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("registry cache: LISTEN %s: %w", listenChannel, err)
	}
	return conn, nil
}

// receive invalidates the cache on every notification until the connection
// fails or ctx is done. Every notification drops everything: changes are
// rare, and a change of custom domain or a new subdomain also has to drop
// not-found entries that no website id points at.
func (c *Cache) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, c.idleCheck)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		if n != nil {
			c.Invalidate()
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
			return fmt.Errorf("registry cache: waiting for notifications: %w", err)
		}
		// Silent for a while: make sure the server is still there. A
		// notification that arrives meanwhile is kept by pgx for the next
		// wait.
		pingCtx, cancel := context.WithTimeout(ctx, listenPingTimeout)
		err = conn.Ping(pingCtx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("registry cache: checking the listen connection: %w", err)
		}
	}
}
