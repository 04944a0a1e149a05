package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/report"
	"github.com/propertywebbuilder/pwb/internal/units"
)

func (a *app) reportCommand() *cobra.Command {
	return group("report", "Platform-wide reports gathered from every shard", a.reportTotalsCommand())
}

func (a *app) reportTotalsCommand() *cobra.Command {
	var asJSON bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "totals [--json] [--timeout 3s]",
		Short: "Tenants, properties, messages and database size per shard and overall",
		Long: `Asks every shard at once, each within --timeout, and adds up the answers.
A shard that does not answer is marked unreachable and left out of the totals;
the others are still printed, and the exit code is 1.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if timeout <= 0 {
				return usagef("--timeout %s: must be positive", timeout)
			}
			set, err := a.shards()
			if err != nil {
				return err
			}
			progress := a.counter("shards counted")
			t := report.Gather(a.ctx, set, fanout.Options{Timeout: timeout}, func(k int, _ report.Shard) { progress(k, len(set.Names())) })
			if err := a.ctx.Err(); err != nil {
				return err
			}
			if asJSON {
				if err := a.printJSON(t); err != nil {
					return err
				}
			} else if err := a.printTotals(t); err != nil {
				return err
			}
			var problems []string
			if down := t.Unreachable(); len(down) > 0 {
				problems = append(problems, fmt.Sprintf("%d of %d shards did not answer (%s): the totals leave them out",
					len(down), len(t.Shards), strings.Join(down, ", ")))
			}
			if t.RegistryError != "" {
				problems = append(problems, "tenant counts are missing: "+t.RegistryError)
			}
			if len(problems) > 0 {
				return fmt.Errorf("%s", strings.Join(problems, "; "))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().DurationVar(&timeout, "timeout", report.DefaultTimeout, "how long each shard may take to answer")
	return c
}

func (a *app) printTotals(t report.Totals) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SHARD\tTENANTS\tPROPERTIES\tMESSAGES\tSIZE\tSTATUS\t")
	for _, s := range t.Shards {
		status := "ok"
		props, msgs, size := units.Count(s.Properties), units.Count(s.Messages), units.Bytes(s.SizeBytes)
		if !s.Reachable {
			status = "UNREACHABLE: " + cellError(s.Error)
			props, msgs, size = "-", "-", "-"
		}
		tenants := units.Count(int64(s.Tenants))
		if t.RegistryError != "" {
			tenants = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, tenants, props, msgs, size, status)
	}
	tenants := units.Count(int64(t.Total.Tenants))
	if t.RegistryError != "" {
		tenants = "-"
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t%s\t%s\t%s\t\n", tenants, units.Count(t.Total.Properties), units.Count(t.Total.Messages),
		units.Bytes(t.Total.SizeBytes), fmt.Sprintf("in %s", t.Took.Round(time.Millisecond)))
	return tw.Flush()
}
