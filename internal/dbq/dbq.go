// Package dbq declares the one interface SQL runs on, so that functions take
// a pool, a connection or a transaction alike and callers can compose them
// inside their own transaction. It sits below every package that queries,
// so none has to declare its own.
package dbq

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Reader runs queries: a *pgxpool.Pool, a *pgx.Conn, a pgx.Tx, or a
// read-only view such as a tenant's scope.
type Reader interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Querier runs queries and statements: a *pgxpool.Pool, a *pgx.Conn or a
// pgx.Tx.
type Querier interface {
	Reader
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}
