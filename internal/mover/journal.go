package mover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/registry"
)

// The states of a move, in the order a move passes through them. A move's
// state names the last step it completed, except copying, which is recorded
// when copying starts so the journal shows the phase.
const (
	StatePlanned  = "planned"
	StateFrozen   = "frozen"
	StateCopying  = "copying"
	StateCopied   = "copied"
	StateVerified = "verified"
	StateSwitched = "switched"
	StateCleaned  = "cleaned"
	StateDone     = "done"
	StateFailed   = "failed"
	StateAborted  = "aborted"
)

// ErrNotFound means no move has the given id.
var ErrNotFound = errors.New("no such move")

// Move is one row of the journal, with its tables in foreign-key order.
type Move struct {
	ID            int64        `json:"id"`
	WebsiteID     int64        `json:"website_id"`
	Subdomain     string       `json:"subdomain"`
	Source        string       `json:"source"`
	Target        string       `json:"target"`
	State         string       `json:"state"`
	FailedState   string       `json:"failed_state,omitempty"`
	Error         string       `json:"error,omitempty"`
	StartedBy     string       `json:"started_by"`
	StartedAt     time.Time    `json:"started_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
	FrozenAt      *time.Time   `json:"frozen_at,omitempty"`
	SwitchedAt    *time.Time   `json:"switched_at,omitempty"`
	FinishedAt    *time.Time   `json:"finished_at,omitempty"`
	TargetCleared bool         `json:"target_cleared"`
	Tables        []TableState `json:"tables"`
}

// TableState is one tenant table's progress within a move.
type TableState struct {
	Name           string `json:"table"`
	RowsTotal      int64  `json:"rows_total"`
	BytesTotal     int64  `json:"bytes_total"`
	RowsCopied     int64  `json:"rows_copied"`
	BytesCopied    int64  `json:"bytes_copied"`
	Copied         bool   `json:"copied"`
	SourceChecksum string `json:"source_checksum,omitempty"`
	TargetChecksum string `json:"target_checksum,omitempty"`
	RowsDeleted    int64  `json:"rows_deleted"`
}

// Step is the state the move is in or, for a failed move, the step it
// stopped in.
func (m Move) Step() string {
	if m.State == StateFailed {
		return m.FailedState
	}
	return m.State
}

// Finished reports whether the move is done or aborted.
func (m Move) Finished() bool { return m.State == StateDone || m.State == StateAborted }

// Switched reports whether the registry already points at the target, after
// which the move can only go forward.
func (m Move) Switched() bool {
	s := m.Step()
	return s == StateSwitched || s == StateCleaned || s == StateDone
}

// RowsTotal sums the tables' rows.
func (m Move) RowsTotal() int64 {
	return sum(m.Tables, func(t TableState) int64 { return t.RowsTotal })
}

// RowsCopied sums the rows copied so far over the tables.
func (m Move) RowsCopied() int64 {
	return sum(m.Tables, func(t TableState) int64 { return t.RowsCopied })
}

// BytesTotal sums the tables' sizes.
func (m Move) BytesTotal() int64 {
	return sum(m.Tables, func(t TableState) int64 { return t.BytesTotal })
}

func sum[T any](items []T, f func(T) int64) (n int64) {
	for _, it := range items {
		n += f(it)
	}
	return n
}

const moveColumns = `m.id, m.website_id, w.subdomain, m.source_shard, m.target_shard, m.state,
	COALESCE(m.failed_state, ''), COALESCE(m.error, ''), m.started_by, m.started_at, m.updated_at,
	m.frozen_at, m.switched_at, m.finished_at, m.target_cleared`

func scanMove(row pgx.Row) (Move, error) {
	var m Move
	err := row.Scan(&m.ID, &m.WebsiteID, &m.Subdomain, &m.Source, &m.Target, &m.State, &m.FailedState, &m.Error,
		&m.StartedBy, &m.StartedAt, &m.UpdatedAt, &m.FrozenAt, &m.SwitchedAt, &m.FinishedAt, &m.TargetCleared)
	return m, err
}

// Get reads one move with its tables.
func Get(ctx context.Context, q registry.Querier, id int64) (Move, error) {
	m, err := scanMove(q.QueryRow(ctx, "SELECT "+moveColumns+" FROM moves m JOIN websites w ON w.id = m.website_id WHERE m.id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Move{}, fmt.Errorf("move %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Move{}, fmt.Errorf("reading move %d from the journal: %w", id, err)
	}
	m.Tables, err = tables(ctx, q, id)
	return m, err
}

func tables(ctx context.Context, q registry.Querier, id int64) ([]TableState, error) {
	byMove, err := tablesOf(ctx, q, []int64{id})
	return byMove[id], err
}

// tablesOf reads the tables of several moves in one query.
func tablesOf(ctx context.Context, q registry.Querier, ids []int64) (map[int64][]TableState, error) {
	rows, err := q.Query(ctx, `SELECT move_id, table_name, rows_total, bytes_total, rows_copied, bytes_copied, copied,
		COALESCE(source_checksum, ''), COALESCE(target_checksum, ''), rows_deleted
		FROM move_tables WHERE move_id = ANY($1) ORDER BY move_id, position`, ids)
	if err != nil {
		return nil, fmt.Errorf("reading the tables of moves: %w", err)
	}
	defer rows.Close()
	out := map[int64][]TableState{}
	for rows.Next() {
		var id int64
		var t TableState
		if err := rows.Scan(&id, &t.Name, &t.RowsTotal, &t.BytesTotal, &t.RowsCopied, &t.BytesCopied, &t.Copied,
			&t.SourceChecksum, &t.TargetChecksum, &t.RowsDeleted); err != nil {
			return nil, fmt.Errorf("reading the tables of moves: %w", err)
		}
		out[id] = append(out[id], t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the tables of moves: %w", err)
	}
	return out, nil
}

// List returns the journal, newest first: every move, or one tenant's when
// websiteID is not 0.
func List(ctx context.Context, q registry.Querier, websiteID int64) ([]Move, error) {
	rows, err := q.Query(ctx, "SELECT "+moveColumns+` FROM moves m JOIN websites w ON w.id = m.website_id
		WHERE $1 = 0 OR m.website_id = $1 ORDER BY m.id DESC`, websiteID)
	if err != nil {
		return nil, fmt.Errorf("reading the move journal: %w", err)
	}
	moves, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Move, error) { return scanMove(r) })
	if err != nil {
		return nil, fmt.Errorf("reading the move journal: %w", err)
	}
	ids := make([]int64, len(moves))
	for i, m := range moves {
		ids[i] = m.ID
	}
	byMove, err := tablesOf(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	for i := range moves {
		moves[i].Tables = byMove[moves[i].ID]
	}
	return moves, nil
}

// Unfinished returns the tenant's move that is neither done nor aborted, if
// any.
func Unfinished(ctx context.Context, q registry.Querier, websiteID int64) (Move, bool, error) {
	var id int64
	err := q.QueryRow(ctx, "SELECT id FROM moves WHERE website_id = $1 AND state NOT IN ('done', 'aborted')", websiteID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Move{}, false, nil
	}
	if err != nil {
		return Move{}, false, fmt.Errorf("reading the move journal: %w", err)
	}
	m, err := Get(ctx, q, id)
	return m, err == nil, err
}

// ErrMoveInProgress is returned when a tenant already has an unfinished move.
var ErrMoveInProgress = errors.New("tenant already has an unfinished move")

// RefuseIfMoving returns an error naming the tenant's unfinished move, if it
// has one. Commands that change a tenant's shard or status call it, so an
// operator cannot undo a move's freeze by hand.
func RefuseIfMoving(ctx context.Context, q registry.Querier, websiteID int64) error {
	m, found, err := Unfinished(ctx, q, websiteID)
	if err != nil || !found {
		return err
	}
	return unfinishedError(m)
}

func unfinishedError(m Move) error {
	return fmt.Errorf("%w: move %d of tenant %d (%s) from %s to %s is %s; finish it with `pwb sharding resume %d`%s",
		ErrMoveInProgress, m.ID, m.WebsiteID, m.Subdomain, m.Source, m.Target, describeState(m), m.ID, abortHint(m))
}

func describeState(m Move) string {
	if m.State == StateFailed {
		return "failed while " + m.FailedState
	}
	return m.State
}

func abortHint(m Move) string {
	if m.Switched() {
		return ""
	}
	return fmt.Sprintf(" or roll it back with `pwb sharding abort %d`", m.ID)
}

// insert records a planned move and its tables. The unique index on
// unfinished moves makes a second concurrent move of the tenant fail here.
func insert(ctx context.Context, tx pgx.Tx, p Plan, startedBy string) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO moves (website_id, source_shard, target_shard, started_by)
		VALUES ($1, $2, $3, $4) RETURNING id`, p.Website.ID, p.Source, p.Target, startedBy).Scan(&id)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == "moves_one_unfinished_per_tenant" {
		return 0, errUnfinishedNow
	}
	if err != nil {
		return 0, fmt.Errorf("recording the move in the journal: %w", err)
	}
	for i, t := range p.Tables {
		if _, err := tx.Exec(ctx, `INSERT INTO move_tables (move_id, position, table_name, rows_total, bytes_total)
			VALUES ($1, $2, $3, $4, $5)`, id, i, t.Name, t.Rows, t.Bytes); err != nil {
			return 0, fmt.Errorf("recording the move in the journal: %w", err)
		}
	}
	return id, nil
}

var errUnfinishedNow = errors.New("another move of this tenant was recorded at the same moment")

// setState records that move id reached state, clearing any failure.
func setState(ctx context.Context, q registry.Querier, id int64, state string) error {
	extra := ""
	if state == StateDone {
		extra = ", finished_at = now()"
	}
	_, err := q.Exec(ctx, `UPDATE moves SET state = $2, failed_state = NULL, error = NULL, updated_at = now()`+extra+
		` WHERE id = $1`, id, state)
	if err != nil {
		return fmt.Errorf("recording move %d as %s: %w", id, state, err)
	}
	return nil
}

// setFailed records why move id stopped in step.
func setFailed(ctx context.Context, q registry.Querier, id int64, step string, cause error) error {
	_, err := q.Exec(ctx, `UPDATE moves SET state = 'failed', failed_state = $2, error = $3, updated_at = now()
		WHERE id = $1`, id, step, oneLine(cause.Error()))
	if err != nil {
		return fmt.Errorf("recording the failure of move %d: %w", id, err)
	}
	return nil
}
