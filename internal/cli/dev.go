package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/propertywebbuilder/pwb/internal/devenv"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// DefaultDevDir holds the local platform's data; it is gitignored.
const DefaultDevDir = ".pwb/dev"

func (a *app) devCommand() *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run the platform locally: PostgreSQL instances, migrated and seeded",
		Long: `Starts one PostgreSQL server per address in the development configuration
(primary, shard_1, shard_2 by default) under .pwb/dev, creates and migrates the
databases, creates two demo tenants, and keeps running until Ctrl-C, then stops
the servers. Running it again reuses the data.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("dir") {
				dir = a.defaultDevDir()
			}
			return a.dev(dir)
		},
	}
	c.Flags().StringVar(&dir, "dir", DefaultDevDir, "where the local servers keep their data")
	return c
}

// defaultDevDir is .pwb/dev in the working folder, unless the postgres
// system user cannot reach it (a checkout under /root, say): then a folder
// under /var/lib/pwb named after the checkout, so `make dev` works anywhere.
func (a *app) defaultDevDir() string {
	if pglocal.Reachable(DefaultDevDir) == nil {
		return DefaultDevDir
	}
	abs, err := filepath.Abs(DefaultDevDir)
	if err != nil {
		return DefaultDevDir
	}
	alt := filepath.Join("/var/lib/pwb", strings.ReplaceAll(strings.Trim(filepath.Dir(filepath.Dir(abs)), "/"), "/", "_"), "dev")
	fmt.Fprintf(a.stdout, "Note: the postgres system user cannot reach %s; keeping the data in %s instead.\n", abs, alt)
	return alt
}

func (a *app) dev(dir string) error {
	if a.getenv("PWB_ENV") == "" {
		a.getenv = withEnv(a.getenv, "PWB_ENV", "development")
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Starting PostgreSQL for %d shard(s) under %s ...\n", len(cfg.Shards), dir)
	stack, err := devenv.Start(a.ctx, cfg, dir)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(a.stdout, "Stopping PostgreSQL ...")
		a.close()
		if err := stack.Stop(context.WithoutCancel(a.ctx)); err != nil {
			fmt.Fprintf(a.stderr, "pwb: %v\n", err)
		}
	}()
	if err := a.dbCreate(); err != nil {
		return err
	}
	if err := a.dbMigrate(migrateOptions{Parallel: migrations.DefaultParallel}); err != nil {
		return err
	}
	set, _ := a.shards()
	tenants, err := seedDemoTenants(a, set)
	if err != nil {
		return err
	}

	fmt.Fprintln(a.stdout, "\nThe local platform is running:")
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVER\tSHARDS\tDATA")
	for _, s := range stack.Servers {
		fmt.Fprintf(tw, "  %s:%d\t%s\t%s\n", s.Host(), s.Port(), strings.Join(s.Shards, ", "), s.DataDir())
	}
	tw.Flush()
	fmt.Fprintln(a.stdout, "\nDemo tenants:")
	for _, w := range tenants {
		fmt.Fprintf(a.stdout, "  %-10s %-20s %-8s on %s\n", w.Subdomain, w.Name, w.Tier, w.ShardName)
	}
	fmt.Fprintln(a.stdout, "\nIn another terminal: ./bin/pwb sharding list   (Ctrl-C here stops the servers)")
	<-a.ctx.Done()
	return nil
}

// seedDemoTenants creates the two demo tenants unless they exist: a standard
// one on primary and a premium one on the first dedicated shard.
func seedDemoTenants(a *app, set *shard.Set) ([]registry.Website, error) {
	primary, err := set.Primary()
	if err != nil {
		return nil, err
	}
	premiumShard := shard.Default
	if names := set.Names(); len(names) > 1 {
		premiumShard = names[1]
	}
	demos := []registry.New{
		{Subdomain: "acme", Name: "Acme Realty", Tier: registry.TierStandard, ShardName: shard.Default},
		{Subdomain: "prestige", Name: "Prestige Estates", Tier: registry.TierPremium, ShardName: premiumShard},
	}
	var out []registry.Website
	for _, d := range demos {
		w, err := registry.Find(a.ctx, primary, d.Subdomain)
		if errors.Is(err, registry.ErrNotFound) {
			w, err = registry.Create(a.ctx, primary, d)
		}
		if err != nil {
			return nil, fmt.Errorf("seeding demo tenant %s: %w", d.Subdomain, err)
		}
		out = append(out, w)
	}
	return out, nil
}

func withEnv(getenv func(string) string, key, val string) func(string) string {
	return func(k string) string {
		if k == key {
			return val
		}
		return getenv(k)
	}
}
