package shard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/fault"
)

// Default is the logical name of the primary shard.
const Default = "default"

// ErrNotConfigured means a shard name is not in the configuration.
var ErrNotConfigured = fault.New(fault.NotFound, "shard is not configured")

// ErrClosed means the set was closed: the process is stopping, and no new
// connection is made.
var ErrClosed = fault.New(fault.Unavailable, "the shard connections are closed")

// DefaultConnectTimeout bounds connecting to a shard, so a shard that is down
// is reported quickly instead of hanging the caller.
const DefaultConnectTimeout = 5 * time.Second

// DefaultIdleTimeout is how long a connection may sit unused in its pool
// before it is closed, when the shard's idle_timeout is not set (Rails'
// default). A shard nobody uses then holds no connection.
const DefaultIdleTimeout = 5 * time.Minute

// DefaultCheckoutTimeout bounds the wait for a connection when the shard's
// checkout_timeout is not set (Rails' default).
const DefaultCheckoutTimeout = 5 * time.Second

// pingAfterIdle is how long a pooled connection may sit unused before it is
// pinged when taken out (pgx's own default, kept explicit): a connection
// used a moment ago is trusted, one idle longer may have lost its server or
// the network path to it.
const pingAfterIdle = time.Second

// pingTimeout bounds that liveness ping. Without it the ping runs on the
// request's own time, and a connection the network has silently dropped
// would use all of it; with it, a dead connection costs this much before
// the pool tries the next or dials a new one. A ping is one round trip.
const pingTimeout = 250 * time.Millisecond

// keepAlive is the TCP keepalive of every connection to a shard: a
// connection whose peer vanished without a FIN (a host gone, a NAT entry
// dropped) is found dead after about Idle + Count*Interval (30 s) of
// silence rather than Go's default of 2.5 minutes, whoever waits on it. A
// stopped server process still has a kernel that answers the probes: that
// case is the request deadlines' and the ping timeout's to handle.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}

// Set is the process's one pool per shard, opened on first use, and the
// process's connection budget across them (max_connections_total).
type Set struct {
	cfg              *config.Config
	connectTimeout   time.Duration
	statementTimeout time.Duration // 0: the server's own setting
	budget           *budget       // nil without max_connections_total

	mu     sync.Mutex
	closed bool
	pools  map[string]*pgxpool.Pool
	// lastUse is when each pool was last used (unix ns), with a budget only.
	lastUse map[string]*atomic.Int64
}

// Option changes how a Set opens its pools.
type Option func(*Set)

// WithConnectTimeout bounds connecting to a shard whose configuration does not
// set connect_timeout itself. A web server sets it low so that a tenant whose
// shard is down gets its 503 page quickly.
func WithConnectTimeout(d time.Duration) Option { return func(s *Set) { s.connectTimeout = d } }

// WithStatementTimeout starts every session with statement_timeout d, so the
// server itself ends a statement that runs past it even when its client
// has stopped watching (a web server's requests have deadlines of their
// own; this is the backstop). Work that may take longer, such as a move's
// copy, lifts it for its own transaction with SET LOCAL. Entries reached
// through a transaction pooler do not get it (see Pool).
func WithStatementTimeout(d time.Duration) Option { return func(s *Set) { s.statementTimeout = d } }

// NewSet returns a Set for cfg. No connection is made until a pool is used.
func NewSet(cfg *config.Config, opts ...Option) *Set {
	s := &Set{cfg: cfg, connectTimeout: DefaultConnectTimeout, pools: map[string]*pgxpool.Pool{}, lastUse: map[string]*atomic.Int64{}}
	if cfg.MaxConnectionsTotal > 0 {
		s.budget = newBudget(cfg.MaxConnectionsTotal, s.stealIdle)
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Budget reports the use of the connection budget; Max is 0 without one.
func (s *Set) Budget() BudgetStats { return s.budget.stats() }

// CheckoutTimeout is how long a request may wait for a connection to shard
// name.
func (s *Set) CheckoutTimeout(name string) time.Duration {
	if sh, ok := s.cfg.Shard(name); ok && sh.CheckoutTimeout > 0 {
		return sh.CheckoutTimeout
	}
	return DefaultCheckoutTimeout
}

// Acquire takes a connection of pool, the pool of shard name, waiting at
// most timeout: a wait that runs out is ErrBusy, which sites answer with
// 503, never a hang.
func Acquire(ctx context.Context, pool *pgxpool.Pool, name string, timeout time.Duration) (*pgxpool.Conn, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := pool.Acquire(actx)
	if err != nil && ctx.Err() == nil && actx.Err() != nil {
		return nil, fmt.Errorf("shard %q: %w within %s", name, ErrBusy, timeout)
	}
	return c, err
}

// Names lists the configured shards, default first.
func (s *Set) Names() []string { return s.cfg.ShardNames() }

// Shard returns a shard's configuration.
func (s *Set) Shard(name string) (config.Shard, error) {
	sh, ok := s.cfg.Shard(name)
	if !ok {
		return config.Shard{}, fmt.Errorf("shard %q: %w", name, ErrNotConfigured)
	}
	return sh, nil
}

// Pool returns the shard's pool, opening it on first use. Opening does not
// connect; the first query does.
func (s *Set) Pool(name string) (*pgxpool.Pool, error) {
	sh, err := s.Shard(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pools[name]; ok {
		return p, nil
	}
	if s.closed {
		return nil, fmt.Errorf("shard %q: %w", name, ErrClosed)
	}
	pc, err := PoolConfig(sh)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(sh.ConnString(), "connect_timeout") {
		pc.ConnConfig.ConnectTimeout = s.connectTimeout
	}
	// PgBouncer refuses a start-up parameter it does not know with an
	// error, and statement_timeout is not one it knows, so an entry behind a
	// transaction pooler (advisory_locks or prepared_statements false) goes
	// without; its pooler or server settings must bound statements.
	pooled := sh.ThroughPooler() || sh.PreparedStatements != nil && !*sh.PreparedStatements
	if _, given := pc.ConnConfig.RuntimeParams["statement_timeout"]; s.statementTimeout > 0 && !pooled && !given {
		pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(s.statementTimeout.Milliseconds(), 10)
	}
	if s.budget != nil {
		// Whatever copies this configuration (a listener, a mover's claim)
		// dials through the budget too.
		dial := s.budget.dialer(name, pc.ConnConfig.DialFunc)
		pc.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			s.touch(ctx, name)
			return dial(ctx, network, addr)
		}
		pc.MaxConns = min(pc.MaxConns, int32(s.budget.max))
		pc.PrepareConn = func(ctx context.Context, _ *pgx.Conn) (bool, error) {
			s.touch(ctx, name)
			return true, nil
		}
		last := &atomic.Int64{}
		last.Store(time.Now().UnixNano())
		s.lastUse[name] = last
	}
	p, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("shard %q: opening pool: %w", name, err)
	}
	s.pools[name] = p
	return p, nil
}

// Primary returns the pool of the default shard, which also holds the registry.
func (s *Set) Primary() (*pgxpool.Pool, error) { return s.Pool(Default) }

// PoolConfig turns a shard's configuration into a pgx pool configuration.
func PoolConfig(sh config.Shard) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(sh.ConnString())
	if err != nil {
		return nil, fmt.Errorf("shard %q: %w", sh.Name, err)
	}
	if sh.Pool > 0 {
		pc.MaxConns = int32(sh.Pool)
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	pc.MaxConnIdleTime = DefaultIdleTimeout
	if sh.IdleTimeout > 0 {
		pc.MaxConnIdleTime = sh.IdleTimeout
	}
	// Idle connections are closed when the pool checks its connections.
	pc.HealthCheckPeriod = min(pc.HealthCheckPeriod, max(pc.MaxConnIdleTime/2, 100*time.Millisecond))
	if sh.PreparedStatements != nil && !*sh.PreparedStatements {
		// Unnamed statements only: a transaction pooler may run each
		// transaction on another server connection, where a named
		// statement prepared earlier does not exist.
		pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	}
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "pwb"
	}
	// The connect timeout bounds the dial through its context.
	dialer := &net.Dialer{KeepAliveConfig: keepAlive}
	pc.ConnConfig.DialFunc = dialer.DialContext
	pc.PingTimeout = pingTimeout
	pc.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool { return p.IdleDuration > pingAfterIdle }
	pc.BeforeClose = func(c *pgx.Conn) {
		// Already closed means pgx gave up on it (a failed ping, a query
		// past its deadline). pgx still says goodbye on the socket in the
		// background, waiting up to 15 s for a peer that may be gone, and
		// the pool keeps the connection's place taken until then: closing
		// the socket now ends that wait, so a new connection can take the
		// place sooner.
		if c.IsClosed() {
			_ = c.PgConn().Conn().Close()
		}
	}
	return pc, nil
}

// Ping checks that the shard answers, and how fast.
func (s *Set) Ping(ctx context.Context, name string) (time.Duration, error) {
	p, err := s.Pool(name)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := p.Ping(ctx); err != nil {
		return 0, Unwrap(err)
	}
	return time.Since(start), nil
}

// Stats returns the statistics of every pool opened so far, by shard name.
func (s *Set) Stats() map[string]*pgxpool.Stat {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*pgxpool.Stat, len(s.pools))
	for name, p := range s.pools {
		out[name] = p.Stat()
	}
	return out
}

// Close closes every pool opened so far.
func (s *Set) Close() {
	// The pools are closed outside the lock: closing one waits for its
	// dials in flight, and a dial waiting for the budget takes the lock to
	// look for an idle connection to close.
	s.mu.Lock()
	s.closed = true
	pools := s.pools
	s.pools = map[string]*pgxpool.Pool{}
	s.mu.Unlock()
	if s.budget != nil {
		s.budget.close() // dials waiting for a slot give up at once
	}
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Go(p.Close)
	}
	wg.Wait()
}

// CreateDatabase creates the shard's database on its server if it does not
// exist yet, and reports whether it created it. It connects to the server's
// `postgres` maintenance database with the shard's credentials.
func CreateDatabase(ctx context.Context, sh config.Shard) (bool, error) {
	cc, err := pgx.ParseConfig(sh.WithDatabase("postgres").ConnString())
	if err != nil {
		return false, fmt.Errorf("shard %q: %w", sh.Name, err)
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = DefaultConnectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return false, fmt.Errorf("connecting to %s: %w", sh.Addr(), Unwrap(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", sh.Database).Scan(&exists); err != nil {
		return false, fmt.Errorf("looking for database %s on %s: %w", sh.Database, sh.Addr(), err)
	}
	if exists {
		return false, nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{sh.Database}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile by someone else
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("creating database %s on %s: %w", sh.Database, sh.Addr(), err)
	}
	return true, nil
}

// Describe says why a visit to a shard failed, for a person: "no answer
// within 2s" when the visit's deadline passed (pgx's own words for that
// name its internals; the read that runs out may fail a moment before ctx
// says it has ended), else the cause on one line (Unwrap). A visit
// cancelled (Ctrl-C) keeps its own error.
func Describe(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		ctx.Err() == nil && pgconn.Timeout(err) {
		return fmt.Errorf("no answer within %s", timeout)
	}
	return Unwrap(err)
}

// Unwrap shortens pgx's connect errors, which repeat the connection string
// and may span lines, to their cause on one line, so operators get a readable
// reason ("connect: connection refused").
func Unwrap(err error) error {
	var ce *pgconn.ConnectError
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr
	}
	cause := ce.Unwrap()
	if cause == nil {
		cause = ce
	}
	return errors.New(strings.Join(strings.Fields(cause.Error()), " "))
}
