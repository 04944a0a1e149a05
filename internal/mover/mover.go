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

	"github.com/propertywebbuilder/pwb/internal/changes"
	"github.com/propertywebbuilder/pwb/internal/fault"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Event reports a move's progress. Rows and RowsTotal count rows copied
// during the copy and rows deleted during the clean-up, over all tables.
// Bytes counts the COPY stream so far; BytesTotal is the rows' size as
// stored, so the two compare only roughly.
type Event struct {
	Move       int64         `json:"move"`
	Phase      journal.Phase `json:"phase"`
	Table      string        `json:"table,omitempty"`
	Rows       int64         `json:"rows"`
	RowsTotal  int64         `json:"rows_total"`
	Bytes      int64         `json:"bytes"`
	BytesTotal int64         `json:"bytes_total"`
	// An online move's catch-up, while it streams: changes applied, and how
	// far the target is behind the source.
	Changes    int64   `json:"changes,omitempty"`
	LagBytes   int64   `json:"lag_bytes,omitempty"`
	LagSeconds float64 `json:"lag_seconds,omitempty"`
	// Blocked is how long the cut-over held the tenant's writes.
	Blocked time.Duration `json:"blocked_ns,omitempty"`
	// Detail says more about the phase, in words.
	Detail string `json:"detail,omitempty"`
}

// Options tunes a Mover. The zero value is ready to use.
type Options struct {
	// Progress, if set, receives events as the move goes, a few per second
	// at most during the copy and the clean-up. Progress and Pause are
	// never called at the same time.
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
	// CutoverBudget bounds how long an online move's cut-over holds the
	// tenant's writes: waiting for the write fence, for the target to apply
	// the last changes, and for the registry's switch. An attempt that
	// would take longer lets go and is tried again. Default
	// DefaultCutoverBudget.
	CutoverBudget time.Duration
	// CutoverAttempts is how many cut-overs an online move tries before it
	// fails (and can be resumed). Default 60, about five minutes.
	CutoverAttempts int
}

// DefaultCutoverBudget keeps an online move's cut-over well under a second.
const DefaultCutoverBudget = 800 * time.Millisecond

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
	// hooks makes Progress and Pause calls one at a time: an online move
	// reports from its stream's goroutines as well as its own.
	hooks sync.Mutex
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
	if opt.CutoverBudget <= 0 {
		opt.CutoverBudget = DefaultCutoverBudget
	}
	if opt.CutoverAttempts <= 0 {
		opt.CutoverAttempts = 60
	}
	return &Mover{set: set, primary: primary, opt: opt}, nil
}

func (m *Mover) pause(point string) {
	if m.opt.Pause != nil {
		m.hooks.Lock()
		defer m.hooks.Unlock()
		m.opt.Pause(point)
	}
}

func (m *Mover) emit(e Event) {
	if m.opt.Progress != nil {
		m.hooks.Lock()
		defer m.hooks.Unlock()
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
			return journal.Refusal(err)
		}
		// A move started since the plan explains a changed status too.
		if err := journal.RefuseIfMoving(ctx, tx, w.ID); err != nil {
			return journal.Refusal(err)
		}
		if w.Status != registry.StatusActive || w.ShardName != p.Source {
			return journal.Refuse("tenant %d (%s) changed since the plan: it is now %s on shard %q", w.ID, w.Subdomain, w.Status, w.ShardName)
		}
		if id, err = journal.Insert(ctx, tx, p.newMove(startedBy)); err != nil || also == nil {
			return err
		}
		return also(ctx, tx, id)
	})
	if errors.Is(err, journal.ErrUnfinishedNow) {
		if m, found, _ := journal.Unfinished(ctx, m.primary, p.Website.ID); found {
			return 0, journal.Refusal(journal.UnfinishedError(m))
		}
		return 0, journal.Refuse("another move of tenant %d (%s) started at the same moment", p.Website.ID, p.Website.Subdomain)
	}
	if err != nil {
		return 0, err
	}
	m.pause(string(journal.StatePlanned))
	return id, nil
}

// ErrBusy means another process is running the move right now.
var ErrBusy = fault.New(fault.Conflict, "the move is being run by another process")

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
		return nil, journal.Refusal(fmt.Errorf("move %d: %w", id, ErrBusy))
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
func (m *Mover) claimMove(ctx context.Context, id int64) (*claim, journal.Move, error) {
	c, err := m.claim(ctx, id)
	if err != nil {
		return nil, journal.Move{}, err
	}
	mv, err := journal.Get(ctx, m.primary, id)
	if err != nil {
		c.release()
		if errors.Is(err, journal.ErrNotFound) {
			err = journal.Refusal(err)
		}
		return nil, journal.Move{}, err
	}
	return c, mv, nil
}

// Run carries move id through its remaining steps, from wherever the journal
// says it stopped, to done. A failure is recorded in the journal with the
// step it happened in, and returned; Run (resume) again continues from that
// step, Abort rolls back if the switch has not happened.
func (m *Mover) Run(ctx context.Context, id int64) (journal.Move, error) {
	c, mv, err := m.claimMove(ctx, id)
	if err != nil {
		return mv, err
	}
	defer c.release()
	if err := mv.ResumeRefusal(); err != nil {
		return mv, err
	}
	// Journal reads and the failure record outlive an interrupt (Ctrl-C).
	jctx := context.WithoutCancel(ctx)
	r := &run{m: m}
	defer r.stopStream(jctx)
	for mv.Step() != journal.StateDone {
		step := mv.Step()
		err := ctx.Err()
		if err == nil {
			if mv.Online() {
				err = r.step(ctx, mv)
			} else {
				err = m.step(ctx, mv)
			}
		}
		if errors.Is(err, changes.ErrSlotLost) && ctx.Err() == nil && mv.CopyAttempts < maxCopyAttempts {
			// Nothing streamed can be trusted to be complete: copy again,
			// with a new slot.
			r.stopStream(jctx)
			m.emit(Event{Move: mv.ID, Phase: journal.StatePrepared.Phase(), Detail: "the slot was lost; copying again"})
			err = journal.SetState(ctx, m.primary, id, journal.StatePrepared)
		}
		if err != nil {
			rctx, cancel := context.WithTimeout(jctx, 10*time.Second)
			defer cancel()
			// A step may record a state of its own before it fails (an
			// online copy records copying): the failure is in that one.
			if now, gerr := journal.Get(rctx, m.primary, id); gerr == nil && now.State != journal.StateFailed && now.State != step {
				step = now.State
			}
			if ctx.Err() != nil {
				err = fmt.Errorf("interrupted while %s: %w", step, err)
			}
			if jerr := journal.SetFailed(rctx, m.primary, id, step, err); jerr != nil {
				err = errors.Join(err, jerr)
			}
			if failed, gerr := journal.Get(rctx, m.primary, id); gerr == nil {
				mv = failed
			}
			return mv, fmt.Errorf("move %d failed while %s: %w", id, step, err)
		}
		if mv, err = journal.Get(jctx, m.primary, id); err != nil {
			return mv, err
		}
	}
	return mv, nil
}

// step performs the step of a freeze move that follows mv's state and
// records it.
func (m *Mover) step(ctx context.Context, mv journal.Move) error {
	var next journal.State
	switch mv.Step() {
	case journal.StatePlanned:
		next = journal.StateFrozen
		if err := m.freeze(ctx, mv); err != nil {
			return err
		}
	case journal.StateFrozen:
		next = journal.StateCopying
	case journal.StateCopying:
		next = journal.StateCopied
		if err := m.copy(ctx, mv); err != nil {
			return err
		}
	case journal.StateCopied:
		next = journal.StateVerified
		if err := m.verify(ctx, mv); err != nil {
			return err
		}
	case journal.StateVerified:
		// The switch records its state in its own transaction.
		if err := m.switchOver(ctx, mv); err != nil {
			return err
		}
		m.emit(Event{Move: mv.ID, Phase: journal.StateSwitched.Phase(), RowsTotal: mv.RowsTotal(), BytesTotal: mv.BytesTotal()})
		m.pause(string(journal.StateSwitched))
		return nil
	case journal.StateSwitched:
		next = journal.StateCleaned
		if err := m.cleanup(ctx, mv); err != nil {
			return err
		}
	case journal.StateCleaned:
		next = journal.StateDone
	default:
		return fmt.Errorf("move %d is in unknown state %q", mv.ID, mv.Step())
	}
	return m.reached(ctx, mv, next)
}

// reached records that mv reached state next, reports it, and pauses there
// for tests.
func (m *Mover) reached(ctx context.Context, mv journal.Move, next journal.State) error {
	if err := journal.SetState(ctx, m.primary, mv.ID, next); err != nil {
		return err
	}
	m.emit(Event{Move: mv.ID, Phase: next.Phase(), RowsTotal: mv.RowsTotal(), BytesTotal: mv.BytesTotal()})
	if next != journal.StateDone {
		m.pause(string(next))
	}
	return nil
}

// freeze sets the tenant read_only in the registry, which every app process
// hears of at once and every write re-checks, then takes the exclusive write
// fence on the source, which waits out the writes already past that check.
// Then nothing writes the tenant's rows until the switch, and its exact row
// counts are recorded.
func (m *Mover) freeze(ctx context.Context, mv journal.Move) error {
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
		return journal.MarkFrozen(ctx, tx, mv.ID)
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
		if err := journal.SetTableSize(ctx, m.primary, mv.ID, t.Name, rows, bytes); err != nil {
			return err
		}
	}
	return nil
}

// checkSource refuses to go on unless the registry still has the tenant on
// the source, read_only for a freeze move and active for an online one.
func (m *Mover) checkSource(ctx context.Context, mv journal.Move) error {
	w, err := registry.Get(ctx, m.primary, mv.WebsiteID)
	if err != nil {
		return err
	}
	want := registry.StatusReadOnly
	if mv.Online() {
		want = registry.StatusActive
	}
	if w.ShardName != mv.Source || w.Status != want {
		return fmt.Errorf("the tenant should be %s on %q but the registry says %s on %q", want, mv.Source, w.Status, w.ShardName)
	}
	return nil
}

// pools returns the source's and the target's pools.
func (m *Mover) pools(mv journal.Move) (src, dst *pgxpool.Pool, err error) {
	if src, err = m.set.Pool(mv.Source); err != nil {
		return nil, nil, err
	}
	if dst, err = m.set.Pool(mv.Target); err != nil {
		return nil, nil, err
	}
	return src, dst, nil
}

// copy streams every table not yet copied, in foreign-key order.
func (m *Mover) copy(ctx context.Context, mv journal.Move) error {
	if err := m.checkSource(ctx, mv); err != nil {
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
			m.emit(Event{Move: mv.ID, Phase: journal.StateCopying.Phase(), Table: t.Name, Rows: before + rows, RowsTotal: total,
				Bytes: beforeBytes + bytes, BytesTotal: totalBytes})
		}
		rows, bytes, err := m.copyTable(ctx, mv, t, src, dst, "", report)
		if err != nil {
			return fmt.Errorf("copying %s from %q to %q: %w", t.Name, mv.Source, mv.Target, err)
		}
		if rows != t.RowsTotal {
			return fmt.Errorf("copied %d rows of %s but the frozen source has %d", rows, t.Name, t.RowsTotal)
		}
		if err := journal.SetTableCopied(ctx, m.primary, mv.ID, t.Name, rows, bytes); err != nil {
			return err
		}
		before += rows
		beforeBytes += bytes
		report(0, 0)
	}
	return nil
}

// copyTable copies one table in one target transaction, which first removes
// whatever an interrupted earlier attempt left, so it can always be run
// again. With snapshot set, the source is read as of that exported snapshot
// (an online move's slot).
func (m *Mover) copyTable(ctx context.Context, mv journal.Move, t journal.TableState, src, dst *pgxpool.Pool,
	snapshot string, report func(rows, bytes int64)) (int64, int64, error) {
	cols, err := columns(ctx, src, t.Name)
	if err != nil {
		return 0, 0, err
	}
	s, err := src.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer s.Release()
	// The source's COPY gets a read-only transaction to lift the statement
	// timeout in it and, online, to read at the slot's snapshot.
	stx, err := beginSource(ctx, s, snapshot)
	if err != nil {
		return 0, 0, err
	}
	defer stx.Rollback(context.WithoutCancel(ctx))
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
			journal.SetTableProgress(ctx, m.primary, mv.ID, t.Name, rows, bytes) // best effort: progress only
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

// beginSource begins a read-only transaction on a source connection, with
// the statement timeout lifted and, if snapshot is set, reading as of that
// exported snapshot.
func beginSource(ctx context.Context, c *pgxpool.Conn, snapshot string) (pgx.Tx, error) {
	opt := pgx.TxOptions{AccessMode: pgx.ReadOnly}
	if snapshot != "" {
		opt.IsoLevel = pgx.RepeatableRead
	}
	tx, err := c.BeginTx(ctx, opt)
	if err != nil {
		return nil, err
	}
	if snapshot != "" {
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapshot)); err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("reading at the slot's snapshot: %w", err)
		}
	}
	if err := liftStatementTimeout(ctx, tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return tx, nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

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
// the two shards at the same time, while the tenant is frozen.
func (m *Mover) verify(ctx context.Context, mv journal.Move) error {
	if err := m.checkSource(ctx, mv); err != nil {
		return err
	}
	src, dst, err := m.pools(mv)
	if err != nil {
		return err
	}
	return m.compare(ctx, mv, src, dst, "")
}

// compare checksums every table on src (as of snapshot, if set) and dst at
// the same time, records both in the journal, and fails if any differ.
func (m *Mover) compare(ctx context.Context, mv journal.Move, src, dst *pgxpool.Pool, snapshot string) error {
	names := make([]string, len(mv.Tables))
	cols := map[string][]string{}
	var err error
	for i, t := range mv.Tables {
		names[i] = t.Name
		if cols[t.Name], err = columns(ctx, src, t.Name); err != nil {
			return err
		}
	}
	m.emit(Event{Move: mv.ID, Phase: journal.PhaseVerifying, Rows: 0, RowsTotal: mv.RowsTotal()})
	var srcSums, dstSums []Sum
	var srcErr, dstErr error
	var wg sync.WaitGroup
	wg.Go(func() { srcSums, srcErr = sumTables(ctx, src, names, cols, mv.WebsiteID, snapshot) })
	wg.Go(func() { dstSums, dstErr = sumTables(ctx, dst, names, cols, mv.WebsiteID, "") })
	wg.Wait()
	if srcErr != nil {
		return fmt.Errorf("source %q: %w", mv.Source, srcErr)
	}
	if dstErr != nil {
		return fmt.Errorf("target %q: %w", mv.Target, dstErr)
	}
	var bad []string
	for i, name := range names {
		if err := journal.SetChecksums(ctx, m.primary, mv.ID, name, srcSums[i].String(), dstSums[i].String()); err != nil {
			return err
		}
		if srcSums[i] != dstSums[i] {
			bad = append(bad, fmt.Sprintf("%s: source %s, target %s", name, srcSums[i], dstSums[i]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the copy differs from the source: %s", strings.Join(bad, "; "))
	}
	m.emit(Event{Move: mv.ID, Phase: journal.PhaseVerifying, Rows: mv.RowsTotal(), RowsTotal: mv.RowsTotal()})
	return nil
}

// switchOver points the registry at the target and makes the tenant active
// (again, after a freeze) in one primary transaction that also records the switch, so the
// journal and the registry can never disagree about it.
func (m *Mover) switchOver(ctx context.Context, mv journal.Move) error {
	return pgx.BeginFunc(ctx, m.primary, func(tx pgx.Tx) error {
		w, err := registry.LockForUpdate(ctx, tx, mv.WebsiteID)
		if err != nil {
			return err
		}
		want := registry.StatusReadOnly
		if mv.Online() {
			want = registry.StatusActive
		}
		if w.ShardName != mv.Source || w.Status != want {
			return fmt.Errorf("the tenant should be %s on %q but the registry says %s on %q", want, mv.Source, w.Status, w.ShardName)
		}
		if err := registry.SetShard(ctx, tx, w.ID, mv.Target); err != nil {
			return err
		}
		if w.Status != registry.StatusActive {
			if err := registry.SetStatus(ctx, tx, w.ID, registry.StatusActive); err != nil {
				return err
			}
		}
		return journal.MarkSwitched(ctx, tx, mv.ID)
	})
}

// cleanup deletes the tenant's rows from the source, children first, in
// batches, once the registry is known to point elsewhere.
func (m *Mover) cleanup(ctx context.Context, mv journal.Move) error {
	w, err := registry.Get(ctx, m.primary, mv.WebsiteID)
	if err != nil {
		return err
	}
	if w.ShardName == mv.Source {
		return fmt.Errorf("the registry still puts the tenant on %q: its rows there are not deleted", mv.Source)
	}
	if mv.SwitchedAt != nil {
		if wait := time.Until(mv.SwitchedAt.Add(m.opt.CleanupDelay)); wait > 0 {
			m.emit(Event{Move: mv.ID, Phase: journal.PhaseWaiting, RowsTotal: mv.RowsTotal()})
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
	return m.deleteRows(ctx, mv, src, journal.PhaseCleaning, true)
}

// deleteRows deletes the tenant's rows from pool in batches, children first.
// When record is set, each batch is added to the table's rows_deleted.
// Progress goes out as phase, unless it is empty.
func (m *Mover) deleteRows(ctx context.Context, mv journal.Move, pool *pgxpool.Pool, phase journal.Phase, record bool) error {
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
				if record {
					if err := journal.SetAllDeleted(ctx, m.primary, mv.ID, t.Name); err != nil {
						return err
					}
				}
				break
			}
			done += n
			if record {
				if err := journal.AddDeleted(ctx, m.primary, mv.ID, t.Name, n); err != nil {
					return err
				}
			}
			if phase != "" && time.Since(last) >= progressEvery {
				last = time.Now()
				m.emit(Event{Move: mv.ID, Phase: phase, Table: t.Name, Rows: min(done, total), RowsTotal: total})
			}
			if record && !paused {
				paused = true
				m.pause("mid-cleanup")
			}
		}
	}
	if phase != "" {
		m.emit(Event{Move: mv.ID, Phase: phase, Rows: total, RowsTotal: total})
	}
	return nil
}

// Abort rolls back a move that has not switched: the tenant becomes active on
// its source again, then its rows copied to the target are deleted. If the
// target cannot be reached, the tenant is still unfrozen, and the move stays
// aborted with its target not cleared; Abort again removes the rows once the
// target is back.
func (m *Mover) Abort(ctx context.Context, id int64) (journal.Move, error) {
	c, mv, err := m.claimMove(ctx, id)
	if err != nil {
		return mv, err
	}
	defer c.release()
	if err := mv.AbortRefusal(); err != nil {
		return mv, err
	}
	if mv.State != journal.StateAborted {
		if err := m.unfreeze(ctx, mv); err != nil {
			return mv, err
		}
	}
	// An online move's slot would hold the source's WAL: it goes first.
	// One left behind (the source unreachable) is dropped by the sweep.
	artifactsErr := m.dropArtifacts(ctx, mv)
	dst, err := m.set.Pool(mv.Target)
	if err == nil {
		err = m.deleteRows(ctx, mv, dst, journal.PhaseAborting, false)
	}
	if err != nil {
		cause := fmt.Errorf("rows copied to %q may remain there: %w; run `pwb sharding abort %d` again once it is reachable", mv.Target, err, mv.ID)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		journal.SetError(rctx, m.primary, mv.ID, cause)
		return mv, fmt.Errorf("move %d aborted and tenant %d (%s) is active on %q again, but %w", mv.ID, mv.WebsiteID, mv.Subdomain, mv.Source, cause)
	}
	if err := journal.MarkTargetCleared(ctx, m.primary, mv.ID); err != nil {
		return mv, err
	}
	if artifactsErr != nil {
		cause := fmt.Errorf("its replication slot and publication on %q remain (%w); the periodic sweep drops them once it can", mv.Source, artifactsErr)
		journal.SetError(ctx, m.primary, mv.ID, cause)
		return mv, fmt.Errorf("move %d aborted and tenant %d (%s) is active on %q again, but %w", mv.ID, mv.WebsiteID, mv.Subdomain, mv.Source, cause)
	}
	return journal.Get(ctx, m.primary, id)
}

// unfreeze makes the tenant active on its source again and records the move
// aborted, in one primary transaction.
func (m *Mover) unfreeze(ctx context.Context, mv journal.Move) error {
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
		return journal.MarkAborted(ctx, tx, mv.ID)
	})
}
