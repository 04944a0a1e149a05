package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/ops"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/units"
)

// ---- starting a move ----

func (s *Server) opsMigrateForm(w http.ResponseWriter, r *http.Request) error {
	return s.opsTenantPage(w, r, "ops/migrate", "Migrate ")
}

// opsMigrate runs the move's pre-flight and, if it passes, records the
// move and queues its job, with the tier change the form asked for in the
// same transaction. A refusal redraws the form with the reason and changes
// nothing.
func (s *Server) opsMigrate(w http.ResponseWriter, r *http.Request) error {
	ws, err := s.opsWebsite(r)
	if err != nil {
		return err
	}
	if s.moves == nil {
		return errNoJobs
	}
	target, tier := r.PostForm.Get("target"), r.PostForm.Get("tier")
	refuse := func(status int, msg string) error {
		d, err := s.tenantData(r, ws)
		if err != nil {
			return err
		}
		d.Target, d.TierBox = target, tier != ""
		return s.renderOpsMsg(w, r, status, "ops/migrate", "Migrate "+ws.Name, d, msg)
	}
	if target == "" {
		return refuse(http.StatusUnprocessableEntity, "Select the shard to move the tenant to.")
	}
	// A shard the form shows disabled is refused here too. One not checked
	// yet is left to the pre-flight, which pings it.
	for _, d := range s.poller().Snapshot().Destinations(ws.ShardName) {
		if d.Name == target && d.Why != "" && d.Why != ops.Checking {
			reason := fmt.Sprintf("shard %q cannot take it (%s)", target, d.Why)
			e := audit.Entry{Actor: opsActor(r), Action: audit.Move, Outcome: audit.Refused, Source: ws.ShardName, Target: target,
				Detail: reason}.ForWebsite(ws)
			if err := audit.Record(r.Context(), s.accounts, e); err != nil {
				return err
			}
			return refuse(http.StatusConflict, "The move was refused, and nothing was changed: "+reason+".")
		}
	}
	if msg := tierRefusal(ws, target, tier); msg != "" {
		return refuse(http.StatusUnprocessableEntity, msg+" Nothing was changed.")
	}
	plan, err := s.moves.Prepare(r.Context(), opsActor(r), strconv.FormatInt(ws.ID, 10), target, "")
	if errors.Is(err, journal.ErrRefused) {
		return refuse(classify(err).status, "The move was refused, and nothing was changed: "+err.Error())
	}
	if err != nil {
		return err
	}
	id, err := s.moves.StartWithTier(r.Context(), plan, opsActor(r), true, tier)
	if errors.Is(err, journal.ErrRefused) {
		return refuse(classify(err).status, "The move was refused, and nothing was changed: "+err.Error())
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("%s/moves/%d?done=queued", opsPrefix, id), http.StatusSeeOther)
	return nil
}

// tierRefusal is why the tier box of a move of ws to target cannot be
// as posted, or "": it may only ask for the tier the target calls for.
func tierRefusal(ws registry.Website, target, tier string) string {
	switch {
	case tier == "":
		return ""
	case !registry.ValidTier(tier):
		return fmt.Sprintf("There is no tier %q: a tenant is standard or premium.", clip(tier, 40))
	case tier == ws.Tier:
		return fmt.Sprintf("%s is %s already, so there is no tier to change.", ws.Name, tier)
	case tierOn(ws.Tier, target) != tier:
		onto := "default, the shared shard"
		if tier == registry.TierPremium {
			onto = "a dedicated shard"
		}
		return fmt.Sprintf("%s stays %s on %s: its tier changes to %s only with a move onto %s. Untick the box, or choose such a shard.",
			ws.Name, ws.Tier, target, tier, onto)
	}
	return ""
}

// opsActor names the signed-in super-admin in the journal and audit log.
func opsActor(r *http.Request) string { return "admin:" + opsSessionFrom(r.Context()).Email }

// ---- following a move ----

// moveProgress is what the progress bar shows, as JSON for the live
// updates and as the page's first drawing.
type moveProgress struct {
	ID         int64         `json:"id"`
	WebsiteID  int64         `json:"website_id"`
	Tenant     string        `json:"tenant"`
	Source     string        `json:"source"`
	Target     string        `json:"target"`
	State      journal.State `json:"state"`
	Mode       journal.Mode  `json:"mode"`
	Phase      string        `json:"phase"`
	Percent    int           `json:"percent"`
	RowsCopied int64         `json:"rows_copied"`
	RowsTotal  int64         `json:"rows_total"`
	ETA        string        `json:"eta,omitempty"`
	Rate       float64       `json:"rows_per_second,omitempty"`
	Error      string        `json:"error,omitempty"`
	// Detail is an online move's catch-up while it streams.
	Detail string `json:"detail,omitempty"`
	// Took is the move's whole time once it is done or aborted, and
	// Blocked how long the tenant's writes were blocked, once known.
	Took      string `json:"took,omitempty"`
	Blocked   string `json:"blocked,omitempty"`
	Done      bool   `json:"done"`
	Failed    bool   `json:"failed"`
	Aborted   bool   `json:"aborted"`
	CanResume bool   `json:"can_resume"`
	CanAbort  bool   `json:"can_abort"`
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
var stepPercent = map[journal.State]int{
	journal.StatePlanned: 0, journal.StatePrepared: 2, journal.StateFrozen: 2, journal.StateCopying: 2, journal.StateCopied: 90,
	journal.StateVerified: 94, journal.StateSwitched: 96, journal.StateCleaned: 99, journal.StateDone: 100,
}

var phaseText = map[journal.State]string{
	journal.StatePlanned:  "Queued: waiting for a worker",
	journal.StateFrozen:   "Site is read-only; starting the copy",
	journal.StateCopying:  "Copying rows",
	journal.StateCopied:   "Verifying the copy",
	journal.StateVerified: "Switching the tenant to its new shard",
	journal.StateSwitched: "Removing the rows from the old shard",
	journal.StateCleaned:  "Finishing",
	journal.StateDone:     "Done",
}

// onlinePhaseText is what differs for an online move, whose site keeps
// taking changes until the cut-over.
var onlinePhaseText = map[journal.State]string{
	journal.StatePrepared: "Starting the copy; the site keeps taking changes",
	journal.StateCopying:  "Copying rows; the site keeps taking changes",
	journal.StateCopied:   "Streaming the changes made meanwhile and verifying the copy",
	journal.StateVerified: "Cutting over: holding writes for under a second to switch",
}

func progressOf(m journal.Move, now time.Time) moveProgress {
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
	p.Mode = m.Mode
	p.Percent = stepPercent[step]
	p.Phase = phaseText[step]
	if text, ok := onlinePhaseText[step]; ok && m.Online() {
		p.Phase = text
	}
	p.Detail = moveDetail(m)
	if d, ok := m.Took(); ok {
		p.Took = journal.Measured(d)
	}
	if d, ok := m.Blocked(); ok {
		p.Blocked = journal.Measured(d)
	}
	if step == journal.StateCopying && p.RowsTotal > 0 {
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
	case journal.StateDone:
		p.Done, p.Percent = true, 100
	case journal.StateFailed:
		p.Failed = true
		p.Phase = "Failed while " + phaseText[step]
		p.Error = m.Error
		p.CanResume = m.CanResume()
		p.CanAbort = m.CanAbort()
	case journal.StateAborted:
		p.Aborted = true
		p.Phase = "Aborted: the tenant is active on " + m.Source + " again"
		if !m.TargetCleared {
			p.Phase += "; rows copied to " + m.Target + " remain"
			p.Error = m.Error
			p.CanAbort = m.CanAbort()
		}
	}
	return p
}

// moveDetail says how an online move's stream is doing.
func moveDetail(m journal.Move) string {
	if !m.Online() || m.StreamedAt == nil || m.Switched() {
		return ""
	}
	s := units.Count(m.ChangesApplied) + " changes streamed"
	if m.LagBytes != nil && m.LagSeconds != nil {
		s += fmt.Sprintf(" · %s, %.1f s behind", units.Bytes(*m.LagBytes), *m.LagSeconds)
	}
	return s
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
	Move     journal.Move
	Progress moveProgress
	// SiteURL is the tenant's site (see siteURL).
	SiteURL string
	// Notice is what was just queued, while the journal shows it waiting:
	// NoticeWhile lists the states in which it holds, for the live
	// updates to drop it once the work runs.
	Notice      string
	NoticeWhile string
}

// moveNotice is the move page's notice after something was queued, and
// the states of the move in which it still holds.
type moveNotice struct {
	text  string
	while []journal.State
}

// moveNotices are the move page's notices by ?done=.
var moveNotices = map[string]moveNotice{
	"queued":  {"The move is queued; its progress shows below.", []journal.State{journal.StatePlanned}},
	"resumed": {"The move is queued to resume.", []journal.State{journal.StateFailed}},
	"aborted": {"The abort is queued; the tenant becomes active on its old shard first.", []journal.State{
		journal.StatePlanned, journal.StatePrepared, journal.StateFrozen, journal.StateCopying, journal.StateCopied,
		journal.StateVerified, journal.StateFailed}},
}

// moveEnd is what the move page shows once the move has ended, or stopped
// failing: its whole time, how long the tenant's writes were blocked, and
// the way to its site.
type moveEnd struct {
	Outcome  string // done, aborted or failed
	Took     string
	From, To string // to the second
	// Blocked is how long writes were blocked, "" when they were not;
	// Online says they were held at the cut-over rather than refused
	// from the freeze.
	Blocked string
	Online  bool
	// FrozenSince is when a failed move made the site read-only, which it
	// stays until the move is resumed or aborted.
	FrozenSince string
}

// secondsLayout shows the ends of a move to the second.
const secondsLayout = "2 Jan 2006 15:04:05"

// End is the move's end figures, or nil while it runs.
func (d opsMoveData) End() *moveEnd {
	m := d.Move
	var to time.Time
	switch m.State {
	case journal.StateDone, journal.StateAborted:
		to = *m.FinishedAt
	case journal.StateFailed:
		to = m.UpdatedAt // when it failed
	default:
		return nil
	}
	e := &moveEnd{Outcome: string(m.State), Took: journal.Measured(to.Sub(m.StartedAt)), From: m.StartedAt.Format(secondsLayout),
		To: to.Format(secondsLayout), Blocked: d.Progress.Blocked, Online: m.Online()}
	if m.State == journal.StateFailed && m.FrozenAt != nil && !m.Switched() {
		e.FrozenSince = m.FrozenAt.Format(secondsLayout)
	}
	return e
}

func (s *Server) opsMoveByID(r *http.Request) (journal.Move, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return journal.Move{}, notFound(nil, nil)
	}
	m, err := journal.Get(r.Context(), s.accounts, id)
	if errors.Is(err, journal.ErrNotFound) {
		return m, notFound(nil, nil)
	}
	return m, err
}

func (s *Server) opsMove(w http.ResponseWriter, r *http.Request) error {
	m, err := s.opsMoveByID(r)
	if err != nil {
		return err
	}
	d, err := s.moveData(r, m)
	if err != nil {
		return err
	}
	if n, ok := moveNotices[r.URL.Query().Get("done")]; ok && slices.Contains(n.while, m.State) {
		states := make([]string, len(n.while))
		for i, st := range n.while {
			states[i] = string(st)
		}
		d.Notice, d.NoticeWhile = n.text, strings.Join(states, " ")
	}
	return s.renderOps(w, r, http.StatusOK, "ops/move", fmt.Sprintf("Move %d", m.ID), d)
}

// moveData is the move page's data for move m.
func (s *Server) moveData(r *http.Request, m journal.Move) (opsMoveData, error) {
	ws, err := registry.Get(r.Context(), s.accounts, m.WebsiteID)
	if err != nil {
		return opsMoveData{}, err
	}
	return opsMoveData{Move: m, Progress: progressOf(m, time.Now()), SiteURL: siteURL(r, ws)}, nil
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
		next, err := journal.Get(rctx, s.accounts, m.ID)
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
	return s.opsQueue(w, r, "resumed", s.moves.Resume)
}

func (s *Server) opsAbort(w http.ResponseWriter, r *http.Request) error {
	if r.PostForm.Get("confirm") != "yes" {
		m, err := s.opsMoveByID(r)
		if err != nil {
			return err
		}
		return s.renderMoveError(w, r, m, http.StatusUnprocessableEntity, "Tick the box to confirm the abort. Nothing was changed.")
	}
	return s.opsQueue(w, r, "aborted", s.moves.Abort)
}

// opsQueue queues a resume or an abort of the move and shows its page.
func (s *Server) opsQueue(w http.ResponseWriter, r *http.Request, done string,
	enqueue func(context.Context, int64, string, bool) (journal.Move, error)) error {
	m, err := s.opsMoveByID(r)
	if err != nil {
		return err
	}
	if s.moves == nil {
		return errNoJobs
	}
	_, err = enqueue(r.Context(), m.ID, opsActor(r), true)
	if errors.Is(err, journal.ErrRefused) {
		return s.renderMoveError(w, r, m, classify(err).status, "Refused, and nothing was changed: "+err.Error())
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("%s/moves/%d?done=%s", opsPrefix, m.ID, done), http.StatusSeeOther)
	return nil
}

func (s *Server) renderMoveError(w http.ResponseWriter, r *http.Request, m journal.Move, status int, msg string) error {
	d, err := s.moveData(r, m)
	if err != nil {
		return err
	}
	return s.renderOpsMsg(w, r, status, "ops/move", fmt.Sprintf("Move %d", m.ID), d, msg)
}
