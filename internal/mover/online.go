package mover

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/changes"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// An online move keeps the tenant active while it copies. Its steps:
//
//	planned   record the publication's and slot's names, then create the
//	          publication on the source (its rows filtered to the tenant)
//	prepared  create the slot with an exported snapshot and copy every
//	          table as of that snapshot (a copy interrupted anywhere starts
//	          again with a new slot: the snapshot dies with its connection)
//	copied    stream the changes made since the snapshot, catch up, and
//	          compare counts and checksums of both sides at one point of the
//	          stream (a temporary slot's snapshot on the source, the target
//	          paused exactly there)
//	verified  cut over: take the write fence with a short lock timeout,
//	          wait for the target to apply everything up to a marker written
//	          under the fence, switch the registry, let go; an attempt that
//	          overruns its budget lets go and is tried again
//	switched  stop the stream, drop the slot and the publication, then
//	          clean the source as a freeze move does
//
// The stream runs in the process that runs the move, from the copy to the
// switch; a process that dies loses it, and the next run starts it again
// from the position the target recorded with the last change it applied.

// maxCopyAttempts bounds how often a move copies again after losing its
// slot.
const maxCopyAttempts = 3

// streamReportEvery is how often a running stream's catch-up is recorded
// in the journal and reported as progress.
const streamReportEvery = time.Second

// run is what one Run of an online move keeps between steps: its stream.
type run struct {
	m        *Mover
	stream   *changes.Stream
	stop     context.CancelFunc // ends the stream's reporter
	wg       sync.WaitGroup
	mv       journal.Move
	restarts int // of the stream, after it failed on its own
}

// maxStreamRestarts bounds how often one run starts its stream again after
// it failed on its own (a cut connection, a shard restarting); past it the
// step fails, and resume starts again from the journal.
const maxStreamRestarts = 10

// step performs the step of an online move that follows mv's state and
// records it.
func (r *run) step(ctx context.Context, mv journal.Move) error {
	m := r.m
	var next journal.State
	switch mv.Step() {
	case journal.StatePlanned:
		next = journal.StatePrepared
		if err := m.prepare(ctx, mv); err != nil {
			return err
		}
	case journal.StatePrepared, journal.StateCopying:
		next = journal.StateCopied
		if err := r.copyOnline(ctx, mv); err != nil {
			return err
		}
	case journal.StateCopied:
		next = journal.StateVerified
		if err := r.verifyOnline(ctx, mv); err != nil {
			return err
		}
	case journal.StateVerified:
		// The switch records its state in its own transaction.
		blocked, err := r.cutover(ctx, mv)
		if err != nil {
			return err
		}
		m.emit(Event{Move: mv.ID, Phase: journal.StateSwitched.Phase(), RowsTotal: mv.RowsTotal(), Blocked: blocked})
		m.pause(string(journal.StateSwitched))
		return nil
	case journal.StateSwitched:
		next = journal.StateCleaned
		if err := r.dropArtifacts(ctx, mv); err != nil {
			return err
		}
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

// replConn returns the connection string for logical replication from the
// move's source.
func (m *Mover) replConn(mv journal.Move) (string, error) {
	sh, err := m.set.Shard(mv.Source)
	if err != nil {
		return "", err
	}
	conn, ok := sh.ReplicationConnString()
	if !ok {
		return "", fmt.Errorf("shard %q has no direct connection for replication: give it a replication_url", mv.Source)
	}
	return conn, nil
}

// prepare records the names of the move's publication and slot, then
// creates the publication: rows of the tenant only, in every tenant table.
// It must exist before the slot, whose decoding reads the catalog as of its
// creation.
func (m *Mover) prepare(ctx context.Context, mv journal.Move) error {
	if err := m.checkSource(ctx, mv); err != nil {
		return err
	}
	slot, pub := changes.SlotName(mv.ID), changes.PublicationName(mv.ID)
	if err := journal.SetArtifacts(ctx, m.primary, mv.ID, slot, pub); err != nil {
		return err
	}
	src, err := m.set.Pool(mv.Source)
	if err != nil {
		return err
	}
	names := make([]string, len(mv.Tables))
	for i, t := range mv.Tables {
		names[i] = t.Name
	}
	return changes.CreatePublication(ctx, src, pub, names, mv.WebsiteID)
}

// copyOnline copies every table as of a new slot's snapshot, after removing
// whatever an earlier attempt left: the slot, the target's rows and the
// target's record of the stream's position.
func (r *run) copyOnline(ctx context.Context, mv journal.Move) error {
	m := r.m
	if err := m.checkSource(ctx, mv); err != nil {
		return err
	}
	r.stopStream(ctx)
	src, dst, err := m.pools(mv)
	if err != nil {
		return err
	}
	if err := pgx.BeginFunc(ctx, m.primary, func(tx pgx.Tx) error { return journal.RestartCopy(ctx, tx, mv.ID) }); err != nil {
		return err
	}
	m.pause(string(journal.StateCopying))
	if err := changes.DropSlot(ctx, src, mv.Slot); err != nil {
		return err
	}
	if err := m.deleteRows(ctx, mv, dst, "", false); err != nil {
		return fmt.Errorf("removing what an earlier copy left on %q: %w", mv.Target, err)
	}
	if err := changes.ForgetPosition(ctx, dst, mv.ID); err != nil {
		return err
	}
	conn, err := m.replConn(mv)
	if err != nil {
		return err
	}
	snap, err := changes.CreateSlot(ctx, conn, mv.Slot, false)
	if err != nil {
		return err
	}
	defer snap.Close(context.WithoutCancel(ctx))
	m.pause("slot-created")
	var before, beforeBytes int64
	for _, t := range mv.Tables {
		report := func(rows, bytes int64) {
			m.emit(Event{Move: mv.ID, Phase: journal.StateCopying.Phase(), Table: t.Name, Rows: before + rows,
				RowsTotal: mv.RowsTotal(), Bytes: beforeBytes + bytes, BytesTotal: mv.BytesTotal()})
		}
		rows, bytes, err := m.copyTable(ctx, mv, t, src, dst, snap.Name, report)
		if err != nil {
			return fmt.Errorf("copying %s from %q to %q: %w", t.Name, mv.Source, mv.Target, err)
		}
		// The rows as of the snapshot are the table's size for this move.
		if err := journal.SetTableSize(ctx, m.primary, mv.ID, t.Name, rows, max(bytes, t.BytesTotal)); err != nil {
			return err
		}
		if err := journal.SetTableCopied(ctx, m.primary, mv.ID, t.Name, rows, bytes); err != nil {
			return err
		}
		before += rows
		beforeBytes += bytes
		report(0, 0)
	}
	return snap.Close(ctx)
}

// ensureStream starts the move's stream if this run has none, or starts it
// again if it failed on its own.
func (r *run) ensureStream(ctx context.Context, mv journal.Move) error {
	if r.stream == nil {
		return r.startStream(ctx, mv)
	}
	return r.healthy(ctx, mv)
}

// startStream starts the move's stream from where the target says it got,
// and a reporter that records its catch-up.
func (r *run) startStream(ctx context.Context, mv journal.Move) error {
	m := r.m
	src, dst, err := m.pools(mv)
	if err != nil {
		return err
	}
	conn, err := m.replConn(mv)
	if err != nil {
		return err
	}
	st, err := changes.Start(ctx, changes.StreamOptions{
		ReplConnString: conn, Slot: mv.Slot, Publication: mv.Publication,
		MoveID: mv.ID, WebsiteID: mv.WebsiteID, Target: dst, Source: src,
		OnCommit: func() { m.pause("mid-stream") },
	})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.stream, r.stop, r.mv = st, cancel, mv
	r.wg.Go(func() { r.report(rctx) })
	return nil
}

// report records the stream's catch-up in the journal and as progress
// every streamReportEvery until ctx ends.
func (r *run) report(ctx context.Context) {
	t := time.NewTicker(streamReportEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.record(ctx, true)
	}
}

// record writes the stream's catch-up to the journal and, with emit, to
// the progress.
func (r *run) record(ctx context.Context, emit bool) {
	st := r.stream.Stats()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	journal.SetStreamStats(rctx, r.m.primary, r.mv.ID, journal.StreamStats{Changes: st.Changes, LagBytes: st.LagBytes, LagSeconds: st.LagSeconds}) // best effort: progress only
	if !emit {
		return
	}
	r.m.emit(Event{Move: r.mv.ID, Phase: journal.PhaseStreaming, Changes: st.Changes, LagBytes: st.LagBytes, LagSeconds: st.LagSeconds,
		RowsTotal: r.mv.RowsTotal()})
}

// stopStream stops the run's stream, if any, after the change being
// applied.
func (r *run) stopStream(ctx context.Context) {
	if r.stream == nil {
		return
	}
	r.stop()
	r.wg.Wait()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	r.stream.Stop(sctx)
	r.record(sctx, false)
	r.stream = nil
}

// streamErr is the stream's own failure, if it has stopped.
func (r *run) streamErr() error {
	select {
	case <-r.stream.Done():
		if err := r.stream.Err(); err != nil {
			return fmt.Errorf("the change stream failed: %w", err)
		}
		return errors.New("the change stream stopped")
	default:
		return nil
	}
}

// healthy starts the stream again if it failed on its own, from the
// position the target recorded, waiting a moment first, as long as the run
// has restarts left. A lost slot is not restarted: the copy must be made
// again.
func (r *run) healthy(ctx context.Context, mv journal.Move) error {
	err := r.streamErr()
	if err == nil {
		return nil
	}
	if errors.Is(err, changes.ErrSlotLost) {
		return err
	}
	for r.restarts < maxStreamRestarts {
		r.restarts++
		r.stopStream(ctx)
		r.m.emit(Event{Move: mv.ID, Phase: journal.PhaseStreaming, RowsTotal: mv.RowsTotal(),
			Detail: fmt.Sprintf("%v; starting it again (%d of %d)", err, r.restarts, maxStreamRestarts)})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(r.restarts) * time.Second):
		}
		if err = r.startStream(ctx, mv); err == nil {
			return nil
		}
		if errors.Is(err, changes.ErrSlotLost) {
			return err
		}
	}
	return err
}

// catchUp waits until the stream holds no transaction older than a second,
// reporting progress meanwhile. It fails if the stream fails, or makes no
// progress for catchUpStall.
func (r *run) catchUp(ctx context.Context, mv journal.Move) error {
	const catchUpStall = 5 * time.Minute
	last, since := r.stream.Stats().AppliedLSN, time.Now()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if err := r.healthy(ctx, mv); err != nil {
			return err
		}
		st := r.stream.Stats()
		if st.LagSeconds < 1 {
			return nil
		}
		if st.AppliedLSN != last {
			last, since = st.AppliedLSN, time.Now()
		} else if time.Since(since) > catchUpStall {
			return fmt.Errorf("the change stream applied nothing for %s while %s behind", catchUpStall, time.Duration(st.LagSeconds*float64(time.Second)).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// verifyOnline compares the two sides at one point of the stream while the
// tenant keeps writing: a temporary slot on the source gives a consistent
// point and a snapshot of it; the stream applies everything before that
// point and pauses; the source is read at the snapshot, the target as it
// stands; then the stream goes on.
func (r *run) verifyOnline(ctx context.Context, mv journal.Move) error {
	m := r.m
	if err := m.checkSource(ctx, mv); err != nil {
		return err
	}
	if err := r.ensureStream(ctx, mv); err != nil {
		return err
	}
	m.emit(Event{Move: mv.ID, Phase: journal.PhaseStreaming, RowsTotal: mv.RowsTotal()})
	if err := r.catchUp(ctx, mv); err != nil {
		return err
	}
	src, dst, err := m.pools(mv)
	if err != nil {
		return err
	}
	conn, err := m.replConn(mv)
	if err != nil {
		return err
	}
	if err := r.stream.Hold(ctx); err != nil {
		return err
	}
	defer r.stream.Resume()
	snap, err := changes.CreateSlot(ctx, conn, changes.VerifySlotName(mv.ID), true)
	if err != nil {
		return err
	}
	defer snap.Close(context.WithoutCancel(ctx))
	if _, err := changes.EmitMarker(ctx, src, changes.MarkerPrefix(mv.ID), "verify-"+strconv.FormatInt(int64(snap.Consistent), 10)); err != nil {
		return err
	}
	if err := r.stream.PauseAt(ctx, snap.Consistent); err != nil {
		return err
	}
	return m.compare(ctx, mv, src, dst, snap.Name)
}

// cutover switches the tenant to the target while its writes are held for
// at most the budget, trying again until it succeeds or runs out of
// attempts. It returns how long writes were held by the attempt that
// switched.
func (r *run) cutover(ctx context.Context, mv journal.Move) (time.Duration, error) {
	m := r.m
	if err := r.ensureStream(ctx, mv); err != nil {
		return 0, err
	}
	var last error
	wait := time.Second
	for attempt := 1; attempt <= m.opt.CutoverAttempts; attempt++ {
		if err := r.catchUp(ctx, mv); err != nil {
			return 0, err
		}
		m.emit(Event{Move: mv.ID, Phase: journal.PhaseCutover, RowsTotal: mv.RowsTotal(), Detail: fmt.Sprintf("attempt %d", attempt)})
		journal.AddCutoverAttempt(ctx, m.primary, mv.ID) // best effort: a count for operators
		blocked, switched, err := r.tryCutover(ctx, mv, attempt)
		if switched {
			if err := journal.SetBlocked(context.WithoutCancel(ctx), m.primary, mv.ID, blocked); err != nil {
				return blocked, err
			}
			return blocked, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err := r.healthy(ctx, mv); err != nil {
			return 0, err
		}
		last = err
		m.emit(Event{Move: mv.ID, Phase: journal.PhaseCutover, RowsTotal: mv.RowsTotal(),
			Detail: fmt.Sprintf("attempt %d gave up: %v; trying again in %s", attempt, err, wait)})
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
	return 0, fmt.Errorf("no cut-over fitted in its budget of %s after %d attempts; the last: %w", m.opt.CutoverBudget, m.opt.CutoverAttempts, last)
}

// tryCutover is one cut-over attempt. It holds the tenant's write fence on
// the source exclusively, for at most the budget from asking for it: the
// lock, the target's catch-up to a marker written under it, and the
// registry's switch must all fit, or it lets go and reports why. A switch
// that commits is final whatever happens after.
func (r *run) tryCutover(ctx context.Context, mv journal.Move, attempt int) (blocked time.Duration, switched bool, err error) {
	m := r.m
	src, err := m.set.Pool(mv.Source)
	if err != nil {
		return 0, false, err
	}
	asked := time.Now()
	bctx, cancel := context.WithDeadline(ctx, asked.Add(m.opt.CutoverBudget))
	defer cancel()
	c, err := src.Acquire(bctx)
	if err != nil {
		return 0, false, fmt.Errorf("no connection to %q: %w", mv.Source, err)
	}
	defer c.Release()
	tx, err := c.Begin(bctx)
	if err != nil {
		return 0, false, err
	}
	// Rolling back lets the fence go. It gets a context of its own: it must
	// happen however the attempt ends.
	release := func() time.Duration {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		if err := tx.Rollback(rctx); err != nil {
			c.Conn().Close(rctx) // closing the session frees the lock too
		}
		return time.Since(asked)
	}
	// While this request waits, new writers queue behind it: the lock
	// timeout bounds their wait as well as ours.
	lockWait := time.Until(asked.Add(m.opt.CutoverBudget / 2)).Milliseconds()
	if _, err := tx.Exec(bctx, "SELECT set_config('lock_timeout', $1, true)", strconv.FormatInt(max(lockWait, 1), 10)); err != nil {
		release()
		return 0, false, err
	}
	if err := tenant.Freeze(bctx, tx, mv.WebsiteID); err != nil {
		release()
		return 0, false, fmt.Errorf("writes in flight did not finish within %s: %w", m.opt.CutoverBudget/2, err)
	}
	m.pause("cutover")
	marker := "cutover-" + strconv.Itoa(attempt) + "-" + strconv.FormatInt(asked.UnixNano(), 10)
	if _, err := changes.EmitMarker(bctx, tx, changes.MarkerPrefix(mv.ID), marker); err != nil {
		release()
		return 0, false, err
	}
	// The source sends only flushed WAL, and a message written in a
	// transaction is not flushed until something else is.
	if err := changes.FlushWAL(bctx, src); err != nil {
		release()
		return 0, false, err
	}
	if err := r.stream.WaitMarker(bctx, marker); err != nil {
		release()
		return 0, false, fmt.Errorf("the target did not apply the last changes in time: %w", err)
	}
	// The switch is not cut off by the budget: a commit cancelled in
	// flight might land after the fence was let go. It starts only with
	// time left for it.
	if left := time.Until(asked.Add(m.opt.CutoverBudget)); left < m.opt.CutoverBudget/8 {
		release()
		return 0, false, fmt.Errorf("only %s of the budget left for the switch", left.Round(time.Millisecond))
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	if err := m.switchOver(sctx, mv); err != nil {
		release()
		return 0, false, fmt.Errorf("switching the registry: %w", err)
	}
	return release(), true, nil
}

// dropArtifacts stops the stream and drops the move's slot and publication
// on the source. Each drop is a success when there is nothing to drop.
func (r *run) dropArtifacts(ctx context.Context, mv journal.Move) error {
	r.stopStream(ctx)
	return r.m.dropArtifacts(ctx, mv)
}

func (m *Mover) dropArtifacts(ctx context.Context, mv journal.Move) error {
	if mv.Slot == "" || mv.ArtifactsDropped {
		return nil
	}
	src, err := m.set.Pool(mv.Source)
	if err != nil {
		return err
	}
	if err := changes.DropSlot(ctx, src, mv.Slot); err != nil {
		return err
	}
	if err := changes.DropPublication(ctx, src, mv.Publication); err != nil {
		return err
	}
	if dst, err := m.set.Pool(mv.Target); err == nil {
		if err := changes.ForgetPosition(ctx, dst, mv.ID); err != nil {
			return err
		}
	}
	return journal.MarkArtifactsDropped(ctx, m.primary, mv.ID)
}
