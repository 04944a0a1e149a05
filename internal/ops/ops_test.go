package ops_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/ops"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// platform is primary plus shard_1 and shard_2, each on its own server,
// migrated, with tenants of both tiers on every shard, some filled with
// rows, and two tenants the registry puts on shard_9, which the
// configuration lacks.
type platform struct {
	cluster *pgtest.Cluster
	set     *shard.Set
	primary *pgxpool.Pool
	// websites are every tenant, by subdomain; props the properties each
	// was filled with.
	websites map[string]registry.Website
	props    map[int64]int64
	// fill is how the tenant "one-a" was filled, for TableCounts.
	fill movertest.Options
}

var configured = []string{shard.Default, "shard_1", "shard_2"}

func newPlatform(t *testing.T) *platform {
	t.Helper()
	ctx := context.Background()
	c, set := pgtest.MigratedCluster(t, 2, shard.WithConnectTimeout(time.Second))
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	p := &platform{cluster: c, set: set, primary: primary, websites: map[string]registry.Website{}, props: map[int64]int64{},
		fill: movertest.Options{Properties: 12, Photos: 2}}
	for _, n := range []struct {
		sub, shard, tier string
		fill             movertest.Options // no properties: left empty
	}{
		{"std-a", shard.Default, registry.TierStandard, movertest.Options{Properties: 10, Photos: 1}},
		{"std-b", shard.Default, registry.TierStandard, movertest.Options{}},
		{"prem-d", shard.Default, registry.TierPremium, movertest.Options{Properties: 4, Photos: 1}},
		{"one-a", "shard_1", registry.TierPremium, p.fill},
		{"one-b", "shard_1", registry.TierStandard, movertest.Options{Properties: 3, Photos: 1}},
		{"two-a", "shard_2", registry.TierPremium, movertest.Options{Properties: 6, Photos: 1}},
		{"two-b", "shard_2", registry.TierPremium, movertest.Options{}},
	} {
		w, err := registry.Create(ctx, primary, registry.New{Subdomain: n.sub, Name: "Tenant " + n.sub, Tier: n.tier, ShardName: n.shard})
		if err != nil {
			t.Fatal(err)
		}
		p.websites[n.sub] = w
		p.props[w.ID] = 0
		if n.fill.Properties > 0 {
			pool, err := set.Pool(n.shard)
			if err != nil {
				t.Fatal(err)
			}
			if err := movertest.Fill(ctx, pool, w.ID, n.fill); err != nil {
				t.Fatal(err)
			}
			p.props[w.ID] = int64(n.fill.Properties)
		}
	}
	// Two tenants on a shard the configuration does not name, written
	// straight into the registry.
	pgtest.Exec(t, c.URL[shard.Default], `INSERT INTO websites (subdomain, name, tier, shard_name)
		VALUES ('lost-a', 'Lost A', 'standard', 'shard_9'), ('lost-b', 'Lost B', 'premium', 'shard_9')`)
	all, err := registry.List(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range all {
		p.websites[w.Subdomain] = w
	}
	return p
}

// registryCount counts the tenants and premium tenants the registry puts on
// name, straight from primary.
func (p *platform) registryCount(t *testing.T, name string) (tenants, premium int) {
	t.Helper()
	url := p.cluster.URL[shard.Default]
	tenants = int(pgtest.QueryValue[int64](t, url, "SELECT count(*) FROM websites WHERE shard_name = $1", name))
	premium = int(pgtest.QueryValue[int64](t, url, "SELECT count(*) FROM websites WHERE shard_name = $1 AND tier = 'premium'", name))
	return tenants, premium
}

func (p *platform) sites(subs ...string) []registry.Website {
	var out []registry.Website
	for _, s := range subs {
		out = append(out, p.websites[s])
	}
	return out
}

func cardsByName(s ops.Snapshot) map[string]ops.Card {
	m := map[string]ops.Card{}
	for _, c := range s.Shards {
		m[c.Name] = c
	}
	return m
}

func cardNames(s ops.Snapshot) []string {
	var out []string
	for _, c := range s.Shards {
		out = append(out, c.Name)
	}
	return out
}

// wantGreen checks a configured, healthy shard's card against what its
// database and the registry say directly; its figures too once a figures
// round has run.
func (p *platform) wantGreen(t *testing.T, c ops.Card) {
	t.Helper()
	url := p.cluster.URL[c.Name]
	version := pgtest.QueryValue[string](t, url, "SELECT current_setting('server_version')")
	applied := pgtest.QueryValue[int64](t, url, "SELECT max(version_id) FROM pwb_tenant_schema_version WHERE is_applied")
	switch {
	case c.Health != ops.Green || c.Why != "" || c.Error != "":
		t.Errorf("%s: health %s (%s: %s), want green", c.Name, c.Health, c.Why, c.Error)
	case !c.Configured || !c.Reachable:
		t.Errorf("%s: configured %v, reachable %v; want both", c.Name, c.Configured, c.Reachable)
	}
	if c.Database != p.cluster.Database[c.Name] || !strings.HasSuffix(c.Addr, ":"+strconv.Itoa(p.server(c.Name).Port())) {
		t.Errorf("%s: database %q on %q, want %q on port %d", c.Name, c.Database, c.Addr, p.cluster.Database[c.Name], p.server(c.Name).Port())
	}
	if latest := migrations.Tenant.Latest(); c.Schema != latest || c.Latest != latest || c.Pending != 0 || c.Schema != applied {
		t.Errorf("%s: schema %d of %d (%d pending); want %d of %d, none pending (the shard's table says %d)",
			c.Name, c.Schema, c.Latest, c.Pending, latest, latest, applied)
	}
	if c.PGVersion == "" || c.PGVersion != version {
		t.Errorf("%s: PostgreSQL version %q, want %q", c.Name, c.PGVersion, version)
	}
	if c.Latency <= 0 || c.Latency > ops.AmberLatency {
		t.Errorf("%s: latency %s", c.Name, c.Latency)
	}
	if c.CheckedAt.IsZero() || time.Since(c.CheckedAt) > time.Minute {
		t.Errorf("%s: checked at %v", c.Name, c.CheckedAt)
	}
	switch pl := c.Pool; {
	case pl == nil:
		t.Errorf("%s: no pool figures", c.Name)
	case pl.Max <= 0 || pl.Total < 0 || pl.Total > pl.Max || pl.Acquired < 0 || pl.Idle < 0 || pl.Acquired+pl.Idle > pl.Total:
		t.Errorf("%s: pool figures %+v do not add up", c.Name, *pl)
	case pl.Max != p.set.Stats()[c.Name].MaxConns():
		t.Errorf("%s: pool max %d, want the pool's %d", c.Name, pl.Max, p.set.Stats()[c.Name].MaxConns())
	}
	if c.FiguresAt.IsZero() {
		return
	}
	tenants, premium := p.registryCount(t, c.Name)
	size := pgtest.QueryValue[int64](t, url, "SELECT pg_database_size(current_database())")
	if c.Tenants != tenants || c.Premium != premium || c.Standard() != tenants-premium {
		t.Errorf("%s: %d tenants (%d premium, %d standard), want %d (%d premium) as in the registry",
			c.Name, c.Tenants, c.Premium, c.Standard(), tenants, premium)
	}
	if c.SizeBytes <= 0 || c.SizeBytes < size/2 || c.SizeBytes > size*2 {
		t.Errorf("%s: size %d bytes, want about %d", c.Name, c.SizeBytes, size)
	}
}

func (p *platform) server(name string) *pglocal.Server {
	i := slices.Index(configured, name)
	return p.cluster.Servers[i]
}

// wantLost checks the card of shard_9, which the registry names and the
// configuration lacks.
func (p *platform) wantLost(t *testing.T, s ops.Snapshot) {
	t.Helper()
	lost, ok := s.Card("shard_9")
	if !ok {
		t.Fatalf("no card for shard_9: %v", cardNames(s))
	}
	if lost.Configured || lost.Reachable || lost.Health != ops.Red || lost.State() != ops.NotConfigured || lost.Tenants != 2 || lost.Premium != 1 ||
		!strings.Contains(lost.Error, "not in the configuration") || lost.Why == "" || lost.Pool != nil {
		t.Errorf("shard_9's card: %+v; want not configured, red, 2 tenants (1 premium)", lost)
	}
	if m := s.Missing(); len(m) != 1 || m[0].Name != "shard_9" {
		t.Errorf("Missing() = %v, want shard_9 only", m)
	}
}

// wantTotals checks the snapshot's totals: every tenant of the registry,
// and the given shards unreachable.
func (p *platform) wantTotals(t *testing.T, s ops.Snapshot, unreachable ...string) {
	t.Helper()
	all := int(pgtest.QueryValue[int64](t, p.cluster.URL[shard.Default], "SELECT count(*) FROM websites"))
	if s.Totals.Total.Tenants != all || s.Totals.RegistryError != "" || s.RegistryError != "" {
		t.Errorf("totals: %d tenants (registry error %q, %q), want %d", s.Totals.Total.Tenants, s.Totals.RegistryError, s.RegistryError, all)
	}
	if got := s.Totals.Unreachable(); !slices.Equal(got, unreachable) {
		t.Errorf("totals mark %v unreachable, want %v", got, unreachable)
	}
	var props int64
	for _, name := range configured {
		if !slices.Contains(unreachable, name) {
			props += pgtest.QueryValue[int64](t, p.cluster.URL[name], "SELECT count(*) FROM properties")
		}
	}
	if s.Totals.Total.Properties != props {
		t.Errorf("totals: %d properties, want the reachable shards' %d", s.Totals.Total.Properties, props)
	}
}

// proxiedSet is a shard set for the same cluster in which shard name is
// reached through a proxy that holds every chunk of bytes back by oneWay in
// each direction: a shard on a distant host. Its pools are new.
func (p *platform) proxiedSet(t *testing.T, name string, oneWay time.Duration) *shard.Set {
	t.Helper()
	var shards []pgtest.Shard
	for i, n := range configured {
		key := n
		if n == shard.Default {
			key = "primary"
		}
		s := pgtest.Shard{Key: key, Server: p.cluster.Servers[i], DB: p.cluster.Database[n]}
		if n == name {
			srv := p.cluster.Servers[i]
			s.Port = pgtest.DelayProxy(t, net.JoinHostPort(srv.Host(), strconv.Itoa(srv.Port())), oneWay)
		}
		shards = append(shards, s)
	}
	cfg, err := config.Load(pgtest.WriteConfig(t, shards...), "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg)
	t.Cleanup(set.Close)
	return set
}

// check runs one health round of poller and returns its snapshot, run
// again (at most twice more) while a card is amber only for a slow ping: on
// a loaded test machine a round trip on loopback can stall past
// AmberLatency, which is the machine's doing, not the shard's.
func check(t *testing.T, poller *ops.Poller) ops.Snapshot {
	t.Helper()
	for i := 0; ; i++ {
		if err := poller.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		s := poller.Snapshot()
		slow := false
		for _, c := range s.Shards {
			slow = slow || c.Health == ops.Amber && strings.HasPrefix(c.Why, "slow:")
		}
		if !slow || i == 2 {
			return s
		}
		t.Logf("a card is amber for a slow ping; checking again: %+v", s.Shards)
	}
}

// wait waits up to a minute for cond to hold of poller's snapshot.
func wait(t *testing.T, poller *ops.Poller, what string, cond func(ops.Snapshot) bool) ops.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := poller.Wait(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v; the poller has %+v", what, err, poller.Snapshot())
	}
	return poller.Snapshot()
}

// One cluster serves every case, in order: the healthy platform first, then
// a hung shard_2, then shard_2's server stopped, then every server stopped.
func TestOps(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	ctx := context.Background()
	poller := ops.NewPoller(p.set, p.primary, ops.PollerOptions{Interval: 200 * time.Millisecond, Timeout: time.Second})

	t.Run("Poller: every shard is checking before the first round, then green, then with its figures", func(t *testing.T) {
		s := poller.Snapshot()
		if got := cardNames(s); !slices.Equal(got, configured) {
			t.Fatalf("cards before any round %v, want the configured %v", got, configured)
		}
		for _, c := range s.Shards {
			if c.Health != ops.Checking || c.State() != ops.Checking || c.Reachable || !c.Configured || !c.CheckedAt.IsZero() || c.Why != "" || c.Error != "" {
				t.Errorf("%s before any round: %+v; want checking, never down", c.Name, c)
			}
		}
		if s.Round != 0 || s.FiguresRound != 0 || !s.FiguresAt.IsZero() || len(s.Totals.Shards) != 0 {
			t.Errorf("before any round: round %d, figures round %d at %v, totals %+v", s.Round, s.FiguresRound, s.FiguresAt, s.Totals)
		}
		if got := s.Targets(shard.Default); len(got) != 0 {
			t.Errorf("before any round the targets are %v; a shard not checked is no target", got)
		}
		if got, want := s.Destinations("shard_1"), []ops.Destination{{shard.Default, "checking"}, {"shard_1", "current shard"}, {"shard_2", "checking"}}; !slices.Equal(got, want) {
			t.Errorf("before any round the destinations are %v, want %v", got, want)
		}

		before := time.Now()
		s = check(t, poller)
		if got := cardNames(s); !slices.Equal(got, configured) {
			t.Fatalf("cards after a health round %v, want %v (the unconfigured shard comes with the figures)", got, configured)
		}
		for _, c := range s.Shards {
			p.wantGreen(t, c)
			if c.CheckedAt.Before(before) || !c.FiguresAt.IsZero() {
				t.Errorf("%s: checked at %v (the round began at %v), figures at %v", c.Name, c.CheckedAt, before, c.FiguresAt)
			}
		}
		if s.Round < 1 || !s.FiguresAt.IsZero() {
			t.Errorf("after a health round: round %d, figures at %v", s.Round, s.FiguresAt)
		}

		before = time.Now()
		if err := poller.Gather(ctx); err != nil {
			t.Fatal(err)
		}
		s = poller.Snapshot()
		if got, want := cardNames(s), append(slices.Clone(configured), "shard_9"); !slices.Equal(got, want) {
			t.Fatalf("cards %v, want %v", got, want)
		}
		for _, c := range s.Shards[:len(configured)] {
			if c.FiguresAt.IsZero() {
				t.Errorf("%s has no figures after a figures round", c.Name)
			}
			p.wantGreen(t, c)
		}
		// The set-up, in figures: 3 (1 premium), 2 (1 premium), 2 (2 premium).
		for name, want := range map[string][2]int{shard.Default: {3, 1}, "shard_1": {2, 1}, "shard_2": {2, 2}} {
			if c, _ := s.Card(name); c.Tenants != want[0] || c.Premium != want[1] {
				t.Errorf("%s: %d tenants (%d premium), want %d (%d)", name, c.Tenants, c.Premium, want[0], want[1])
			}
		}
		p.wantLost(t, s)
		p.wantTotals(t, s, "shard_9")
		if s.FiguresAt.Before(before) || time.Since(s.FiguresAt) > time.Minute || s.FiguresRound != 1 {
			t.Errorf("figures at %v (round %d), want from the round begun at %v", s.FiguresAt, s.FiguresRound, before)
		}
		counts, at, problem := poller.TenantProperties()
		if !at.Equal(s.FiguresAt) || problem != "" {
			t.Errorf("per-tenant counts at %v (%q), want at %v", at, problem, s.FiguresAt)
		}
		for sub, w := range p.websites {
			n, ok := counts[w.ID]
			switch {
			case w.ShardName == "shard_9" && ok:
				t.Errorf("%s on the unconfigured shard_9 has a count %d", sub, n)
			case w.ShardName != "shard_9" && (!ok || n != p.props[w.ID]):
				t.Errorf("%s: %d properties (known %v), want %d", sub, n, ok, p.props[w.ID])
			}
		}
		if got := s.Targets(shard.Default); !slices.Equal(got, []string{"shard_1", "shard_2"}) {
			t.Errorf("targets from default %v, want shard_1, shard_2", got)
		}
		if got := s.Targets("shard_9"); !slices.Equal(got, configured) {
			t.Errorf("targets from shard_9 %v, want every configured shard", got)
		}
	})

	t.Run("Poller: run, it checks at once, then gathers the figures, round after round", func(t *testing.T) {
		fresh := ops.NewPoller(p.set, nil, ops.PollerOptions{Interval: 100 * time.Millisecond})
		rctx, cancel := context.WithCancel(ctx)
		ended := make(chan error, 1)
		go func() { ended <- fresh.Run(rctx) }()
		s := wait(t, fresh, "the figures", func(s ops.Snapshot) bool { return s.FiguresRound >= 1 && s.Round >= 3 })
		for _, c := range s.Shards[:len(configured)] {
			if c.Health == ops.Checking || c.Health == ops.Red {
				t.Errorf("%s after %d rounds: %s (%s)", c.Name, s.Round, c.Health, c.Error)
			}
		}
		p.wantLost(t, s)
		if s.FiguresRound != 1 {
			t.Errorf("%d figures rounds in %d health rounds of 100ms; want 1 a minute", s.FiguresRound, s.Round)
		}
		cancel()
		select {
		case err := <-ended:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run ended with %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not end with its context")
		}
	})

	t.Run("Poller: a pending tenant migration turns a card amber", func(t *testing.T) {
		url := p.cluster.URL["shard_1"]
		latest := migrations.Tenant.Latest()
		pgtest.Exec(t, url, "UPDATE pwb_tenant_schema_version SET is_applied = false WHERE version_id = $1", latest)
		defer pgtest.Exec(t, url, "UPDATE pwb_tenant_schema_version SET is_applied = true WHERE version_id = $1", latest)
		s := check(t, poller)
		c, _ := s.Card("shard_1")
		if c.Health != ops.Amber || c.Pending != 1 || c.Schema >= latest || !c.Reachable || !strings.Contains(c.Why, "1 tenant migration(s) pending") {
			t.Errorf("shard_1 with a migration pending: %+v; want amber, 1 pending", c)
		}
		// A move onto it is shown, with the reason, and not offered.
		if got, want := s.Destinations(shard.Default), []ops.Destination{{shard.Default, "current shard"}, {"shard_1", "1 migration pending"}, {"shard_2", ""}}; !slices.Equal(got, want) {
			t.Errorf("destinations from default with a migration pending on shard_1: %v, want %v", got, want)
		}
		if got := s.Targets(shard.Default); !slices.Equal(got, []string{"shard_2"}) {
			t.Errorf("targets from default with a migration pending on shard_1: %v, want shard_2", got)
		}
	})

	t.Run("Poller: a shard without its version table has every migration pending", func(t *testing.T) {
		url := p.cluster.URL["shard_1"]
		pgtest.Exec(t, url, "ALTER TABLE pwb_tenant_schema_version RENAME TO pwb_tenant_schema_version_away")
		defer pgtest.Exec(t, url, "ALTER TABLE pwb_tenant_schema_version_away RENAME TO pwb_tenant_schema_version")
		c, _ := check(t, poller).Card("shard_1")
		all := len(migrations.Tenant.Versions())
		if c.Health != ops.Amber || c.Pending != all || c.Schema != 0 || !c.Reachable || c.PGVersion == "" ||
			!strings.Contains(c.Why, strconv.Itoa(all)+" tenant migration(s) pending") {
			t.Errorf("shard_1 without its version table: %+v; want amber, all %d pending", c, all)
		}
	})

	t.Run("Poller: a move's slot is on its shard's card with the WAL it keeps", func(t *testing.T) {
		url := p.cluster.URL["shard_2"]
		pgtest.Exec(t, url, "SELECT pg_create_logical_replication_slot('pwb_move_77', 'pgoutput')")
		defer pgtest.Exec(t, url, "SELECT pg_drop_replication_slot('pwb_move_77')")
		// Another database's slot on the same server, and a slot that is
		// not a move's, are not shard_2's to show.
		pgtest.CreateDatabase(t, p.server("shard_2"), "elsewhere")
		pgtest.Exec(t, p.server("shard_2").URL("elsewhere"), "SELECT pg_create_logical_replication_slot('pwb_move_78', 'pgoutput')")
		defer pgtest.Exec(t, p.server("shard_2").URL("elsewhere"), "SELECT pg_drop_replication_slot('pwb_move_78')")
		pgtest.Exec(t, url, "SELECT pg_create_logical_replication_slot('not_a_move', 'pgoutput')")
		defer pgtest.Exec(t, url, "SELECT pg_drop_replication_slot('not_a_move')")
		pgtest.Exec(t, url, "CREATE TABLE IF NOT EXISTS wal_filler AS SELECT g FROM generate_series(1, 20000) g")
		s := check(t, poller)
		c, _ := s.Card("shard_2")
		if len(c.Slots) != 1 || c.Slots[0].Name != "pwb_move_77" || c.Slots[0].Active || c.Slots[0].RetainedBytes <= 0 || c.Health != ops.Green {
			t.Errorf("shard_2 with a move's slot: %+v; want it listed with the WAL it keeps, and green", c)
		}
		if other, _ := s.Card("shard_1"); len(other.Slots) != 0 {
			t.Errorf("shard_1 lists slots it does not have: %+v", other.Slots)
		}
	})

	// A shard 35ms away each way answers the health check in one round
	// trip, 70ms: green, however many round trips opening a connection to
	// it took first. Each try is on new pools, so there is a connection to
	// open.
	t.Run("Poller: the health check is one round trip, not the connection's set-up", func(t *testing.T) {
		const oneWay = 35 * time.Millisecond
		for try := 1; ; try++ {
			far := ops.NewPoller(p.proxiedSet(t, "shard_1", oneWay), nil, ops.PollerOptions{Timeout: 5 * time.Second})
			if err := far.Check(ctx); err != nil {
				t.Fatal(err)
			}
			c, _ := far.Snapshot().Card("shard_1")
			if c.Health == ops.Green && c.Latency >= 2*oneWay && c.Latency < ops.AmberLatency && c.Reachable {
				break
			}
			if try == 3 {
				t.Errorf("shard_1, 35ms away: %s (%s), check %s; want green, one round trip of at least 70ms", c.Health, c.Why, c.Latency)
				break
			}
			t.Logf("try %d: shard_1, 35ms away: %s (%s), check %s; trying again", try, c.Health, c.Why, c.Latency)
		}
		// 60ms each way is slow: amber, and still reachable with every
		// figure.
		far := ops.NewPoller(p.proxiedSet(t, "shard_1", 60*time.Millisecond), nil, ops.PollerOptions{Timeout: 5 * time.Second})
		if err := far.Check(ctx); err != nil {
			t.Fatal(err)
		}
		c, _ := far.Snapshot().Card("shard_1")
		if c.Health != ops.Amber || !strings.HasPrefix(c.Why, "slow: ping took") || c.Latency < 120*time.Millisecond ||
			!c.Reachable || c.PGVersion == "" || c.Pending != 0 {
			t.Errorf("shard_1, 60ms away: %+v; want amber for the slow check, every figure read", c)
		}
	})

	t.Run("Poller: default width is a quarter of the connection budget", func(t *testing.T) {
		for budget, want := range map[int]int{0: fanout.DefaultWidth, 40: 10, 2: 1} {
			o := pgtest.ConfigOptions{}
			if budget > 0 {
				o.Env = map[string]string{"max_connections_total": strconv.Itoa(budget)}
			}
			cfg, err := config.Load(pgtest.WriteConfigWith(t, o, pgtest.Shard{Key: "primary", Server: p.cluster.Servers[0], DB: "x"}), "test")
			if err != nil {
				t.Fatal(err)
			}
			set := shard.NewSet(cfg)
			if got := ops.NewPoller(set, nil, ops.PollerOptions{}).Options(); got.Width != want || got.Interval != ops.DefaultInterval ||
				got.Timeout != ops.DefaultTimeout || got.FiguresInterval != ops.DefaultFiguresInterval {
				t.Errorf("budget %d: options %+v, want width %d and the defaults", budget, got, want)
			}
			set.Close()
		}
	})

	t.Run("PropertyCounts: every tenant's count, and unconfigured shards failed", func(t *testing.T) {
		ws := p.sites("std-a", "std-b", "prem-d", "one-a", "one-b", "two-a", "two-b", "lost-a", "lost-b")
		counts, failed := ops.PropertyCounts(ctx, p.set, ws, 5*time.Second)
		for _, w := range ws[:7] {
			if n, ok := counts[w.ID]; !ok || n != p.props[w.ID] {
				t.Errorf("%s on %s: %d properties (known %v), want %d", w.Subdomain, w.ShardName, n, ok, p.props[w.ID])
			}
		}
		for _, w := range ws[7:] {
			if n, ok := counts[w.ID]; ok {
				t.Errorf("%s on the unconfigured shard_9 has a count %d", w.Subdomain, n)
			}
		}
		if len(counts) != 7 || len(failed) != 1 || failed["shard_9"] == "" {
			t.Errorf("counts %v, failed %v; want 7 counts and shard_9 failed", counts, failed)
		}
		// A subset asks only for itself.
		counts, failed = ops.PropertyCounts(ctx, p.set, p.sites("one-b"), 5*time.Second)
		if len(counts) != 1 || counts[p.websites["one-b"].ID] != 3 || len(failed) != 0 {
			t.Errorf("one-b alone: counts %v, failed %v", counts, failed)
		}
		if counts, failed := ops.PropertyCounts(ctx, p.set, nil, 5*time.Second); len(counts) != 0 || len(failed) != 0 {
			t.Errorf("no websites: counts %v, failed %v", counts, failed)
		}
	})

	t.Run("TableCounts: a filled tenant's rows per table", func(t *testing.T) {
		w := p.websites["one-a"]
		got, err := ops.TableCounts(ctx, p.set, w, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(p.fill.Properties)
		want := map[string]int64{"agencies": 1, "pages": 3, "properties": n, "property_features": 3 * n,
			"property_photos": int64(p.fill.Photos), "contacts": n / 2, "messages": 2 * (n / 2)}
		var names []string
		var rows int64
		for _, tc := range got {
			names = append(names, tc.Table)
			rows += tc.Rows
			direct := pgtest.QueryValue[int64](t, p.cluster.URL["shard_1"], "SELECT count(*) FROM "+tc.Table+" WHERE website_id = $1", w.ID)
			if tc.Rows != want[tc.Table] || tc.Rows != direct || tc.Bytes <= 0 {
				t.Errorf("%s: %d rows, %d bytes; want %d rows (%d counted directly) and some bytes", tc.Table, tc.Rows, tc.Bytes, want[tc.Table], direct)
			}
		}
		if !slices.Equal(names, tenant.Tables) {
			t.Errorf("tables %v, want %v in foreign-key order", names, tenant.Tables)
		}
		if rows != p.fill.Rows() {
			t.Errorf("%d rows in all, want movertest's %d", rows, p.fill.Rows())
		}
		// Its neighbour on the same shard is counted apart.
		small, err := ops.TableCounts(ctx, p.set, p.websites["one-b"], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var smallRows int64
		for _, tc := range small {
			smallRows += tc.Rows
		}
		if want := (movertest.Options{Properties: 3, Photos: 1}).Rows(); smallRows != want {
			t.Errorf("one-b: %d rows, want %d", smallRows, want)
		}
		// An empty tenant has every table at zero.
		empty, err := ops.TableCounts(ctx, p.set, p.websites["two-b"], 5*time.Second)
		if err != nil || len(empty) != len(tenant.Tables) {
			t.Fatalf("two-b: %v, %v", empty, err)
		}
		for _, tc := range empty {
			if tc.Rows != 0 || tc.Bytes != 0 {
				t.Errorf("two-b, which is empty: %+v", tc)
			}
		}
		if _, err := ops.TableCounts(ctx, p.set, p.websites["lost-a"], 5*time.Second); err == nil || !strings.Contains(err.Error(), "shard_9") {
			t.Errorf("a tenant on the unconfigured shard_9: err %v", err)
		}
	})

	// shard_2's server is hung (its processes stopped): its check costs its
	// own timeout, the others' cards keep being refreshed round after
	// round, and it is green again once the server runs again.
	t.Run("Poller: a hung shard costs its own timeout, and the others' states go on", func(t *testing.T) {
		const timeout, interval = time.Second, 300 * time.Millisecond
		hp := ops.NewPoller(p.set, p.primary, ops.PollerOptions{Interval: interval, Timeout: timeout})
		rctx, cancel := context.WithCancel(ctx)
		ended := make(chan error, 1)
		go func() { ended <- hp.Run(rctx) }()
		defer func() { cancel(); <-ended }()
		wait(t, hp, "a first round", func(s ops.Snapshot) bool { return s.Round >= 1 })

		resume := pgtest.Hang(t, p.server("shard_2"))
		hung := time.Now()
		s := wait(t, hp, "shard_2 red", func(s ops.Snapshot) bool {
			c, _ := s.Card("shard_2")
			return c.Health == ops.Red && c.CheckedAt.After(hung)
		})
		c, _ := s.Card("shard_2")
		if c.Reachable || !c.Configured || c.Why != "unreachable" || !strings.Contains(c.Error, "no answer within 1s") || c.PGVersion != "" {
			t.Errorf("hung shard_2: %+v; want red, unreachable after 1s", c)
		}
		if took := c.CheckedAt.Sub(hung); took > 2*timeout+interval+time.Second {
			t.Errorf("shard_2 turned red %s after it hung; want about one timeout (%s) and an interval", took, timeout)
		}
		// Rounds go on: each waits for the hung shard's timeout, but the
		// others' cards are refreshed within the round, early, and stay
		// green.
		r := s.Round
		for i := 0; i < 2; i++ {
			start := time.Now()
			s = wait(t, hp, "another round", func(s ops.Snapshot) bool { return s.Round > r })
			r = s.Round
			for _, name := range []string{shard.Default, "shard_1"} {
				c, _ := s.Card(name)
				if c.Health != ops.Green && !(c.Health == ops.Amber && strings.HasPrefix(c.Why, "slow:")) {
					t.Errorf("%s beside a hung shard: %+v; want green", name, c)
				}
				if c.CheckedAt.Before(hung) {
					t.Errorf("%s was last checked at %v, before shard_2 hung at %v", name, c.CheckedAt, hung)
				}
			}
			if took := time.Since(start); took > 2*timeout+2*interval+time.Second {
				t.Errorf("a round with a hung shard took %s; want about one timeout (%s)", took, timeout)
			}
		}

		// One round synchronously, timed, once Run has stopped, whose round
		// it would otherwise wait for.
		cancel()
		<-ended
		ended <- nil
		start := time.Now()
		if err := hp.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < timeout || took > 2*timeout+500*time.Millisecond {
			t.Errorf("a round with a hung shard took %s with a timeout of %s; want one timeout", took, timeout)
		}

		// What a page reads itself from a hung shard costs one timeout
		// too.
		start = time.Now()
		counts, failed := ops.PropertyCounts(ctx, p.set, p.sites("std-a", "one-a", "two-a"), timeout)
		if took := time.Since(start); took > 2*timeout {
			t.Errorf("PropertyCounts took %s", took)
		}
		if len(counts) != 2 || counts[p.websites["std-a"].ID] != 10 || counts[p.websites["one-a"].ID] != 12 ||
			len(failed) != 1 || !strings.Contains(failed["shard_2"], "no answer within 1s") {
			t.Errorf("counts %v, failed %v; want std-a and one-a counted, shard_2 failed", counts, failed)
		}
		start = time.Now()
		if _, err := ops.TableCounts(ctx, p.set, p.websites["two-a"], timeout); err == nil || !strings.Contains(err.Error(), "no answer within 1s") {
			t.Errorf("TableCounts on the hung shard: %v", err)
		}
		if took := time.Since(start); took > 2*timeout {
			t.Errorf("TableCounts took %s", took)
		}

		resume()
		for try := 1; ; try++ {
			if err := hp.Check(ctx); err != nil {
				t.Fatal(err)
			}
			c, _ := hp.Snapshot().Card("shard_2")
			if c.Health == ops.Green || c.Health == ops.Amber && strings.HasPrefix(c.Why, "slow:") {
				break
			}
			if try == 10 {
				t.Fatalf("shard_2 once resumed: %+v; want green again", c)
			}
		}
	})

	t.Run("a stopped shard is red and unreachable; the others stay green", func(t *testing.T) {
		// A fast shutdown: test servers do not sync commits.
		if err := p.cluster.Servers[2].Stop(ctx, false); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if c, _ := check(t, poller).Card("shard_2"); c.Health != ops.Red || c.FiguresAt.IsZero() || c.Tenants != 2 {
			t.Errorf("stopped shard_2 before the next figures: %+v; want red, with the last figures' tenants", c)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("the round took %s", took)
		}
		if err := poller.Gather(ctx); err != nil {
			t.Fatal(err)
		}
		s := poller.Snapshot()
		if got, want := cardNames(s), append(slices.Clone(configured), "shard_9"); !slices.Equal(got, want) {
			t.Fatalf("cards %v, want %v", got, want)
		}
		cards := cardsByName(s)
		if c := cards["shard_2"]; c.Health != ops.Red || c.Reachable || !c.Configured || c.Why != "unreachable" || c.Error == "" ||
			c.Tenants != 2 || c.Premium != 2 || c.PGVersion != "" || c.SizeBytes != 0 || c.Schema != 0 {
			t.Errorf("stopped shard_2: %+v; want red, unreachable, its 2 tenants still counted", c)
		}
		for _, name := range []string{shard.Default, "shard_1"} {
			p.wantGreen(t, cards[name])
		}
		p.wantLost(t, s)
		p.wantTotals(t, s, "shard_2", "shard_9")
		if got := s.Targets(shard.Default); !slices.Equal(got, []string{"shard_1"}) {
			t.Errorf("targets from default with shard_2 stopped: %v, want shard_1", got)
		}
		if got := s.Destinations("shard_1"); len(got) != 3 || got[0] != (ops.Destination{Name: shard.Default}) ||
			got[1] != (ops.Destination{Name: "shard_1", Why: "current shard"}) || got[2].Name != "shard_2" || !strings.HasPrefix(got[2].Why, "unreachable: ") {
			t.Errorf("destinations from shard_1 with shard_2 stopped: %v; want default, shard_1 the current one, shard_2 unreachable with the error", got)
		}
		counts, _, _ := poller.TenantProperties()
		for sub, w := range p.websites {
			if _, ok := counts[w.ID]; ok == (w.ShardName == "shard_2" || w.ShardName == "shard_9") {
				t.Errorf("%s on %s: counted %v", sub, w.ShardName, ok)
			}
		}

		counts, failed := ops.PropertyCounts(ctx, p.set, p.sites("std-a", "prem-d", "one-a", "two-a", "two-b"), 2*time.Second)
		if len(counts) != 3 || counts[p.websites["std-a"].ID] != 10 || counts[p.websites["prem-d"].ID] != 4 || counts[p.websites["one-a"].ID] != 12 {
			t.Errorf("counts %v; want std-a, prem-d and one-a only", counts)
		}
		if len(failed) != 1 || failed["shard_2"] == "" {
			t.Errorf("failed %v; want shard_2", failed)
		}
		if _, err := ops.TableCounts(ctx, p.set, p.websites["two-a"], 2*time.Second); err == nil ||
			!strings.Contains(err.Error(), "shard_2") || !strings.Contains(err.Error(), strconv.FormatInt(p.websites["two-a"].ID, 10)) {
			t.Errorf("TableCounts on the stopped shard: %v", err)
		}
	})

	// With every server stopped, a snapshot still answers, at once, with
	// the last results: it reads no database. Closing the set ends a
	// running poller.
	t.Run("Snapshot reads no database; a closed set ends the poller", func(t *testing.T) {
		last := poller.Snapshot()
		for _, srv := range p.cluster.Servers[:2] {
			if err := srv.Stop(ctx, false); err != nil {
				t.Fatal(err)
			}
		}
		s := poller.Snapshot()
		if s.Round != last.Round || s.FiguresRound != last.FiguresRound || !s.FiguresAt.Equal(last.FiguresAt) || len(s.Shards) != len(last.Shards) {
			t.Fatalf("with the servers stopped the snapshot changed: round %d → %d, %d → %d cards", last.Round, s.Round, len(last.Shards), len(s.Shards))
		}
		for i, c := range s.Shards {
			l := last.Shards[i]
			if c.Name != l.Name || c.Health != l.Health || !c.CheckedAt.Equal(l.CheckedAt) || c.Tenants != l.Tenants || c.SizeBytes != l.SizeBytes {
				t.Errorf("%s: %+v, was %+v", c.Name, c, l)
			}
		}
		if c, _ := s.Card(shard.Default); c.Health != ops.Green {
			t.Errorf("default's last result was green, the snapshot says %s", c.Health)
		}

		closing := ops.NewPoller(p.set, nil, ops.PollerOptions{Interval: 100 * time.Millisecond, Timeout: 500 * time.Millisecond})
		ended := make(chan error, 1)
		go func() { ended <- closing.Run(ctx) }()
		p.set.Close()
		select {
		case err := <-ended:
			if !errors.Is(err, shard.ErrClosed) {
				t.Errorf("Run ended with %v, want shard.ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not end when the set was closed")
		}
		if err := poller.Check(ctx); !errors.Is(err, shard.ErrClosed) {
			t.Errorf("Check on a closed set: %v, want shard.ErrClosed", err)
		}
		if after := poller.Snapshot(); after.Round != last.Round {
			t.Errorf("a round on a closed set was counted: %d → %d", last.Round, after.Round)
		}
	})
}
