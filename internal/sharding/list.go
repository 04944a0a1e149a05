package sharding

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/propertywebbuilder/pwb/internal/fanout"
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

// PingTimeout bounds the reachability check of one shard, from its turn.
const PingTimeout = 3 * time.Second

// List returns every configured shard, then every shard name the registry
// references that the configuration lacks (Configured false): tenants there
// are unavailable until it is configured again. Shards are pinged several at
// once within the connection budget; done, if not nil, is given each as it
// answers.
func List(ctx context.Context, set *shard.Set, done func(k int, s ShardInfo)) ([]ShardInfo, error) {
	primary, err := set.Primary()
	if err != nil {
		return nil, err
	}
	counts, err := registry.CountByShard(ctx, primary)
	if err != nil {
		return nil, fmt.Errorf("reading the registry on primary: %w", err)
	}
	names := set.Names()
	out := fanout.Each(ctx, set, names, fanout.Options{Timeout: PingTimeout}, func(ctx context.Context, name string) ShardInfo {
		sh, _ := set.Shard(name)
		c := counts[name]
		info := ShardInfo{Name: name, Configured: true, Database: sh.Database, Addr: sh.Addr(), Tenants: c.Tenants, Premium: c.Premium}
		if _, err := set.Ping(ctx, name); err != nil {
			info.Error = err.Error()
			return info
		}
		info.Reachable = true
		return info
	}, done)
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
