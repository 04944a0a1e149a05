// Package moves is the one place where what happens to a tenant move is
// decided: planning, starting it (now, in the calling process, or queued as a
// background job), running it, resuming and aborting it, the rules of which
// of those a move allows (journal.Move's ResumeRefusal and AbortRefusal), and
// the audit line each writes. The CLI, the job queue's worker and the
// platform admin all call it, so a move started from any of them is recorded
// and audited the same way.
package moves

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/fault"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// Job is a move to run in the background: the move, the action (audit.Move,
// audit.Resume or audit.Abort) and who asked for it.
type Job struct {
	MoveID int64  `json:"move_id"`
	Action string `json:"action"`
	Actor  string `json:"actor"`
	// Recovered says the job replaces one whose process died.
	Recovered bool `json:"recovered,omitempty"`
}

// Queue runs jobs in the background, durably (package jobs).
type Queue interface {
	// InsertTx queues job in tx, so it exists if and only if tx commits.
	InsertTx(ctx context.Context, tx pgx.Tx, job Job) error
	// Pending reports whether a job of move id is waiting or running.
	Pending(ctx context.Context, tx pgx.Tx, id int64) (bool, error)
}

// ErrNoQueue means a move was to be queued but this process has no queue.
var ErrNoQueue = fault.New(fault.Unavailable, "moves: no job queue to run the move in the background")

// auditTimeout bounds writing an audit line, so a primary that stopped
// answering cannot hold up the end of an operation.
const auditTimeout = 5 * time.Second

// Service decides and records moves over one process's shard set.
type Service struct {
	mover   *mover.Mover
	primary *pgxpool.Pool
	queue   Queue
	online  onlineCache
	// warn reports an audit line that could not be written after an
	// operation that succeeded.
	warn func(e audit.Entry, err error)
}

// Options tunes a Service.
type Options struct {
	Mover mover.Options
	// Warn, if set, is told of an audit line that could not be written
	// after an operation that succeeded; after one that failed, the
	// returned error says it.
	Warn func(e audit.Entry, err error)
}

// New returns the service of set. It opens no connection.
func New(set *shard.Set, opt Options) (*Service, error) {
	primary, err := set.Primary()
	if err != nil {
		return nil, err
	}
	m, err := mover.New(set, opt.Mover)
	if err != nil {
		return nil, err
	}
	warn := opt.Warn
	if warn == nil {
		warn = func(audit.Entry, error) {}
	}
	return &Service{mover: m, primary: primary, warn: warn}, nil
}

// UseQueue makes queued starts, resumes and aborts possible.
func (s *Service) UseQueue(q Queue) { s.queue = q }

// onlineCache remembers for a while whether each shard supports online
// moves, since finding out opens a replication connection.
type onlineCache struct {
	mu   sync.Mutex
	seen map[string]onlineAnswer
}

type onlineAnswer struct {
	ok     bool
	reason string
	at     time.Time
}

// onlineTTL is how long an answer about a shard's support for online moves
// holds.
const onlineTTL = 30 * time.Second

// Online reports whether a move off shard would run online and, if not,
// why, for pages that describe a move before it is planned. An answer is
// kept for onlineTTL; a check that cannot run says so as the reason.
func (s *Service) Online(ctx context.Context, shard string) (bool, string) {
	s.online.mu.Lock()
	a, ok := s.online.seen[shard]
	s.online.mu.Unlock()
	if ok && time.Since(a.at) < onlineTTL {
		return a.ok, a.reason
	}
	yes, reason, err := s.mover.OnlineSupported(ctx, shard)
	if err != nil {
		return false, fmt.Sprintf("shard %q could not be checked: %v", shard, err)
	}
	s.online.mu.Lock()
	if s.online.seen == nil {
		s.online.seen = map[string]onlineAnswer{}
	}
	s.online.seen[shard] = onlineAnswer{ok: yes, reason: reason, at: time.Now()}
	s.online.mu.Unlock()
	return yes, reason
}

// Mover is the mover the service runs moves with, for what only reads
// (verify reports).
func (s *Service) Mover() *mover.Mover { return s.mover }

// Plan runs a move's pre-flight and changes nothing: a dry run. An empty
// mode picks online when the source supports it.
func (s *Service) Plan(ctx context.Context, tenantRef, target string, mode journal.Mode) (mover.Plan, error) {
	return s.mover.Plan(ctx, tenantRef, target, mode)
}

// Prepare is Plan for a move that is meant to happen: a plan that fails is
// audited as a refused (or failed) move.
func (s *Service) Prepare(ctx context.Context, actor, tenantRef, target string, mode journal.Mode) (mover.Plan, error) {
	p, err := s.mover.Plan(ctx, tenantRef, target, mode)
	if err == nil {
		return p, nil
	}
	e := audit.Entry{Action: audit.Move, Tenant: tenantRef, Source: p.Source, Target: target}
	if p.Website.ID != 0 {
		e = e.ForWebsite(p.Website)
	}
	return p, s.record(ctx, actor, e, err)
}

// Start records planned move p, checking with the tenant's registry row
// locked that nothing changed since the plan. With queued, the move's job is
// queued in the same transaction and the move audited as queued; otherwise
// the caller runs it with Run. A refused start is audited.
func (s *Service) Start(ctx context.Context, p mover.Plan, actor string, queued bool) (int64, error) {
	return s.StartWithTier(ctx, p, actor, queued, "")
}

// StartWithTier is a queued Start that also gives the tenant tier, in the
// transaction that records the move and queues its job, so both happen or
// neither: an operator moving a premium tenant onto the shared shard, or a
// standard one onto a shard of its own, changes its tier in the same step.
// The move's queued line in the audit log records the change. An empty tier,
// or the tenant's own, changes nothing.
func (s *Service) StartWithTier(ctx context.Context, p mover.Plan, actor string, queued bool, tier string) (int64, error) {
	if queued && s.queue == nil {
		return 0, ErrNoQueue
	}
	if tier == p.Website.Tier {
		tier = ""
	}
	if tier != "" && !queued {
		return 0, errors.New("moves: a tier change goes with a queued start, whose audit line records it")
	}
	var also func(context.Context, pgx.Tx, int64) error
	if queued {
		also = func(ctx context.Context, tx pgx.Tx, id int64) error {
			if tier != "" {
				if err := registry.SetTier(ctx, tx, p.Website.ID, tier); err != nil {
					return err
				}
			}
			return s.queue.InsertTx(ctx, tx, Job{MoveID: id, Action: audit.Move, Actor: actor})
		}
	}
	id, err := s.mover.StartWith(ctx, p, actor, also)
	e := audit.Entry{Action: audit.Move, Source: p.Source, Target: p.Target, MoveID: id}.ForWebsite(p.Website)
	switch {
	case err != nil:
		return 0, s.record(ctx, actor, e, err)
	case queued:
		e.Outcome = audit.Queued
		if tier != "" {
			e.Detail = tierChange(p.Website.Tier, tier)
		}
		return id, s.record(ctx, actor, e, nil)
	}
	return id, nil
}

// tierChange is how the audit log words a tier changed with a move.
func tierChange(from, to string) string {
	return fmt.Sprintf("tier changed from %s to %s as the move was queued", from, to)
}

// Run carries started move id through to done in this process and audits
// how it ended.
func (s *Service) Run(ctx context.Context, id int64, actor string) (journal.Move, error) {
	return s.execute(ctx, Job{MoveID: id, Action: audit.Move, Actor: actor}, false)
}

// Resume continues move id from where its journal says it stopped: now, in
// this process, or queued as a job.
func (s *Service) Resume(ctx context.Context, id int64, actor string, queued bool) (journal.Move, error) {
	job := Job{MoveID: id, Action: audit.Resume, Actor: actor}
	if queued {
		return s.enqueue(ctx, job, journal.Move.ResumeRefusal)
	}
	return s.execute(ctx, job, false)
}

// Abort rolls move id back, if it has not switched: now, in this process, or
// queued as a job.
func (s *Service) Abort(ctx context.Context, id int64, actor string, queued bool) (journal.Move, error) {
	job := Job{MoveID: id, Action: audit.Abort, Actor: actor}
	if queued {
		return s.enqueue(ctx, job, journal.Move.AbortRefusal)
	}
	return s.execute(ctx, job, false)
}

// AbortConfirmed is Abort in this process after confirm has accepted the
// move as the journal has it. A move that cannot be aborted is refused (and
// audited) without asking; confirm's error (the operator declined) is
// returned as it is and not audited, since nothing was attempted.
func (s *Service) AbortConfirmed(ctx context.Context, id int64, actor string, confirm func(journal.Move) error) (journal.Move, error) {
	job := Job{MoveID: id, Action: audit.Abort, Actor: actor}
	m, err := journal.Get(ctx, s.primary, id)
	if errors.Is(err, journal.ErrNotFound) {
		err = journal.Refusal(err)
	}
	if err == nil {
		err = m.AbortRefusal()
	}
	if err != nil {
		return m, s.record(ctx, actor, s.entry(ctx, job, m), err)
	}
	if err := confirm(m); err != nil {
		return m, err
	}
	return s.execute(ctx, job, false)
}

// Work runs a queued job. A job that finds its move run by another process
// (mover.ErrBusy), or that is interrupted because this process is stopping,
// is not audited: it runs again later, and its end is audited then.
func (s *Service) Work(ctx context.Context, job Job) (journal.Move, error) {
	return s.execute(ctx, job, true)
}

// Interrupted reports whether a job's error means only that it should run
// again later.
func Interrupted(ctx context.Context, err error) bool {
	return errors.Is(err, mover.ErrBusy) || (err != nil && ctx.Err() != nil)
}

func (s *Service) execute(ctx context.Context, job Job, background bool) (journal.Move, error) {
	var m journal.Move
	var err error
	if job.Action == audit.Abort {
		m, err = s.mover.Abort(ctx, job.MoveID)
	} else {
		m, err = s.mover.Run(ctx, job.MoveID)
	}
	if background && Interrupted(ctx, err) {
		return m, err
	}
	e := s.entry(ctx, job, m)
	if job.Recovered {
		e.Detail = "resumed after the process running it stopped"
	}
	return m, s.record(ctx, job.Actor, e, err)
}

// enqueue checks, with the move's journal row locked, that the move exists,
// passes rule, is not running and has no job waiting, then queues job.
func (s *Service) enqueue(ctx context.Context, job Job, rule func(journal.Move) error) (journal.Move, error) {
	if s.queue == nil {
		return journal.Move{}, ErrNoQueue
	}
	var m journal.Move
	err := pgx.BeginFunc(ctx, s.primary, func(tx pgx.Tx) error {
		var err error
		if m, err = journal.GetForUpdate(ctx, tx, job.MoveID); err != nil {
			if errors.Is(err, journal.ErrNotFound) {
				return journal.Refusal(err)
			}
			return err
		}
		if err := rule(m); err != nil {
			return err
		}
		// A dead job the watcher has replaced runs nothing (a live run
		// would hold the claim, checked below).
		waiting, err := s.queue.Pending(ctx, tx, job.MoveID)
		if err != nil {
			return err
		}
		if !waiting {
			if waiting, err = mover.Claimed(ctx, s.primary, job.MoveID); err != nil {
				return err
			}
		}
		if waiting {
			return journal.Refuse("move %d is running or queued already", job.MoveID)
		}
		return s.queue.InsertTx(ctx, tx, job)
	})
	e := s.entry(ctx, job, m)
	if err == nil {
		e.Outcome = audit.Queued
	}
	return m, s.record(ctx, job.Actor, e, err)
}

// entry is the audit line of job, whose move is m as the mover returned it,
// read again if the mover could not (another process runs it, say).
func (s *Service) entry(ctx context.Context, job Job, m journal.Move) audit.Entry {
	if m.ID == 0 {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
		m, _ = journal.Get(rctx, s.primary, job.MoveID)
		cancel()
	}
	return audit.ForMove(job.Action, job.MoveID, m)
}

// record writes e for an operation by actor that ended with err, and returns
// err. The outcome, unless e has one (queued), comes from err: done,
// refused, or failed (an interrupt is a failure). The operation happened
// either way, so a line that cannot be written is reported through Warn
// after a success, and appended to err after a failure.
func (s *Service) record(ctx context.Context, actor string, e audit.Entry, err error) error {
	e.Actor = actor
	if e.Outcome == "" || err != nil {
		e.Outcome = audit.OutcomeOf(err, journal.ErrRefused, registry.ErrNotFound)
	}
	if err != nil {
		e.Detail = joinDetail(e.Detail, err.Error())
		if ctx.Err() != nil {
			e.Outcome = audit.Failed
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	werr := audit.Record(rctx, s.primary, e)
	switch {
	case werr == nil:
		return err
	case err == nil:
		s.warn(e, werr)
		return nil
	}
	return fmt.Errorf("%w (and it is missing from the audit log: %v)", err, werr)
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + ": " + b
}
