package tenant

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// ErrShardMissing means the registry points a tenant at a shard the
// configuration does not have. Such a tenant is unavailable, never served from
// elsewhere.
var ErrShardMissing = errors.New("tenant's shard is not configured")

// ErrWritesPaused means the registry no longer lets this scope write: the
// tenant is read_only or in maintenance, or has moved to another shard since
// the scope was resolved. Sites answer it with 503 and Retry-After.
var ErrWritesPaused = errors.New("tenant's writes are paused")

// Scope is one tenant's access to its own shard.
type Scope struct {
	WebsiteID int64
	Shard     string
	pool      *pgxpool.Pool
	registry  *pgxpool.Pool // primary, for the write-time registry check
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
	return Scope{WebsiteID: w.ID, Shard: w.ShardName, pool: p, registry: primary}, nil
}

// Query runs a read on the tenant's shard. The SQL must filter by website_id;
// pass s.WebsiteID as one of its arguments.
func (s Scope) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return s.pool.Query(ctx, sql, args...)
}

// QueryRow is Query for one row.
func (s Scope) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return s.pool.QueryRow(ctx, sql, args...)
}

// Tx is a tenant write transaction that holds the tenant's write fence.
type Tx interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

// Write runs fn in a transaction on the tenant's shard after taking the
// shared, transaction-level write fence for the website and then checking the
// registry on primary: the tenant must still be active and still on this
// shard, or Write returns ErrWritesPaused and fn never runs.
//
// The order is what makes a freeze safe against stale caches. A mover first
// commits read_only in the registry, then takes the fence exclusively. A write
// that took the shared fence earlier is waited out; a write that takes it
// later reads the registry after the freeze committed and stops.
func (s Scope) Write(ctx context.Context, fn func(Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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
		return fmt.Errorf("tenant %d moved from %s to %s: %w", s.WebsiteID, s.Shard, shardName, ErrWritesPaused)
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
func HasRows(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, websiteID int64) (bool, error) {
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
