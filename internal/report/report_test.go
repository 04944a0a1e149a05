package report_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/report"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// platform is primary, shard_1 and shard_2 on their own servers, plus
// shard_3: a database on shard_2's server reached through a proxy that can
// be made to hang. Each shard holds tenants of known sizes.
type platform struct {
	set     *shard.Set
	cluster *pgtest.Cluster
	// want is each shard's properties and messages, counted directly.
	want map[string]report.Figures
}

func newPlatform(t *testing.T, hang time.Duration) *platform {
	t.Helper()
	ctx := context.Background()
	c := pgtest.StartCluster(t, 2)
	db3 := pgtest.CreateDatabase(t, c.Servers[2], "pwb_test_shard_3")
	c.URL["shard_3"] = db3
	shards := []pgtest.Shard{
		{Key: "primary", Server: c.Servers[0], DB: c.Database["default"]},
		{Key: "shard_1", Server: c.Servers[1], DB: c.Database["shard_1"]},
		{Key: "shard_2", Server: c.Servers[2], DB: c.Database["shard_2"]},
		{Key: "shard_3", Server: c.Servers[2], DB: "pwb_test_shard_3"},
	}
	// Set up through direct connections; report through the proxy.
	direct := shardSet(t, pgtest.WriteConfig(t, shards...))
	shards[3].Port = pgtest.DelayProxy(t, net.JoinHostPort(c.Servers[2].Host(), strconv.Itoa(c.Servers[2].Port())), hang)
	set := shardSet(t, pgtest.WriteConfig(t, shards...))
	for _, r := range migrations.MigrateShards(ctx, direct, migrations.Options{}, nil) {
		if r.Err != nil {
			t.Fatalf("migrating %s: %v", r.Shard, r.Err)
		}
	}
	p := &platform{set: set, cluster: c, want: map[string]report.Figures{}}
	primary, _ := direct.Primary()
	for i, s := range []struct {
		shard string
		props int
	}{{"default", 10}, {"default", 4}, {"shard_1", 30}, {"shard_2", 6}, {"shard_3", 8}} {
		w, err := registry.Create(ctx, primary, registry.New{Subdomain: "tenant-" + string(rune('a'+i)), Name: "T", ShardName: s.shard})
		if err != nil {
			t.Fatal(err)
		}
		pool, _ := direct.Pool(s.shard)
		if err := movertest.Fill(ctx, pool, w.ID, movertest.Options{Properties: s.props, Photos: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// A tenant on a shard the configuration lacks.
	if _, err := registry.Create(ctx, primary, registry.New{Subdomain: "lost", Name: "Lost", ShardName: "shard_9"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"default", "shard_1", "shard_2", "shard_3"} {
		url := c.URL[name]
		p.want[name] = report.Figures{
			Tenants:    int(pgtest.QueryValue[int64](t, c.URL["default"], "SELECT count(*) FROM websites WHERE shard_name = $1", name)),
			Properties: pgtest.QueryValue[int64](t, url, "SELECT count(*) FROM properties"),
			Messages:   pgtest.QueryValue[int64](t, url, "SELECT count(*) FROM messages"),
		}
	}
	return p
}

func shardSet(t *testing.T, path string) *shard.Set {
	t.Helper()
	cfg, err := config.Load(path, "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg)
	t.Cleanup(set.Close)
	return set
}

func TestGather_AddsUpEveryShard(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, 0)
	got := report.Gather(context.Background(), p.set, fanout.Options{Timeout: 5 * time.Second}, nil)
	if len(got.Shards) != 5 || got.RegistryError != "" {
		t.Fatalf("report: %+v", got)
	}
	var total report.Figures
	for _, s := range got.Shards[:4] {
		w := p.want[s.Name]
		if !s.Reachable || !s.Configured || s.Tenants != w.Tenants || s.Properties != w.Properties || s.Messages != w.Messages || s.SizeBytes <= 0 {
			t.Errorf("%s: %+v, want %+v", s.Name, s, w)
		}
		total.Properties += w.Properties
		total.Messages += w.Messages
		total.SizeBytes += s.SizeBytes
	}
	total.Tenants = 6
	if got.Total != total {
		t.Errorf("total %+v, want %+v", got.Total, total)
	}
	if lost := got.Shards[4]; lost.Name != "shard_9" || lost.Configured || lost.Reachable || lost.Tenants != 1 || !strings.Contains(lost.Error, "not in the configuration") {
		t.Errorf("the unconfigured shard's line: %+v", lost)
	}
}

// A stopped shard and a hung one each cost no more than the timeout; both
// are marked unreachable and the others are added up as before.
func TestGather_StoppedAndHungShards(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, 0)
	hung := newPlatform(t, time.Hour) // shard_3 answers nothing
	for _, c := range []struct {
		name   string
		p      *platform
		down   string
		stop   bool
		reason string
	}{
		{"stopped", p, "shard_1", true, "connect"},
		{"hung", hung, "shard_3", false, "no answer within 1s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.stop {
				if err := c.p.cluster.Servers[1].Stop(context.Background(), false); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			got := report.Gather(context.Background(), c.p.set, fanout.Options{Timeout: time.Second}, nil)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("the report took %s with a timeout of 1s", took)
			}
			var total report.Figures
			for _, s := range got.Shards[:4] {
				if s.Name == c.down {
					if s.Reachable || !strings.Contains(s.Error, c.reason) || s.Properties != 0 {
						t.Errorf("%s should be unreachable (%s): %+v", s.Name, c.reason, s)
					}
					continue
				}
				w := c.p.want[s.Name]
				if !s.Reachable || s.Properties != w.Properties || s.Messages != w.Messages {
					t.Errorf("%s: %+v, want %+v", s.Name, s, w)
				}
				total.Properties += w.Properties
				total.Messages += w.Messages
			}
			if got.Total.Properties != total.Properties || got.Total.Messages != total.Messages || got.Total.Tenants != 6 {
				t.Errorf("total %+v, want the reachable shards' %+v and 6 tenants", got.Total, total)
			}
			if down := got.Unreachable(); len(down) != 2 || down[0] != c.down || down[1] != "shard_9" {
				t.Errorf("unreachable: %v", down)
			}
		})
	}
}
