package ops_test

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
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

func cardsByName(o ops.Overview) map[string]ops.Card {
	m := map[string]ops.Card{}
	for _, c := range o.Cards {
		m[c.Name] = c
	}
	return m
}

func cardNames(o ops.Overview) []string {
	var out []string
	for _, c := range o.Cards {
		out = append(out, c.Name)
	}
	return out
}

// wantGreen checks a configured, healthy shard's card against what its
// database and the registry say directly.
func (p *platform) wantGreen(t *testing.T, c ops.Card) {
	t.Helper()
	url := p.cluster.URL[c.Name]
	tenants, premium := p.registryCount(t, c.Name)
	size := pgtest.QueryValue[int64](t, url, "SELECT pg_database_size(current_database())")
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
	if c.Tenants != tenants || c.Premium != premium || c.Standard() != tenants-premium {
		t.Errorf("%s: %d tenants (%d premium, %d standard), want %d (%d premium) as in the registry",
			c.Name, c.Tenants, c.Premium, c.Standard(), tenants, premium)
	}
	if c.SizeBytes <= 0 || c.SizeBytes < size/2 || c.SizeBytes > size*2 {
		t.Errorf("%s: size %d bytes, want about %d", c.Name, c.SizeBytes, size)
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
	switch pl := c.Pool; {
	case pl == nil:
		t.Errorf("%s: no pool figures", c.Name)
	case pl.Max <= 0 || pl.Total < 1 || pl.Total > pl.Max || pl.Acquired < 0 || pl.Idle < 0 || pl.Acquired+pl.Idle > pl.Total:
		t.Errorf("%s: pool figures %+v do not add up", c.Name, *pl)
	case pl.Max != p.set.Stats()[c.Name].MaxConns():
		t.Errorf("%s: pool max %d, want the pool's %d", c.Name, pl.Max, p.set.Stats()[c.Name].MaxConns())
	}
}

func (p *platform) server(name string) *pglocal.Server {
	i := slices.Index(configured, name)
	return p.cluster.Servers[i]
}

// wantLost checks the card of shard_9, which the registry names and the
// configuration lacks.
func (p *platform) wantLost(t *testing.T, o ops.Overview) {
	t.Helper()
	lost, ok := cardsByName(o)["shard_9"]
	if !ok {
		t.Fatalf("no card for shard_9: %v", cardNames(o))
	}
	if lost.Configured || lost.Reachable || lost.Health != ops.Red || lost.Tenants != 2 || lost.Premium != 1 ||
		!strings.Contains(lost.Error, "not in the configuration") || lost.Why == "" || lost.Pool != nil {
		t.Errorf("shard_9's card: %+v; want not configured, red, 2 tenants (1 premium)", lost)
	}
	if m := o.Missing(); len(m) != 1 || m[0].Name != "shard_9" {
		t.Errorf("Missing() = %v, want shard_9 only", m)
	}
}

// wantTotals checks the overview's totals: every tenant of the registry,
// and the given shards unreachable.
func (p *platform) wantTotals(t *testing.T, o ops.Overview, unreachable ...string) {
	t.Helper()
	all := int(pgtest.QueryValue[int64](t, p.cluster.URL[shard.Default], "SELECT count(*) FROM websites"))
	if o.Totals.Total.Tenants != all || o.Totals.RegistryError != "" || o.RegistryError != "" {
		t.Errorf("totals: %d tenants (registry error %q, %q), want %d", o.Totals.Total.Tenants, o.Totals.RegistryError, o.RegistryError, all)
	}
	if got := o.Totals.Unreachable(); !slices.Equal(got, unreachable) {
		t.Errorf("totals mark %v unreachable, want %v", got, unreachable)
	}
	var props int64
	for _, name := range configured {
		if !slices.Contains(unreachable, name) {
			props += pgtest.QueryValue[int64](t, p.cluster.URL[name], "SELECT count(*) FROM properties")
		}
	}
	if o.Totals.Total.Properties != props {
		t.Errorf("totals: %d properties, want the reachable shards' %d", o.Totals.Total.Properties, props)
	}
}

// proxiedSet is a shard set for the same cluster in which shard name is
// reached through a proxy that holds every chunk of bytes back by oneWay in
// each direction: a shard on a distant host, or, with an hour, a hung one
// that accepts connections and never answers. Its pools are new.
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

// gather is ops.Gather, asked again (at most twice more) while a card is
// amber only for a slow ping: on a loaded test machine a round trip on
// loopback can stall past AmberLatency, which is the machine's doing, not
// the shard's. It also returns how long its last Gather took.
func gather(t *testing.T, set *shard.Set, timeout time.Duration) (ops.Overview, time.Duration) {
	t.Helper()
	for i := 0; ; i++ {
		start := time.Now()
		o := ops.Gather(context.Background(), set, timeout)
		took := time.Since(start)
		slow := false
		for _, c := range o.Cards {
			slow = slow || c.Health == ops.Amber && strings.HasPrefix(c.Why, "slow:")
		}
		if !slow || i == 2 {
			return o, took
		}
		t.Logf("a card is amber for a slow ping; asking again: %+v", o.Cards)
	}
}

// One cluster serves every case, in order: the healthy platform first, then
// a hung shard_2 (through a proxy, the servers untouched), then shard_2's
// server stopped.
func TestOps(t *testing.T) {
	t.Parallel()
	p := newPlatform(t)
	ctx := context.Background()

	t.Run("Gather: every configured shard has a green card with its figures", func(t *testing.T) {
		o, _ := gather(t, p.set, 5*time.Second)
		if got, want := cardNames(o), append(slices.Clone(configured), "shard_9"); !slices.Equal(got, want) {
			t.Fatalf("cards %v, want %v", got, want)
		}
		for _, c := range o.Cards[:len(configured)] {
			p.wantGreen(t, c)
		}
		// The set-up, in figures: 3 (1 premium), 2 (1 premium), 2 (2 premium).
		for name, want := range map[string][2]int{shard.Default: {3, 1}, "shard_1": {2, 1}, "shard_2": {2, 2}} {
			if c := cardsByName(o)[name]; c.Tenants != want[0] || c.Premium != want[1] {
				t.Errorf("%s: %d tenants (%d premium), want %d (%d)", name, c.Tenants, c.Premium, want[0], want[1])
			}
		}
		p.wantLost(t, o)
		p.wantTotals(t, o, "shard_9")
		if o.At.IsZero() || time.Since(o.At) > time.Minute {
			t.Errorf("overview time %v", o.At)
		}
	})

	t.Run("Gather: a pending tenant migration turns a card amber", func(t *testing.T) {
		url := p.cluster.URL["shard_1"]
		latest := migrations.Tenant.Latest()
		pgtest.Exec(t, url, "UPDATE pwb_tenant_schema_version SET is_applied = false WHERE version_id = $1", latest)
		defer pgtest.Exec(t, url, "UPDATE pwb_tenant_schema_version SET is_applied = true WHERE version_id = $1", latest)
		c := cardsByName(ops.Gather(ctx, p.set, 5*time.Second))["shard_1"]
		if c.Health != ops.Amber || c.Pending != 1 || c.Schema >= latest || !c.Reachable || !strings.Contains(c.Why, "1 tenant migration(s) pending") {
			t.Errorf("shard_1 with a migration pending: %+v; want amber, 1 pending", c)
		}
	})

	t.Run("Gather: a move's slot is on its shard's card with the WAL it keeps", func(t *testing.T) {
		url := p.cluster.URL["shard_2"]
		pgtest.Exec(t, url, "SELECT pg_create_logical_replication_slot('pwb_move_77', 'pgoutput')")
		defer pgtest.Exec(t, url, "SELECT pg_drop_replication_slot('pwb_move_77')")
		pgtest.Exec(t, url, "CREATE TABLE IF NOT EXISTS wal_filler AS SELECT g FROM generate_series(1, 20000) g")
		c := cardsByName(ops.Gather(ctx, p.set, 5*time.Second))["shard_2"]
		if len(c.Slots) != 1 || c.Slots[0].Name != "pwb_move_77" || c.Slots[0].Active || c.Slots[0].RetainedBytes <= 0 || c.Health != ops.Green {
			t.Errorf("shard_2 with a move's slot: %+v; want it listed with the WAL it keeps, and green", c)
		}
		if other := cardsByName(ops.Gather(ctx, p.set, 5*time.Second))["shard_1"]; len(other.Slots) != 0 {
			t.Errorf("shard_1 lists slots it does not have: %+v", other.Slots)
		}
	})

	// A shard 35ms away each way answers a ping in one round trip, 70ms:
	// green, however many round trips opening a connection to it took
	// first. Each try is on new pools, so there is a connection to open.
	t.Run("Gather: the ping is one round trip, not the connection's set-up", func(t *testing.T) {
		const oneWay = 35 * time.Millisecond
		for try := 1; ; try++ {
			c := cardsByName(ops.Gather(ctx, p.proxiedSet(t, "shard_1", oneWay), 5*time.Second))["shard_1"]
			if c.Health == ops.Green && c.Latency >= 2*oneWay && c.Latency < ops.AmberLatency && c.Reachable {
				break
			}
			if try == 3 {
				t.Errorf("shard_1, 35ms away: %s (%s), ping %s; want green, one round trip of at least 70ms", c.Health, c.Why, c.Latency)
				break
			}
			t.Logf("try %d: shard_1, 35ms away: %s (%s), ping %s; trying again", try, c.Health, c.Why, c.Latency)
		}
		// 60ms each way is slow: amber, and still reachable with every
		// figure.
		c := cardsByName(ops.Gather(ctx, p.proxiedSet(t, "shard_1", 60*time.Millisecond), 5*time.Second))["shard_1"]
		if c.Health != ops.Amber || !strings.HasPrefix(c.Why, "slow: ping took") || c.Latency < 120*time.Millisecond ||
			!c.Reachable || c.PGVersion == "" || c.Tenants != 2 || c.Pending != 0 {
			t.Errorf("shard_1, 60ms away: %+v; want amber for the slow ping, every figure read", c)
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

	t.Run("ReachableTargets: every other configured shard", func(t *testing.T) {
		for except, want := range map[string][]string{
			shard.Default: {"shard_1", "shard_2"},
			"shard_1":     {shard.Default, "shard_2"},
			"shard_9":     configured,
		} {
			if got := ops.ReachableTargets(ctx, p.set, except, 5*time.Second); !slices.Equal(got, want) {
				t.Errorf("targets except %s: %v, want %v", except, got, want)
			}
		}
	})

	t.Run("a hung shard costs one timeout and is red", func(t *testing.T) {
		hung := p.proxiedSet(t, "shard_2", time.Hour)
		// The healthy shards' connections are opened first, so the
		// timings below are the hung shard's alone.
		for _, name := range []string{shard.Default, "shard_1"} {
			if _, err := hung.Ping(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		const timeout = time.Second
		o, took := gather(t, hung, timeout)
		if took < timeout || took > 2*timeout+500*time.Millisecond {
			t.Errorf("Gather took %s with a timeout of %s; want one timeout", took, timeout)
		}
		cards := cardsByName(o)
		if c := cards["shard_2"]; c.Health != ops.Red || c.Reachable || !c.Configured || c.Why != "unreachable" ||
			!strings.Contains(c.Error, "no answer within 1s") || c.Tenants != 2 || c.PGVersion != "" || c.SizeBytes != 0 {
			t.Errorf("hung shard_2: %+v; want red, unreachable after 1s, its 2 tenants still counted", c)
		}
		for _, name := range []string{shard.Default, "shard_1"} {
			if c := cards[name]; c.Health != ops.Green || !c.Reachable || c.PGVersion == "" {
				t.Errorf("%s beside a hung shard: %+v; want green", name, c)
			}
		}
		p.wantLost(t, o)
		p.wantTotals(t, o, "shard_2", "shard_9")

		start := time.Now()
		counts, failed := ops.PropertyCounts(ctx, hung, p.sites("std-a", "one-a", "two-a"), timeout)
		if took := time.Since(start); took > 2*timeout {
			t.Errorf("PropertyCounts took %s", took)
		}
		if len(counts) != 2 || counts[p.websites["std-a"].ID] != 10 || counts[p.websites["one-a"].ID] != 12 ||
			len(failed) != 1 || !strings.Contains(failed["shard_2"], "no answer within 1s") {
			t.Errorf("counts %v, failed %v; want std-a and one-a counted, shard_2 failed", counts, failed)
		}
		start = time.Now()
		if _, err := ops.TableCounts(ctx, hung, p.websites["two-a"], timeout); err == nil || !strings.Contains(err.Error(), "no answer within 1s") {
			t.Errorf("TableCounts on the hung shard: %v", err)
		}
		if got := ops.ReachableTargets(ctx, hung, shard.Default, timeout); !slices.Equal(got, []string{"shard_1"}) {
			t.Errorf("targets beside a hung shard_2: %v, want shard_1", got)
		}
		if took := time.Since(start); took > 3*timeout {
			t.Errorf("TableCounts and ReachableTargets took %s", took)
		}
	})

	t.Run("a stopped shard is red and unreachable; the others stay green", func(t *testing.T) {
		// A fast shutdown: test servers do not sync commits.
		if err := p.cluster.Servers[2].Stop(ctx, false); err != nil {
			t.Fatal(err)
		}
		o, took := gather(t, p.set, 2*time.Second)
		if took > 3*time.Second {
			t.Errorf("Gather took %s", took)
		}
		if got, want := cardNames(o), append(slices.Clone(configured), "shard_9"); !slices.Equal(got, want) {
			t.Fatalf("cards %v, want %v", got, want)
		}
		cards := cardsByName(o)
		if c := cards["shard_2"]; c.Health != ops.Red || c.Reachable || !c.Configured || c.Why != "unreachable" || c.Error == "" ||
			c.Tenants != 2 || c.Premium != 2 || c.PGVersion != "" || c.SizeBytes != 0 || c.Schema != 0 {
			t.Errorf("stopped shard_2: %+v; want red, unreachable, its 2 tenants still counted", c)
		}
		for _, name := range []string{shard.Default, "shard_1"} {
			p.wantGreen(t, cards[name])
		}
		p.wantLost(t, o)
		p.wantTotals(t, o, "shard_2", "shard_9")

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
		for except, want := range map[string][]string{shard.Default: {"shard_1"}, "shard_1": {shard.Default}, "shard_2": {shard.Default, "shard_1"}} {
			if got := ops.ReachableTargets(ctx, p.set, except, 2*time.Second); !slices.Equal(got, want) {
				t.Errorf("targets except %s with shard_2 stopped: %v, want %v", except, got, want)
			}
		}
	})
}
