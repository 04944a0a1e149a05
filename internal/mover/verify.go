package mover

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Report is `pwb sharding verify`: a tenant's per-table counts and checksums
// on the shard the registry points at and, while a move of it is unfinished,
// on the move's other shard too.
type Report struct {
	Website registry.Website `json:"website"`
	Shard   string           `json:"shard"`
	Move    *journal.Move    `json:"move,omitempty"`
	Other   string           `json:"other_shard,omitempty"`
	// LastMove is the tenant's last finished move, when there is no
	// unfinished one: its journal holds the checksums its verify step saw.
	LastMove *journal.Move `json:"last_move,omitempty"`
	Tables   []ReportTable `json:"tables"`
}

// ReportTable is one table of a Report. Other is set when two shards were
// compared.
type ReportTable struct {
	Name  string `json:"table"`
	Sum   Sum    `json:"sum"`
	Other *Sum   `json:"other,omitempty"`
}

// Match reports whether the table is the same on both shards compared.
func (t ReportTable) Match() bool { return t.Other == nil || *t.Other == t.Sum }

// Mismatched reports whether a move's copy is complete but differs from its
// source: the one case where a difference is an error rather than progress.
// An online move's source keeps changing until its cut-over, so there a
// difference is the stream's lag; its own verify compares the two sides at
// one point of the stream.
func (r Report) Mismatched() bool {
	if r.Move == nil || r.Move.Online() {
		return false
	}
	if s := r.Move.Step(); s != journal.StateCopied && s != journal.StateVerified {
		return false
	}
	for _, t := range r.Tables {
		if !t.Match() {
			return true
		}
	}
	return false
}

// Verify reads the report of tenantRef. It changes nothing.
func (m *Mover) Verify(ctx context.Context, tenantRef string) (Report, error) {
	w, err := registry.Find(ctx, m.primary, tenantRef)
	if errors.Is(err, registry.ErrNotFound) {
		return Report{}, journal.Refusal(err)
	}
	if err != nil {
		return Report{}, err
	}
	r := Report{Website: w, Shard: w.ShardName}
	here, err := m.set.Pool(w.ShardName)
	if err != nil {
		return r, journal.Refuse("tenant %d (%s) is on shard %q, which is not configured", w.ID, w.Subdomain, w.ShardName)
	}
	mv, found, err := journal.Unfinished(ctx, m.primary, w.ID)
	if err != nil {
		return r, err
	}
	if !found {
		moves, err := journal.List(ctx, m.primary, w.ID)
		if err != nil {
			return r, err
		}
		for _, past := range moves {
			if past.State == journal.StateDone {
				r.LastMove = &past
				break
			}
		}
	}
	names := tenant.Tables
	cols := map[string][]string{}
	for _, t := range names {
		if cols[t], err = columns(ctx, here, t); err != nil {
			return r, err
		}
	}
	// Every pool is found before any checksum starts, so a refusal never
	// returns while a checksum still holds a connection.
	var other *pgxpool.Pool
	if found {
		r.Move = &mv
		r.Other = mv.Target
		if w.ShardName == mv.Target {
			r.Other = mv.Source
		}
		if other, err = m.set.Pool(r.Other); err != nil {
			return r, journal.Refuse("move %d's shard %q is not configured", mv.ID, r.Other)
		}
	}
	var wg sync.WaitGroup
	var sums, others []Sum
	var errHere, errOther error
	wg.Go(func() { sums, errHere = sumTables(ctx, here, names, cols, w.ID, "") })
	if other != nil {
		wg.Go(func() { others, errOther = sumTables(ctx, other, names, cols, w.ID, "") })
	}
	wg.Wait()
	if errHere != nil {
		return r, fmt.Errorf("shard %q: %w", w.ShardName, errHere)
	}
	if errOther != nil {
		return r, fmt.Errorf("shard %q: %w", r.Other, errOther)
	}
	for i, name := range names {
		t := ReportTable{Name: name, Sum: sums[i]}
		if found {
			t.Other = &others[i]
		}
		r.Tables = append(r.Tables, t)
	}
	return r, nil
}
