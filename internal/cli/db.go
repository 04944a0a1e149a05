package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

func (a *app) dbCommand() *cobra.Command {
	return group("db", "Create and migrate the shard databases",
		&cobra.Command{
			Use:   "create",
			Short: "Create every configured database that does not exist yet",
			Args:  noArgs,
			RunE:  func(*cobra.Command, []string) error { return a.dbCreate() },
		},
		a.dbMigrateCommand(),
		a.dbStatusCommand(),
	)
}

// dbCreate creates the missing databases, several at once; a failing shard
// is reported and does not stop the others.
func (a *app) dbCreate() error {
	set, err := a.shards()
	if err != nil {
		return err
	}
	type created struct {
		name string
		sh   config.Shard
		new  bool
		err  error
	}
	names := set.Names()
	failed := 0
	line := a.counterLine(len(names))
	fanout.Each(a.ctx, set, names, fanout.Options{}, func(ctx context.Context, name string) created {
		sh, _ := set.Shard(name)
		c := created{name: name, sh: sh}
		c.new, c.err = shard.CreateDatabase(ctx, sh)
		return c
	}, func(k int, c created) {
		outcome := "already exists"
		switch {
		case c.err != nil:
			failed++
			outcome = fmt.Sprintf("FAILED: %v", c.err)
		case c.new:
			outcome = "created"
		}
		line(k, fmt.Sprintf("%-12s %s on %s: %s", c.name, c.sh.Database, c.sh.Addr(), outcome))
	})
	if err := a.ctx.Err(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d databases could not be created", failed, len(names))
	}
	return nil
}

// counterLine returns a printer of one line per shard as it finishes,
// numbered "[k/N]". Once the command is asked to stop, it prints nothing
// more: the shards not reached would only say so.
func (a *app) counterLine(n int) func(k int, text string) {
	width := len(strconv.Itoa(n))
	return func(k int, text string) {
		if a.ctx.Err() == nil {
			fmt.Fprintf(a.stdout, "[%*d/%d] %s\n", width, k, n, text)
		}
	}
}

// checkedLine closes a table read live from n shards: when, and how long
// reading them took.
func (a *app) checkedLine(n int, start time.Time) {
	fmt.Fprintf(a.stdout, "%d shards checked at %s, in %s\n", n, start.Format("15:04:05"), time.Since(start).Round(time.Millisecond))
}

// counter returns a progress counter for a command that prints a table at
// the end: at a terminal it redraws "[k/N] what" on standard error as
// shards answer, and clears it when all have; elsewhere it says nothing.
func (a *app) counter(what string) func(k, n int) {
	f, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func(int, int) {}
	}
	return func(k, n int) {
		fmt.Fprintf(f, "\r[%d/%d] %s", k, n, what)
		if k == n {
			fmt.Fprint(f, "\r\033[K")
		}
	}
}

type migrateOptions struct {
	Shard    string
	Canary   string
	Parallel int
	JSON     bool
	// NoSummary leaves out the table after the per-shard lines (pwb dev).
	NoSummary bool
}

func (o migrateOptions) Validate() error {
	if o.Parallel < 1 {
		return usagef("--parallel must be at least 1 (got %d)", o.Parallel)
	}
	if o.Shard != "" && o.Canary != "" {
		return usagef("--shard and --canary do not go together: --shard migrates one shard, --canary one shard first")
	}
	return nil
}

func (a *app) dbMigrateCommand() *cobra.Command {
	var o migrateOptions
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Run the global migrations on primary and the tenant migrations on every shard",
		Long: `Runs the global migration set on primary and the tenant set on every shard
(primary included), several shards at once. Prints one line per shard as it
finishes, then a summary table; exits 1 if any shard failed, after the others
have been migrated and reported. --canary SHARD migrates that shard first and
touches no other if it fails. Safe to run twice at once.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return a.dbMigrate(o) },
	}
	c.Flags().StringVar(&o.Shard, "shard", "", "migrate only this shard")
	c.Flags().StringVar(&o.Canary, "canary", "", "migrate this shard first, and stop if it fails")
	c.Flags().IntVar(&o.Parallel, "parallel", migrations.DefaultParallel, "how many shards to migrate at once")
	c.Flags().BoolVar(&o.JSON, "json", false, "print one JSON object per shard instead of text")
	return c
}

func (a *app) dbMigrate(o migrateOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	set, err := a.shards()
	if err != nil {
		return err
	}
	names := set.Names()
	if o.Shard != "" {
		if err := checkShardFlag(set, o.Shard); err != nil {
			return err
		}
		names = []string{o.Shard}
	}
	if o.Canary != "" {
		if _, err := set.Shard(o.Canary); err != nil {
			return usagef("--canary %s: not configured (configured: %s)", o.Canary, listShort(set.Names(), 10))
		}
	}
	start := time.Now()
	done := 0 // shards finished before this run over a list of them
	line := a.counterLine(len(names))
	report := func(k int, r migrations.Result) {
		if o.JSON {
			if a.ctx.Err() == nil {
				a.printJSONLine(migrateJSON{r, errorText(r.Err), r.Duration.Milliseconds()})
			}
			return
		}
		line(done+k, resultLine(r))
	}
	var results []migrations.Result
	rest := names
	if o.Canary != "" {
		results = migrations.MigrateShards(a.ctx, set, migrations.Options{Shards: []string{o.Canary}}, report)
		rest = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == o.Canary })
		done = 1
	}
	var skipped []string
	if len(results) > 0 && results[0].Err != nil {
		skipped = rest
	} else {
		results = append(results, migrations.MigrateShards(a.ctx, set, migrations.Options{Shards: rest, Parallel: o.Parallel}, report)...)
	}
	if err := a.ctx.Err(); err != nil {
		return err
	}
	failed, current := 0, 0
	for _, r := range results {
		switch {
		case r.Err != nil:
			failed++
		case r.Applied() == 0:
			current++
		}
	}
	if !o.JSON {
		if !o.NoSummary {
			a.printMigrateSummary(results, skipped)
		}
		fmt.Fprintf(a.stdout, "%d shard(s) migrated, %d already current, %d failed, %d not attempted, in %s\n",
			len(results)-failed-current, current, failed, len(skipped), time.Since(start).Round(time.Millisecond))
	}
	if len(skipped) > 0 {
		return fmt.Errorf("canary shard %s failed to migrate: the other %d shards were not touched", o.Canary, len(skipped))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d shards failed to migrate (see above)", failed, len(results))
	}
	return nil
}

// printMigrateSummary prints every shard's outcome in config order, failures
// with their reason, after the lines printed as shards finished.
func (a *app) printMigrateSummary(results []migrations.Result, skipped []string) {
	if len(results)+len(skipped) < 2 {
		return
	}
	byShard := map[string]migrations.Result{}
	for _, r := range results {
		byShard[r.Shard] = r
	}
	fmt.Fprintln(a.stdout)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tTIME\tRESULT")
	for _, r := range results {
		outcome := "migrated " + appliedText(r)
		switch {
		case r.Err != nil:
			outcome = "FAILED: " + errorText(r.Err)
		case r.Applied() == 0:
			outcome = "already current"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Shard, r.Duration.Round(time.Millisecond), outcome)
	}
	for _, name := range skipped {
		fmt.Fprintf(tw, "%s\t-\tnot attempted (the canary failed)\n", name)
	}
	tw.Flush()
}

// migrateJSON is one shard's line of `db migrate --json`.
type migrateJSON struct {
	migrations.Result
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return describe(err)
}

func resultLine(r migrations.Result) string {
	where := fmt.Sprintf("%-12s %s on %s:", r.Shard, r.Database, r.Addr)
	switch {
	case r.Err != nil:
		return fmt.Sprintf("%s FAILED: %v", where, r.Err)
	case r.Applied() == 0:
		return fmt.Sprintf("%s already current", where)
	default:
		return fmt.Sprintf("%s migrated %s in %s", where, appliedText(r), r.Duration.Round(time.Millisecond))
	}
}

// appliedText says how many migrations of each set a shard received, named
// as `db status`'s columns: "global 2, tenant 4, jobs 8".
func appliedText(r migrations.Result) string {
	var parts []string
	for _, p := range []struct {
		n    int
		name string
	}{{r.GlobalApplied, "global"}, {r.TenantApplied, "tenant"}, {r.JobsApplied, "jobs"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p.name, p.n))
		}
	}
	return strings.Join(parts, ", ")
}

func (a *app) dbStatusCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show each shard's reachability and schema versions",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			set, err := a.shards()
			if err != nil {
				return err
			}
			progress := a.counter("shards read")
			start := time.Now()
			status := migrations.ShardsStatus(a.ctx, set, func(k int, _ migrations.ShardStatus) { progress(k, len(set.Names())) })
			if err := a.ctx.Err(); err != nil {
				return err
			}
			var unreachable []string
			for _, s := range status {
				if !s.Reachable || s.Error != "" {
					unreachable = append(unreachable, s.Shard)
				}
			}
			if asJSON {
				if err := a.printJSON(status); err != nil {
					return err
				}
			} else if err := a.printStatus(status); err != nil {
				return err
			} else {
				a.checkedLine(len(status), start)
			}
			if len(unreachable) > 0 {
				return fmt.Errorf("%d of %d shards could not be read: %s", len(unreachable), len(status), listShort(unreachable, 10))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// printStatus prints db status's table.
func (a *app) printStatus(status []migrations.ShardStatus) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tDATABASE\tHOST:PORT\tREACHABLE\tGLOBAL\tTENANT\tJOBS\tPENDING")
	for _, s := range status {
		global, tenant, jobs, pending := versions(s.Global), versions(s.Tenant), versions(s.Jobs), "-"
		if s.Tenant != nil {
			pending = strconv.Itoa(s.Pending)
		}
		reach := "yes"
		if !s.Reachable || s.Error != "" {
			reach = "NO: " + cellError(s.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Shard, s.Database, s.Addr, reach, global, tenant, jobs, pending)
	}
	return tw.Flush()
}

// versions is a set's column in db status: "applied/shipped", or "-" where
// the set does not run.
func versions(st *migrations.State) string {
	if st == nil {
		return "-"
	}
	return fmt.Sprintf("%d/%d", st.Current, st.Latest)
}

// listShort joins names, the first n of them and how many more.
func listShort(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
