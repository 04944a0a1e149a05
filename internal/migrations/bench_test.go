package migrations_test

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// BenchmarkMigrateShards migrates the tenant set on 50 shard databases,
// sequentially (--parallel 1) and with the default parallelism, alternating
// inside every iteration so both see the same machine. It reports both wall
// times and their ratio (speedup). The server keeps fsync on, as in
// production. Every run starts from empty databases and a fresh shard set, as
// a `pwb db migrate` process would.
//
// Three settings: "loopback", the shards on a local server, which makes the
// run bound by the server's CPU (all 50 databases share this machine's
// cores); "rtt=1ms", the same server behind a proxy that adds 0.5 ms each
// way, as between hosts in one data centre; and "rtt=5ms", as between
// regions.
//
//	go test -run '^$' -bench MigrateShards -benchtime 5x ./internal/migrations/
func BenchmarkMigrateShards(b *testing.B) {
	const n = 50
	ctx := context.Background()
	srv := pgtest.Start(b, 1, pgtest.Options{Durable: true, MaxConnections: 200})[0]
	direct := manyShards(b, srv, n)
	addr := net.JoinHostPort(srv.Host(), strconv.Itoa(srv.Port()))
	near := shardsConfig(b, srv, n, pgtest.DelayProxy(b, addr, 500*time.Microsecond))
	far := shardsConfig(b, srv, n, pgtest.DelayProxy(b, addr, 2500*time.Microsecond))

	for _, setting := range []struct {
		name string
		cfg  *config.Config
	}{{"loopback", direct}, {"rtt=1ms", near}, {"rtt=5ms", far}} {
		b.Run(fmt.Sprintf("shards=%d/%s", n, setting.name), func(b *testing.B) {
			var tenantShards []string
			for _, s := range setting.cfg.Shards[1:] {
				tenantShards = append(tenantShards, s.Name)
			}
			migrate := func(parallel int) time.Duration {
				for _, s := range tenantShards {
					pgtest.Exec(b, srv.URL(s), "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
				}
				set := shard.NewSet(setting.cfg)
				defer set.Close()
				start := time.Now()
				for _, r := range migrations.MigrateShards(ctx, set, migrations.Options{Shards: tenantShards, Parallel: parallel}, nil) {
					if r.Err != nil || r.TenantApplied == 0 {
						b.Fatalf("%s: applied %d, %v", r.Shard, r.TenantApplied, r.Err)
					}
				}
				return time.Since(start)
			}
			var seq, par []float64
			b.StopTimer()
			for range b.N {
				seq = append(seq, migrate(1).Seconds())
				par = append(par, migrate(migrations.DefaultParallel).Seconds())
			}
			s, p := median(seq), median(par)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(s, "seq-s")
			b.ReportMetric(p, "parallel-s")
			b.ReportMetric(s/p, "speedup")
		})
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
