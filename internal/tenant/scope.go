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

// Scope is one tenant's access to its own shard.
type Scope struct {
	WebsiteID int64
	Shard     string
	pool      *pgxpool.Pool
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
	return Scope{WebsiteID: w.ID, Shard: w.ShardName, pool: p}, nil
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
// shared, transaction-level write fence for the website. A mover that takes
// the fence exclusively therefore waits out every write in flight, and no new
// write starts until it lets go.
func (s Scope) Write(ctx context.Context, fn func(Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", s.WebsiteID); err != nil {
			return fmt.Errorf("taking write fence of tenant %d: %w", s.WebsiteID, err)
		}
		return fn(tx)
	})
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
