// Package report gathers platform-wide figures, which no single database
// holds: every shard is asked at once, each with its own deadline, and the
// answers are added up. A shard that is down or slow costs the report one
// timeout, is marked unreachable, and never hides the others' figures.
package report

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// DefaultTimeout bounds each shard's answer.
const DefaultTimeout = 3 * time.Second

// Figures are the counts a report adds up.
type Figures struct {
	Tenants    int   `json:"tenants"`
	Properties int64 `json:"properties"`
	Messages   int64 `json:"messages"`
	SizeBytes  int64 `json:"size_bytes"`
}

// Shard is one shard's line of a report. Tenants come from the registry on
// primary; the rest from the shard itself.
type Shard struct {
	Name       string        `json:"shard"`
	Configured bool          `json:"configured"`
	Reachable  bool          `json:"reachable"`
	Error      string        `json:"error,omitempty"`
	Took       time.Duration `json:"took_ns"`
	// Premium counts the shard's premium tenants, from the registry.
	Premium int `json:"premium"`
	Figures
}

// Totals is `pwb report totals`: every configured shard, then every shard
// the registry names that the configuration lacks, and the sum over the
// shards that answered.
type Totals struct {
	Shards []Shard `json:"shards"`
	// Total adds up the reachable shards; Tenants counts every tenant in
	// the registry.
	Total Figures `json:"total"`
	// RegistryError is set when primary could not be read: tenant counts
	// are then missing.
	RegistryError string        `json:"registry_error,omitempty"`
	Took          time.Duration `json:"took_ns"`
}

// Unreachable lists the shards that did not answer.
func (t Totals) Unreachable() []string {
	var out []string
	for _, s := range t.Shards {
		if !s.Reachable {
			out = append(out, s.Name)
		}
	}
	return out
}

// Gather asks every shard of set for its figures, several at once within
// the connection budget (package fanout), each within o.Timeout
// (DefaultTimeout if 0) from its turn. done, if not nil, is given each
// shard's figures as they arrive, with how many have so far.
func Gather(ctx context.Context, set *shard.Set, o fanout.Options, done func(k int, s Shard)) Totals {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	timeout := o.Timeout
	start := time.Now()
	out := Totals{}
	var tenants map[string]registry.ShardCount
	var wg sync.WaitGroup
	wg.Go(func() {
		var err error
		tenants, err = countTenants(ctx, set, timeout)
		if err != nil {
			out.RegistryError = err.Error()
		}
	})
	out.Shards = fanout.Each(ctx, set, set.Names(), o, func(ctx context.Context, name string) Shard {
		return ShardFigures(ctx, set, name)
	}, done)
	wg.Wait()
	for i := range out.Shards {
		s := &out.Shards[i]
		s.Tenants, s.Premium = tenants[s.Name].Tenants, tenants[s.Name].Premium
		if s.Reachable {
			out.Total.Properties += s.Properties
			out.Total.Messages += s.Messages
			out.Total.SizeBytes += s.SizeBytes
		}
	}
	for name, c := range tenants {
		out.Total.Tenants += c.Tenants
		if _, err := set.Shard(name); err != nil {
			out.Shards = append(out.Shards, Shard{Name: name, Error: "not in the configuration", Premium: c.Premium,
				Figures: Figures{Tenants: c.Tenants}})
		}
	}
	out.Took = time.Since(start)
	return out
}

func countTenants(ctx context.Context, set *shard.Set, timeout time.Duration) (map[string]registry.ShardCount, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	primary, err := set.Primary()
	if err != nil {
		return nil, err
	}
	counts, err := registry.CountByShard(ctx, primary)
	if err != nil {
		return nil, fmt.Errorf("reading the registry on primary: %w", shard.Describe(ctx, err, timeout))
	}
	return counts, nil
}

// ShardFigures counts one shard's properties and messages, over all its
// tenants, and reads its database size, in one query within ctx's deadline.
// The Tenants figure is left to the caller, who has the registry.
func ShardFigures(ctx context.Context, set *shard.Set, name string) Shard {
	start := time.Now()
	s := Shard{Name: name, Configured: true}
	pool, err := set.Pool(name)
	if err == nil {
		// The simple protocol: one round trip (the extended protocol's
		// prepare costs another), which over a slow link is most of the
		// shard's time once the connection is up.
		err = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM properties), (SELECT count(*) FROM messages),
			pg_database_size(current_database())`, pgx.QueryExecModeSimpleProtocol).Scan(&s.Properties, &s.Messages, &s.SizeBytes)
	}
	s.Took = time.Since(start)
	if err != nil {
		s.Figures = Figures{}
		s.Error = shard.Describe(ctx, err, allowed(ctx, start)).Error()
		return s
	}
	s.Reachable = true
	return s
}

// allowed is how long a visit that started at start had: until ctx's
// deadline, rounded, as messages show it.
func allowed(ctx context.Context, start time.Time) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Since(start).Round(10 * time.Millisecond)
	}
	return dl.Sub(start).Round(10 * time.Millisecond)
}
