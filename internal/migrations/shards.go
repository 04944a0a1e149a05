package migrations

import (
	"context"
	"time"

	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// DefaultParallel is how many shards are migrated at once unless told
// otherwise. Migrations wait mostly on the servers (locks, commits, round
// trips), so more shards than cores run well side by side.
const DefaultParallel = 8

// Result is the outcome of migrating one shard.
type Result struct {
	Shard         string        `json:"shard"`
	Database      string        `json:"database"`
	Addr          string        `json:"addr"`
	GlobalApplied int           `json:"global_applied"` // primary only
	TenantApplied int           `json:"tenant_applied"`
	JobsApplied   int           `json:"jobs_applied"` // primary only: the job queue's own migrations
	Duration      time.Duration `json:"-"`
	Err           error         `json:"-"`
}

// Applied is how many migrations the shard received.
func (r Result) Applied() int { return r.GlobalApplied + r.TenantApplied + r.JobsApplied }

// Options select and pace a run over shards.
type Options struct {
	Shards   []string // empty: every configured shard
	Parallel int      // <= 0: DefaultParallel
}

// MigrateShards brings every selected shard up to date: the global set on
// primary, the tenant set everywhere. At most opts.Parallel shards run at
// once, fewer if the connection budget cannot hold two connections for each
// (a migration holds its lock on one and works on another). A failing shard
// does not stop the others; each shard's result is passed to done as it
// finishes (from one goroutine at a time, with how many have finished) and
// all are returned in the order of opts.Shards.
func MigrateShards(ctx context.Context, set *shard.Set, opts Options, done func(k int, r Result)) []Result {
	names := opts.Shards
	if len(names) == 0 {
		names = set.Names()
	}
	return fanout.Each(ctx, set, names, fanout.Options{Width: opts.Parallel, ConnsPerVisit: 2}, func(ctx context.Context, name string) Result {
		return migrateShard(ctx, set, name)
	}, done)
}

func migrateShard(ctx context.Context, set *shard.Set, name string) Result {
	start := time.Now()
	r := Result{Shard: name}
	sh, err := set.Shard(name)
	if err != nil {
		r.Err = err
		return r
	}
	r.Database, r.Addr = sh.Database, sh.Addr()
	pool, err := set.Pool(name)
	if err != nil {
		r.Err = err
		return r
	}
	up := Up
	if sh.ThroughPooler() {
		up = UpThroughPooler
	}
	if name == shard.Default {
		if r.GlobalApplied, err = up(ctx, pool, Global); err != nil {
			r.Err, r.Duration = shard.Unwrap(err), time.Since(start)
			return r
		}
		if r.JobsApplied, err = RiverUp(ctx, pool); err != nil {
			r.Err, r.Duration = shard.Unwrap(err), time.Since(start)
			return r
		}
	}
	r.TenantApplied, err = up(ctx, pool, Tenant)
	r.Err, r.Duration = shard.Unwrap(err), time.Since(start)
	return r
}

// ShardStatus is where one shard's schema stands.
type ShardStatus struct {
	Shard     string `json:"shard"`
	Database  string `json:"database"`
	Addr      string `json:"addr"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	Global    *State `json:"global,omitempty"` // primary only
	Jobs      *State `json:"jobs,omitempty"`   // primary only: the job queue's own migrations
	Tenant    *State `json:"tenant,omitempty"`
	Pending   int    `json:"pending"`
}

// StatusTimeout bounds how long one shard may take to answer a status query.
const StatusTimeout = 5 * time.Second

// ShardsStatus reads the schema state of every configured shard, several
// at once within the connection budget, each within StatusTimeout from its
// turn. An unreachable shard is reported as such; it never hides the
// others. done, if not nil, is given each shard's state as it arrives.
func ShardsStatus(ctx context.Context, set *shard.Set, done func(k int, s ShardStatus)) []ShardStatus {
	return fanout.Each(ctx, set, set.Names(), fanout.Options{Timeout: StatusTimeout}, func(ctx context.Context, name string) ShardStatus {
		sh, _ := set.Shard(name)
		st := ShardStatus{Shard: name, Database: sh.Database, Addr: sh.Addr()}
		if _, err := set.Ping(ctx, name); err != nil {
			st.Error = shard.Unwrap(err).Error()
			return st
		}
		st.Reachable = true
		pool, _ := set.Pool(name) // opened by Ping
		sets := []Set{Tenant}
		if name == shard.Default {
			sets = []Set{Global, Tenant}
		}
		for _, s := range sets {
			state, err := Status(ctx, pool, s)
			if err != nil {
				st.Error = err.Error()
				return st
			}
			st.Pending += state.Pending
			if s.Name == Global.Name {
				river, err := RiverStatus(ctx, pool)
				if err != nil {
					st.Error = err.Error()
					return st
				}
				st.Pending += river.Pending
				st.Jobs = &river
				st.Global = &state
			} else {
				st.Tenant = &state
			}
		}
		return st
	}, done)
}
