package cli

import (
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

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

// dbCreate creates the missing databases; a failing shard is reported and
// does not stop the others.
func (a *app) dbCreate() error {
	set, err := a.shards()
	if err != nil {
		return err
	}
	failed := 0
	for _, name := range set.Names() {
		sh, _ := set.Shard(name)
		created, err := shard.CreateDatabase(a.ctx, sh)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(a.stdout, "%-12s %s on %s: FAILED: %v\n", name, sh.Database, sh.Addr(), err)
		case created:
			fmt.Fprintf(a.stdout, "%-12s %s on %s: created\n", name, sh.Database, sh.Addr())
		default:
			fmt.Fprintf(a.stdout, "%-12s %s on %s: already exists\n", name, sh.Database, sh.Addr())
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d databases could not be created", failed, len(set.Names()))
	}
	return nil
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
			return usagef("--canary %s: not configured (configured: %v)", o.Canary, set.Names())
		}
	}
	start := time.Now()
	done := 0
	report := func(r migrations.Result) {
		done++
		if o.JSON {
			a.printJSONLine(migrateJSON{r, errorText(r.Err), r.Duration.Milliseconds()})
			return
		}
		fmt.Fprintf(a.stdout, "[%*d/%d] %s\n", len(strconv.Itoa(len(names))), done, len(names), resultLine(r))
	}
	var results []migrations.Result
	rest := names
	if o.Canary != "" {
		results = migrations.MigrateShards(a.ctx, set, migrations.Options{Shards: []string{o.Canary}}, report)
		rest = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == o.Canary })
	}
	var skipped []string
	if len(results) > 0 && results[0].Err != nil {
		skipped = rest
	} else {
		results = append(results, migrations.MigrateShards(a.ctx, set, migrations.Options{Shards: rest, Parallel: o.Parallel}, report)...)
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
		outcome := fmt.Sprintf("migrated (%d applied)", r.Applied())
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
		return fmt.Sprintf("%s %d migration(s) applied in %s", where, r.Applied(), r.Duration.Round(time.Millisecond))
	}
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
			status := migrations.ShardsStatus(a.ctx, set)
			if asJSON {
				return a.printJSON(status)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SHARD\tDATABASE\tHOST:PORT\tREACHABLE\tGLOBAL\tTENANT\tPENDING")
			unreachable := 0
			for _, s := range status {
				global, tenant, pending := "-", "-", "-"
				if s.Global != nil {
					global = fmt.Sprintf("%d/%d", s.Global.Current, s.Global.Latest)
				}
				if s.Tenant != nil {
					tenant = fmt.Sprintf("%d/%d", s.Tenant.Current, s.Tenant.Latest)
					pending = strconv.Itoa(s.Pending)
				}
				reach := "yes"
				if !s.Reachable || s.Error != "" {
					unreachable++
					reach = "NO: " + s.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Shard, s.Database, s.Addr, reach, global, tenant, pending)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if unreachable > 0 {
				return fmt.Errorf("%d of %d shards could not be read", unreachable, len(status))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
