// Package jobs runs tenant moves started from the admin as durable
// background jobs: River, on primary. It is the queue of package moves, which
// decides and audits every move whoever starts it: a job is inserted in the
// same transaction as the move's journal row, so a move is never recorded
// without the job that runs it, and the worker runs it through the same
// service as the CLI.
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
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/moves"
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
	// WatchEvery is how often the leader looks for moves whose process
	// died. Default 5s.
	WatchEvery time.Duration
	// StaleAfter is how long a move job must have been running, unclaimed,
	// before it counts as dead. Default 5s.
	StaleAfter time.Duration
	// PurgeEvery is how often the leader deletes expired sessions and
	// throttle counts. Default 10 minutes.
	PurgeEvery time.Duration
	// SweepEvery is how often the leader drops the replication slots and
	// publications of finished online moves left on shards. Default 5
	// minutes.
	SweepEvery time.Duration
}

// Queue inserts and, with Options.Work, runs move jobs.
type Queue struct {
	client  *river.Client[pgx.Tx]
	moves   *moves.Service
	primary *pgxpool.Pool
	log     *slog.Logger
	stale   time.Duration
}

// New builds the queue of svc, on set's primary, and makes it svc's queue.
// It opens no connection.
func New(set *shard.Set, svc *moves.Service, opt Options) (*Queue, error) {
	primary, err := set.Primary()
	if err != nil {
		return nil, err
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	q := &Queue{moves: svc, primary: primary, log: opt.Logger, stale: cmpOr(opt.StaleAfter, 5*time.Second)}
	cfg := &river.Config{Logger: slog.New(withoutRoutine{opt.Logger.With("component", "jobs").Handler()}), JobTimeout: time.Minute, RescueStuckJobsAfter: 2 * time.Minute}
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
		river.AddWorker(workers, &sweepWorker{q: q})
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
		), river.NewPeriodicJob(
			river.PeriodicInterval(cmpOr(opt.SweepEvery, 5*time.Minute)),
			func() (river.JobArgs, *river.InsertOpts) { return SweepArgs{}, nil },
			// Not on start: leftovers wait a few minutes more, and a
			// starting process does not take a connection of every shard.
			nil,
		)}
	}
	if q.client, err = river.NewClient(riverpgxv5.New(primary), cfg); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	svc.UseQueue(q)
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

// MoveArgs is a job that runs (or, for Action abort, aborts) one move.
type MoveArgs struct {
	moves.Job
}

// Kind names move jobs in River's tables.
func (MoveArgs) Kind() string { return "move" }

// InsertOpts puts move jobs on their queue, with no automatic retry: a move
// that fails is recorded in its journal and resumed or aborted by an
// operator.
func (MoveArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: MoveQueue, MaxAttempts: 1}
}

// InsertTx queues job in tx (moves.Queue).
func (q *Queue) InsertTx(ctx context.Context, tx pgx.Tx, job moves.Job) error {
	_, err := q.client.InsertTx(ctx, tx, MoveArgs{Job: job}, nil)
	return err
}

// Pending reports whether a job of move id is waiting or running
// (moves.Queue). A dead job the watcher has replaced stays running in
// River's table, marked cancelled, until River rescues it minutes later; it
// runs nothing, so it does not count.
func (q *Queue) Pending(ctx context.Context, tx pgx.Tx, id int64) (bool, error) {
	var waiting bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM river_job WHERE kind = 'move'
		AND (args->>'move_id')::bigint = $1 AND state IN ('available', 'pending', 'scheduled', 'retryable', 'running')
		AND NOT (state = 'running' AND metadata ? 'cancel_attempted_at'))`, id).Scan(&waiting)
	if err != nil {
		return false, fmt.Errorf("looking for a job of move %d: %w", id, err)
	}
	return waiting, nil
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
	m, err := q.moves.Work(ctx, a.Job)
	switch {
	case errors.Is(err, mover.ErrBusy):
		// Another process runs it (a resume from the CLI, say): check back.
		return river.JobSnooze(10 * time.Second)
	case moves.Interrupted(ctx, err):
		// This process is stopping: the move's journal records where it
		// stopped, and the job runs again in the next process to start.
		q.log.Warn("move job interrupted; it resumes when a process starts", "move", a.MoveID, "error", err)
		return river.JobSnooze(time.Second)
	case err != nil:
		q.log.Error("move job failed", "move", a.MoveID, "action", a.Action, "error", err)
		// The journal has the failure; River must not retry on its own.
		return river.JobCancel(err)
	}
	q.log.Info("move job done", "move", a.MoveID, "action", a.Action, "state", m.State)
	return nil
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
	rows, err := q.primary.Query(ctx, `SELECT id, (args->>'move_id')::bigint FROM river_job
		WHERE kind = 'move' AND state = 'running' AND NOT (metadata ? 'cancel_attempted_at')
		AND attempted_at < now() - $1 * interval '1 microsecond'`, q.stale.Microseconds())
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
		err := tx.QueryRow(ctx, `SELECT (args->>'move_id')::bigint, args->>'action', args->>'actor' FROM river_job
			WHERE id = $1 AND state = 'running' AND NOT (metadata ? 'cancel_attempted_at')
			AND attempted_at < now() - $2 * interval '1 microsecond'
			FOR UPDATE`, jobID, q.stale.Microseconds()).
			Scan(&args.MoveID, &args.Action, &args.Actor)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		quiet, ended, err := journal.Quiet(ctx, tx, args.MoveID, q.stale)
		if err != nil || !quiet {
			return err
		}
		over = ended
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

// SweepArgs is the periodic job that drops what finished online moves left
// on their source shards (mover.Sweep).
type SweepArgs struct{}

// Kind names sweep jobs in River's tables.
func (SweepArgs) Kind() string { return "move_sweep" }

// InsertOpts: like the purge, a failed sweep waits for the next one.
func (SweepArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1} }

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	q *Queue
}

// sweepPerShard bounds each shard's part of a sweep, so one that hangs
// cannot hold up the others.
const sweepPerShard = 10 * time.Second

func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	swept, err := w.q.moves.Mover().Sweep(ctx, sweepPerShard)
	attrs := []any{"slots", swept.Slots, "publications", swept.Publications}
	switch {
	case err != nil || len(swept.Failed) > 0:
		w.q.log.Warn("sweeping online moves' slots and publications", append(attrs, "error", err, "failed", swept.Failed)...)
	case len(swept.Slots)+len(swept.Publications) > 0:
		w.q.log.Info("dropped what finished online moves left", attrs...)
	}
	return err
}

// withoutRoutine drops River's routine reports below warning level (its
// job counts every few seconds while jobs run, its maintenance's "ran
// successfully"), which bury the server's own log; its other news, such as
// starting, stopping or a job that errored, passes.
type withoutRoutine struct{ slog.Handler }

func (h withoutRoutine) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn && routineReport(r.Message) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h withoutRoutine) WithAttrs(attrs []slog.Attr) slog.Handler {
	return withoutRoutine{h.Handler.WithAttrs(attrs)}
}

func (h withoutRoutine) WithGroup(name string) slog.Handler {
	return withoutRoutine{h.Handler.WithGroup(name)}
}

func routineReport(msg string) bool {
	return strings.HasSuffix(msg, ": Producer job counts") || strings.Contains(msg, ": Ran successfully")
}
