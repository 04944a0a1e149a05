package pgtest

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// What a database made to fail inserts (FailInserts) does.
const (
	// RaiseError fails the insert with an error, as a violated constraint
	// would: the transaction is aborted and the session goes on.
	RaiseError = `RAISE EXCEPTION 'pgtest: insert refused'`
	// TerminateBackend ends the session doing the insert, as a crash of its
	// server process or an operator's pg_terminate_backend would: the client
	// sees its connection go away in the middle of the transaction.
	TerminateBackend = `PERFORM pg_terminate_backend(pg_backend_pid())`
)

var failures atomic.Int64

// FailInserts makes the database at url run action (RaiseError,
// TerminateBackend) before inserting each row of table for which when, an
// SQL condition on NEW, holds: a shard that fails in the middle of a
// transaction, at a chosen statement. restore puts the table back as it
// was.
func FailInserts(t testing.TB, url, table, when, action string) (restore func()) {
	t.Helper()
	name := pgx.Identifier{fmt.Sprintf("pgtest_fail_%d", failures.Add(1))}.Sanitize()
	target := pgx.Identifier{table}.Sanitize()
	Exec(t, url, fmt.Sprintf(`
		CREATE FUNCTION %[1]s() RETURNS trigger LANGUAGE plpgsql AS $fail$
		BEGIN
			IF %[3]s THEN
				%[4]s;
			END IF;
			RETURN NEW;
		END
		$fail$;
		CREATE TRIGGER %[1]s BEFORE INSERT ON %[2]s FOR EACH ROW EXECUTE FUNCTION %[1]s();`,
		name, target, when, action))
	return func() {
		t.Helper()
		Exec(t, url, fmt.Sprintf("DROP TRIGGER %s ON %s; DROP FUNCTION %s()", name, target, name))
	}
}
