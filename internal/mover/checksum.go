package mover

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Sum is a table's row count and content checksum for one tenant on one
// shard. Two shards hold the same rows when their sums are equal.
type Sum struct {
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum"`
}

func (s Sum) String() string { return fmt.Sprintf("%d rows, checksum %s", s.Rows, s.Checksum) }

// sumTable computes a tenant's Sum of one table: the sum, as an exact
// numeric, of the first 64 bits of each row's md5. Addition makes it
// independent of row order, so both sides can be read as they lie; md5 of the
// row's text form covers every column, bytea included. The session's output
// settings are pinned so both shards print values the same way.
func sumTable(ctx context.Context, pool *pgxpool.Pool, table string, cols []string, websiteID int64, snapshot string) (Sum, error) {
	var s Sum
	err := func() error {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer c.Release()
		// A big tenant's table takes longer than a web request may, so the
		// statement timeout is lifted; with snapshot, the sum is as of it.
		tx, err := beginSource(ctx, c, snapshot)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if _, err := tx.Exec(ctx, `SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD';
			SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex'`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*), COALESCE(sum(('x' || left(md5(ROW(`+columnList(cols)+`)::text), 16))::bit(64)::bigint::numeric), 0)::text
			FROM `+ident(table)+` WHERE website_id = $1`, websiteID).Scan(&s.Rows, &s.Checksum)
	}()
	if err != nil {
		return Sum{}, fmt.Errorf("checksumming %s: %w", table, err)
	}
	return s, nil
}

// sumTables computes the Sum of every table, in order, as of snapshot if it
// is set.
func sumTables(ctx context.Context, pool *pgxpool.Pool, tables []string, cols map[string][]string, websiteID int64, snapshot string) ([]Sum, error) {
	out := make([]Sum, len(tables))
	for i, t := range tables {
		s, err := sumTable(ctx, pool, t, cols[t], websiteID, snapshot)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}
