package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/fault"
)

// State is where a move is, as the journal records it.
type State string

// The states of a move, in the order a move passes through them. A move's
// state names the last step it completed, except copying, which is recorded
// when copying starts so the journal shows the phase.
const (
	StatePlanned  State = "planned"
	StatePrepared State = "prepared" // online: the publication exists
	StateFrozen   State = "frozen"   // freeze: writes stopped
	StateCopying  State = "copying"
	StateCopied   State = "copied"
	StateVerified State = "verified"
	StateSwitched State = "switched"
	StateCleaned  State = "cleaned"
	StateDone     State = "done"
	StateFailed   State = "failed"
	StateAborted  State = "aborted"
)

// Phase is what a running move is doing, as its progress events say: the
// state it has just reached, or one of the phases within a step.
type Phase string

// The phases within a step; the others are the states'.
const (
	PhaseStreaming Phase = "streaming" // online: applying the changes made since the copy
	PhaseCutover   Phase = "cutover"   // online: blocking writes for the switch
	PhaseVerifying Phase = "verifying" // comparing counts and checksums
	PhaseWaiting   Phase = "waiting"   // the clean-up's delay after the switch
	PhaseCleaning  Phase = "cleaning"  // deleting the rows from the source
	PhaseAborting  Phase = "aborting"  // deleting the rows copied to the target
)

// Phase is the phase a move is in once it has reached state s.
func (s State) Phase() Phase { return Phase(s) }

// Mode is how a move treats the tenant's writes.
type Mode string

const (
	// ModeFreeze refuses the tenant's writes from the start of the copy to
	// the switch.
	ModeFreeze Mode = "freeze"
	// ModeOnline copies while the tenant takes writes, streams the changes
	// made meanwhile, and blocks writes only for the cut-over.
	ModeOnline Mode = "online"
)

// ErrNotFound means no move has the given id.
var ErrNotFound = fault.New(fault.NotFound, "no such move")

// ErrRefused marks an operation refused before it changed anything: a move
// refused by its pre-flight, a resume or abort refused by the journal. It is
// fault.Refused itself, the one refusal of every package.
var ErrRefused = fault.Refused

// Refuse returns an ErrRefused error with a one-line reason.
func Refuse(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRefused}, args...)...)
}

// Refusal marks err as a refusal, keeping it in the chain.
func Refusal(err error) error { return fmt.Errorf("%w: %w", ErrRefused, err) }

// Move is one row of the journal, with its tables in foreign-key order.
type Move struct {
	ID            int64      `json:"id"`
	WebsiteID     int64      `json:"website_id"`
	Subdomain     string     `json:"subdomain"`
	Source        string     `json:"source"`
	Target        string     `json:"target"`
	State         State      `json:"state"`
	FailedState   State      `json:"failed_state,omitempty"`
	Error         string     `json:"error,omitempty"`
	StartedBy     string     `json:"started_by"`
	StartedAt     time.Time  `json:"started_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	FrozenAt      *time.Time `json:"frozen_at,omitempty"`
	SwitchedAt    *time.Time `json:"switched_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	TargetCleared bool       `json:"target_cleared"`
	Mode          Mode       `json:"mode"`
	ModeReason    string     `json:"mode_reason,omitempty"`
	// Slot and Publication name an online move's replication slot and
	// publication on the source; ArtifactsDropped says they are gone.
	Slot             string `json:"slot,omitempty"`
	Publication      string `json:"publication,omitempty"`
	ArtifactsDropped bool   `json:"artifacts_dropped"`
	CopyAttempts     int    `json:"copy_attempts"`
	// The online stream's catch-up, as last recorded.
	ChangesApplied  int64      `json:"changes_applied"`
	LagBytes        *int64     `json:"lag_bytes,omitempty"`
	LagSeconds      *float64   `json:"lag_seconds,omitempty"`
	StreamedAt      *time.Time `json:"streamed_at,omitempty"`
	CutoverAttempts int        `json:"cutover_attempts"`
	// BlockedUS is how long writes were blocked, in microseconds, once
	// known.
	BlockedUS *int64       `json:"blocked_us,omitempty"`
	Tables    []TableState `json:"tables"`
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
func (m Move) Step() State {
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

// Over reports whether nothing is left to do for the move: it is done, or
// aborted with its copied rows removed from the target.
func (m Move) Over() bool {
	return m.State == StateDone || (m.State == StateAborted && m.TargetCleared)
}

// ResumeRefusal is why move m cannot be resumed, or nil if it can.
func (m Move) ResumeRefusal() error {
	if m.Finished() {
		return Refuse("move %d of tenant %d (%s) is already %s", m.ID, m.WebsiteID, m.Subdomain, m.State)
	}
	return nil
}

// AbortRefusal is why move m cannot be aborted, or nil if it can: a move
// aborts only before its switch, and an aborted move again only to remove
// rows its first abort could not.
func (m Move) AbortRefusal() error {
	switch {
	case m.State == StateDone:
		return Refuse("move %d of tenant %d (%s) is already done", m.ID, m.WebsiteID, m.Subdomain)
	case m.State == StateAborted && m.TargetCleared:
		return Refuse("move %d of tenant %d (%s) is already aborted", m.ID, m.WebsiteID, m.Subdomain)
	case m.Switched():
		return Refuse("move %d of tenant %d (%s) has already switched the tenant to %q: it can only be finished, with `pwb sharding resume %d`",
			m.ID, m.WebsiteID, m.Subdomain, m.Target, m.ID)
	}
	return nil
}

// CanResume and CanAbort are the rules above as booleans, for pages.
func (m Move) CanResume() bool { return m.ResumeRefusal() == nil }

// CanAbort reports whether AbortRefusal is nil.
func (m Move) CanAbort() bool { return m.AbortRefusal() == nil }

// Blocked is how long the tenant's writes were refused or held, once the
// move has switched: the cut-over that switched (online), or from the freeze
// to the switch (freeze); or, for a freeze move aborted after its freeze,
// from the freeze to the abort, which made the tenant writable again.
func (m Move) Blocked() (time.Duration, bool) {
	switch {
	case m.BlockedUS != nil:
		return time.Duration(*m.BlockedUS) * time.Microsecond, true
	case m.FrozenAt == nil:
		return 0, false
	case m.SwitchedAt != nil:
		return m.SwitchedAt.Sub(*m.FrozenAt), true
	case m.State == StateAborted && m.FinishedAt != nil:
		return m.FinishedAt.Sub(*m.FrozenAt), true
	}
	return 0, false
}

// Online reports whether the move runs in online mode.
func (m Move) Online() bool { return m.Mode == ModeOnline }

// Took is the whole move's duration, once it has finished.
func (m Move) Took() (time.Duration, bool) {
	if m.FinishedAt == nil {
		return 0, false
	}
	return m.FinishedAt.Sub(m.StartedAt), true
}

// Measured shows a measured duration, such as a move's whole time or its
// blocked time, the same way wherever it is shown: to the millisecond under
// a second, else to the hundredth of a second ("850ms", "12.34s").
func Measured(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// RowsTotal sums the tables' rows.
func (m Move) RowsTotal() int64 {
	return Sum(m.Tables, func(t TableState) int64 { return t.RowsTotal })
}

// RowsCopied sums the rows copied so far over the tables.
func (m Move) RowsCopied() int64 {
	return Sum(m.Tables, func(t TableState) int64 { return t.RowsCopied })
}

// BytesTotal sums the tables' sizes.
func (m Move) BytesTotal() int64 {
	return Sum(m.Tables, func(t TableState) int64 { return t.BytesTotal })
}

// VerifiedEqual reports whether the move's verify step found every table
// equal on both shards.
func (m Move) VerifiedEqual() bool {
	for _, t := range m.Tables {
		if t.SourceChecksum == "" || t.SourceChecksum != t.TargetChecksum {
			return false
		}
	}
	return len(m.Tables) > 0
}

// Sum adds f over items.
func Sum[T any](items []T, f func(T) int64) (n int64) {
	for _, it := range items {
		n += f(it)
	}
	return n
}

// Describe is the move's state in words: "copying", "failed while copying".
func (m Move) Describe() string {
	if m.State == StateFailed {
		return "failed while " + string(m.FailedState)
	}
	return string(m.State)
}

const moveColumns = `m.id, m.website_id, w.subdomain, m.source_shard, m.target_shard, m.state,
	COALESCE(m.failed_state, ''), COALESCE(m.error, ''), m.started_by, m.started_at, m.updated_at,
	m.frozen_at, m.switched_at, m.finished_at, m.target_cleared, m.mode, COALESCE(m.mode_reason, ''),
	COALESCE(m.slot_name, ''), COALESCE(m.publication_name, ''), m.artifacts_dropped, m.copy_attempts,
	m.changes_applied, m.lag_bytes, m.lag_seconds, m.streamed_at, m.cutover_attempts, m.blocked_us`

func scanMove(row pgx.Row) (Move, error) {
	var m Move
	err := row.Scan(&m.ID, &m.WebsiteID, &m.Subdomain, &m.Source, &m.Target, &m.State, &m.FailedState, &m.Error,
		&m.StartedBy, &m.StartedAt, &m.UpdatedAt, &m.FrozenAt, &m.SwitchedAt, &m.FinishedAt, &m.TargetCleared,
		&m.Mode, &m.ModeReason, &m.Slot, &m.Publication, &m.ArtifactsDropped, &m.CopyAttempts,
		&m.ChangesApplied, &m.LagBytes, &m.LagSeconds, &m.StreamedAt, &m.CutoverAttempts, &m.BlockedUS)
	return m, err
}

// Get reads one move with its tables.
func Get(ctx context.Context, q dbq.Querier, id int64) (Move, error) {
	return get(ctx, q, id, "")
}

// GetForUpdate is Get that also locks the move's row until tx ends, so that
// two transactions deciding about the same move take turns.
func GetForUpdate(ctx context.Context, tx pgx.Tx, id int64) (Move, error) {
	return get(ctx, tx, id, " FOR UPDATE OF m")
}

func get(ctx context.Context, q dbq.Querier, id int64, lock string) (Move, error) {
	m, err := scanMove(q.QueryRow(ctx, "SELECT "+moveColumns+" FROM moves m JOIN websites w ON w.id = m.website_id WHERE m.id = $1"+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Move{}, fmt.Errorf("move %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Move{}, fmt.Errorf("reading move %d from the journal: %w", id, err)
	}
	byMove, err := tablesOf(ctx, q, []int64{id})
	m.Tables = byMove[id]
	return m, err
}

// tablesOf reads the tables of several moves in one query.
func tablesOf(ctx context.Context, q dbq.Querier, ids []int64) (map[int64][]TableState, error) {
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
func List(ctx context.Context, q dbq.Querier, websiteID int64) ([]Move, error) {
	return list(ctx, q, "$1 = 0 OR m.website_id = $1", websiteID)
}

// ListUnfinished returns every move that is neither done nor aborted,
// newest first.
func ListUnfinished(ctx context.Context, q dbq.Querier) ([]Move, error) {
	return list(ctx, q, "m.state NOT IN ('done', 'aborted')")
}

func list(ctx context.Context, q dbq.Querier, where string, args ...any) ([]Move, error) {
	rows, err := q.Query(ctx, "SELECT "+moveColumns+` FROM moves m JOIN websites w ON w.id = m.website_id
		WHERE `+where+` ORDER BY m.id DESC`, args...)
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
func Unfinished(ctx context.Context, q dbq.Querier, websiteID int64) (Move, bool, error) {
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
var ErrMoveInProgress = fault.New(fault.Conflict, "tenant already has an unfinished move")

// RefuseIfMoving returns an error naming the tenant's unfinished move, if it
// has one. Commands that change a tenant's shard or status call it, so an
// operator cannot undo a move's freeze by hand.
func RefuseIfMoving(ctx context.Context, q dbq.Querier, websiteID int64) error {
	m, found, err := Unfinished(ctx, q, websiteID)
	if err != nil || !found {
		return err
	}
	return UnfinishedError(m)
}

// UnfinishedError says that m is unfinished and how to finish it.
func UnfinishedError(m Move) error {
	hint := ""
	if !m.Switched() {
		hint = fmt.Sprintf(" or roll it back with `pwb sharding abort %d`", m.ID)
	}
	return fmt.Errorf("%w: move %d of tenant %d (%s) from %s to %s is %s; finish it with `pwb sharding resume %d`%s",
		ErrMoveInProgress, m.ID, m.WebsiteID, m.Subdomain, m.Source, m.Target, m.Describe(), m.ID, hint)
}

// NewMove is what Insert records.
type NewMove struct {
	WebsiteID      int64
	Source, Target string
	StartedBy      string
	Mode           Mode
	ModeReason     string
	Tables         []NewTable
}

// NewTable is one table of a NewMove, with its size at planning.
type NewTable struct {
	Name        string
	Rows, Bytes int64
}

// ErrUnfinishedNow means another move of the tenant was recorded at the same
// moment: the unique index on unfinished moves refused this one.
var ErrUnfinishedNow = fault.New(fault.Conflict, "another move of this tenant was recorded at the same moment")

// Insert records a planned move and its tables and returns its id.
func Insert(ctx context.Context, tx pgx.Tx, n NewMove) (int64, error) {
	var id int64
	if n.Mode == "" {
		n.Mode = ModeFreeze
	}
	err := tx.QueryRow(ctx, `INSERT INTO moves (website_id, source_shard, target_shard, started_by, mode, mode_reason)
		VALUES ($1, $2, $3, $4, $5, NULLIF($6, '')) RETURNING id`, n.WebsiteID, n.Source, n.Target, n.StartedBy, n.Mode, n.ModeReason).Scan(&id)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == "moves_one_unfinished_per_tenant" {
		return 0, ErrUnfinishedNow
	}
	if err != nil {
		return 0, fmt.Errorf("recording the move in the journal: %w", err)
	}
	for i, t := range n.Tables {
		if _, err := tx.Exec(ctx, `INSERT INTO move_tables (move_id, position, table_name, rows_total, bytes_total)
			VALUES ($1, $2, $3, $4, $5)`, id, i, t.Name, t.Rows, t.Bytes); err != nil {
			return 0, fmt.Errorf("recording the move in the journal: %w", err)
		}
	}
	return id, nil
}

// exec runs one journal statement, wrapping its error with what it records.
func exec(ctx context.Context, q dbq.Querier, what, sql string, args ...any) error {
	if _, err := q.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("recording %s in the journal: %w", what, err)
	}
	return nil
}

// SetState records that move id reached state, clearing any failure.
func SetState(ctx context.Context, q dbq.Querier, id int64, state State) error {
	extra := ""
	if state == StateDone {
		extra = ", finished_at = now()"
	}
	return exec(ctx, q, fmt.Sprintf("move %d as %s", id, state),
		`UPDATE moves SET state = $2, failed_state = NULL, error = NULL, updated_at = now()`+extra+` WHERE id = $1`, id, state)
}

// SetFailed records why move id stopped in step.
func SetFailed(ctx context.Context, q dbq.Querier, id int64, step State, cause error) error {
	return exec(ctx, q, fmt.Sprintf("the failure of move %d", id), `UPDATE moves SET state = 'failed', failed_state = $2,
		error = $3, updated_at = now() WHERE id = $1`, id, step, OneLine(cause.Error()))
}

// SetError records a problem of move id without changing its state.
func SetError(ctx context.Context, q dbq.Querier, id int64, cause error) error {
	return exec(ctx, q, fmt.Sprintf("a problem of move %d", id),
		"UPDATE moves SET error = $2, updated_at = now() WHERE id = $1", id, OneLine(cause.Error()))
}

// MarkFrozen records when the tenant's writes stopped, the first time only.
func MarkFrozen(ctx context.Context, q dbq.Querier, id int64) error {
	return exec(ctx, q, fmt.Sprintf("the freeze of move %d", id),
		"UPDATE moves SET frozen_at = COALESCE(frozen_at, now()) WHERE id = $1", id)
}

// MarkSwitched records the switch; run it in the transaction that changes
// the registry, so the journal and the registry never disagree about it.
func MarkSwitched(ctx context.Context, tx pgx.Tx, id int64) error {
	return exec(ctx, tx, fmt.Sprintf("the switch of move %d", id), `UPDATE moves SET state = 'switched', failed_state = NULL,
		error = NULL, switched_at = now(), updated_at = now() WHERE id = $1`, id)
}

// MarkAborted records move id aborted; run it in the transaction that makes
// the tenant active on its source again.
func MarkAborted(ctx context.Context, tx pgx.Tx, id int64) error {
	return exec(ctx, tx, fmt.Sprintf("the abort of move %d", id), `UPDATE moves SET state = 'aborted', failed_state = NULL,
		error = NULL, finished_at = now(), updated_at = now() WHERE id = $1`, id)
}

// MarkTargetCleared records that an aborted move left nothing on its target.
func MarkTargetCleared(ctx context.Context, q dbq.Querier, id int64) error {
	return exec(ctx, q, fmt.Sprintf("the abort of move %d", id),
		"UPDATE moves SET target_cleared = true, error = NULL, updated_at = now() WHERE id = $1", id)
}

// SetTableSize records a table's exact size, counted with writes stopped.
func SetTableSize(ctx context.Context, q dbq.Querier, id int64, table string, rows, bytes int64) error {
	return exec(ctx, q, "the size of "+table, `UPDATE move_tables SET rows_total = $3, bytes_total = $4
		WHERE move_id = $1 AND table_name = $2`, id, table, rows, bytes)
}

// SetTableProgress records how far a table's copy has gone.
func SetTableProgress(ctx context.Context, q dbq.Querier, id int64, table string, rows, bytes int64) error {
	return exec(ctx, q, "the progress of "+table, `UPDATE move_tables SET rows_copied = $3, bytes_copied = $4
		WHERE move_id = $1 AND table_name = $2`, id, table, rows, bytes)
}

// SetTableCopied records a table's copy as complete.
func SetTableCopied(ctx context.Context, q dbq.Querier, id int64, table string, rows, bytes int64) error {
	return exec(ctx, q, "the copy of "+table, `UPDATE move_tables SET (copied, rows_copied, bytes_copied) = (true, $3, $4)
		WHERE move_id = $1 AND table_name = $2`, id, table, rows, bytes)
}

// SetChecksums records what the verify step found for a table.
func SetChecksums(ctx context.Context, q dbq.Querier, id int64, table, source, target string) error {
	return exec(ctx, q, "the checksums of "+table, `UPDATE move_tables SET source_checksum = $3, target_checksum = $4
		WHERE move_id = $1 AND table_name = $2`, id, table, source, target)
}

// AddDeleted adds n rows to a table's clean-up count.
func AddDeleted(ctx context.Context, q dbq.Querier, id int64, table string, n int64) error {
	return exec(ctx, q, "the clean-up of "+table, `UPDATE move_tables SET rows_deleted = rows_deleted + $3
		WHERE move_id = $1 AND table_name = $2`, id, table, n)
}

// SetAllDeleted records a table's clean-up as complete: exact even when a
// crash fell between a batch and its record.
func SetAllDeleted(ctx context.Context, q dbq.Querier, id int64, table string) error {
	return exec(ctx, q, "the clean-up of "+table, `UPDATE move_tables SET rows_deleted = rows_total
		WHERE move_id = $1 AND table_name = $2`, id, table)
}

// SetArtifacts records the names of an online move's slot and publication,
// before either is created.
func SetArtifacts(ctx context.Context, q dbq.Querier, id int64, slot, publication string) error {
	return exec(ctx, q, fmt.Sprintf("the slot and publication of move %d", id), `UPDATE moves SET slot_name = $2,
		publication_name = $3, artifacts_dropped = false, updated_at = now() WHERE id = $1`, id, slot, publication)
}

// MarkArtifactsDropped records that move id's slot and publication are gone.
func MarkArtifactsDropped(ctx context.Context, q dbq.Querier, id int64) error {
	return exec(ctx, q, fmt.Sprintf("the removal of move %d's slot and publication", id),
		"UPDATE moves SET artifacts_dropped = true WHERE id = $1", id)
}

// RestartCopy records that an online move's copy starts (again): its tables
// are marked not copied, with their counts reset, and the state is copying.
func RestartCopy(ctx context.Context, tx pgx.Tx, id int64) error {
	if err := exec(ctx, tx, fmt.Sprintf("the copy of move %d", id), `UPDATE move_tables SET copied = false,
		rows_copied = 0, bytes_copied = 0, source_checksum = NULL, target_checksum = NULL WHERE move_id = $1`, id); err != nil {
		return err
	}
	return exec(ctx, tx, fmt.Sprintf("the copy of move %d", id), `UPDATE moves SET state = 'copying', failed_state = NULL,
		error = NULL, copy_attempts = copy_attempts + 1, changes_applied = 0, lag_bytes = NULL, lag_seconds = NULL,
		streamed_at = NULL, updated_at = now() WHERE id = $1`, id)
}

// StreamStats is an online move's catch-up at one moment.
type StreamStats struct {
	Changes    int64
	LagBytes   int64
	LagSeconds float64
}

// SetStreamStats records an online move's catch-up. It does not touch
// updated_at, which says when the move last changed step.
func SetStreamStats(ctx context.Context, q dbq.Querier, id int64, st StreamStats) error {
	return exec(ctx, q, fmt.Sprintf("the catch-up of move %d", id), `UPDATE moves SET changes_applied = $2,
		lag_bytes = $3, lag_seconds = $4, streamed_at = now() WHERE id = $1`, id, st.Changes, st.LagBytes, st.LagSeconds)
}

// AddCutoverAttempt counts one cut-over attempt of move id.
func AddCutoverAttempt(ctx context.Context, q dbq.Querier, id int64) error {
	return exec(ctx, q, fmt.Sprintf("a cut-over of move %d", id),
		"UPDATE moves SET cutover_attempts = cutover_attempts + 1 WHERE id = $1", id)
}

// SetBlocked records how long move id blocked the tenant's writes.
func SetBlocked(ctx context.Context, q dbq.Querier, id int64, d time.Duration) error {
	return exec(ctx, q, fmt.Sprintf("the blocked time of move %d", id),
		"UPDATE moves SET blocked_us = $2 WHERE id = $1", id, d.Microseconds())
}

// Artifact is an online move's slot and publication on its source.
type Artifact struct {
	MoveID            int64
	Source            string
	Slot, Publication string
	// Live: the move is unfinished, so its artifacts are in use.
	Live bool
}

// Artifacts lists the moves whose slot and publication may still exist.
func Artifacts(ctx context.Context, q dbq.Querier) ([]Artifact, error) {
	rows, err := q.Query(ctx, `SELECT id, source_shard, slot_name, COALESCE(publication_name, ''),
		state NOT IN ('done', 'aborted') FROM moves WHERE slot_name IS NOT NULL AND NOT artifacts_dropped ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading the move journal: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Artifact, error) {
		var a Artifact
		return a, r.Scan(&a.MoveID, &a.Source, &a.Slot, &a.Publication, &a.Live)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the move journal: %w", err)
	}
	return out, nil
}

// Live reports which of ids are unfinished moves: their slots and
// publications are in use. An id the journal does not have is not live.
func Live(ctx context.Context, q dbq.Querier, ids []int64) (map[int64]bool, error) {
	rows, err := q.Query(ctx, "SELECT id FROM moves WHERE id = ANY($1) AND state NOT IN ('done', 'aborted')", ids)
	if err != nil {
		return nil, fmt.Errorf("reading the move journal: %w", err)
	}
	out := map[int64]bool{}
	var id int64
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { out[id] = true; return nil }); err != nil {
		return nil, fmt.Errorf("reading the move journal: %w", err)
	}
	return out, nil
}

// LeftByAbort returns the newest aborted move of the tenant to target whose
// copied rows may still be there.
func LeftByAbort(ctx context.Context, q dbq.Querier, websiteID int64, target string) (int64, bool, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT id FROM moves WHERE website_id = $1 AND target_shard = $2
		AND state = 'aborted' AND NOT target_cleared ORDER BY id DESC LIMIT 1`, websiteID, target).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading the move journal: %w", err)
	}
	return id, true, nil
}

// Quiet reports whether move id's journal row has not changed for at least
// d, by primary's clock, and whether the move is over.
func Quiet(ctx context.Context, q dbq.Querier, id int64, d time.Duration) (quiet, over bool, err error) {
	err = q.QueryRow(ctx, `SELECT updated_at < now() - $2 * interval '1 microsecond',
		state = 'done' OR (state = 'aborted' AND target_cleared) FROM moves WHERE id = $1`, id, d.Microseconds()).Scan(&quiet, &over)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, fmt.Errorf("move %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return false, false, fmt.Errorf("reading move %d from the journal: %w", id, err)
	}
	return quiet, over, nil
}

// CountByState counts the journal's moves by state.
func CountByState(ctx context.Context, q dbq.Querier) (map[State]int64, error) {
	rows, err := q.Query(ctx, "SELECT state, count(*) FROM moves GROUP BY state")
	if err != nil {
		return nil, fmt.Errorf("reading the move journal: %w", err)
	}
	out := map[State]int64{}
	var s State
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&s, &n}, func() error { out[s] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("reading the move journal: %w", err)
	}
	return out, nil
}

// Timing is how long a done move took in all and how long the tenant's
// writes were blocked.
type Timing struct {
	Mode           Mode
	Whole, Blocked time.Duration
}

// Timings returns the timing of every done move.
func Timings(ctx context.Context, q dbq.Querier) ([]Timing, error) {
	rows, err := q.Query(ctx, `SELECT mode, (extract(epoch FROM finished_at - started_at) * 1e6)::bigint,
		COALESCE(blocked_us, (extract(epoch FROM switched_at - frozen_at) * 1e6)::bigint, 0) FROM moves WHERE state = 'done'`)
	if err != nil {
		return nil, fmt.Errorf("reading the move journal: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Timing, error) {
		var t Timing
		var whole, blocked int64
		err := r.Scan(&t.Mode, &whole, &blocked)
		t.Whole, t.Blocked = time.Duration(whole)*time.Microsecond, time.Duration(blocked)*time.Microsecond
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the move journal: %w", err)
	}
	return out, nil
}

// OneLine folds an error message onto one line.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
