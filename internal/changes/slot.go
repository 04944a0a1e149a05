package changes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/dbq"
)

// replConnect opens a logical replication connection (replication=database)
// with the connection string of a normal one.
//
// The output plugin prints every value with the output function of its
// type, in the settings of this session, and the target parses that text
// again: the session asks for formats every server reads back the same way
// whatever its own settings (ISO dates with their offset, full float
// precision, hex bytea).
func replConnect(ctx context.Context, connString string) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("reading the source's connection string: %w", err)
	}
	cfg.RuntimeParams["replication"] = "database"
	cfg.RuntimeParams["DateStyle"] = "ISO, MDY"
	cfg.RuntimeParams["IntervalStyle"] = "postgres"
	cfg.RuntimeParams["extra_float_digits"] = "3"
	cfg.RuntimeParams["bytea_output"] = "hex"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "pwb move"
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening a replication connection to the source: %w", err)
	}
	return conn, nil
}

// closeConn closes a connection, waiting at most a few seconds for the
// server to be told.
func closeConn(conn *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn.Close(ctx)
}

// Snapshot is a new replication slot and the snapshot exported with it.
type Snapshot struct {
	// Slot is the slot's name.
	Slot string
	// Consistent is the slot's consistent point: streaming from the slot
	// yields exactly the transactions whose commit record starts at or
	// after it, and the snapshot sees exactly those that commit before it.
	Consistent LSN
	// Name is the exported snapshot, for SET TRANSACTION SNAPSHOT in a
	// REPEATABLE READ transaction on the slot's database. It is valid only
	// while the connection that made the slot stays open and idle: until
	// Close.
	Name string

	conn *pgconn.PgConn
}

// Close ends the connection that created the slot: the exported snapshot
// stops being importable (transactions that imported it keep it), and a
// temporary slot is dropped, by the server, a moment after Close returns.
// Closing twice is harmless.
func (s *Snapshot) Close(ctx context.Context) error {
	if s == nil || s.conn == nil {
		return nil
	}
	err := s.conn.Close(ctx)
	s.conn = nil
	if err != nil {
		return fmt.Errorf("closing the connection of slot %s: %w", s.Slot, err)
	}
	return nil
}

// CreateSlot creates logical replication slot slot (output plugin pgoutput)
// on the source behind replConnString, a normal connection string to the
// source database (replication=database is added), and exports a snapshot of
// its consistent point. A temporary slot lives as long as the Snapshot's
// connection; a permanent one until DropSlot. The server makes the slot only
// once every transaction running when it started has finished, so a long
// transaction on the source delays it: ctx bounds the wait.
func CreateSlot(ctx context.Context, replConnString, slot string, temporary bool) (*Snapshot, error) {
	if err := checkName("slot", slot); err != nil {
		return nil, err
	}
	conn, err := replConnect(ctx, replConnString)
	if err != nil {
		return nil, err
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, conn, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Temporary:      temporary,
		SnapshotAction: "(SNAPSHOT 'export')",
		Mode:           pglogrepl.LogicalReplication,
	})
	if err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("creating replication slot %s on the source: %w", slot, err)
	}
	lsn, err := ParseLSN(res.ConsistentPoint)
	if err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("reading the consistent point of slot %s: %w", slot, err)
	}
	return &Snapshot{Slot: slot, Consistent: lsn, Name: res.SnapshotName, conn: conn}, nil
}

// DropSlot drops replication slot slot on the server behind q. A slot that
// is active, held by the walsender of a live stream or of a mover that died
// without the server noticing yet, has that backend terminated
// (pg_terminate_backend, which needs superuser, pg_signal_backend or the
// same role) and the drop is retried for a few seconds. A slot that does not
// exist is success.
func DropSlot(ctx context.Context, q dbq.Querier, slot string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var pid *int32
		err := q.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("looking for replication slot %s: %w", slot, err)
		}
		if pid != nil {
			if _, err := q.Exec(ctx, "SELECT pg_terminate_backend($1)", *pid); err != nil {
				return fmt.Errorf("ending process %d, which holds replication slot %s: %w", *pid, slot, err)
			}
		} else {
			_, err = q.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot)
			var pgErr *pgconn.PgError
			switch {
			case err == nil:
				return nil
			case errors.As(err, &pgErr) && pgErr.Code == codeUndefinedObject:
				return nil
			case errors.As(err, &pgErr) && pgErr.Code == codeObjectInUse:
				// taken again between the look and the drop: terminate it next round
			default:
				return fmt.Errorf("dropping replication slot %s: %w", slot, err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dropping replication slot %s: still in use after 5s of ending the processes holding it", slot)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dropping replication slot %s: %w", slot, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SlotInfo describes one replication slot.
type SlotInfo struct {
	Name     string
	Database string // empty for a physical slot
	// Temporary slots go away with their connection.
	Temporary bool
	// Active is whether a connection is streaming from the slot, ActivePID
	// its server process (0 when not active).
	Active    bool
	ActivePID int
	// WALStatus is pg_replication_slots.wal_status: reserved, extended,
	// unreserved (about to be lost), or lost (the slot can no longer stream).
	WALStatus string
	// RetainedBytes is how much WAL the slot keeps on the server's disk:
	// pg_current_wal_lsn() - restart_lsn (0 when lost).
	RetainedBytes int64
	// ConfirmedFlush is the last position confirmed by the slot's consumer.
	ConfirmedFlush LSN
}

// Slots lists every replication slot on the server behind q whose name
// starts with pwb_move_, whatever its database, sorted by name.
func Slots(ctx context.Context, q dbq.Querier) ([]SlotInfo, error) {
	rows, err := q.Query(ctx, `SELECT slot_name::text, coalesce(database::text, ''), temporary, active,
			coalesce(active_pid, 0), coalesce(wal_status, ''),
			coalesce((pg_current_wal_lsn() - restart_lsn)::bigint, 0), coalesce(confirmed_flush_lsn::text, '0/0')
		FROM pg_replication_slots WHERE starts_with(slot_name::text, $1) ORDER BY 1`, Prefix)
	if err != nil {
		return nil, fmt.Errorf("listing move replication slots: %w", err)
	}
	slots, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SlotInfo, error) {
		var s SlotInfo
		var confirmed string
		if err := r.Scan(&s.Name, &s.Database, &s.Temporary, &s.Active, &s.ActivePID, &s.WALStatus, &s.RetainedBytes, &confirmed); err != nil {
			return s, err
		}
		var err error
		s.ConfirmedFlush, err = ParseLSN(confirmed)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing move replication slots: %w", err)
	}
	return slots, nil
}

// slotsPerMove is how many replication slots and WAL senders an online move
// takes on its source at once: its own slot, streamed, and a temporary one
// for verification.
const slotsPerMove = 2

// Supported checks that the source shard behind q (a normal connection to
// the shard's database) can stream a tenant's changes: PostgreSQL 15 or
// later, wal_level = logical, two free replication slots and two free WAL
// senders, a role with REPLICATION (or superuser), and a replication
// connection that can actually be opened with replConnString. When one is
// missing it returns false and one plain-English line saying what and how to
// fix it, naming the shard as shardName. err is for a check that could not
// run at all (the shard unreachable through q).
func Supported(ctx context.Context, q dbq.Querier, replConnString, shardName string) (ok bool, reason string, err error) {
	on := fmt.Sprintf("on shard %q", shardName)
	var (
		version                 int
		walLevel                string
		maxSlots, usedSlots     int
		maxSenders, usedSenders int
		role                    string
		canReplicate            bool
	)
	err = q.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('wal_level'),
			current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots)::int,
			current_setting('max_wal_senders')::int,
			(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int,
			current_user::text, (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user)`).
		Scan(&version, &walLevel, &maxSlots, &usedSlots, &maxSenders, &usedSenders, &role, &canReplicate)
	if err != nil {
		return false, "", fmt.Errorf("checking shard %q for online moves: %w", shardName, err)
	}
	switch {
	case version < 150000:
		return false, fmt.Sprintf("shard %q runs PostgreSQL %d.%d, which cannot filter published rows by tenant; upgrade it to PostgreSQL 15 or later",
			shardName, version/10000, version%10000/100), nil
	case walLevel != "logical":
		return false, fmt.Sprintf("wal_level is %s %s; set wal_level = logical and restart it", walLevel, on), nil
	case maxSlots-usedSlots < slotsPerMove:
		return false, fmt.Sprintf("%d of %d replication slots are in use %s and an online move needs %d free; raise max_replication_slots (restart needed) or drop unused slots",
			usedSlots, maxSlots, on, slotsPerMove), nil
	case maxSenders-usedSenders < slotsPerMove:
		return false, fmt.Sprintf("%d of %d WAL senders are in use %s and an online move needs %d free; raise max_wal_senders (restart needed)",
			usedSenders, maxSenders, on, slotsPerMove), nil
	case !canReplicate:
		return false, fmt.Sprintf("role %q %s has neither REPLICATION nor superuser; run ALTER ROLE %s REPLICATION",
			role, on, pgx.Identifier{role}.Sanitize()), nil
	}
	conn, err := replConnect(ctx, replConnString)
	if err != nil {
		return false, fmt.Sprintf("cannot open a replication connection to shard %q (%s); allow it for the shard's database in pg_hba.conf and check the role",
			shardName, oneLine(err)), nil
	}
	defer closeConn(conn)
	if _, err := pglogrepl.IdentifySystem(ctx, conn); err != nil {
		return false, fmt.Sprintf("the replication connection to shard %q fails (%s); check the role's REPLICATION attribute and max_wal_senders",
			shardName, oneLine(err)), nil
	}
	return true, "", nil
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// slotStatus reads a slot's wal_status over a replication connection (which
// runs simple SQL): "" with exists false when there is no such slot.
func slotStatus(ctx context.Context, replConnString, slot string) (status string, exists bool, err error) {
	conn, err := replConnect(ctx, replConnString)
	if err != nil {
		return "", false, err
	}
	defer closeConn(conn)
	res, err := conn.Exec(ctx, "SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = "+quoteLiteral(slot)).ReadAll()
	if err != nil {
		return "", false, err
	}
	if len(res) != 1 || len(res[0].Rows) == 0 {
		return "", false, nil
	}
	return string(res[0].Rows[0][0]), true, nil
}
