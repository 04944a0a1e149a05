package mover

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Event reports a move's progress. Rows and RowsTotal count rows copied
// during the copy and rows deleted during the clean-up, over all tables.
// Bytes counts the COPY stream so far; BytesTotal is the rows' size as
// stored, so the two compare only roughly.
type Event struct {
	Move       int64  `json:"move"`
	Phase      string `json:"phase"`
	Table      string `json:"table,omitempty"`
	Rows       int64  `json:"rows"`
	RowsTotal  int64  `json:"rows_total"`
	Bytes      int64  `json:"bytes"`
	BytesTotal int64  `json:"bytes_total"`
}

// Options tunes a Mover. The zero value is ready to use.
type Options struct {
	// Progress, if set, receives events as the move goes, a few per second
	// at most during the copy and the clean-up.
	Progress func(Event)
	// Pause, if set, is called at each step boundary and once inside the copy
	// and the clean-up, with the name of the point: planned, frozen,
	// copying, mid-copy:TABLE, copied, verified, switched, mid-cleanup,
	// cleaned. Crash tests use it to stop the mover exactly there.
	Pause func(point string)
	// CleanupDelay is how long after the switch the source rows stay, so an
	// app process whose registry cache has not yet heard of the switch still
	// reads them. Zero means DefaultCleanupDelay; NoCleanupDelay, none.
	CleanupDelay time.Duration
	// FreezeTimeout bounds the wait for in-flight writes at the freeze.
	// Default 30s.
	FreezeTimeout time.Duration
	// DeleteBatch is the number of rows deleted per statement when cleaning
	// up. Default 10,000.
	DeleteBatch int
}

// DefaultCleanupDelay is the registry cache's default TTL: after it every
// app process has read the new shard, even one whose change notification was
// lost.
const DefaultCleanupDelay = 5 * time.Second

// NoCleanupDelay as Options.CleanupDelay cleans up right after the switch,
// for platforms where no app process caches the registry.
const NoCleanupDelay time.Duration = -1

// progressEvery is the least time between two progress events or journal
// progress updates during the copy and the clean-up.
const progressEvery = 250 * time.Millisecond

// Mover runs tenant moves over one process's shard set.
type Mover struct {
	set     *shard.Set
	primary *pgxpool.Pool
	opt     Options
}

// New returns a Mover over set.
func New(set *shard.Set, opt Options) (*Mover, error) {
	primary, err := set.Primary()
	if err != nil {
		return nil, err
	}
	switch {
	case opt.CleanupDelay == 0:
		opt.CleanupDelay = DefaultCleanupDelay
	case opt.CleanupDelay < 0:
		opt.CleanupDelay = 0
	}
	if opt.FreezeTimeout == 0 {
		opt.FreezeTimeout = 30 * time.Second
	}
	if opt.DeleteBatch <= 0 {
		opt.DeleteBatch = 10_000
	}
	return &Mover{set: set, primary: primary, opt: opt}, nil
}

func (m *Mover) pause(point string) {
	if m.opt.Pause != nil {
		m.opt.Pause(point)
	}
}

func (m *Mover) emit(e Event) {
	if m.opt.Progress != nil {
		m.opt.Progress(e)
	}
}

// Start records a planned move in the journal after checking, with the
// tenant's registry row locked, that nothing changed since the plan. It
// returns the move's id; Run carries it out.
func (m *Mover) Start(ctx context.Context, p Plan, startedBy string) (int64, error) {
	return m.StartWith(ctx, p, startedBy, nil)
}

// StartWith is Start that also calls also, if set, inside the transaction
// that records the move, with the new move's id: whatever it writes on
// primary (a background job to run the move, say) is committed with the
// journal row or not at all.
func (m *Mover) StartWith(ctx context.Context, p Plan, startedBy string, also func(ctx context.Context, tx pgx.Tx, id int64) error) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, m.primary, func(tx pgx.Tx) error {
		w, err := registry.LockForUpdate(ctx, tx, p.Website.ID)
		if err != nil {
			return refusal(err)
		}
		// A move started since the plan explains a changed status too.
		if err := RefuseIfMoving(ctx, tx, w.ID); err != nil {
			return refusal(err)
		}
		if w.Status != registry.StatusActive || w.ShardName != p.Source {
			return refuse("tenant %d (%s) changed since the plan: it is now %s on shard %q", w.ID, w.Subdomain, w.Status, w.ShardName)
		}
		if id, err = insert(ctx, tx, p, startedBy); err != nil || also == nil {
			return err
		}
		return also(ctx, tx, id)
	})
	if errors.Is(err, errUnfinishedNow) {
		if m, found, _ := Unfinished(ctx, m.primary, p.Website.ID); found {
			return 0, refusal(unfinishedError(m))
		}
		return 0, refuse("another move of tenant %d (%s) started at the same moment", p.Website.ID, p.Website.Subdomain)
	}
	if err != nil {
		return 0, err
	}
	m.pause(StatePlanned)
	return id, nil
}

// ErrBusy means another process is running the move right now.
var ErrBusy = errors.New("the move is being run by another process")

// lockClass keys the advisory locks that make one process at a time run a
// given move ("mov").
const lockClass int32 = 0x6d6f76

// claim holds, for as long as a process runs a move, a transaction-level
// advisory lock on primary keyed by the move id, on a connection of its own.
// A process that dies loses its connection and with it the claim, so resume
// can start at once; a transaction lock also holds through a transaction
// pooler.
type claim struct {
	conn *pgx.Conn
	tx   pgx.Tx
}

func (m *Mover) claim(ctx context.Context, id int64) (*claim, error) {
	cfg := m.primary.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "pwb-mover"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to primary: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		conn.Close(ctx)
		return nil, err
	}
	// The simple protocol leaves no portal open, so the idle transaction
	// holds no snapshot back from vacuum for the length of the move.
	var ok bool
	if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1::int4, $2::int4)", pgx.QueryExecModeSimpleProtocol,
		lockClass, int32(id)).Scan(&ok); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	if !ok {
		conn.Close(ctx)
		return nil, refusal(fmt.Errorf("move %d: %w", id, ErrBusy))
	}
	return &claim{conn: conn, tx: tx}, nil
}

// release ends the claim. The rollback returns once the server has let the
// lock go, so whoever looks next (a resume, the watcher's Claimed) finds the
// move free; closing alone would free it only when the server gets round to
// ending the session.
func (c *claim) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.tx.Rollback(ctx) // on failure, closing the connection frees the lock
	c.conn.Close(ctx)
}

// Claimed reports whether some process is running move id right now. A move
// that is unfinished, not failed and unclaimed was left by a process that
// died.
func Claimed(ctx context.Context, primary *pgxpool.Pool, id int64) (bool, error) {
	var free bool
	err := pgx.BeginFunc(ctx, primary, func(tx pgx.Tx) error {
		// The lock, if taken, ends with this transaction.
		return tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1::int4, $2::int4)", lockClass, int32(id)).Scan(&free)
	})
	if err != nil {
		return false, fmt.Errorf("checking who runs move %d: %w", id, err)
	}
	return !free, nil
}

// claimMove claims move id and reads it from the journal.
func (m *Mover) claimMove(ctx context.Context, id int64) (*claim, Move, error) {
	c, err := m.claim(ctx, id)
	if err != nil {
		return nil, Move{}, err
	}
	mv, err := Get(ctx, m.primary, id)
	if err != nil {
		c.release()
		if errors.Is(err, ErrNotFound) {
			err = refusal(err)
		}
		return nil, Move{}, err
	}
	return c, mv, nil
}

// Run carries move id through its remaining steps, from wherever the journal
// says it stopped, to done. A failure is recorded in the journal with the
// step it happened in, and returned; Run (resume) again continues from that
// step, Abort rolls back if the switch has not happened.
func (m *Mover) Run(ctx context.Context, id int64) (Move, error) {
	c, mv, err := m.claimMove(ctx, id)
	if err != nil {
		return mv, err
	}
	defer c.release()
	if mv.Finished() {
		return mv, refuse("move %d of tenant %d (%s) is already %s", mv.ID, mv.WebsiteID, mv.Subdomain, mv.State)
	}
	// Journal reads and the failure record outlive an interrupt (Ctrl-C).
	jctx := context.WithoutCancel(ctx)
	for mv.Step() != StateDone {
		step := mv.Step()
		err := ctx.Err()
		if err == nil {
			err = m.step(ctx, mv)
		}
		if err != nil {
			rctx, cancel := context.WithTimeout(jctx, 10*time.Second)
			defer cancel()
			if ctx.Err() != nil {
				err = fmt.Errorf("interrupted while %s: %w", step, err)
			}
			if jerr := setFailed(rctx, m.primary, id, step, err); jerr != nil {
				err = errors.Join(err, jerr)
			}
			if failed, gerr := Get(rctx, m.primary, id); gerr == nil {
				mv = failed
			}
			return mv, fmt.Errorf("move %d failed while %s: %w", id, step, err)
		}
		if mv, err = Get(jctx, m.primary, id); err != nil {
			return mv, err
		}
	}
	return mv, nil
}

// step performs the step that follows mv's state and records it.
func (m *Mover) step(ctx context.Context, mv Move) error {
	var next string
	switch mv.Step() {
	case StatePlanned:
		next = StateFrozen
		if err := m.freeze(ctx, mv); err != nil {
			return err
		}
	case StateFrozen:
		next = StateCopying
	case StateCopying:
		next = StateCopied
		if err := m.copy(ctx, mv); err != nil {
			return err
		}
	case StateCopied:
		next = StateVerified
		if err := m.verify(ctx, mv); err != nil {
			return err
		}
	case StateVerified:
		// The switch records its state in its own transaction.
		if err := m.switchOver(ctx, mv); err != nil {
			return err
		}
		m.emit(Event{Move: mv.ID, Phase: StateSwitched, RowsTotal: mv.RowsTotal(), BytesTotal: mv.BytesTotal()})
		m.pause(StateSwitched)
		return nil
	case StateSwitched:
		next = StateCleaned
		if err := m.cleanup(ctx, mv); err != nil {
			return err
		}
	case StateCleaned:
		next = StateDone
	default:
		return fmt.Errorf("move %d is in unknown state %q", mv.ID, mv.Step())
	}
	if err := setState(ctx, m.primary, mv.ID, next); err != nil {
		return err
	}
	m.emit(Event{Move: mv.ID, Phase: next, RowsTotal: mv.RowsTotal(), BytesTotal: mv.BytesTotal()})
	if next != StateDone {
		m.pause(next)
	}
	return nil
}

// freeze sets the tenant read_only in the registry, which every app process
// hears of at once and every write re-checks, then takes the exclusive write
// fence on the source, which waits out the writes already past that check.
// Then nothing writes the tenant's rows until the switch, and its exact row
// counts are recorded.
func (m *Mover) freeze(ctx context.Context, mv Move) error {
	err := pgx.BeginFunc(ctx, m.primary, func(tx pgx.Tx) error {
		w, err := registry.LockForUpdate(ctx, tx, mv.WebsiteID)
		if err != nil {
			return err
		}
		if w.ShardName != mv.Source {
			return fmt.Errorf("the registry puts the tenant on %q, not on the move's source %q", w.ShardName, mv.Source)
		}
		switch w.Status {
		case registry.StatusReadOnly:
		case registry.StatusActive:
			if err := registry.SetStatus(ctx, tx, w.ID, registry.StatusReadOnly); err != nil {
				return err
			}
		default:
			return fmt.Errorf("the tenant was set to %s during the move", w.Status)
		}
		// The read-only window starts with this commit.
		_, err = tx.Exec(ctx, "UPDATE moves SET frozen_at = COALESCE(frozen_at, now()) WHERE id = $1", mv.ID)
		return err
	})
	if err != nil {
		return err
	}
	src, err := m.set.Pool(mv.Source)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, m.opt.FreezeTimeout)
	defer cancel()
	err = pgx.BeginFunc(fctx, src, func(tx pgx.Tx) error { return tenant.Freeze(fctx, tx, mv.WebsiteID) })
	if err != nil {
		if fctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("writes in flight on %q did not finish within %s", mv.Source, m.opt.FreezeTimeout)
		}
		return fmt.Errorf("taking the write fence on %q: %w", mv.Source, err)
	}
	// With writes stopped, the counts are exact.
	for _, t := range mv.Tables {
		rows, bytes, err := size(ctx, src, t.Name, mv.WebsiteID)
		if err != nil {
			return err
		}
		if _, err := m.primary.Exec(ctx, `UPDATE move_tables SET rows_total = $3, bytes_total = $4
			WHERE move_id = $1 AND table_name = $2`, mv.ID, t.Name, rows, bytes); err != nil {
			return fmt.Errorf("recording the size of %s: %w", t.Name, err)
		}
	}
	return nil
}

// checkFrozen refuses to go on unless the registry still has the tenant
// read_only on the source.
func (m *Mover) checkFrozen(ctx context.Context, mv Move) error {
	w, err := registry.Get(ctx, m.primary, mv.WebsiteID)
	if err != nil {
		return err
	}
	if w.ShardName != mv.Source || w.Status != registry.StatusReadOnly {
		return fmt.Errorf("the tenant should be read_only on %q but the registry says %s on %q", mv.Source, w.Status, w.ShardName)
	}
	return nil
}

// pools returns the source's and the target's pools.
func (m *Mover) pools(mv Move) (src, dst *pgxpool.Pool, err error) {
	if src, err = m.set.Pool(mv.Source); err != nil {
		return nil, nil, err
	}
	if dst, err = m.set.Pool(mv.Target); err != nil {
		return nil, nil, err
	}
	return src, dst, nil
}

// copy streams every table not yet copied, in foreign-key order.
func (m *Mover) copy(ctx context.Context, mv Move) error {
	if err := m.checkFrozen(ctx, mv); err != nil {
		return err
	}
	src, dst, err := m.pools(mv)
	if err != nil {
		return err
	}
	total, totalBytes := mv.RowsTotal(), mv.BytesTotal()
	var before, beforeBytes int64 // rows and bytes of the tables already copied
	for _, t := range mv.Tables {
		if t.Copied {
			before += t.RowsTotal
			beforeBytes += t.BytesCopied
			continue
		}
		report := func(rows, bytes int64) {
			m.emit(Event{Move: mv.ID, Phase: StateCopying, Table: t.Name, Rows: before + rows, RowsTotal: total,
				Bytes: beforeBytes + bytes, BytesTotal: totalBytes})
		}
		rows, bytes, err := m.copyTable(ctx, mv, t, src, dst, report)
		if err != nil {
			return fmt.Errorf("copying %s from %q to %q: %w", t.Name, mv.Source, mv.Target, err)
		}
		if rows != t.RowsTotal {
			return fmt.Errorf("copied %d rows of %s but the frozen source has %d", rows, t.Name, t.RowsTotal)
		}
		if _, err := m.primary.Exec(ctx, `UPDATE move_tables SET (copied, rows_copied, bytes_copied) = (true, $3, $4)
			WHERE move_id = $1 AND table_name = $2`, mv.ID, t.Name, rows, bytes); err != nil {
			return fmt.Errorf("recording the copy of %s: %w", t.Name, err)
		}
		before += rows
		beforeBytes += bytes
		report(0, 0)
	}
	return nil
}

// copyTable copies one table in one target transaction, which first removes
// whatever an interrupted earlier attempt left, so it can always be run
// again.
func (m *Mover) copyTable(ctx context.Context, mv Move, t TableState, src, dst *pgxpool.Pool, report func(rows, bytes int64)) (int64, int64, error) {
	cols, err := columns(ctx, src, t.Name)
	if err != nil {
		return 0, 0, err
	}
	s, err := src.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer s.Release()
	// The source's COPY gets a read-only transaction only to lift the
	// statement timeout in it.
	stx, err := s.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, 0, err
	}
	defer stx.Rollback(context.WithoutCancel(ctx))
	if err := liftStatementTimeout(ctx, stx); err != nil {
		return 0, 0, err
	}
	tx, err := dst.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := liftStatementTimeout(ctx, tx); err != nil {
		return 0, 0, err
	}
	if _, err := tx.Exec(ctx, "DELETE FROM "+ident(t.Name)+" WHERE website_id = $1", mv.WebsiteID); err != nil {
		return 0, 0, fmt.Errorf("removing rows left by an earlier attempt: %w", err)
	}
	list := columnList(cols)
	copyTo := "COPY (SELECT " + list + " FROM " + ident(t.Name) + " WHERE website_id = " +
		strconv.FormatInt(mv.WebsiteID, 10) + ") TO STDOUT (FORMAT binary)"
	copyFrom := "COPY " + ident(t.Name) + " (" + list + ") FROM STDIN (FORMAT binary)"
	var last time.Time
	paused := false
	counter := &tupleCounter{}
	counter.onRow = func(rows, bytes int64) error {
		if rows%256 == 0 && time.Since(last) >= progressEvery {
			last = time.Now()
			report(rows, bytes)
			m.primary.Exec(ctx, `UPDATE move_tables SET rows_copied = $3, bytes_copied = $4
				WHERE move_id = $1 AND table_name = $2`, mv.ID, t.Name, rows, bytes) // best effort: progress only
		}
		if !paused && m.opt.Pause != nil && rows*2 >= t.RowsTotal && rows > 0 {
			paused = true
			if err := counter.out.Flush(); err != nil { // the target has half the table
				return err
			}
			m.pause("mid-copy:" + t.Name)
		}
		return nil
	}
	n, err := pipe(ctx, s.Conn().PgConn(), tx.Conn().PgConn(), copyTo, copyFrom, counter)
	if err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, err
	}
	return n, counter.bytes, nil
}

// liftStatementTimeout lets the rest of tx run as long as it needs: pwb
// serve starts its sessions with a statement_timeout meant for web requests
// (shard.WithStatementTimeout), and it runs moves too, whose copies, scans
// and deletes of a big tenant take far longer. SET LOCAL ends with tx, so the
// connection goes back to the pool with the timeout in place, and it holds
// through a transaction pooler.
func liftStatementTimeout(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
		return fmt.Errorf("lifting the statement timeout: %w", err)
	}
	return nil
}

// verify compares every table's count and checksum on both sides, reading
// the two shards at the same time.
func (m *Mover) verify(ctx context.Context, mv Move) error {
	if err := m.checkFrozen(ctx, mv); err != nil {
		return err
	}
	src, dst, err := m.pools(mv)
	if err != nil {
		return err
	}
	names := make([]string, len(mv.Tables))
	cols := map[string][]string{}
	for i, t := range mv.Tables {
		names[i] = t.Name
		if cols[t.Name], err = columns(ctx, src, t.Name); err != nil {
			return err
		}
	}
	m.emit(Event{Move: mv.ID, Phase: "verifying", Rows: 0, RowsTotal: mv.RowsTotal()})
	var srcSums, dstSums []Sum
	var srcErr, dstErr error
	var wg sync.WaitGroup
	wg.Go(func() { srcSums, srcErr = sumTables(ctx, src, names, cols, mv.WebsiteID) })
	wg.Go(func() { dstSums, dstErr = sumTables(ctx, dst, names, cols, mv.WebsiteID) })
	wg.Wait()
	if srcErr != nil {
		return fmt.Errorf("source %q: %w", mv.Source, srcErr)
	}
	if dstErr != nil {
		return fmt.Errorf("target %q: %w", mv.Target, dstErr)
	}
	var bad []string
	for i, name := range names {
		if _, err := m.primary.Exec(ctx, `UPDATE move_tables SET source_checksum = $3, target_checksum = $4
			WHERE move_id = $1 AND table_name = $2`, mv.ID, name, srcSums[i].String(), dstSums[i].String()); err != nil {
			return fmt.Errorf("recording checksums of %s: %w", name, err)
		}
		if srcSums[i] != dstSums[i] {
			bad = append(bad, fmt.Sprintf("%s: source %s, target %s", name, srcSums[i], dstSums[i]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the copy differs from the source: %s", strings.Join(bad, "; "))
	}
	m.emit(Event{Move: mv.ID, Phase: "verifying", Rows: mv.RowsTotal(), RowsTotal: mv.RowsTotal()})
	return nil
}

// switchOver points the registry at the target and makes the tenant active
// again in one primary transaction that also records the switch, so the
// journal and the registry can never disagree about it.
func (m *Mover) switchOver(ctx context.Context, mv Move) error {
	return pgx.BeginFunc(ctx, m.primary, func(tx pgx.Tx) error {
		w, err := registry.LockForUpdate(ctx, tx, mv.WebsiteID)
		if err != nil {
			return err
		}
		if w.ShardName != mv.Source || w.Status != registry.StatusReadOnly {
			return fmt.Errorf("the tenant should be read_only on %q but the registry says %s on %q", mv.Source, w.Status, w.ShardName)
		}
		if err := registry.SetShard(ctx, tx, w.ID, mv.Target); err != nil {
			return err
		}
		if err := registry.SetStatus(ctx, tx, w.ID, registry.StatusActive); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE moves SET state = 'switched', failed_state = NULL, error = NULL,
			switched_at = now(), updated_at = now() WHERE id = $1`, mv.ID)
		return err
	})
}

// cleanup deletes the tenant's rows from the source, children first, in
// batches, once the registry is known to point elsewhere.
func (m *Mover) cleanup(ctx context.Context, mv Move) error {
	w, err := registry.Get(ctx, m.primary, mv.WebsiteID)
	if err != nil {
		return err
	}
	if w.ShardName == mv.Source {
		return fmt.Errorf("the registry still puts the tenant on %q: its rows there are not deleted", mv.Source)
	}
	if mv.SwitchedAt != nil {
		if wait := time.Until(mv.SwitchedAt.Add(m.opt.CleanupDelay)); wait > 0 {
			m.emit(Event{Move: mv.ID, Phase: "waiting", RowsTotal: mv.RowsTotal()})
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	src, err := m.set.Pool(mv.Source)
	if err != nil {
		return err
	}
	return m.deleteRows(ctx, mv, src, "cleaning", true)
}

// deleteRows deletes the tenant's rows from pool in batches, children first.
// When journal is set, each batch is added to the table's rows_deleted.
func (m *Mover) deleteRows(ctx context.Context, mv Move, pool *pgxpool.Pool, phase string, journal bool) error {
	total := mv.RowsTotal()
	var done int64
	for _, t := range mv.Tables {
		done += t.RowsDeleted
	}
	var last time.Time
	paused := false
	for i := len(mv.Tables) - 1; i >= 0; i-- {
		t := mv.Tables[i]
		for {
			var n int64
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if err := liftStatementTimeout(ctx, tx); err != nil {
					return err
				}
				tag, err := tx.Exec(ctx, "DELETE FROM "+ident(t.Name)+" WHERE id IN (SELECT id FROM "+ident(t.Name)+
					" WHERE website_id = $1 LIMIT $2)", mv.WebsiteID, m.opt.DeleteBatch)
				n = tag.RowsAffected()
				return err
			})
			if err != nil {
				return fmt.Errorf("deleting rows of %s: %w", t.Name, err)
			}
			if n == 0 {
				if journal { // exact even if a crash fell between a batch and its record
					if _, err := m.primary.Exec(ctx, `UPDATE move_tables SET rows_deleted = rows_total
						WHERE move_id = $1 AND table_name = $2`, mv.ID, t.Name); err != nil {
						return fmt.Errorf("recording the clean-up of %s: %w", t.Name, err)
					}
				}
				break
			}
			done += n
			if journal {
				if _, err := m.primary.Exec(ctx, `UPDATE move_tables SET rows_deleted = rows_deleted + $3
					WHERE move_id = $1 AND table_name = $2`, mv.ID, t.Name, n); err != nil {
					return fmt.Errorf("recording the clean-up of %s: %w", t.Name, err)
				}
			}
			if time.Since(last) >= progressEvery {
				last = time.Now()
				m.emit(Event{Move: mv.ID, Phase: phase, Table: t.Name, Rows: min(done, total), RowsTotal: total})
			}
			if journal && !paused {
				paused = true
				m.pause("mid-cleanup")
			}
		}
	}
	m.emit(Event{Move: mv.ID, Phase: phase, Rows: total, RowsTotal: total})
	return nil
}

// Abort rolls back a move that has not switched: the tenant becomes active on
// its source again, then its rows copied to the target are deleted. If the
// target cannot be reached, the tenant is still unfrozen, and the move stays
// aborted with its target not cleared; Abort again removes the rows once the
// target is back.
func (m *Mover) Abort(ctx context.Context, id int64) (Move, error) {
	c, mv, err := m.claimMove(ctx, id)
	if err != nil {
		return mv, err
	}
	defer c.release()
	switch {
	case mv.State == StateDone:
		return mv, refuse("move %d of tenant %d (%s) is already done", mv.ID, mv.WebsiteID, mv.Subdomain)
	case mv.State == StateAborted && mv.TargetCleared:
		return mv, refuse("move %d of tenant %d (%s) is already aborted", mv.ID, mv.WebsiteID, mv.Subdomain)
	case mv.Switched():
		return mv, refuse("move %d of tenant %d (%s) has already switched the tenant to %q: it can only be finished, with `pwb sharding resume %d`",
			mv.ID, mv.WebsiteID, mv.Subdomain, mv.Target, mv.ID)
	}
	if mv.State != StateAborted {
		if err := m.unfreeze(ctx, mv); err != nil {
			return mv, err
		}
	}
	dst, err := m.set.Pool(mv.Target)
	if err == nil {
		err = m.deleteRows(ctx, mv, dst, "aborting", false)
	}
	if err != nil {
		cause := fmt.Errorf("rows copied to %q may remain there: %w; run `pwb sharding abort %d` again once it is reachable", mv.Target, err, mv.ID)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		m.primary.Exec(rctx, "UPDATE moves SET error = $2, updated_at = now() WHERE id = $1", mv.ID, oneLine(cause.Error()))
		return mv, fmt.Errorf("move %d aborted and tenant %d (%s) is active on %q again, but %w", mv.ID, mv.WebsiteID, mv.Subdomain, mv.Source, cause)
	}
	if _, err := m.primary.Exec(ctx, "UPDATE moves SET target_cleared = true, error = NULL, updated_at = now() WHERE id = $1", mv.ID); err != nil {
		return mv, fmt.Errorf("recording the abort of move %d: %w", mv.ID, err)
	}
	return Get(ctx, m.primary, id)
}

// unfreeze makes the tenant active on its source again and records the move
// aborted, in one primary transaction.
func (m *Mover) unfreeze(ctx context.Context, mv Move) error {
	return pgx.BeginFunc(ctx, m.primary, func(tx pgx.Tx) error {
		w, err := registry.LockForUpdate(ctx, tx, mv.WebsiteID)
		if err != nil {
			return err
		}
		if w.ShardName == mv.Source && w.Status == registry.StatusReadOnly {
			if err := registry.SetStatus(ctx, tx, w.ID, registry.StatusActive); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE moves SET state = 'aborted', failed_state = NULL, error = NULL,
			finished_at = now(), updated_at = now() WHERE id = $1`, mv.ID)
		return err
	})
}

// oneLine folds an error message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
