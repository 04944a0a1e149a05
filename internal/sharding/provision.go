package sharding

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/fault"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// ErrRefused marks an operation refused before anything changed. It is
// fault.Refused, as journal.ErrRefused is: one refusal for every package.
var ErrRefused = fault.Refused

// Provision assigns a new, empty tenant to a shard. It refuses, changing
// nothing, when the tenant is unknown or not active, the shard is unknown,
// unreachable or not migrated, the tenant is already there, or the tenant
// already has rows on its current shard (that is a move: `pwb sharding
// migrate`) or leftover rows on the target. The registry row stays locked
// from the checks to the update, so two provisions of one tenant cannot race.
func Provision(ctx context.Context, set *shard.Set, tenantRef, target string) (registry.Website, error) {
	primary, err := set.Primary()
	if err != nil {
		return registry.Website{}, err
	}
	found, err := registry.Find(ctx, primary, tenantRef)
	if err != nil {
		return registry.Website{}, asRefusal(err)
	}
	targetPool, err := set.Pool(target)
	if err != nil {
		names := set.Names()
		if len(names) > 10 {
			names = append(names[:10:10], fmt.Sprintf("%d more", len(names)-10))
		}
		return registry.Website{}, journal.Refuse("shard %q is not configured (configured: %s)", target, strings.Join(names, ", "))
	}

	var out registry.Website
	err = pgx.BeginFunc(ctx, primary, func(tx pgx.Tx) error {
		w, err := registry.LockForUpdate(ctx, tx, found.ID)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("tenant %d (%s)", w.ID, w.Subdomain)
		if w.Status != registry.StatusActive {
			return journal.Refuse("%s is %s, not active", name, w.Status)
		}
		if err := journal.RefuseIfMoving(ctx, tx, w.ID); err != nil {
			return journal.Refusal(err)
		}
		if w.ShardName == target {
			return journal.Refuse("%s is already on shard %q", name, target)
		}
		if _, err := set.Ping(ctx, target); err != nil {
			return journal.Refuse("shard %q is unreachable: %v", target, err)
		}
		state, err := migrations.Status(ctx, targetPool, migrations.Tenant)
		if err != nil {
			return journal.Refuse("shard %q: %v", target, err)
		}
		if state.Pending > 0 {
			return journal.Refuse("shard %q has %d pending tenant migrations: run `pwb db migrate --shard %s` first", target, state.Pending, target)
		}
		current, err := tenant.Resolve(set, w)
		if err != nil {
			return journal.Refuse("%v: cannot check that it is empty", err)
		}
		if _, err := set.Ping(ctx, current.Shard); err != nil {
			return journal.Refuse("%s: its current shard %q is unreachable, so it cannot be checked for data: %v", name, current.Shard, err)
		}
		hasRows, err := tenant.HasRows(ctx, current, w.ID)
		if err != nil {
			return err
		}
		if hasRows {
			return journal.Refuse("%s already has data on shard %q: use `pwb sharding migrate %d %s` to move it", name, w.ShardName, w.ID, target)
		}
		leftovers, err := tenant.HasRows(ctx, targetPool, w.ID)
		if err != nil {
			return err
		}
		if leftovers {
			return journal.Refuse("shard %q already holds rows of %s (left over from an earlier move?): remove them before provisioning", target, name)
		}
		if err := registry.SetShard(ctx, tx, w.ID, target); err != nil {
			return err
		}
		out, err = registry.Get(ctx, tx, w.ID)
		return err
	})
	if err != nil {
		return registry.Website{}, asRefusal(err)
	}
	return out, nil
}

// asRefusal marks an unknown tenant as a refusal; other errors pass as they are.
func asRefusal(err error) error {
	if errors.Is(err, registry.ErrNotFound) && !errors.Is(err, fault.Refused) {
		return journal.Refusal(err)
	}
	return err
}
