package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/fault"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/sharding"
	"github.com/propertywebbuilder/pwb/internal/units"
)

func (a *app) shardingCommand() *cobra.Command {
	return group("sharding", "Shard operations: list shards, provision and move tenants",
		a.shardingListCommand(),
		a.shardingMigrateCommand(),
		a.shardingMovesCommand(),
		a.shardingResumeCommand(),
		a.shardingAbortCommand(),
		a.shardingVerifyCommand(),
		a.shardingProvisionCommand(),
	)
}

func (a *app) shardingListCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List shards with their databases and tenant counts",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			set, err := a.shards()
			if err != nil {
				return err
			}
			progress := a.counter("shards pinged")
			start := time.Now()
			infos, err := sharding.List(a.ctx, set, func(k int, _ sharding.ShardInfo) { progress(k, len(set.Names())) })
			if err != nil {
				return err
			}
			if err := a.ctx.Err(); err != nil {
				return err
			}
			var down, missing []string
			for _, s := range infos {
				switch {
				case !s.Configured:
					missing = append(missing, s.Name)
				case !s.Reachable:
					down = append(down, s.Name)
				}
			}
			if asJSON {
				if err := a.printJSON(infos); err != nil {
					return err
				}
			} else if err := a.printShardList(infos, len(set.Names()), start); err != nil {
				return err
			}
			// Like report totals and db status: exit 1 when a shard is
			// missing, after the list.
			var problems []string
			if len(down) > 0 {
				problems = append(problems, fmt.Sprintf("%d of %d shards did not answer: %s", len(down), len(set.Names()), listShort(down, 10)))
			}
			if len(missing) > 0 {
				problems = append(problems, fmt.Sprintf("%d shard name(s) used by tenants are missing from the configuration, so those tenants are unavailable: %s",
					len(missing), listShort(missing, 10)))
			}
			if len(problems) > 0 {
				return errors.New(strings.Join(problems, "; "))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// printShardList prints sharding list's table, closed by when the n
// configured shards were checked.
func (a *app) printShardList(infos []sharding.ShardInfo, n int, start time.Time) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tDATABASE\tHOST:PORT\tREACHABLE\tTENANTS\tPREMIUM")
	for _, s := range infos {
		name, reach := s.Name, "yes"
		switch {
		case !s.Configured:
			name, reach = s.Name+" !! NOT CONFIGURED", "-"
		case !s.Reachable:
			reach = "NO: " + cellError(s.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, orDash(s.Database), orDash(s.Addr), reach, units.Count(int64(s.Tenants)), units.Count(int64(s.Premium)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	a.checkedLine(n, start)
	return nil
}

func (a *app) shardingProvisionCommand() *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "provision TENANT SHARD [--yes]",
		Short: "Assign a new, empty tenant to a shard",
		Long: `Assigns a new, empty tenant (website id or subdomain) to a shard. Refuses,
changing nothing, if the tenant already has data (use 'pwb sharding migrate'),
is not active, or the shard is unknown, unreachable or not migrated. A tenant
already given a shard of its own is pointed elsewhere only once confirmed
(or with --yes).`,
		Args: exactArgs("TENANT", "SHARD"),
		RunE: func(_ *cobra.Command, args []string) error {
			set, primary, err := a.primary()
			if err != nil {
				return err
			}
			// Read for the audit line and the question only: Provision finds
			// the tenant again with its row locked, and says why if it cannot.
			e := audit.Entry{Action: audit.Provision, Tenant: args[0], Target: args[1]}
			if before, err := registry.Find(a.ctx, primary, args[0]); err == nil {
				e = e.ForWebsite(before)
				e.Source = before.ShardName
				// Asked only when the change could go ahead: a refusal
				// (an unknown shard, say) is better told at once.
				_, targetErr := set.Shard(args[1])
				_, currentErr := set.Shard(before.ShardName)
				if before.ShardName != shard.Default && before.ShardName != args[1] && targetErr == nil && currentErr == nil && !yes {
					q := fmt.Sprintf("Tenant %d (%s) is already provisioned on shard %s. Point it at %s instead?", before.ID, before.Subdomain, before.ShardName, args[1])
					if err := a.confirm(q); err != nil {
						return a.audit(e, fmt.Errorf("%w: %w", fault.Refused, err))
					}
				}
			}
			w, err := sharding.Provision(a.ctx, set, args[0], args[1])
			if err != nil {
				return a.audit(e, err)
			}
			fmt.Fprintf(a.stdout, "Tenant %d (%s) is now on shard %s\n", w.ID, w.Subdomain, w.ShardName)
			return a.audit(e.ForWebsite(w), nil)
		},
	}
	c.Flags().BoolVar(&yes, "yes", false, "do not ask before pointing a provisioned tenant at another shard")
	return c
}
