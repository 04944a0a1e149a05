package mover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/propertywebbuilder/pwb/internal/changes"
	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/journal"
)

// Swept is what one sweep dropped, and the shards it could not look at.
type Swept struct {
	Slots        []string          `json:"slots,omitempty"`
	Publications []string          `json:"publications,omitempty"`
	Failed       map[string]string `json:"failed,omitempty"` // shard: why
}

// Sweep drops, on every shard, the replication slots and publications of
// online moves that are finished or that the journal does not know: what a
// killed process left behind and nobody resumed or aborted, which would
// otherwise hold the shard's WAL for ever. The artifacts of unfinished moves
// are theirs: a resume or an abort uses or drops them. Shards are swept
// several at once within the connection budget, each within perShard from
// its turn.
func (m *Mover) Sweep(ctx context.Context, perShard time.Duration) (Swept, error) {
	type found struct {
		slots, pubs []string
		err         error
	}
	names := m.set.Names()
	got := fanout.Each(ctx, m.set, names, fanout.Options{Timeout: perShard}, func(ctx context.Context, name string) found {
		slots, pubs, err := m.sweepShard(ctx, name)
		return found{slots, pubs, err}
	}, nil)
	var out Swept
	for i, f := range got {
		out.Slots = append(out.Slots, f.slots...)
		out.Publications = append(out.Publications, f.pubs...)
		if f.err != nil {
			if out.Failed == nil {
				out.Failed = map[string]string{}
			}
			out.Failed[names[i]] = journal.OneLine(f.err.Error())
		}
	}
	return out, ctx.Err()
}

func (m *Mover) sweepShard(ctx context.Context, name string) (slots, pubs []string, err error) {
	pool, err := m.set.Pool(name)
	if err != nil {
		return nil, nil, err
	}
	sh, err := m.set.Shard(name)
	if err != nil {
		return nil, nil, err
	}
	found, err := changes.Slots(ctx, pool)
	if err != nil {
		return nil, nil, err
	}
	names, err := changes.Publications(ctx, pool)
	if err != nil {
		return nil, nil, err
	}
	// Slot names are the server's, shared by its databases: only this
	// shard's database's slots are its.
	var slotNames []string
	for _, s := range found {
		if s.Database == sh.Database && !s.Temporary {
			slotNames = append(slotNames, s.Name)
		}
	}
	ids := map[string]int64{}
	var all []int64
	for _, n := range append(append([]string{}, slotNames...), names...) {
		if id, ok := changes.MoveOf(n); ok {
			ids[n] = id
			all = append(all, id)
		}
	}
	live := map[int64]bool{}
	if len(all) > 0 {
		if live, err = journal.Live(ctx, m.primary, all); err != nil {
			return nil, nil, err
		}
	}
	var errs []error
	for _, n := range slotNames {
		if id, ok := ids[n]; ok && !live[id] {
			if err := changes.DropSlot(ctx, pool, n); err != nil {
				errs = append(errs, err)
				continue
			}
			slots = append(slots, name+"/"+n)
		}
	}
	for _, n := range names {
		if id, ok := ids[n]; ok && !live[id] {
			if err := changes.DropPublication(ctx, pool, n); err != nil {
				errs = append(errs, err)
				continue
			}
			pubs = append(pubs, name+"/"+n)
		}
	}
	if len(errs) > 0 {
		return slots, pubs, errors.Join(errs...)
	}
	// Every finished move off this shard now has nothing left here.
	arts, err := journal.Artifacts(ctx, m.primary)
	if err != nil {
		return slots, pubs, err
	}
	for _, a := range arts {
		if a.Source == name && !a.Live {
			if err := journal.MarkArtifactsDropped(ctx, m.primary, a.MoveID); err != nil {
				return slots, pubs, fmt.Errorf("recording the sweep: %w", err)
			}
		}
	}
	return slots, pubs, nil
}
