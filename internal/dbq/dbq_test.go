package dbq_test

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/dbq"
)

// What callers pass compiles as a Querier; a build of this package's tests
// fails if pgx changes a signature under it.
var (
	_ dbq.Querier = (*pgxpool.Pool)(nil)
	_ dbq.Querier = (*pgxpool.Conn)(nil)
	_ dbq.Querier = (*pgx.Conn)(nil)
	_ dbq.Querier = pgx.Tx(nil)
)
