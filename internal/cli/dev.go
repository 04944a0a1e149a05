package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/demo"
	"github.com/propertywebbuilder/pwb/internal/devenv"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// DefaultDevDir holds the local platform's data; it is gitignored.
const DefaultDevDir = ".pwb/dev"

// DemoPassword is the site-admin password of the demo tenants' owners. It is
// printed by `pwb dev` and only ever used on a local machine.
const DemoPassword = "pwb-demo-password"

type devOptions struct {
	Dir  string
	Addr string
}

func (a *app) devCommand() *cobra.Command {
	var o devOptions
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run the platform locally: PostgreSQL instances, migrated, seeded and served",
		Long: `Starts one PostgreSQL server per address in the development configuration
(primary, shard_1, shard_2 by default) under .pwb/dev, creates and migrates the
databases, creates two demo tenants with properties, photos, pages and
messages, serves them on --addr, and prints their addresses and logins. Ctrl-C
stops the web server and then the database servers. Running it again reuses
the data.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := net.SplitHostPort(o.Addr); err != nil {
				return usagef("--addr %q: want host:port or :port", o.Addr)
			}
			if !cmd.Flags().Changed("dir") {
				o.Dir = a.defaultDevDir()
			}
			// One shard set serves migrating, seeding and the web server.
			a.connectTimeout = serveConnectTimeout
			return a.dev(o)
		},
	}
	c.Flags().StringVar(&o.Dir, "dir", DefaultDevDir, "where the local servers keep their data")
	c.Flags().StringVar(&o.Addr, "addr", "127.0.0.1:3000", "address the web server listens on (loopback only by default: the demo logins are public)")
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

func (a *app) dev(o devOptions) error {
	dir := o.Dir
	if a.getenv("PWB_ENV") == "" {
		a.getenv = withEnv(a.getenv, "PWB_ENV", "development")
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	// Take the web address first: finding it busy after starting databases
	// and seeding would waste the operator's time.
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w (is another pwb running? choose another with --addr)", o.Addr, err)
	}
	defer ln.Close()
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
			return
		}
		fmt.Fprintf(a.stdout, "Everything has stopped: the web server and %d PostgreSQL server(s). Their data stays in %s for the next run.\n",
			len(stack.Servers), dir)
	}()
	if err := a.dbCreate(); err != nil {
		return err
	}
	if err := a.dbMigrate(migrateOptions{Parallel: migrations.DefaultParallel, NoSummary: true}); err != nil {
		return err
	}
	set, _ := a.shards()
	tenants, err := seedDemoTenants(a, set)
	if err != nil {
		return err
	}
	logins, err := a.seedDemoContent(set, tenants)
	if err != nil {
		return err
	}
	if err := a.seedDemoSuperAdmin(set); err != nil {
		return err
	}

	fmt.Fprintln(a.stdout, "\nThe local platform is running:")
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVER\tSHARDS\tDATA")
	for _, s := range stack.Servers {
		fmt.Fprintf(tw, "  %s:%d\t%s\t%s\n", s.Host(), s.Port(), strings.Join(s.Shards, ", "), s.DataDir())
	}
	tw.Flush()
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintln(a.stdout, "\nDemo tenants:")
	for i, w := range tenants {
		fmt.Fprintf(a.stdout, "  %-10s %-20s %-8s on %-8s http://%s.localhost:%d/\n", w.Subdomain, w.Name, w.Tier, w.ShardName, w.Subdomain, port)
		fmt.Fprintf(a.stdout, "  %-10s site admin: http://%s.localhost:%d/site_admin  login %s / %s\n", "", w.Subdomain, port, logins[i], DemoPassword)
	}
	fmt.Fprintf(a.stdout, "\nPlatform admin: http://localhost:%d/admin  login %s / %s\n", port, DemoSuperAdmin, DemoPassword)
	fmt.Fprintln(a.stdout, "\nIn another terminal: ./bin/pwb sharding list   (Ctrl-C here stops everything)")
	return a.serve(ln, serveOptions{Addr: o.Addr, LogFormat: "text"})
}

// seedDemoContent fills each demo tenant's site, on its own shard, unless it
// already has properties, and returns each tenant's owner login.
func (a *app) seedDemoContent(set *shard.Set, tenants []registry.Website) ([]string, error) {
	primary, err := set.Primary()
	if err != nil {
		return nil, err
	}
	var logins []string
	for _, w := range tenants {
		sc, err := tenant.Resolve(set, w)
		if err != nil {
			return nil, err
		}
		res, err := demo.Seed(a.ctx, sc, primary, w, demo.Options{
			OwnerEmail:    "owner@" + w.Subdomain + ".localhost",
			OwnerPassword: DemoPassword,
			Seed:          w.ID,
			Progress:      a.progress("Seeding " + w.Subdomain),
		})
		if err != nil {
			return nil, fmt.Errorf("seeding demo content of %s: %w", w.Subdomain, err)
		}
		if res.Created {
			fmt.Fprintf(a.stdout, "Seeded %s on %s: %d properties, %d photos, %d pages, %d messages\n",
				w.Subdomain, w.ShardName, res.Properties, res.Photos, res.Pages, res.Messages)
		} else {
			fmt.Fprintf(a.stdout, "Demo content of %s already in place\n", w.Subdomain)
		}
		logins = append(logins, res.OwnerEmail)
	}
	return logins, nil
}

// DemoSuperAdmin is the platform admin login `pwb dev` creates.
const DemoSuperAdmin = "ops@pwb.localhost"

// seedDemoSuperAdmin creates the demo platform admin unless it exists.
func (a *app) seedDemoSuperAdmin(set *shard.Set) error {
	primary, err := set.Primary()
	if err != nil {
		return err
	}
	_, err = account.CreateSuperAdmin(a.ctx, primary, DemoSuperAdmin, DemoPassword)
	if errors.Is(err, account.ErrConflict) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("seeding the demo platform admin: %w", err)
	}
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

// progress returns a progress reporter that redraws one line at a terminal
// and says nothing elsewhere (logs and pipes get the summary line only).
func (a *app) progress(label string) func(done, total int) {
	f, ok := a.stdout.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(done, total int) {
		fmt.Fprintf(f, "\r%s: %d/%d properties", label, done, total)
		if done == total {
			fmt.Fprint(f, "\r\033[K")
		}
	}
}

func withEnv(getenv func(string) string, key, val string) func(string) string {
	return func(k string) string {
		if k == key {
			return val
		}
		return getenv(k)
	}
}
