package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/units"
)

func (a *app) tenantsCommand() *cobra.Command {
	return group("tenants", "Create, list and manage tenant websites",
		a.tenantsCreateCommand(),
		a.tenantsListCommand(),
		a.tenantsSetStatusCommand(),
		a.tenantsAddMemberCommand(),
	)
}

type tenantCreateOptions struct {
	registry.New
	JSON bool
}

func (o tenantCreateOptions) Validate() error {
	if o.Subdomain == "" || o.Name == "" {
		return usagef("--subdomain and --name are required")
	}
	return nil
}

func (a *app) tenantsCreateCommand() *cobra.Command {
	var o tenantCreateOptions
	c := &cobra.Command{
		Use:   "create --subdomain S --name N [--tier standard|premium] [--shard NAME]",
		Short: "Register a new tenant website",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			set, primary, err := a.primary()
			if err != nil {
				return err
			}
			if err := checkShardFlag(set, o.ShardName); err != nil {
				return err
			}
			w, err := registry.Create(a.ctx, primary, o.New)
			if err != nil {
				return err
			}
			if o.JSON {
				return a.printJSON(w)
			}
			fmt.Fprintf(a.stdout, "Created tenant %d: %s (%s, %s) on shard %s\n", w.ID, w.Subdomain, w.Name, w.Tier, w.ShardName)
			if w.Tier == registry.TierPremium && w.ShardName == shard.Default {
				// A premium tenant's point is a database of its own.
				fmt.Fprintf(a.stdout, "Note: premium, but on the shared shard %s until it is given its own: pwb sharding provision %s SHARD\n",
					shard.Default, w.Subdomain)
			}
			return nil
		},
	}
	c.Flags().StringVar(&o.Subdomain, "subdomain", "", "subdomain: lower-case letters, digits, hyphens (2-63)")
	c.Flags().StringVar(&o.Name, "name", "", "the website's name")
	c.Flags().StringVar(&o.Tier, "tier", registry.TierStandard, "standard or premium")
	c.Flags().StringVar(&o.ShardName, "shard", shard.Default, "shard to place the tenant on")
	c.Flags().StringVar(&o.CustomDomain, "custom-domain", "", "the tenant's own domain (optional)")
	c.Flags().BoolVar(&o.JSON, "json", false, "print the created tenant as JSON")
	return c
}

func (a *app) tenantsListCommand() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list",
		Short: "List tenant websites",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			set, primary, err := a.primary()
			if err != nil {
				return err
			}
			ws, err := registry.List(a.ctx, primary)
			if err != nil {
				return err
			}
			if asJSON {
				if ws == nil {
					ws = []registry.Website{}
				}
				return a.printJSON(ws)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSUBDOMAIN\tNAME\tTIER\tSHARD\tSTATUS\tCUSTOM DOMAIN")
			for _, w := range ws {
				shardName := w.ShardName
				if _, err := set.Shard(w.ShardName); err != nil {
					shardName += " (NOT CONFIGURED)"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", w.ID, w.Subdomain, w.Name, w.Tier, shardName, w.Status, w.CustomDomain)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s tenant(s)\n", units.Count(int64(len(ws))))
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
