package changes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrSlotLost marks the failure of a stream whose replication slot was
// invalidated: the source removed WAL the slot still needed (it fell further
// behind than max_slot_wal_keep_size allows). Nothing can resume it; the
// move has to start over with a new slot and a new copy.
var ErrSlotLost = errors.New("the move's replication slot was invalidated on the source (it fell behind by more WAL than max_slot_wal_keep_size keeps)")

// ErrPassed is returned by PauseAt when the stream has already applied a
// transaction or marker at or after the requested position, so it can no
// longer stop just before it. Hold the stream before taking the position to
// rule that out.
var ErrPassed = errors.New("the stream has already applied changes at or after that position")

// DefaultStatusInterval is how often, at the longest, a stream reports its
// applied position to the source, which also tells the source it is alive.
const DefaultStatusInterval = 10 * time.Second

// StreamOptions configure Start.
type StreamOptions struct {
	// ReplConnString is a normal connection string to the source database;
	// replication=database is added.
	ReplConnString string
	// Slot and Publication are the move's replication slot and publication
	// on the source.
	Slot, Publication string
	// MoveID keys the applied position in the target's move_positions.
	MoveID int64
	// WebsiteID is the tenant: a change of any other website fails the
	// stream, and target rows are only ever looked up within it.
	WebsiteID int64
	// Target is the target shard's database.
	Target *pgxpool.Pool
	// Source, if set, is a pool on the source database that WaitMarker uses
	// to flush the source's WAL while it waits: the source sends only
	// flushed WAL, and a marker emitted inside a transaction (a cut-over's)
	// is otherwise not flushed until something else flushes the WAL, which
	// on a quiet shard can take many seconds (see EmitMarker, FlushWAL).
	Source *pgxpool.Pool
	// MarkerPrefix is the logical message prefix of the move's markers;
	// empty means MarkerPrefix(MoveID).
	MarkerPrefix string
	// StatusInterval is how often, at the longest, the applied position is
	// reported to the source; 0 or more than DefaultStatusInterval means
	// DefaultStatusInterval. A stream that has applied everything it has
	// received also records the source's position at this pace, so the slot
	// does not keep WAL for an idle tenant.
	StatusInterval time.Duration
	// ApplyTimeout bounds the target's work on one source transaction; 0
	// means DefaultApplyTimeout. A target that takes longer fails the
	// stream.
	ApplyTimeout time.Duration
	// OnCommit, if set, is called by the applier after each source
	// transaction has committed on the target and before its position may be
	// confirmed to the source (tests use it to stop a mover at that point).
	// The stream applies nothing more until it returns.
	OnCommit func()

	hooks *hooks // tests only
}

// DefaultApplyTimeout is how long the target may take over one source
// transaction unless StreamOptions say otherwise.
const DefaultApplyTimeout = 5 * time.Minute

// hooks let tests kill a stream at chosen points. An error returned fails
// the stream as a cut connection or a crash would.
type hooks struct {
	// received runs in the receiver after each message of a transaction
	// (BEGIN, changes, COMMIT) is passed on; n counts them from 1 per stream.
	received func(n int) error
	// beforeCommit runs with the target transaction complete but not
	// committed; afterCommit once it has committed, before the position may
	// be confirmed to the source.
	beforeCommit, afterCommit func(t txnInfo) error
}

// txnInfo identifies a source transaction for hooks.
type txnInfo struct {
	xid         uint32
	commit, end LSN
}

// Stats describe a running stream.
type Stats struct {
	// Transactions and Changes applied and committed on the target by this
	// stream.
	Transactions, Changes int64
	// AppliedLSN is the source position the target holds: the end of the
	// last source transaction applied (or the idle position recorded).
	AppliedLSN LSN
	// LagBytes is how far the source's WAL is ahead of what the stream has
	// applied or found nothing to apply in; 0 when caught up.
	LagBytes int64
	// LagSeconds is the age of the oldest source transaction received but
	// not yet applied, by its commit time on the source; 0 when none.
	LagSeconds float64
	// LastError is the error that ended the stream, if it failed.
	LastError error
}

// Stream applies one tenant's changes from a slot to the target. Start one
// with Start; it runs until Stop or a failure (Done, Err).
type Stream struct {
	opts    StreamOptions
	conn    *pgconn.PgConn
	items   chan item
	cascade map[string][]string // child table -> tables it follows in ON DELETE CASCADE
	start   LSN                 // applied position at start

	ctx         context.Context // ends on failure or a forced stop
	cancel      context.CancelFunc
	stopCh      chan struct{}
	stopOnce    sync.Once
	applierDone chan struct{}
	done        chan struct{}

	confirmable atomic.Uint64 // committed on the target: may be confirmed
	serverEnd   atomic.Uint64 // latest WAL end the source reported

	pokeMu sync.Mutex
	poke   context.CancelFunc // wakes the receiver from its wait

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	err     error
	stopped bool
	// Gate: hold stops before the next item; gateOn stops before the first
	// transaction or marker at or after gate.
	hold, gateOn bool
	gate         LSN
	paused       bool
	pausedHasPos bool
	pausedPos    LSN
	passed       LSN // highest transaction or marker position let through
	markers      map[string]bool
	stats        Stats
	processed    LSN // everything before it has been handled
	pending      []pendingCommit
	lastWriteAt  time.Time // of the position on the target

	unchangedToast atomic.Int64 // columns left alone by an UPDATE (tests)
}

type pendingCommit struct {
	lsn LSN
	at  time.Time
}

// item is one message passed from the receiver to the applier: a parsed
// pgoutput message with the WAL position it came at, or (msg nil) an idle
// position: everything before it has been sent.
type item struct {
	lsn    LSN
	msg    pglogrepl.Message
	marker *marker
	idle   LSN
}

type marker struct {
	lsn     LSN
	content string
}

// Start streams the tenant's changes from o.Slot to o.Target. It resumes
// from the move's position in the target's move_positions table (none: from
// the slot's confirmed position) with
//
//	START_REPLICATION SLOT slot LOGICAL pos (proto_version '1',
//	    publication_names 'publication', messages 'true')
//
// and returns once the source has accepted that; the stream then runs in
// the background until Stop or a failure. A slot still held by a previous
// stream that is going away is waited for a few seconds.
func Start(ctx context.Context, o StreamOptions) (*Stream, error) {
	if err := checkName("slot", o.Slot); err != nil {
		return nil, err
	}
	if err := checkName("publication", o.Publication); err != nil {
		return nil, err
	}
	if o.Target == nil || o.MoveID <= 0 || o.WebsiteID <= 0 {
		return nil, errors.New("starting a change stream: target, move and website are required")
	}
	if o.MarkerPrefix == "" {
		o.MarkerPrefix = MarkerPrefix(o.MoveID)
	}
	if o.StatusInterval <= 0 || o.StatusInterval > DefaultStatusInterval {
		o.StatusInterval = DefaultStatusInterval
	}
	if o.ApplyTimeout <= 0 {
		o.ApplyTimeout = DefaultApplyTimeout
	}
	cascade, err := cascadeParents(ctx, o.Target)
	if err != nil {
		return nil, err
	}
	start, err := appliedPosition(ctx, o.Target, o.MoveID)
	if err != nil {
		return nil, err
	}
	conn, err := startReplication(ctx, o, start)
	if err != nil {
		return nil, err
	}
	s := &Stream{
		opts:        o,
		conn:        conn,
		items:       make(chan item, 256),
		cascade:     cascade,
		start:       start,
		stopCh:      make(chan struct{}),
		applierDone: make(chan struct{}),
		done:        make(chan struct{}),
		changed:     make(chan struct{}),
		markers:     map[string]bool{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.confirmable.Store(uint64(start))
	s.stats.AppliedLSN = start
	s.processed = start
	s.lastWriteAt = time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer closeConn(conn)
		if err := s.receive(); err != nil {
			s.fail(s.receiveError(err))
		}
	})
	wg.Go(func() {
		defer close(s.applierDone)
		if err := s.apply(); err != nil {
			s.fail(err)
		}
	})
	go func() {
		wg.Wait()
		s.cancel()
		close(s.done)
	}()
	return s, nil
}

// appliedPosition reads the move's applied source position on the target.
func appliedPosition(ctx context.Context, target *pgxpool.Pool, moveID int64) (LSN, error) {
	var s string
	err := target.QueryRow(ctx, "SELECT lsn::text FROM move_positions WHERE move_id = $1", moveID).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading move %d's applied position on the target: %w", moveID, err)
	}
	lsn, err := ParseLSN(s)
	if err != nil {
		return 0, fmt.Errorf("reading move %d's applied position on the target: %w", moveID, err)
	}
	return lsn, nil
}

// cascadeParents maps each table of the target to the tables whose deletes
// cascade to it (foreign keys ON DELETE CASCADE), as schema.table.
func cascadeParents(ctx context.Context, target *pgxpool.Pool) (map[string][]string, error) {
	rows, err := target.Query(ctx, `SELECT cn.nspname::text || '.' || c.relname::text, pn.nspname::text || '.' || p.relname::text
		FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
		JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
		WHERE k.contype = 'f' AND k.confdeltype = 'c'`)
	if err != nil {
		return nil, fmt.Errorf("reading the target's cascading foreign keys: %w", err)
	}
	out := map[string][]string{}
	var child, parent string
	_, err = pgx.ForEachRow(rows, []any{&child, &parent}, func() error {
		out[child] = append(out[child], parent)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the target's cascading foreign keys: %w", err)
	}
	return out, nil
}

// startReplication opens the replication connection and starts streaming
// at start, waiting a few seconds for a slot still held by a stream that is
// going away.
func startReplication(ctx context.Context, o StreamOptions, start LSN) (*pgconn.PgConn, error) {
	args := []string{
		"proto_version '1'",
		"publication_names " + quoteLiteral(o.Publication),
		"messages 'true'",
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := replConnect(ctx, o.ReplConnString)
		if err != nil {
			return nil, err
		}
		err = pglogrepl.StartReplication(ctx, conn, o.Slot, start, pglogrepl.StartReplicationOptions{
			Mode:       pglogrepl.LogicalReplication,
			PluginArgs: args,
		})
		if err == nil {
			return conn, nil
		}
		closeConn(conn)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == codeObjectInUse && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("starting to stream slot %s: %w", o.Slot, ctx.Err())
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		if slotLostError(err) {
			return nil, fmt.Errorf("%w: starting to stream slot %s: %w", ErrSlotLost, o.Slot, err)
		}
		return nil, fmt.Errorf("starting to stream slot %s from %s on the source: %w", o.Slot, start, err)
	}
}

// slotLostError reports the server's error for a slot that was
// invalidated: "can no longer get changes from replication slot" since
// PostgreSQL 16, "cannot read from logical replication slot" with a detail
// saying it was invalidated in 15.
func slotLostError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return strings.Contains(pgErr.Message, "can no longer get changes from replication slot") ||
		strings.Contains(pgErr.Message, "cannot read from logical replication slot") && strings.Contains(pgErr.Detail, "invalidated")
}

// receiveError explains a failure of the replication connection: an
// invalidated slot (ErrSlotLost), a slot that is gone, or the connection.
func (s *Stream) receiveError(err error) error {
	if slotLostError(err) {
		return fmt.Errorf("%w: streaming slot %s: %w", ErrSlotLost, s.opts.Slot, err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Severity == "FATAL" {
		// The connection was cut: see whether the slot is why.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		status, exists, serr := slotStatus(ctx, s.opts.ReplConnString, s.opts.Slot)
		switch {
		case serr != nil:
		case !exists:
			return fmt.Errorf("the replication connection to the source was cut and slot %s no longer exists: %w", s.opts.Slot, err)
		case status == "lost":
			return fmt.Errorf("%w: slot %s (the replication connection was cut: %w)", ErrSlotLost, s.opts.Slot, err)
		}
	}
	return fmt.Errorf("the replication connection to the source failed: %w", err)
}

// fail records the first error that ends the stream and stops it.
func (s *Stream) fail(err error) {
	s.mu.Lock()
	if s.err == nil && !(s.stopped && errors.Is(err, context.Canceled)) {
		s.err = err
		s.stats.LastError = err
	}
	s.broadcastLocked()
	s.mu.Unlock()
	s.cancel()
}

// broadcastLocked wakes everything waiting on the stream's state.
func (s *Stream) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Done is closed once the stream has ended: stopped, or failed (Err).
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err is the error the stream failed with, nil while it runs or after a
// clean Stop. A stream fails on its own when the replication connection is
// cut, the slot is invalidated (errors.Is(err, ErrSlotLost)) or dropped, or
// the target refuses a change or holds a row different from the source's.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop stops the stream after the transaction being applied, if any (never
// in the middle of a target transaction), reports the last applied position
// to the source, and closes the replication connection. If ctx ends first,
// the transaction being applied is rolled back instead, unless its COMMIT
// was already sent: the answer to that is always waited for, so once a
// stream has ended (Done) no commit of it is still in flight and a new
// Start reads the position the target really holds. It returns the error
// the stream failed with, if it did.
func (s *Stream) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.broadcastLocked()
	s.mu.Unlock()
	s.stopOnce.Do(func() { close(s.stopCh) })
	s.wake()
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done
	}
	return s.Err()
}

// Stats returns the stream's counters and lag.
func (s *Stream) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	if end := LSN(s.serverEnd.Load()); end > s.processed {
		st.LagBytes = int64(end - s.processed)
	}
	if len(s.pending) > 0 {
		st.LagSeconds = max(0, time.Since(s.pending[0].at).Seconds())
	}
	return st
}

// WaitMarker returns once the stream has received the marker content (see
// EmitMarker) with every source transaction committed before it applied and
// committed on the target, or ctx ends, or the stream ends.
//
// With StreamOptions.Source set, it flushes the source's WAL at once and
// every 100 ms while it waits, so a marker emitted inside a transaction
// arrives without delay.
func (s *Stream) WaitMarker(ctx context.Context, content string) error {
	var flush <-chan time.Time
	first := true
	s.mu.Lock()
	for !s.markers[content] {
		if err := s.endedLocked(); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("waiting for marker %q: %w", content, err)
		}
		ch := s.changed
		s.mu.Unlock()
		if first && s.opts.Source != nil {
			first = false
			tick := time.NewTicker(markerFlushEvery)
			defer tick.Stop()
			flush = tick.C
			FlushWAL(ctx, s.opts.Source) // best effort: the wait says if the marker never comes
		}
		select {
		case <-ch:
		case <-flush:
			FlushWAL(ctx, s.opts.Source)
		case <-ctx.Done():
			return fmt.Errorf("waiting for marker %q: %w", content, ctx.Err())
		}
		s.mu.Lock()
	}
	s.mu.Unlock()
	return nil
}

// markerFlushEvery is how often WaitMarker flushes the source's WAL while it
// waits (with StreamOptions.Source).
const markerFlushEvery = 100 * time.Millisecond

// endedLocked is the error for a stream that is no longer running.
func (s *Stream) endedLocked() error {
	if s.err != nil {
		return s.err
	}
	if s.stopped {
		return errors.New("the stream was stopped")
	}
	return nil
}

// Hold stops the applier before the next source transaction or marker (the
// one being applied, if any, is finished first) and returns once it has
// stopped. Changes keep being received meanwhile. Resume or PauseAt
// continues. Holding before taking a position for PauseAt makes sure the
// stream cannot pass it first.
func (s *Stream) Hold(ctx context.Context) error {
	s.mu.Lock()
	s.hold, s.gateOn = true, false
	s.broadcastLocked()
	return s.waitLocked(ctx, "holding the stream", func() (bool, error) { return s.paused, nil })
}

// waitLocked waits until ready says so, or fails, or the stream ends, or
// ctx does, and then lets the stream go on. It is called with s.mu held and
// returns with it released; ready runs with it held. what says what the
// wait was, for errors.
func (s *Stream) waitLocked(ctx context.Context, what string, ready func() (bool, error)) error {
	for {
		ok, err := ready()
		if err == nil && !ok {
			err = s.endedLocked()
		}
		if ok || err != nil {
			s.mu.Unlock()
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.Resume()
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		s.mu.Lock()
	}
}

// PauseAt makes the applier apply every source transaction whose commit
// record starts before lsn and stop before the first transaction or marker
// at or after lsn, and returns once it has stopped there: the target then
// holds exactly the tenant's rows as of lsn, until Resume. It needs
// something at or after lsn to arrive: emit a marker after taking lsn (the
// source also reports its position when idle, which serves too). If the
// stream already applied something at or after lsn it returns ErrPassed; if
// ctx ends first, the stream resumes.
//
// For a consistent verify while the site writes: Hold; CreateSlot a
// temporary slot (consistent point C, snapshot S); EmitMarker; PauseAt(C);
// read the source in a REPEATABLE READ transaction at S and the target;
// Resume; close the slot.
func (s *Stream) PauseAt(ctx context.Context, lsn LSN) error {
	s.mu.Lock()
	if s.passed >= lsn || s.start > lsn {
		s.mu.Unlock()
		return fmt.Errorf("pausing the stream at %s: %w", lsn, ErrPassed)
	}
	s.hold, s.gateOn, s.gate = false, true, lsn
	if s.paused && !(s.pausedHasPos && s.pausedPos >= lsn) {
		s.paused = false
	}
	s.broadcastLocked()
	return s.waitLocked(ctx, fmt.Sprintf("pausing the stream at %s", lsn), func() (bool, error) {
		if s.paused && s.pausedHasPos && s.pausedPos >= lsn {
			return true, nil
		}
		if !s.gateOn || s.gate != lsn {
			return false, errors.New("resumed or held elsewhere meanwhile")
		}
		return false, nil
	})
}

// Resume lets a held or paused stream continue.
func (s *Stream) Resume() {
	s.mu.Lock()
	s.hold, s.gateOn, s.paused = false, false, false
	s.broadcastLocked()
	s.mu.Unlock()
}

// wake interrupts the receiver's wait for the next message, so it reports
// a new position or notices a stop at once.
func (s *Stream) wake() {
	s.pokeMu.Lock()
	if s.poke != nil {
		s.poke()
	}
	s.pokeMu.Unlock()
}

func (s *Stream) stopping() bool {
	select {
	case <-s.stopCh:
		return true
	default:
		return false
	}
}

// status tracks what the receiver last reported to the source.
type status struct {
	sent LSN
	at   time.Time
}

// minStatusGap spaces reports of new positions when transactions come fast.
const minStatusGap = 50 * time.Millisecond

// silenceLimit is how long the source may say nothing, although asked to
// answer at every status interval, before the stream takes its connection
// for lost (a network that silently dropped it).
func (s *Stream) silenceLimit() time.Duration {
	return max(3*s.opts.StatusInterval, 2*time.Second)
}

// due says how long until the next report is due.
func (s *Stream) due(st *status) time.Duration {
	next := st.at.Add(s.opts.StatusInterval)
	if LSN(s.confirmable.Load()) > st.sent {
		next = st.at.Add(minStatusGap)
	}
	return time.Until(next)
}

// sendStatus reports the applied position to the source as written,
// flushed and applied: everything before it is committed on the target. A
// report due by the interval also asks the source to answer, which shows
// the connection is alive.
func (s *Stream) sendStatus(st *status) error {
	pos := LSN(s.confirmable.Load())
	err := pglogrepl.SendStandbyStatusUpdate(s.ctx, s.conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pos, WALFlushPosition: pos, WALApplyPosition: pos,
		ReplyRequested: time.Since(st.at) >= s.opts.StatusInterval,
	})
	if err != nil {
		return fmt.Errorf("reporting position %s to the source: %w", pos, err)
	}
	st.sent, st.at = pos, time.Now()
	return nil
}

// receive reads the replication connection until the stream stops or
// fails, passing messages to the applier in order and reporting the
// applied position to the source.
func (s *Stream) receive() error {
	var st status
	if err := s.sendStatus(&st); err != nil {
		return err
	}
	inTxn := false
	n := 0
	heard := time.Now()
	for {
		if s.stopping() {
			// Report the applier's last commit before closing.
			select {
			case <-s.applierDone:
			case <-s.ctx.Done():
				return nil
			}
			if LSN(s.confirmable.Load()) > st.sent {
				return s.sendStatus(&st)
			}
			return nil
		}
		if s.due(&st) <= 0 {
			if err := s.sendStatus(&st); err != nil {
				return err
			}
		}
		rctx, cancel := context.WithTimeout(s.ctx, max(s.due(&st), time.Millisecond))
		s.pokeMu.Lock()
		s.poke = cancel
		s.pokeMu.Unlock()
		raw, err := s.conn.ReceiveMessage(rctx)
		s.pokeMu.Lock()
		s.poke = nil
		s.pokeMu.Unlock()
		cancel()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil // failed elsewhere, or stopped by force
			}
			if (pgconn.Timeout(err) || errors.Is(err, context.Canceled)) && !s.conn.IsClosed() {
				if silent := time.Since(heard); silent > s.silenceLimit() {
					return fmt.Errorf("the source has not answered for %s: the connection is presumably lost", silent.Round(time.Second))
				}
				continue
			}
			return err
		}
		heard = time.Now()
		switch m := raw.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return fmt.Errorf("reading a keepalive from the source: %w", err)
				}
				s.noteServerEnd(ka.ServerWALEnd)
				if ka.ReplyRequested {
					if err := s.sendStatus(&st); err != nil {
						return err
					}
				}
				if !inTxn {
					// Everything before it was sent: pass it on if there is room.
					select {
					case s.items <- item{idle: ka.ServerWALEnd}:
					default:
					}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return fmt.Errorf("reading WAL data from the source: %w", err)
				}
				s.noteServerEnd(xld.ServerWALEnd)
				if len(xld.WALData) == 0 {
					continue
				}
				msg, err := pglogrepl.Parse(xld.WALData)
				if err != nil {
					return fmt.Errorf("decoding a message from the source at %s: %w", xld.WALStart, err)
				}
				it := item{lsn: xld.WALStart, msg: msg}
				switch msg := msg.(type) {
				case *pglogrepl.BeginMessage:
					inTxn = true
				case *pglogrepl.CommitMessage:
					inTxn = false
					s.mu.Lock()
					s.pending = append(s.pending, pendingCommit{lsn: msg.CommitLSN, at: msg.CommitTime})
					s.mu.Unlock()
				case *pglogrepl.LogicalDecodingMessage:
					if msg.Transactional || msg.Prefix != s.opts.MarkerPrefix {
						continue // another move's marker, or not a marker
					}
					it = item{lsn: xld.WALStart, marker: &marker{lsn: msg.LSN, content: string(msg.Content)}}
				}
				if err := s.forward(it, &st); err != nil {
					if errors.Is(err, errStopping) {
						continue
					}
					return err
				}
				heard = time.Now() // what came meanwhile waits in the socket
				if it.marker == nil && s.opts.hooks != nil && s.opts.hooks.received != nil {
					n++
					if err := s.opts.hooks.received(n); err != nil {
						return err
					}
				}
			}
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyDone:
			return errors.New("the source ended the replication stream")
		}
	}
}

var errStopping = errors.New("stopping")

func (s *Stream) noteServerEnd(end LSN) {
	for {
		old := s.serverEnd.Load()
		if uint64(end) <= old || s.serverEnd.CompareAndSwap(old, uint64(end)) {
			return
		}
	}
}

// forward hands an item to the applier, reporting positions to the source
// while the applier is busy.
func (s *Stream) forward(it item, st *status) error {
	select {
	case s.items <- it:
		return nil
	default:
	}
	tick := time.NewTicker(minStatusGap)
	defer tick.Stop()
	for {
		select {
		case s.items <- it:
			return nil
		case <-s.stopCh:
			return errStopping
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-tick.C:
			if s.due(st) <= 0 {
				if err := s.sendStatus(st); err != nil {
					return err
				}
			}
		}
	}
}
