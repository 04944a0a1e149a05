package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/jobs"
	"github.com/propertywebbuilder/pwb/internal/mover"
)

// ---- starting a move ----

func (s *Server) opsMigrateForm(w http.ResponseWriter, r *http.Request) error {
	return s.opsTenantPage(w, r, "ops/migrate", "Migrate ")
}

// opsMigrate runs the move's pre-flight and, if it passes, records the
// move and queues its job. A refusal redraws the form with the reason.
func (s *Server) opsMigrate(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.opsWebsite(r)
	if err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	target := r.PostForm.Get("target")
	refuse := func(msg string) error {
		d, err := s.tenantData(r, ws)
		if err != nil {
			return err
		}
		d.Target = target
		return s.renderOpsMsg(w, r, http.StatusUnprocessableEntity, "ops/migrate", "Migrate "+ws.Name, d, msg)
	}
	if target == "" {
		return refuse("Select the shard to move the tenant to.")
	}
	plan, err := s.jobs.Mover().Plan(r.Context(), strconv.FormatInt(ws.ID, 10), target)
	if errors.Is(err, mover.ErrRefused) {
		e := audit.Entry{Actor: opsActor(r), Action: audit.Move, Source: ws.ShardName, Target: target,
			Outcome: audit.Refused, Detail: err.Error()}.ForWebsite(ws)
		if aerr := audit.Record(r.Context(), s.accounts, e); aerr != nil {
			s.log.Error("audit", "error", aerr, "action", e.Action, "tenant", ws.ID)
		}
		return refuse("The move was refused, and nothing was changed: " + err.Error())
	}
	if err != nil {
		return err
	}
	id, err := s.jobs.EnqueueMove(r.Context(), plan, opsActor(r))
	if errors.Is(err, mover.ErrRefused) {
		return refuse("The move was refused, and nothing was changed: " + err.Error())
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("%s/moves/%d?done=queued", opsPrefix, id), http.StatusSeeOther)
	return nil
}

// opsActor names the signed-in super-admin in the journal and audit log.
func opsActor(r *http.Request) string { return "admin:" + opsSessionFrom(r.Context()).Email }

// ---- following a move ----

// moveProgress is what the progress bar shows, as JSON for the live
// updates and as the page's first drawing.
type moveProgress struct {
	ID         int64   `json:"id"`
	WebsiteID  int64   `json:"website_id"`
	Tenant     string  `json:"tenant"`
	Source     string  `json:"source"`
	Target     string  `json:"target"`
	State      string  `json:"state"`
	Phase      string  `json:"phase"`
	Percent    int     `json:"percent"`
	RowsCopied int64   `json:"rows_copied"`
	RowsTotal  int64   `json:"rows_total"`
	ETA        string  `json:"eta,omitempty"`
	Rate       float64 `json:"rows_per_second,omitempty"`
	Error      string  `json:"error,omitempty"`
	Done       bool    `json:"done"`
	Failed     bool    `json:"failed"`
	Aborted    bool    `json:"aborted"`
	CanResume  bool    `json:"can_resume"`
	CanAbort   bool    `json:"can_abort"`
	// Tables keeps the move page's table live along with the bar.
	Tables []tableProgress `json:"tables"`
}

// tableProgress is one table's line of a move's progress.
type tableProgress struct {
	Name        string `json:"table"`
	RowsCopied  int64  `json:"rows_copied"`
	Copied      bool   `json:"copied"`
	Verified    string `json:"verified,omitempty"` // "match" or "differ", once the checksums are in
	RowsDeleted int64  `json:"rows_deleted"`
}

// Ended reports whether nothing more will change without an operator.
func (p moveProgress) Ended() bool { return p.Done || p.Failed || p.Aborted }

// stepPercent is where each step starts on the bar; the copy takes most of
// it.
var stepPercent = map[string]int{
	mover.StatePlanned: 0, mover.StateFrozen: 2, mover.StateCopying: 2, mover.StateCopied: 90,
	mover.StateVerified: 94, mover.StateSwitched: 96, mover.StateCleaned: 99, mover.StateDone: 100,
}

var phaseText = map[string]string{
	mover.StatePlanned:  "Queued: waiting for a worker",
	mover.StateFrozen:   "Site is read-only; starting the copy",
	mover.StateCopying:  "Copying rows",
	mover.StateCopied:   "Verifying the copy",
	mover.StateVerified: "Switching the tenant to its new shard",
	mover.StateSwitched: "Removing the rows from the old shard",
	mover.StateCleaned:  "Finishing",
	mover.StateDone:     "Done",
}

func progressOf(m mover.Move, now time.Time) moveProgress {
	p := moveProgress{ID: m.ID, WebsiteID: m.WebsiteID, Tenant: m.Subdomain, Source: m.Source, Target: m.Target,
		State: m.State, RowsCopied: m.RowsCopied(), RowsTotal: m.RowsTotal()}
	for _, t := range m.Tables {
		tp := tableProgress{Name: t.Name, RowsCopied: t.RowsCopied, Copied: t.Copied, RowsDeleted: t.RowsDeleted}
		switch {
		case t.TargetChecksum == "":
		case t.TargetChecksum == t.SourceChecksum:
			tp.Verified = "match"
		default:
			tp.Verified = "differ"
		}
		p.Tables = append(p.Tables, tp)
	}
	step := m.Step()
	p.Percent = stepPercent[step]
	p.Phase = phaseText[step]
	if step == mover.StateCopying && p.RowsTotal > 0 {
		p.Percent += int(88 * p.RowsCopied / p.RowsTotal)
		if m.FrozenAt != nil && p.RowsCopied > 0 {
			elapsed := now.Sub(*m.FrozenAt).Seconds()
			if elapsed > 0 {
				p.Rate = float64(p.RowsCopied) / elapsed
				left := time.Duration(float64(p.RowsTotal-p.RowsCopied) / p.Rate * float64(time.Second))
				p.ETA = roughDuration(left)
			}
		}
	}
	switch m.State {
	case mover.StateDone:
		p.Done, p.Percent = true, 100
	case mover.StateFailed:
		p.Failed = true
		p.Phase = "Failed while " + phaseText[step]
		p.Error = m.Error
		p.CanResume = true
		p.CanAbort = !m.Switched()
	case mover.StateAborted:
		p.Aborted = true
		p.Phase = "Aborted: the tenant is active on " + m.Source + " again"
		if !m.TargetCleared {
			p.Phase += "; rows copied to " + m.Target + " remain"
			p.Error = m.Error
			p.CanAbort = true
		}
	}
	return p
}

func roughDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "less than a second"
	case d < time.Minute:
		return fmt.Sprintf("about %d s", int(d.Seconds()+0.5))
	case d < time.Hour:
		return fmt.Sprintf("about %d min", int(d.Minutes()+0.5))
	}
	return fmt.Sprintf("about %.1f h", d.Hours())
}

type opsMoveData struct {
	Move     mover.Move
	Progress moveProgress
}

func (s *Server) opsMoveByID(r *http.Request) (mover.Move, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return mover.Move{}, notFound(nil, nil)
	}
	m, err := mover.Get(r.Context(), s.accounts, id)
	if errors.Is(err, mover.ErrNotFound) {
		return m, notFound(nil, nil)
	}
	return m, err
}

func (s *Server) opsMove(w http.ResponseWriter, r *http.Request) error {
	m, err := s.opsMoveByID(r)
	if err != nil {
		return err
	}
	d := opsMoveData{Move: m, Progress: progressOf(m, time.Now())}
	return s.renderOps(w, r, http.StatusOK, "ops/move", fmt.Sprintf("Move %d", m.ID), d)
}

func (s *Server) opsMoveProgress(w http.ResponseWriter, r *http.Request) error {
	m, err := s.opsMoveByID(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(progressOf(m, time.Now()))
}

// eventsEvery is how often the live progress stream reads the journal.
const eventsEvery = 400 * time.Millisecond

// opsMoveEvents streams the move's progress as server-sent events, one
// whenever it changes, until it ends or the client goes; a stream lasts at
// most ten minutes, and the browser reconnects on its own.
func (s *Server) opsMoveEvents(w http.ResponseWriter, r *http.Request) error {
	m, err := s.opsMoveByID(r)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Set up within the request's deadline; from here the stream lasts,
	// and each read of the journal has a deadline of its own, so a hung
	// primary costs a tick a "problem" event, never a hung stream.
	ctx := streamContext(r)
	stop := time.Now().Add(10 * time.Minute)
	var last []byte
	tick := time.NewTicker(eventsEvery)
	defer tick.Stop()
	for {
		p := progressOf(m, time.Now())
		b, _ := json.Marshal(p)
		if !bytes.Equal(b, last) {
			rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return nil // the client went away
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
			last = b
		}
		if p.Ended() || time.Now().After(stop) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.streams.Done():
			return nil
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.requestTimeout)
		next, err := mover.Get(rctx, s.accounts, m.ID)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The move as last read stays on the page.
			fmt.Fprintf(w, "event: problem\ndata: %q\n\n", "The journal could not be read; retrying.")
			rc.Flush()
			continue
		}
		m = next
	}
}

// ---- resume and abort ----

func (s *Server) opsResume(w http.ResponseWriter, r *http.Request) error {
	return s.opsQueue(w, r, "resumed", s.jobs.EnqueueResume)
}

func (s *Server) opsAbort(w http.ResponseWriter, r *http.Request) error {
	if r.PostForm.Get("confirm") != "yes" {
		m, err := s.opsMoveByID(r)
		if err != nil {
			return err
		}
		return s.renderMoveError(w, r, m, "Tick the box to confirm the abort. Nothing was changed.")
	}
	return s.opsQueue(w, r, "aborted", s.jobs.EnqueueAbort)
}

// opsQueue queues a resume or an abort of the move and shows its page.
func (s *Server) opsQueue(w http.ResponseWriter, r *http.Request, done string, enqueue func(context.Context, int64, string) error) error {
	m, err := s.opsMoveByID(r)
	if err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	err = enqueue(r.Context(), m.ID, opsActor(r))
	if errors.Is(err, jobs.ErrRefused) {
		return s.renderMoveError(w, r, m, "Refused, and nothing was changed: "+err.Error())
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("%s/moves/%d?done=%s", opsPrefix, m.ID, done), http.StatusSeeOther)
	return nil
}

func (s *Server) renderMoveError(w http.ResponseWriter, r *http.Request, m mover.Move, msg string) error {
	d := opsMoveData{Move: m, Progress: progressOf(m, time.Now())}
	return s.renderOpsMsg(w, r, http.StatusUnprocessableEntity, "ops/move", fmt.Sprintf("Move %d", m.ID), d, msg)
}
