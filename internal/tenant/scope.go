package tenant

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/fault"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// ErrShardMissing means the registry points a tenant at a shard the
// configuration does not have. Such a tenant is unavailable, never served from
// elsewhere.
var ErrShardMissing = fault.New(fault.Unavailable, "tenant's shard is not configured")

// ErrWritesPaused means the registry no longer lets this scope write: the
// tenant is read_only or in maintenance, or has moved to another shard since
// the scope was resolved. Sites answer it with 503 and Retry-After.
var ErrWritesPaused = fault.New(fault.Unavailable, "tenant's writes are paused")

// ErrMoved is the one case of ErrWritesPaused that a caller can do something
// about at once: the tenant is still active, but the registry now puts it on
// another shard than the scope's. A scope resolved afresh reaches the new
// shard, and the write can be made there (see Write). errors.Is(err,
// ErrWritesPaused) holds for it too, so callers that do not follow moves
// still see writes paused. The error itself is a *MovedError, which names the
// new shard.
var ErrMoved = fmt.Errorf("tenant moved to another shard: %w", ErrWritesPaused)

// MovedError is the error of a write refused because its tenant moved: the
// registry, read under the write fence, names shard To while the scope was on
// From. It matches ErrMoved and ErrWritesPaused with errors.Is.
type MovedError struct {
	WebsiteID int64
	From, To  string
}

func (e *MovedError) Error() string {
	return fmt.Sprintf("tenant %d moved from shard %s to shard %s", e.WebsiteID, e.From, e.To)
}

// Unwrap makes errors.Is(err, ErrMoved) and errors.Is(err, ErrWritesPaused)
// true.
func (e *MovedError) Unwrap() error { return ErrMoved }

// Scope is one tenant's access to its own shard.
type Scope struct {
	WebsiteID int64
	Shard     string
	pool      *pgxpool.Pool
	registry  *pgxpool.Pool // primary, for the write-time registry check
	// checkout bounds the wait for a connection: a shard whose pool, or the
	// process's connection budget, is exhausted answers shard.ErrBusy.
	checkout time.Duration
}

// Resolve builds the scope of a registered website from its shard name.
func Resolve(set *shard.Set, w registry.Website) (Scope, error) {
	p, err := set.Pool(w.ShardName)
	if errors.Is(err, shard.ErrNotConfigured) {
		return Scope{}, fmt.Errorf("tenant %d (%s) on shard %q: %w", w.ID, w.Subdomain, w.ShardName, ErrShardMissing)
	}
	if err != nil {
		return Scope{}, err
	}
	primary, err := set.Primary()
	if err != nil {
		return Scope{}, err
	}
	return Scope{WebsiteID: w.ID, Shard: w.ShardName, pool: p, registry: primary, checkout: set.CheckoutTimeout(w.ShardName)}, nil
}

// acquire takes a connection of the tenant's shard within the checkout
// timeout.
func (s Scope) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	checkout := s.checkout
	if checkout <= 0 {
		checkout = shard.DefaultCheckoutTimeout
	}
	return shard.Acquire(ctx, s.pool, s.Shard, checkout)
}

// Query runs a read on the tenant's shard. The SQL must filter by website_id;
// pass s.WebsiteID as one of its arguments.
func (s Scope) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		c.Release()
		return nil, err
	}
	return &connRows{Rows: rows, release: sync.OnceFunc(c.Release)}, nil
}

// QueryRow is Query for one row.
func (s Scope) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := s.Query(ctx, sql, args...)
	return connRow{rows: rows, err: err}
}

// connRows gives its connection back to the pool once the rows are read to
// the end or closed, as the pool's own rows do.
type connRows struct {
	pgx.Rows
	release func()
}

func (r *connRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.release()
	return false
}

func (r *connRows) Close() {
	r.Rows.Close()
	r.release()
}

// connRow is a pgx.Row over connRows.
type connRow struct {
	rows pgx.Rows
	err  error
}

func (r connRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// Tx is a tenant write transaction that holds the tenant's write fence: a
// dbq.Querier, named for what it holds.
type Tx = dbq.Querier

// Write runs fn in a transaction on the tenant's shard after taking the
// shared, transaction-level write fence for the website and then checking the
// registry on primary: the tenant must still be active and still on this
// shard, or Write returns ErrWritesPaused and fn never runs.
//
// The order is what makes a freeze safe against stale caches. A mover first
// commits read_only in the registry, then takes the fence exclusively. A write
// that took the shared fence earlier is waited out; a write that takes it
// later reads the registry after the freeze committed and stops.
//
// A move that keeps the tenant active (an online move) takes the fence
// exclusively only for its cut-over: it waits until the new shard has every
// change, points the registry there and lets go. A write that waited on the
// fence meanwhile, or that came through a scope resolved before the switch,
// finds the tenant active on another shard and gets a *MovedError (ErrMoved).
// Its transaction is rolled back before fn ran, so nothing was written: the
// caller may resolve the tenant again from primary and make the same write
// once more on the new shard. The site does so once (web's tenantWrite).
func (s Scope) Write(ctx context.Context, fn func(Tx) error) error {
	c, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", s.WebsiteID); err != nil {
			return fmt.Errorf("taking write fence of tenant %d: %w", s.WebsiteID, err)
		}
		// On primary the check runs in the write's own transaction: a second
		// connection from the same pool could wait forever once every
		// connection is held by a write waiting for one.
		var reg Tx = s.registry
		if s.registry == s.pool {
			reg = tx
		}
		if err := s.checkWritable(ctx, reg); err != nil {
			return err
		}
		return fn(tx)
	})
}

func (s Scope) checkWritable(ctx context.Context, reg Tx) error {
	var status, shardName string
	err := reg.QueryRow(ctx, "SELECT status, shard_name FROM websites WHERE id = $1", s.WebsiteID).Scan(&status, &shardName)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("tenant %d is no longer registered: %w", s.WebsiteID, ErrWritesPaused)
	case err != nil:
		return fmt.Errorf("checking registry before a write of tenant %d: %w", s.WebsiteID, err)
	case status != registry.StatusActive:
		return fmt.Errorf("tenant %d is %s: %w", s.WebsiteID, status, ErrWritesPaused)
	case shardName != s.Shard:
		return &MovedError{WebsiteID: s.WebsiteID, From: s.Shard, To: shardName}
	}
	return nil
}

// Freeze takes tenant websiteID's write fence exclusively in tx, on the
// tenant's shard. It returns once every write in flight has finished; no
// write starts until tx ends. Set the tenant read_only in the registry first.
func Freeze(ctx context.Context, tx pgx.Tx, websiteID int64) error {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", websiteID); err != nil {
		return fmt.Errorf("freezing writes of tenant %d: %w", websiteID, err)
	}
	return nil
}

// HasRows reports whether any tenant table on q holds rows of website id.
func HasRows(ctx context.Context, q dbq.Reader, websiteID int64) (bool, error) {
	for _, t := range Tables {
		var found bool
		sql := "SELECT EXISTS (SELECT 1 FROM " + pgx.Identifier{t}.Sanitize() + " WHERE website_id = $1)"
		if err := q.QueryRow(ctx, sql, websiteID).Scan(&found); err != nil {
			return false, fmt.Errorf("looking for rows of tenant %d in %s: %w", websiteID, t, err)
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}
