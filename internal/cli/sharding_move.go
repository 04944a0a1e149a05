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
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/sharding"
)

// pauseEnv names a test hook: when set to a pause point of the mover
// (mover.Options.Pause), the mover stops there, says so on stderr, and waits
// for a line on stdin. Crash tests kill it while it waits.
const pauseEnv = "PWB_TEST_PAUSE_AT"

// newMover builds the mover for a command, reporting progress through view.
func (a *app) newMover(view *moveView) (*mover.Mover, error) {
	set, err := a.shards()
	if err != nil {
		return nil, err
	}
	opt := mover.Options{Progress: view.event, CleanupDelay: view.cleanupDelay, Pause: a.testPause(view.clear)}
	return mover.New(set, opt)
}

// testPause returns the mover's Pause hook for pauseEnv, or nil when it is
// not set. before, if set, runs before the notice is printed.
func (a *app) testPause(before func()) func(string) {
	at := a.getenv(pauseEnv)
	if at == "" {
		return nil
	}
	in := bufio.NewReader(a.stdin)
	return func(point string) {
		if point == at {
			if before != nil {
				before()
			}
			fmt.Fprintf(a.stderr, "pwb: test pause at %s\n", point)
			in.ReadString('\n')
		}
	}
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

// audit writes the audit line of a shard operation that ended with err:
// its outcome (done, refused or, after Ctrl-C or any other error, failed)
// and detail come from err. It returns err. The operation has happened
// either way, so a line that cannot be written only warns: on stderr after
// a success, and appended to err's one line after a failure.
func (a *app) audit(e audit.Entry, err error) error { return a.auditShown(e, err, err) }

// auditShown is audit for a command that shows, instead of err, the error
// shown: err with a hint on how to go on, which would be stale in the log.
func (a *app) auditShown(e audit.Entry, err, shown error) error {
	e.Actor = actor()
	e.Outcome = audit.OutcomeOf(err, mover.ErrRefused, mover.ErrNotFound, sharding.ErrRefused)
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
		return shown
	case shown == nil:
		fmt.Fprintf(a.stderr, "pwb: warning: this %s is missing from the audit log: %s\n", e.Action, describe(werr))
		return nil
	default:
		return fmt.Errorf("%w (and it is missing from the audit log: %s)", shown, describe(werr))
	}
}

// moveEntry is the audit line of a resume or abort of move id; m is the
// move as the mover returned it, read again if the mover could not (another
// process runs it, say).
func (a *app) moveEntry(action string, id int64, m mover.Move) audit.Entry {
	if m.ID == 0 {
		if _, primary, err := a.primary(); err == nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(a.ctx), auditTimeout)
			m, _ = mover.Get(ctx, primary, id)
			cancel()
		}
	}
	return audit.ForMove(action, id, m)
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
	c := &cobra.Command{
		Use:   "migrate TENANT TARGET [--dry-run] [--yes] [--json]",
		Short: "Move a tenant's data to another shard",
		Long: `Moves a tenant (website id or subdomain) and all its rows to shard TARGET:
pre-flight checks, freeze writes (the site stays readable), copy every table
with COPY, verify counts and checksums, switch the registry, delete the rows
from the old shard. Every step is journaled: an interrupted move is finished
with 'pwb sharding resume' or rolled back with 'pwb sharding abort'.

--dry-run prints the plan and changes nothing. --json prints progress as JSON
lines. Asks for confirmation unless --yes.`,
		Args: exactArgs("TENANT", "TARGET"),
		RunE: func(_ *cobra.Command, args []string) error {
			view, mv, err := a.moveRunner(asJSON, cleanupDelay)
			if err != nil {
				return err
			}
			plan, err := mv.Plan(a.ctx, args[0], args[1])
			if dryRun {
				if err != nil {
					return err
				}
				return a.printPlan(plan, asJSON)
			}
			e := audit.Entry{Action: audit.Move, Tenant: args[0], Source: plan.Source, Target: args[1]}
			if plan.Website.ID != 0 {
				e = e.ForWebsite(plan.Website)
			}
			if err != nil {
				return a.audit(e, err)
			}
			if !yes {
				question := fmt.Sprintf("Move tenant %d (%s) from %s to %s: %s rows, %s? Its site will be read-only for about %s.",
					plan.Website.ID, plan.Website.Subdomain, plan.Source, plan.Target, count(plan.Rows()), bytesText(plan.Bytes()), roughly(plan.ReadOnly))
				// Declining is not recorded: nothing was attempted.
				if err := a.confirm(question); err != nil {
					return err
				}
			}
			id, err := mv.Start(a.ctx, plan, actor())
			if err != nil {
				return a.audit(e, err)
			}
			e.MoveID = id
			view.started(id)
			moved, err := mv.Run(a.ctx, id)
			return a.auditShown(e, err, a.finishMove(view, id, moved, err))
		},
	}
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
			view, mv, err := a.moveRunner(asJSON, cleanupDelay)
			if err != nil {
				return err
			}
			view.started(id)
			moved, err := mv.Run(a.ctx, id)
			return a.auditShown(a.moveEntry(audit.Resume, id, moved), err, a.finishMove(view, id, moved, err))
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

// moveRunner builds the view and the mover of migrate and resume, checking
// --cleanup-delay (where the mover's option takes 0 as the default).
func (a *app) moveRunner(asJSON bool, cleanupDelay time.Duration) (*moveView, *mover.Mover, error) {
	view := a.moveView(asJSON)
	switch {
	case cleanupDelay < 0:
		return nil, nil, usagef("--cleanup-delay %s: must not be negative", cleanupDelay)
	case cleanupDelay == 0:
		view.cleanupDelay = mover.NoCleanupDelay
	default:
		view.cleanupDelay = cleanupDelay
	}
	mv, err := a.newMover(view)
	return view, mv, err
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
			mv, err := a.newMover(view)
			if err != nil {
				return err
			}
			if !yes {
				_, primary, err := a.primary()
				if err != nil {
					return err
				}
				m, err := mover.Get(a.ctx, primary, id)
				if err != nil {
					return a.audit(a.moveEntry(audit.Abort, id, m), err)
				}
				question := fmt.Sprintf("Abort move %d of tenant %d (%s)? Rows copied to %s will be deleted and the tenant made active on %s again.",
					m.ID, m.WebsiteID, m.Subdomain, m.Target, m.Source)
				if err := a.confirm(question); err != nil {
					return err
				}
			}
			m, err := mv.Abort(a.ctx, id)
			view.clear()
			e := a.moveEntry(audit.Abort, id, m)
			if err != nil {
				return a.audit(e, err)
			}
			if asJSON {
				a.printJSONLine(moveResult{Event: "aborted", Move: m})
			} else {
				fmt.Fprintf(a.stdout, "Move %d aborted: tenant %d (%s) is active on %s; nothing of it is left on %s\n",
					m.ID, m.WebsiteID, m.Subdomain, m.Source, m.Target)
			}
			return a.audit(e, nil)
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
			moves, err := mover.List(a.ctx, primary, websiteID)
			if err != nil {
				return err
			}
			if asJSON {
				if moves == nil {
					moves = []mover.Move{}
				}
				return a.printJSON(moves)
			}
			if len(moves) == 0 {
				fmt.Fprintln(a.stdout, "No moves.")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MOVE\tTENANT\tFROM\tTO\tSTATE\tROWS\tSTARTED\tTOOK\tBY\tERROR")
			for _, m := range moves {
				took := "-"
				if m.FinishedAt != nil {
					took = m.FinishedAt.Sub(m.StartedAt).Round(100 * time.Millisecond).String()
				}
				fmt.Fprintf(tw, "%d\t%d (%s)\t%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\n", m.ID, m.WebsiteID, m.Subdomain, m.Source, m.Target,
					stateText(m), count(m.RowsCopied()), count(m.RowsTotal()), m.StartedAt.Local().Format("2006-01-02 15:04:05"),
					took, m.StartedBy, orDash(m.Error))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func stateText(m mover.Move) string {
	switch {
	case m.State == mover.StateFailed:
		return "failed (" + m.FailedState + ")"
	case m.State == mover.StateAborted && !m.TargetCleared:
		return "aborted (target not cleared)"
	}
	return m.State
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
			mv, err := a.newMover(a.moveView(false))
			if err != nil {
				return err
			}
			r, err := mv.Verify(a.ctx, args[0])
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
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	if r.Move == nil {
		fmt.Fprintln(tw, "TABLE\tROWS\tCHECKSUM")
		for _, t := range r.Tables {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, count(t.Sum.Rows), t.Sum.Checksum)
		}
		return tw.Flush()
	}
	fmt.Fprintf(tw, "TABLE\tROWS (%s)\tROWS (%s)\tCHECKSUMS\n", r.Shard, r.Other)
	for _, t := range r.Tables {
		match := "equal"
		if !t.Match() {
			match = "DIFFER"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, count(t.Sum.Rows), count(t.Other.Rows), match)
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t\n", t.Name, count(t.Rows), bytesText(t.Bytes), t.Collisions)
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t%d\t\n", count(p.Rows()), bytesText(p.Bytes()), p.Collisions)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Estimated time: about %s, read-only for about %s of it.\nDry run: nothing was changed.\n", roughly(p.Estimate), roughly(p.ReadOnly))
	return nil
}

// moveResult is the last JSON line of a move command.
type moveResult struct {
	Event string     `json:"event"`
	Move  mover.Move `json:"move"`
	Error string     `json:"error,omitempty"`
}

// finishMove prints how a run ended and turns a failure into the one line
// that says how to go on.
func (a *app) finishMove(view *moveView, id int64, m mover.Move, err error) error {
	view.clear()
	if err != nil {
		if errors.Is(err, mover.ErrRefused) {
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
	readOnly := "-"
	if m.FrozenAt != nil && m.SwitchedAt != nil {
		readOnly = m.SwitchedAt.Sub(*m.FrozenAt).Round(10 * time.Millisecond).String()
	}
	took := time.Duration(0)
	if m.FinishedAt != nil {
		took = m.FinishedAt.Sub(m.StartedAt).Round(10 * time.Millisecond)
	}
	fmt.Fprintf(a.stdout, "Move %d done: tenant %d (%s) is on %s; %s rows copied and verified in %s, read-only for %s\n",
		m.ID, m.WebsiteID, m.Subdomain, m.Target, count(m.RowsTotal()), took, readOnly)
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
	phase        string
	bar          *progressbar.ProgressBar
}

func (a *app) moveView(asJSON bool) *moveView {
	v := &moveView{a: a, json: asJSON}
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !asJSON {
		v.tty = f
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
	case v.tty != nil:
		v.barEvent(e)
	case e.Phase != v.phase:
		fmt.Fprintln(v.a.stdout, phaseText(e.Phase))
	}
	v.phase = e.Phase
}

// phaseText says what a phase means for the tenant's site.
func phaseText(phase string) string {
	switch phase {
	case mover.StateFrozen:
		return "frozen: the site is read-only, changes get 503"
	case mover.StateCopying:
		return "copying"
	case mover.StateCopied:
		return "copied"
	case "verifying":
		return "verifying row counts and checksums"
	case mover.StateVerified:
		return "verified: both shards hold the same rows"
	case mover.StateSwitched:
		return "switched: the site is served from the new shard and takes changes again"
	case "waiting":
		return "waiting for every app process to see the switch before deleting the old rows"
	case "cleaning":
		return "deleting the rows from the old shard"
	case mover.StateCleaned:
		return "old shard cleaned"
	case "aborting":
		return "deleting the copied rows"
	}
	return phase
}

// barEvent draws the copy, the clean-up and an abort's deletion as a bar of
// rows, with rate and time left; other phases as a line.
func (v *moveView) barEvent(e mover.Event) {
	counted := e.Phase == mover.StateCopying || e.Phase == "cleaning" || e.Phase == "aborting"
	if e.Phase != v.phase {
		v.clear()
		if !counted {
			fmt.Fprintln(v.tty, phaseText(e.Phase))
			return
		}
		v.bar = progressbar.NewOptions64(max(e.RowsTotal, 1),
			progressbar.OptionSetWriter(v.tty),
			progressbar.OptionSetDescription(e.Phase),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
		)
	}
	if v.bar == nil {
		return
	}
	desc := e.Phase
	if e.Table != "" {
		desc += " " + e.Table
	}
	v.bar.Describe(desc)
	v.bar.Set64(min(e.Rows, max(e.RowsTotal, 1)))
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
