// Package jobs runs tenant moves started from the admin as durable
// background jobs: River, on primary, with the same mover as the CLI. A job
// is inserted in the same transaction as the move's journal row, so a move is
// never recorded without the job that runs it.
//
// River guarantees that one process works a job at a time; the mover's own
// claim (an advisory lock held while a move runs) guarantees that one
// process runs a move at a time, whatever started it. A move's job runs for
// as long as the move does, so River's time-based rescue of stuck jobs does
// not apply to it. Instead a periodic watcher, run by River's leader, looks
// for move jobs that River thinks are running but whose move nobody claims:
// their process died. It cancels the dead job and queues a new one, which
// resumes the move from its journal.
//
// The leader also runs the periodic purge of expired sessions (site admin
// and platform) and expired throttle counts, so one process does it however
// many run.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// MoveQueue is the River queue of move jobs.
const MoveQueue = "moves"

// Options tunes a Queue. The zero value is ready to use.
type Options struct {
	Logger *slog.Logger
	// Work makes the queue run jobs, not only insert them.
	Work bool
	// Mover options for the moves this process runs (pause points for
	// tests, the clean-up delay).
	Mover mover.Options
	// WatchEvery is how often the leader looks for moves whose process
	// died. Default 5s.
	WatchEvery time.Duration
	// StaleAfter is how long a move job must have been running, unclaimed,
	// before it counts as dead. Default 5s.
	StaleAfter time.Duration
	// PurgeEvery is how often the leader deletes expired sessions and
	// throttle counts. Default 10 minutes.
	PurgeEvery time.Duration
}

// Queue inserts and, with Options.Work, runs move jobs.
type Queue struct {
	client  *river.Client[pgx.Tx]
	mover   *mover.Mover
	primary *pgxpool.Pool
	log     *slog.Logger
	stale   time.Duration
}

// New builds a queue on set's primary. It opens no connection.
func New(set *shard.Set, opt Options) (*Queue, error) {
	primary, err := set.Primary()
	if err != nil {
		return nil, err
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	q := &Queue{primary: primary, log: opt.Logger, stale: cmpOr(opt.StaleAfter, 5*time.Second)}
	mo := opt.Mover
	progress := mo.Progress
	mo.Progress = func(e mover.Event) {
		if e.Table == "" { // phase changes only; the journal has the rows
			q.log.Info("move", "move", e.Move, "phase", e.Phase)
		}
		if progress != nil {
			progress(e)
		}
	}
	if q.mover, err = mover.New(set, mo); err != nil {
		return nil, err
	}
	cfg := &river.Config{Logger: opt.Logger.With("component", "jobs"), JobTimeout: time.Minute, RescueStuckJobsAfter: 2 * time.Minute}
	if sh, err := set.Shard(shard.Default); err == nil && sh.ThroughPooler() {
		// Primary is behind a transaction pooler (see config): LISTEN
		// would register on whichever server connection ran it, so River
		// polls for jobs instead.
		cfg.PollOnly = true
	}
	if opt.Work {
		workers := river.NewWorkers()
		river.AddWorker(workers, &moveWorker{q: q})
		river.AddWorker(workers, &watchWorker{q: q})
		river.AddWorker(workers, &purgeWorker{q: q})
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: 2},
			MoveQueue:          {MaxWorkers: 4},
		}
		cfg.PeriodicJobs = []*river.PeriodicJob{river.NewPeriodicJob(
			river.PeriodicInterval(cmpOr(opt.WatchEvery, 5*time.Second)),
			func() (river.JobArgs, *river.InsertOpts) { return WatchArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true},
		), river.NewPeriodicJob(
			river.PeriodicInterval(cmpOr(opt.PurgeEvery, 10*time.Minute)),
			func() (river.JobArgs, *river.InsertOpts) { return PurgeArgs{}, nil },
			// On start too, so that expired rows do not wait out a full
			// interval after every deploy.
			&river.PeriodicJobOpts{RunOnStart: true},
		)}
	}
	if q.client, err = river.NewClient(riverpgxv5.New(primary), cfg); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return q, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Start starts working jobs, when the queue was built to.
func (q *Queue) Start(ctx context.Context) error { return q.client.Start(ctx) }

// Stop stops working jobs: a running move is interrupted, recorded in its
// journal, and its job snoozed, so the next process to start resumes it.
func (q *Queue) Stop(ctx context.Context) error { return q.client.StopAndCancel(ctx) }

// Mover is the mover the queue's jobs run, for planning a move.
func (q *Queue) Mover() *mover.Mover { return q.mover }

// MoveArgs is a job that runs (or, for Action abort, aborts) one move.
type MoveArgs struct {
	MoveID int64 `json:"move_id"`
	// Action is the audit action: move, resume or abort.
	Action string `json:"action"`
	Actor  string `json:"actor"`
	// Recovered says the job replaces one whose process died.
	Recovered bool `json:"recovered,omitempty"`
}

// Kind names move jobs in River's tables.
func (MoveArgs) Kind() string { return "move" }

// InsertOpts puts move jobs on their own queue. A failed move is not retried
// by River: its journal says where it stopped, and the operator chooses
// between resume and abort.
func (MoveArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: MoveQueue, MaxAttempts: 1}
}

// EnqueueMove records the planned move and queues its job, in one primary
// transaction, and writes the audit line. It returns the move's id.
func (q *Queue) EnqueueMove(ctx context.Context, p mover.Plan, actor string) (int64, error) {
	id, err := q.mover.StartWith(ctx, p, actor, func(ctx context.Context, tx pgx.Tx, id int64) error {
		_, err := q.client.InsertTx(ctx, tx, MoveArgs{MoveID: id, Action: audit.Move, Actor: actor}, nil)
		return err
	})
	e := audit.Entry{Actor: actor, Action: audit.Move, Source: p.Source, Target: p.Target, MoveID: id, Outcome: audit.Queued}.ForWebsite(p.Website)
	if err != nil {
		e.Outcome, e.Detail = audit.OutcomeOf(err, mover.ErrRefused), err.Error()
	}
	q.record(ctx, e)
	return id, err
}

// ErrRefused marks a resume or abort that cannot be queued now; the message
// says why.
var ErrRefused = mover.ErrRefused

// EnqueueResume queues a job that continues move id from its journal.
func (q *Queue) EnqueueResume(ctx context.Context, id int64, actor string) error {
	return q.enqueue(ctx, id, audit.Resume, actor, func(m mover.Move) error {
		if m.Finished() {
			return fmt.Errorf("%w: move %d is already %s", ErrRefused, m.ID, m.State)
		}
		return nil
	})
}

// EnqueueAbort queues a job that rolls move id back.
func (q *Queue) EnqueueAbort(ctx context.Context, id int64, actor string) error {
	return q.enqueue(ctx, id, audit.Abort, actor, func(m mover.Move) error {
		switch {
		case m.State == mover.StateDone:
			return fmt.Errorf("%w: move %d is already done", ErrRefused, m.ID)
		case m.State == mover.StateAborted && m.TargetCleared:
			return fmt.Errorf("%w: move %d is already aborted", ErrRefused, m.ID)
		case m.Switched():
			return fmt.Errorf("%w: move %d has already switched the tenant to %s; it can only be resumed", ErrRefused, m.ID, m.Target)
		}
		return nil
	})
}

// enqueue checks, with the move's journal row locked, that move id exists,
// passes check, is not running and has no job waiting, then queues the job.
func (q *Queue) enqueue(ctx context.Context, id int64, action, actor string, check func(mover.Move) error) error {
	var m mover.Move
	err := pgx.BeginFunc(ctx, q.primary, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT 1 FROM moves WHERE id = $1 FOR UPDATE", id); err != nil {
			return err
		}
		var err error
		if m, err = mover.Get(ctx, tx, id); err != nil {
			if errors.Is(err, mover.ErrNotFound) {
				return fmt.Errorf("%w: %w", ErrRefused, err)
			}
			return err
		}
		if err := check(m); err != nil {
			return err
		}
		// A dead job the watcher has replaced stays running in River's table,
		// marked cancelled, until River rescues it minutes later; it runs
		// nothing (a live run would hold the claim, checked below).
		var waiting bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM river_job WHERE kind = 'move'
			AND (args->>'move_id')::bigint = $1 AND state IN ('available', 'pending', 'scheduled', 'retryable', 'running')
			AND NOT (state = 'running' AND metadata ? 'cancel_attempted_at'))`, id).
			Scan(&waiting); err != nil {
			return err
		}
		if !waiting {
			claimed, err := mover.Claimed(ctx, q.primary, id)
			if err != nil {
				return err
			}
			waiting = claimed
		}
		if waiting {
			return fmt.Errorf("%w: move %d is running or queued already", ErrRefused, id)
		}
		_, err = q.client.InsertTx(ctx, tx, MoveArgs{MoveID: id, Action: action, Actor: actor}, nil)
		return err
	})
	e := audit.ForMove(action, id, m)
	e.Actor, e.Outcome = actor, audit.Queued
	if err != nil {
		e.Outcome, e.Detail = audit.OutcomeOf(err, ErrRefused), err.Error()
	}
	q.record(ctx, e)
	return err
}

// record writes an audit line; the operation it describes has happened
// either way, so a failure to write is logged, not returned.
func (q *Queue) record(ctx context.Context, e audit.Entry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := audit.Record(ctx, q.primary, e); err != nil {
		q.log.Error("audit", "error", err, "action", e.Action, "move", e.MoveID)
	}
}

// moveWorker runs move jobs.
type moveWorker struct {
	river.WorkerDefaults[MoveArgs]
	q *Queue
}

// Timeout: a move takes as long as its tenant's data needs.
func (w *moveWorker) Timeout(*river.Job[MoveArgs]) time.Duration { return -1 }

func (w *moveWorker) Work(ctx context.Context, job *river.Job[MoveArgs]) error {
	a := job.Args
	q := w.q
	q.log.Info("move job started", "move", a.MoveID, "action", a.Action, "job", job.ID, "attempt", job.Attempt, "recovered", a.Recovered)
	var m mover.Move
	var err error
	if a.Action == audit.Abort {
		m, err = q.mover.Abort(ctx, a.MoveID)
	} else {
		m, err = q.mover.Run(ctx, a.MoveID)
	}
	switch {
	case errors.Is(err, mover.ErrBusy):
		// Another process runs it (a resume from the CLI, say): check back.
		return river.JobSnooze(10 * time.Second)
	case err != nil && ctx.Err() != nil:
		// This process is stopping: the move's journal records where it
		// stopped, and the job runs again in the next process to start.
		q.log.Warn("move job interrupted; it resumes when a process starts", "move", a.MoveID, "error", err)
		return river.JobSnooze(time.Second)
	}
	e := audit.ForMove(a.Action, a.MoveID, m)
	e.Actor, e.Outcome = a.Actor, audit.OutcomeOf(err, mover.ErrRefused)
	if a.Recovered {
		e.Detail = "resumed after the process running it stopped"
	}
	if err != nil {
		e.Detail = joinDetail(e.Detail, err.Error())
	}
	q.record(ctx, e)
	if err != nil {
		q.log.Error("move job failed", "move", a.MoveID, "action", a.Action, "error", err)
		// The journal has the failure; River must not retry on its own.
		return river.JobCancel(err)
	}
	q.log.Info("move job done", "move", a.MoveID, "action", a.Action, "state", m.State)
	return nil
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + ": " + b
}

// WatchArgs is the periodic job that finds moves whose process died.
type WatchArgs struct{}

// Kind names watch jobs in River's tables.
func (WatchArgs) Kind() string { return "move_watch" }

type watchWorker struct {
	river.WorkerDefaults[WatchArgs]
	q *Queue
}

func (w *watchWorker) Work(ctx context.Context, _ *river.Job[WatchArgs]) error {
	_, err := w.q.RecoverOrphans(ctx)
	return err
}

// RecoverOrphans queues a new job for every move job that River thinks is
// running but whose move nobody claims, and cancels the dead one. It returns
// the ids of the moves it requeued.
//
// A job counts as dead only once neither it nor its move's journal has
// changed for the staleness period: a job whose move has just ended (the
// journal records the end, then the claim is released) stays running in
// River's eyes until its worker has written the audit line and River has
// recorded the outcome, which takes moments. Without the journal's time, a
// watcher looking in that moment would requeue a move that had just
// finished, or resume one that had just failed, which only an operator may
// do. A dead job whose move is over (done, or aborted with its target
// cleared) is cancelled and not replaced: there is nothing left to run.
func (q *Queue) RecoverOrphans(ctx context.Context) ([]int64, error) {
	rows, err := q.primary.Query(ctx, `SELECT j.id, m.id FROM river_job j JOIN moves m ON m.id = (j.args->>'move_id')::bigint
		WHERE j.kind = 'move' AND j.state = 'running' AND NOT (j.metadata ? 'cancel_attempted_at')
		AND greatest(j.attempted_at, m.updated_at) < now() - $1 * interval '1 microsecond'`, q.stale.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("looking for move jobs whose process died: %w", err)
	}
	type candidate struct{ job, move int64 }
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (candidate, error) {
		var c candidate
		return c, r.Scan(&c.job, &c.move)
	})
	if err != nil {
		return nil, fmt.Errorf("looking for move jobs whose process died: %w", err)
	}
	var requeued []int64
	for _, c := range found {
		ok, err := q.requeue(ctx, c.job, c.move)
		if err != nil {
			return requeued, err
		}
		if ok {
			requeued = append(requeued, c.move)
		}
	}
	return requeued, nil
}

// requeue replaces dead job jobID of move moveID, if it is still running
// in River's eyes, stale and the move is unclaimed; if the move is over, it
// only cancels the job.
func (q *Queue) requeue(ctx context.Context, jobID, moveID int64) (bool, error) {
	claimed, err := mover.Claimed(ctx, q.primary, moveID)
	if err != nil || claimed {
		return false, err
	}
	done, over := false, false
	err = pgx.BeginFunc(ctx, q.primary, func(tx pgx.Tx) error {
		// Locked and checked again, so two watchers requeue it once. The
		// claim was free above, so the journal read here already has
		// whatever the last process to run the move wrote.
		var args MoveArgs
		err := tx.QueryRow(ctx, `SELECT (j.args->>'move_id')::bigint, j.args->>'action', j.args->>'actor',
				m.state = 'done' OR (m.state = 'aborted' AND m.target_cleared)
			FROM river_job j JOIN moves m ON m.id = (j.args->>'move_id')::bigint
			WHERE j.id = $1 AND j.state = 'running' AND NOT (j.metadata ? 'cancel_attempted_at')
			AND greatest(j.attempted_at, m.updated_at) < now() - $2 * interval '1 microsecond'
			FOR UPDATE OF j`, jobID, q.stale.Microseconds()).
			Scan(&args.MoveID, &args.Action, &args.Actor, &over)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		// River finalises a cancelled job that nobody runs when it rescues
		// stuck jobs.
		if _, err := q.client.JobCancelTx(ctx, tx, jobID); err != nil {
			return err
		}
		if over {
			return nil
		}
		args.Recovered = true
		if _, err := q.client.InsertTx(ctx, tx, args, nil); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("requeueing move %d: %w", moveID, err)
	}
	switch {
	case done:
		q.log.Warn("move job's process died; requeued", "move", moveID, "dead_job", jobID)
	case over:
		q.log.Warn("move job's process died after its move ended; cancelled", "move", moveID, "dead_job", jobID)
	}
	return done, nil
}

// PurgeArgs is the periodic job that deletes expired sessions and throttle
// counts.
type PurgeArgs struct{}

// Kind names purge jobs in River's tables.
func (PurgeArgs) Kind() string { return "purge_expired" }

// InsertOpts: a failed purge is not retried, since the next one comes
// within an interval and deletes the same rows; retries would only pile up
// behind it while primary is in trouble.
func (PurgeArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1} }

type purgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	q *Queue
}

func (w *purgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	_, err := w.q.PurgeExpired(ctx)
	return err
}

// Purged is how many expired rows PurgeExpired deleted, by table.
type Purged struct {
	Sessions, PlatformSessions, Throttles int64
}

// PurgeExpired deletes expired site-admin sessions, platform sessions and
// throttle counts on primary. Each is already ignored once expired; this
// only keeps the tables small. Each table is purged in its own statement,
// so one that fails does not keep the others from being purged.
func (q *Queue) PurgeExpired(ctx context.Context) (Purged, error) {
	var p Purged
	var errs []error
	var err error
	if p.Sessions, err = account.DeleteExpiredSessions(ctx, q.primary); err != nil {
		errs = append(errs, err)
	}
	if p.PlatformSessions, err = account.DeleteExpiredPlatformSessions(ctx, q.primary); err != nil {
		errs = append(errs, err)
	}
	if p.Throttles, err = throttle.DeleteExpired(ctx, q.primary); err != nil {
		errs = append(errs, err)
	}
	err = errors.Join(errs...)
	attrs := []any{"sessions", p.Sessions, "platform_sessions", p.PlatformSessions, "throttles", p.Throttles}
	switch {
	case err != nil:
		q.log.Error("purging expired rows", append(attrs, "error", err)...)
	case p == Purged{}:
		// Every ten minutes on a quiet platform: not worth a line at info.
		q.log.Debug("purged expired rows", attrs...)
	default:
		q.log.Info("purged expired rows", attrs...)
	}
	return p, err
}
