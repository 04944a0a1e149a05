package sharding

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// ShardInfo is one row of `pwb sharding list`.
type ShardInfo struct {
	Name       string `json:"name"`
	Configured bool   `json:"configured"`
	Database   string `json:"database,omitempty"`
	Addr       string `json:"addr,omitempty"`
	Reachable  bool   `json:"reachable"`
	Error      string `json:"error,omitempty"`
	Tenants    int    `json:"tenants"`
	Premium    int    `json:"premium"`
}

// PingTimeout bounds the reachability check of one shard.
const PingTimeout = 3 * time.Second

// List returns every configured shard, then every shard name the registry
// references that the configuration lacks (Configured false): tenants there
// are unavailable until it is configured again.
func List(ctx context.Context, set *shard.Set) ([]ShardInfo, error) {
	primary, err := set.Primary()
	if err != nil {
		return nil, err
	}
	counts, err := registry.CountByShard(ctx, primary)
	if err != nil {
		return nil, fmt.Errorf("reading the registry on primary: %w", err)
	}
	names := set.Names()
	out := make([]ShardInfo, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		sh, _ := set.Shard(name)
		c := counts[name]
		out[i] = ShardInfo{Name: name, Configured: true, Database: sh.Database, Addr: sh.Addr(), Tenants: c.Tenants, Premium: c.Premium}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, PingTimeout)
			defer cancel()
			if _, err := set.Ping(ctx, name); err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Reachable = true
		})
	}
	wg.Wait()
	var missing []string
	for name := range counts {
		if _, err := set.Shard(name); err != nil {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		c := counts[name]
		out = append(out, ShardInfo{Name: name, Tenants: c.Tenants, Premium: c.Premium,
			Error: "not in the configuration: its tenants are unavailable"})
	}
	return out, nil
}
