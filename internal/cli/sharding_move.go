package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/fault"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/moves"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/units"
)

// testPauseHook, when set, gives the mover its Pause hook (mover.Options):
// only the package's tests set it, so the shipped pwb has no way to pause a
// move. before, if set, runs before the hook says it paused.
var testPauseHook func(a *app, before func()) func(string)

func (a *app) testPause(before func()) func(string) {
	if testPauseHook == nil {
		return nil
	}
	return testPauseHook(a, before)
}

// moves builds the move service for a command, reporting progress through
// view.
func (a *app) moves(view *moveView) (*moves.Service, error) {
	set, err := a.shards()
	if err != nil {
		return nil, err
	}
	return moves.New(set, moves.Options{
		Mover: mover.Options{Progress: view.event, CleanupDelay: view.cleanupDelay, Pause: a.testPause(view.clear)},
		Warn: func(e audit.Entry, err error) {
			fmt.Fprintf(a.stderr, "pwb: warning: this %s is missing from the audit log: %s\n", e.Action, describe(err))
		},
	})
}

// actor names who runs a command, for the journal.
func actor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "cli:" + name + "@" + host
}

// auditTimeout bounds writing an audit line, so a primary that stopped
// answering cannot hold the command's exit.
const auditTimeout = 5 * time.Second

// audit writes the audit line of a provision that ended with err: its
// outcome (done, refused or, after Ctrl-C or any other error, failed) and
// detail come from err. It returns err. The operation has happened either
// way, so a line that cannot be written only warns: on stderr after a
// success, and appended to err's one line after a failure. (Moves are
// audited by package moves.)
func (a *app) audit(e audit.Entry, err error) error {
	e.Actor = actor()
	e.Outcome = audit.OutcomeOf(err, fault.Refused, journal.ErrNotFound)
	if err != nil {
		e.Detail = err.Error()
		if a.ctx.Err() != nil {
			e.Outcome = audit.Failed
		}
	}
	_, primary, werr := a.primary()
	if werr == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), auditTimeout)
		defer cancel()
		werr = audit.Record(ctx, primary, e)
	}
	switch {
	case werr == nil:
		return err
	case err == nil:
		fmt.Fprintf(a.stderr, "pwb: warning: this %s is missing from the audit log: %s\n", e.Action, describe(werr))
		return nil
	default:
		return fmt.Errorf("%w (and it is missing from the audit log: %s)", err, describe(werr))
	}
}

func parseMoveID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("MOVE_ID %q: must be a move number, as `pwb sharding moves` lists", s)
	}
	return id, nil
}

func (a *app) shardingMigrateCommand() *cobra.Command {
	var dryRun, yes, asJSON bool
	var cleanupDelay time.Duration
	var mode string
	c := &cobra.Command{
		Use:   "migrate TENANT TARGET [--mode online|freeze] [--dry-run] [--yes] [--json]",
		Short: "Move a tenant's data to another shard",
		Long: `Moves a tenant (website id or subdomain) and all its rows to shard TARGET.

Online (when the source shard supports logical decoding): the site keeps
taking changes while every table is copied; the changes made meanwhile are
streamed to TARGET; counts and checksums are compared; then writes are held
for under a second while the registry switches. Otherwise, or with
--mode freeze: the site is read-only (changes get 503) from the start of the
copy to the switch. Either way the rows are then deleted from the old shard.

Every step is journaled: an interrupted move is finished with
'pwb sharding resume' or rolled back with 'pwb sharding abort'.

--mode online refuses, saying why, when the source cannot stream changes.
--dry-run prints the plan and changes nothing. --json prints progress as JSON
lines. Asks for confirmation unless --yes.`,
		Args: exactArgs("TENANT", "TARGET"),
		RunE: func(_ *cobra.Command, args []string) error {
			m := journal.Mode(mode)
			if m != "" && m != journal.ModeOnline && m != journal.ModeFreeze {
				return usagef("--mode %q: want online or freeze", mode)
			}
			view, svc, err := a.moveRunner(asJSON, cleanupDelay)
			if err != nil {
				return err
			}
			if dryRun {
				plan, err := svc.Plan(a.ctx, args[0], args[1], m)
				if err != nil {
					return err
				}
				return a.printPlan(plan, asJSON)
			}
			plan, err := svc.Prepare(a.ctx, actor(), args[0], args[1], m)
			if err != nil {
				return err
			}
			if !yes {
				question := fmt.Sprintf("Move tenant %d (%s) from %s to %s: %s rows, %s? %s",
					plan.Website.ID, plan.Website.Subdomain, plan.Source, plan.Target, units.Count(plan.Rows()), units.Bytes(plan.Bytes()), writesText(plan))
				// Declining is not recorded: nothing was attempted.
				if err := a.confirm(question); err != nil {
					return err
				}
			}
			id, err := svc.Start(a.ctx, plan, actor(), false)
			if err != nil {
				return err
			}
			view.started(id)
			moved, err := svc.Run(a.ctx, id, actor())
			return a.finishMove(view, id, moved, err)
		},
	}
	c.Flags().StringVar(&mode, "mode", "", "online or freeze (default: online when the source supports it)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	cleanupDelayVar(c, &cleanupDelay)
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	c.Flags().BoolVar(&asJSON, "json", false, "print progress and the result as JSON lines")
	return c
}

func (a *app) shardingResumeCommand() *cobra.Command {
	var asJSON bool
	var cleanupDelay time.Duration
	c := &cobra.Command{
		Use:   "resume MOVE_ID [--json]",
		Short: "Finish an interrupted move from where its journal says it stopped",
		Args:  exactArgs("MOVE_ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := parseMoveID(args[0])
			if err != nil {
				return err
			}
			view, svc, err := a.moveRunner(asJSON, cleanupDelay)
			if err != nil {
				return err
			}
			view.move = id
			moved, err := svc.Resume(a.ctx, id, actor(), false)
			return a.finishMove(view, id, moved, err)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print progress and the result as JSON lines")
	cleanupDelayVar(c, &cleanupDelay)
	return c
}

func cleanupDelayVar(c *cobra.Command, d *time.Duration) {
	c.Flags().DurationVar(d, "cleanup-delay", mover.DefaultCleanupDelay,
		"how long the old shard keeps the rows after the switch, for app processes still caching the old shard")
}

// moveRunner builds the view and the move service of migrate and resume,
// checking --cleanup-delay (where the mover's option takes 0 as the
// default).
func (a *app) moveRunner(asJSON bool, cleanupDelay time.Duration) (*moveView, *moves.Service, error) {
	view := a.moveView(asJSON)
	switch {
	case cleanupDelay < 0:
		return nil, nil, usagef("--cleanup-delay %s: must not be negative", cleanupDelay)
	case cleanupDelay == 0:
		view.cleanupDelay = mover.NoCleanupDelay
	default:
		view.cleanupDelay = cleanupDelay
	}
	svc, err := a.moves(view)
	return view, svc, err
}

func (a *app) shardingAbortCommand() *cobra.Command {
	var yes, asJSON bool
	c := &cobra.Command{
		Use:   "abort MOVE_ID [--yes] [--json]",
		Short: "Roll back a move that has not switched yet",
		Long: `Rolls back a move before its switch: the tenant becomes active on its
source shard again and the rows copied to the target are deleted. After the
switch a move can only be finished, with 'pwb sharding resume'.`,
		Args: exactArgs("MOVE_ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := parseMoveID(args[0])
			if err != nil {
				return err
			}
			view := a.moveView(asJSON)
			svc, err := a.moves(view)
			if err != nil {
				return err
			}
			confirm := func(m journal.Move) error {
				if yes {
					return nil
				}
				return a.confirm(fmt.Sprintf("Abort move %d of tenant %d (%s)? Rows copied to %s will be deleted and the tenant made active on %s again.",
					m.ID, m.WebsiteID, m.Subdomain, m.Target, m.Source))
			}
			m, err := svc.AbortConfirmed(a.ctx, id, actor(), confirm)
			view.clear()
			if err != nil {
				return err
			}
			if asJSON {
				a.printJSONLine(moveResult{Event: "aborted", Move: m})
			} else {
				fmt.Fprintf(a.stdout, "Move %d aborted: tenant %d (%s) is active on %s; nothing of it is left on %s\n",
					m.ID, m.WebsiteID, m.Subdomain, m.Source, m.Target)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as a JSON line")
	return c
}

func (a *app) shardingMovesCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "moves [TENANT] [--json]",
		Short: "List the move journal, newest first",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			_, primary, err := a.primary()
			if err != nil {
				return err
			}
			var websiteID int64
			if len(args) == 1 {
				w, err := registry.Find(a.ctx, primary, args[0])
				if err != nil {
					return err
				}
				websiteID = w.ID
			}
			list, err := journal.List(a.ctx, primary, websiteID)
			if err != nil {
				return err
			}
			if asJSON {
				if list == nil {
					list = []journal.Move{}
				}
				return a.printJSON(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(a.stdout, "No moves.")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MOVE\tTENANT\tFROM\tTO\tMODE\tSTATE\tROWS\tCATCH-UP\tSTARTED\tTOOK\tBLOCKED\tBY\tERROR")
			for _, m := range list {
				took, blocked := "-", "-"
				if d, ok := m.Took(); ok {
					took = journal.Measured(d)
				}
				if d, ok := m.Blocked(); ok {
					blocked = journal.Measured(d)
				}
				fmt.Fprintf(tw, "%d\t%d (%s)\t%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.WebsiteID, m.Subdomain, m.Source, m.Target,
					m.Mode, stateText(m), units.Count(m.RowsCopied()), units.Count(m.RowsTotal()), catchUpText(m), m.StartedAt.Local().Format("2006-01-02 15:04:05"),
					took, blocked, m.StartedBy, orDash(m.Error))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// catchUpText is an online move's stream as last recorded: changes applied
// and lag.
func catchUpText(m journal.Move) string {
	if !m.Online() || m.StreamedAt == nil {
		return "-"
	}
	s := units.Count(m.ChangesApplied) + " changes"
	if m.LagBytes != nil && m.LagSeconds != nil && !m.Switched() {
		s += fmt.Sprintf(", %s/%.1fs behind", units.Bytes(*m.LagBytes), *m.LagSeconds)
	}
	return s
}

func stateText(m journal.Move) string {
	switch {
	case m.State == journal.StateFailed:
		return "failed (" + string(m.FailedState) + ")"
	case m.State == journal.StateAborted && !m.TargetCleared:
		return "aborted (target not cleared)"
	}
	return string(m.State)
}

func (a *app) shardingVerifyCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify TENANT [--json]",
		Short: "Count and checksum a tenant's rows per table, against its move's other shard if one is unfinished",
		Long: `Counts and checksums the tenant's rows per table on the shard the registry
points at. While a move of the tenant is unfinished, does the same on the move's
other shard and says per table whether the two are equal; exits 1 when a
finished copy differs from its source. Otherwise it shows what the verify step
of the tenant's last move found. Changes nothing.`,
		Args: exactArgs("TENANT"),
		RunE: func(_ *cobra.Command, args []string) error {
			svc, err := a.moves(a.moveView(false))
			if err != nil {
				return err
			}
			r, err := svc.Mover().Verify(a.ctx, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				if err := a.printJSON(r); err != nil {
					return err
				}
			} else if err := a.printReport(r); err != nil {
				return err
			}
			if r.Mismatched() {
				return fmt.Errorf("tenant %d (%s): the copy on %s differs from %s", r.Website.ID, r.Website.Subdomain, r.Move.Target, r.Move.Source)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func (a *app) printReport(r mover.Report) error {
	fmt.Fprintf(a.stdout, "Tenant %d (%s) on shard %s\n", r.Website.ID, r.Website.Subdomain, r.Shard)
	if m := r.LastMove; m != nil {
		verdict := "found every table equal on both shards"
		if !m.VerifiedEqual() {
			verdict = "has no complete record of equal checksums"
		}
		fmt.Fprintf(a.stdout, "Last move %d from %s to %s, done %s: its verify step %s\n",
			m.ID, m.Source, m.Target, m.FinishedAt.Local().Format("2006-01-02 15:04:05"), verdict)
	}
	if r.Move != nil {
		fmt.Fprintf(a.stdout, "Unfinished move %d from %s to %s is %s: comparing with %s\n", r.Move.ID, r.Move.Source, r.Move.Target, stateText(*r.Move), r.Other)
		if r.Move.Online() {
			fmt.Fprintln(a.stdout, "The move is online: the source keeps taking changes, so a difference may be changes still on their way.")
		}
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	if r.Move == nil {
		fmt.Fprintln(tw, "TABLE\tROWS\tCHECKSUM")
		for _, t := range r.Tables {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, units.Count(t.Sum.Rows), t.Sum.Checksum)
		}
		return tw.Flush()
	}
	fmt.Fprintf(tw, "TABLE\tROWS (%s)\tROWS (%s)\tCHECKSUMS\n", r.Shard, r.Other)
	for _, t := range r.Tables {
		match := "equal"
		if !t.Match() {
			match = "DIFFER"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, units.Count(t.Sum.Rows), units.Count(t.Other.Rows), match)
	}
	return tw.Flush()
}

// confirm asks question on stderr and reads the answer from stdin; anything
// but yes refuses.
func (a *app) confirm(question string) error {
	fmt.Fprintf(a.stderr, "%s Type yes to go on: ", question)
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if f, ok := a.stdin.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		fmt.Fprintln(a.stderr) // a terminal echoed the answer's newline
	}
	answer := strings.ToLower(strings.TrimSpace(line))
	if answer == "yes" || answer == "y" {
		return nil
	}
	if err != nil && answer == "" {
		return errors.New("not confirmed: no answer on stdin (pass --yes to skip the question)")
	}
	return errors.New("not confirmed: nothing was changed")
}

func (a *app) printPlan(p mover.Plan, asJSON bool) error {
	if asJSON {
		return a.printJSON(p)
	}
	fmt.Fprintf(a.stdout, "Plan: move tenant %d (%s) from %s to %s\n", p.Website.ID, p.Website.Subdomain, p.Source, p.Target)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TABLE\tROWS\tSIZE\tID COLLISIONS\t")
	for _, t := range p.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t\n", t.Name, units.Count(t.Rows), units.Bytes(t.Bytes), t.Collisions)
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t%d\t\n", units.Count(p.Rows()), units.Bytes(p.Bytes()), p.Collisions)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Mode: %s", p.Mode)
	if p.ModeReason != "" {
		fmt.Fprintf(a.stdout, " (%s)", p.ModeReason)
	}
	fmt.Fprintf(a.stdout, "\nEstimated time: about %s. %s\nDry run: nothing was changed.\n", roughly(p.Estimate), writesText(p))
	return nil
}

// writesText says what a planned move does to the tenant's site.
func writesText(p mover.Plan) string {
	if p.Mode == journal.ModeOnline {
		return "Its site keeps taking changes; writes are held for under a second at the switch."
	}
	return fmt.Sprintf("Its site will be read-only for about %s.", roughly(p.ReadOnly))
}

// moveResult is the last JSON line of a move command.
type moveResult struct {
	Event string       `json:"event"`
	Move  journal.Move `json:"move"`
	Error string       `json:"error,omitempty"`
}

// finishMove prints how a run ended and turns a failure into the one line
// that says how to go on.
func (a *app) finishMove(view *moveView, id int64, m journal.Move, err error) error {
	view.clear()
	if err != nil {
		if errors.Is(err, journal.ErrRefused) {
			return err
		}
		hint := fmt.Sprintf("; finish it with `pwb sharding resume %d`", id)
		switch {
		case m.ID == 0: // the journal could not be read
			hint += fmt.Sprintf(" or, if it has not switched, roll it back with `pwb sharding abort %d`", id)
		case !m.Switched():
			hint += fmt.Sprintf(" or roll it back with `pwb sharding abort %d`", id)
		}
		if view.json && m.ID != 0 {
			a.printJSONLine(moveResult{Event: "failed", Move: m, Error: err.Error()})
		}
		return fmt.Errorf("%w%s", err, hint)
	}
	if view.json {
		a.printJSONLine(moveResult{Event: "done", Move: m})
		return nil
	}
	blocked := "-"
	if d, ok := m.Blocked(); ok {
		blocked = journal.Measured(d)
	}
	took, _ := m.Took()
	what := "read-only for " + blocked
	if m.Online() {
		what = fmt.Sprintf("%s changes streamed, writes held for %s", units.Count(m.ChangesApplied), blocked)
	}
	fmt.Fprintf(a.stdout, "Move %d done (%s): tenant %d (%s) is on %s; %s rows copied and verified in %s, %s\n",
		m.ID, m.Mode, m.WebsiteID, m.Subdomain, m.Target, units.Count(m.RowsTotal()), journal.Measured(took), what)
	return nil
}

// moveView shows a move's progress: JSON lines with --json, a progress bar
// on a terminal, otherwise a line per phase.
type moveView struct {
	a            *app
	json         bool
	cleanupDelay time.Duration
	tty          io.Writer // stderr when it is a terminal
	move         int64
	phase        journal.Phase
	lastDetail   string
	lastCatchUp  time.Time
	bar          *progressbar.ProgressBar
}

func (a *app) moveView(asJSON bool) *moveView {
	v := &moveView{a: a, json: asJSON}
	// A bar needs a terminal whose width is known: elsewhere the move is
	// told line by line.
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !asJSON {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			v.tty = f
		}
	}
	return v
}

func (v *moveView) started(id int64) {
	v.move = id
	if !v.json {
		fmt.Fprintf(v.a.stdout, "Move %d started\n", id)
	}
}

type progressLine struct {
	Kind string `json:"event"`
	mover.Event
	Percent float64 `json:"percent"`
}

func (v *moveView) event(e mover.Event) {
	switch {
	case v.json:
		pct := 0.0
		if e.RowsTotal > 0 {
			pct = float64(e.Rows) * 100 / float64(e.RowsTotal)
		}
		v.a.printJSONLine(progressLine{Kind: "progress", Event: e, Percent: pct})
	default:
		out := v.a.stdout
		if v.tty != nil {
			v.barEvent(e)
			out = v.tty
		} else if e.Phase != v.phase {
			fmt.Fprintln(out, phaseText(e.Phase))
		}
		v.detail(out, e)
	}
	v.phase = e.Phase
}

// catchUpEvery is how often, at most, the text view reports an online
// move's catch-up while it streams.
const catchUpEvery = 5 * time.Second

// detail prints what an event says beyond its phase: a step's news (a
// cut-over that gave up and is tried again) and, every catchUpEvery, an
// online move's catch-up.
func (v *moveView) detail(out io.Writer, e mover.Event) {
	if e.Detail != "" && e.Detail != v.lastDetail {
		v.clear()
		fmt.Fprintln(out, "  "+e.Detail)
		v.lastDetail = e.Detail
	}
	if e.Phase == journal.PhaseStreaming && e.Detail == "" && time.Since(v.lastCatchUp) >= catchUpEvery {
		v.clear()
		fmt.Fprintf(out, "  %s changes applied, %s and %.1f s behind\n", units.Count(e.Changes), units.Bytes(e.LagBytes), e.LagSeconds)
		v.lastCatchUp = time.Now()
	}
}

// phaseText says what a phase means for the tenant's site.
func phaseText(phase journal.Phase) string {
	switch phase {
	case journal.StateFrozen.Phase():
		return "frozen: the site is read-only, changes get 503"
	case journal.StateCopying.Phase():
		return "copying"
	case journal.StateCopied.Phase():
		return "copied"
	case journal.PhaseVerifying:
		return "verifying row counts and checksums"
	case journal.StateVerified.Phase():
		return "verified: both shards hold the same rows"
	case journal.StateSwitched.Phase():
		return "switched: the site is served from the new shard and takes changes again"
	case journal.PhaseWaiting:
		return "waiting for every app process to see the switch before deleting the old rows"
	case journal.PhaseCleaning:
		return "deleting the rows from the old shard"
	case journal.StateCleaned.Phase():
		return "old shard cleaned"
	case journal.PhaseAborting:
		return "deleting the copied rows"
	case journal.StatePrepared.Phase():
		return "prepared: the site keeps taking changes, which are recorded for the new shard"
	case journal.PhaseStreaming:
		return "streaming the changes made since the copy to the new shard"
	case journal.PhaseCutover:
		return "cutting over: holding writes for under a second to switch"
	}
	return string(phase)
}

// barEvent draws the copy, the clean-up and an abort's deletion as a bar of
// rows, with rate and time left; other phases as a line.
func (v *moveView) barEvent(e mover.Event) {
	counted := e.Phase == journal.StateCopying.Phase() || e.Phase == journal.PhaseCleaning || e.Phase == journal.PhaseAborting
	if e.Phase != v.phase {
		v.clear()
		if !counted {
			fmt.Fprintln(v.tty, phaseText(e.Phase))
			return
		}
		v.bar = progressbar.NewOptions64(max(e.RowsTotal, 1),
			progressbar.OptionSetWriter(v.tty),
			progressbar.OptionSetDescription(string(e.Phase)),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
		)
	}
	if v.bar == nil || e.Rows == 0 {
		return // drawn from the first rows on: a rate of nothing yet reads "0 rows/hr"
	}
	desc := string(e.Phase)
	if e.Table != "" {
		desc += " " + e.Table
	}
	// The count first: Describe draws the bar at once, and drawn before
	// its first rows it would say "0 rows/hr".
	v.bar.Set64(min(e.Rows, max(e.RowsTotal, 1)))
	v.bar.Describe(desc)
}

// clear removes the progress bar before other output.
func (v *moveView) clear() {
	if v.bar != nil {
		v.bar.Finish()
		v.bar = nil
	}
}

func roughly(d time.Duration) string {
	if d < time.Second {
		return "1s"
	}
	return d.Round(time.Second).String()
}
