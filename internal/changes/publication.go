package changes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/dbq"
)

// CreatePublication publishes the rows of websiteID in tables (tenant
// tables, unqualified) on the source database behind q:
//
//	CREATE PUBLICATION name FOR TABLE t1 WHERE (website_id = N), ...
//	    WITH (publish = 'insert, update, delete')
//
// TRUNCATE is not published: it would empty the table for every tenant.
// Create the publication before the slot that streams it: the output plugin
// reads the publication as of each change's position, and a change older
// than the publication fails the stream. A publication of that name that
// exists already is success (a restarted move creates it again); its
// definition is not compared.
//
// Every UPDATE and DELETE on a table published with a row filter fails
// unless the filter's columns are in the table's replica identity; the
// tenant migration 00004 makes (website_id, id) the replica identity of
// every tenant table so the shard's other tenants keep writing.
func CreatePublication(ctx context.Context, q dbq.Querier, name string, tables []string, websiteID int64) error {
	if err := checkName("publication", name); err != nil {
		return err
	}
	if len(tables) == 0 {
		return fmt.Errorf("creating publication %s: no tables to publish", name)
	}
	var exists bool
	if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("looking for publication %s on the source: %w", name, err)
	}
	if exists {
		return nil
	}
	var b strings.Builder
	b.WriteString("CREATE PUBLICATION ")
	b.WriteString(pgx.Identifier{name}.Sanitize())
	b.WriteString(" FOR TABLE ")
	for i, t := range tables {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s WHERE (website_id = %d)", pgx.Identifier{t}.Sanitize(), websiteID)
	}
	b.WriteString(" WITH (publish = 'insert, update, delete')")
	if _, err := q.Exec(ctx, b.String()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == codeDuplicateObject {
			return nil // created meanwhile by another run of the same move
		}
		return fmt.Errorf("creating publication %s of website %d on the source: %w", name, websiteID, err)
	}
	return nil
}

// Beginner starts transactions: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// DropPublication drops publication name from the database behind db; a
// publication that does not exist is success.
//
// PostgreSQL 15 does not order DROP PUBLICATION with the writes to the
// tables it publishes: a write that looks the publication up as it is
// dropped fails with "cache lookup failed for publication". So the
// publication first loses its tables, then, once the writes that were
// looking it up have had time to finish, it is dropped.
func DropPublication(ctx context.Context, db Beginner, name string) error {
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT format('%I.%I', schemaname, tablename) FROM pg_publication_tables WHERE pubname = $1", name)
		if err != nil {
			return err
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(tables) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{name}.Sanitize()+" DROP TABLE "+strings.Join(tables, ", "))
		return err
	})
	if err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(publicationSettle):
		}
	}
	if err == nil {
		err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{name}.Sanitize())
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("dropping publication %s on the source: %w", name, err)
	}
	return nil
}

// publicationSettle is how long DropPublication waits between taking the
// publication's tables away and dropping it.
const publicationSettle = 200 * time.Millisecond

// Publications lists the publications of the database behind q whose names
// start with pwb_move_, sorted: what moves created (MoveOf tells whose).
func Publications(ctx context.Context, q dbq.Querier) ([]string, error) {
	rows, err := q.Query(ctx, "SELECT pubname::text FROM pg_publication WHERE starts_with(pubname::text, $1) ORDER BY 1", Prefix)
	if err != nil {
		return nil, fmt.Errorf("listing move publications: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing move publications: %w", err)
	}
	return names, nil
}

// EmitMarker writes a non-transactional logical message (prefix, content)
// into the source's WAL through q and returns its position. A stream whose
// marker prefix is prefix reports it to WaitMarker once every transaction
// committed before it has been applied on the target. It needs
// wal_level = logical.
//
// The source sends only WAL that is flushed to disk, and PostgreSQL (before
// 17) does not flush a message by itself: its WAL writer gets to it within
// wal_writer_delay (200 ms by default). Through a pool or connection,
// EmitMarker flushes it at once, committing a tiny transaction
// synchronously. q may instead be a pgx.Tx, so a cut-over can emit the
// marker while its transaction holds the tenant's write lock: the message is
// written at once, whatever becomes of the transaction, but cannot be
// flushed from inside it; call FlushWAL on another connection to the source
// right after.
func EmitMarker(ctx context.Context, q dbq.Querier, prefix, content string) (LSN, error) {
	sql := "SELECT pg_logical_emit_message(false, $1, $2)::text, NULL, NULL"
	if _, inTx := q.(pgx.Tx); !inTx {
		sql = "SELECT pg_logical_emit_message(false, $1, $2)::text, " + flushing
	}
	var s string
	if err := q.QueryRow(ctx, sql, prefix, content).Scan(&s, nil, nil); err != nil {
		return 0, fmt.Errorf("writing marker %q to the source's WAL: %w", content, err)
	}
	lsn, err := ParseLSN(s)
	if err != nil {
		return 0, fmt.Errorf("reading the position of marker %q: %w", content, err)
	}
	return lsn, nil
}

// flushing makes the transaction of a statement that writes WAL flush it
// when it commits: with an xid it writes a commit record, and with
// synchronous_commit = on (whatever the server's default) the commit waits
// for the WAL up to that record to be flushed. Both are outputs of the
// statement, so the planner cannot leave them out.
const flushing = "set_config('synchronous_commit', 'on', true), txid_current()"

// FlushWAL makes the server behind q (a pool or connection, not a
// transaction) flush its WAL to disk up to now, so a marker emitted inside a
// transaction reaches the stream without waiting for the WAL writer.
func FlushWAL(ctx context.Context, q dbq.Querier) error {
	if _, err := q.Exec(ctx, "SELECT pg_logical_emit_message(false, 'pwb_flush', ''), "+flushing); err != nil {
		return fmt.Errorf("flushing the source's WAL: %w", err)
	}
	return nil
}

// ForgetPosition deletes move moveID's applied position from the target's
// move_positions, once the move is finished or abandoned (a stream started
// afterwards would start from the slot's confirmed position).
func ForgetPosition(ctx context.Context, target dbq.Querier, moveID int64) error {
	if _, err := target.Exec(ctx, "DELETE FROM move_positions WHERE move_id = $1", moveID); err != nil {
		return fmt.Errorf("forgetting move %d's position on the target: %w", moveID, err)
	}
	return nil
}
