package audit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

func TestRecord_ReadBackByList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MigratedPrimary(t)

	full := audit.Entry{Actor: "cli:ops@host", Action: audit.Move, WebsiteID: 7, Tenant: "acme",
		Source: "default", Target: "shard_1", MoveID: 3, Outcome: audit.Failed,
		Detail: "move 3 failed while copying:\n\tconnection reset  by peer"}
	// Only what an entry must have: no tenant found, no shards, no move.
	bare := audit.Entry{Actor: "admin:root@example.com", Action: audit.Provision, Tenant: "nobody", Outcome: audit.Refused}
	before := time.Now()
	for _, e := range []audit.Entry{full, bare} {
		if err := audit.Record(ctx, db, e); err != nil {
			t.Fatal(err)
		}
	}

	got, total, err := audit.List(ctx, db, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	full.Detail = "move 3 failed while copying: connection reset by peer" // folded onto one line
	want := []audit.Entry{bare, full}                                     // newest first
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(audit.Entry{}, "ID", "At")); diff != "" || total != 2 {
		t.Errorf("List: total %d (want 2), entries (-want +got):\n%s", total, diff)
	}
	for _, e := range got {
		if e.ID == 0 || e.At.Before(before.Add(-time.Minute)) || e.At.After(time.Now().Add(time.Minute)) {
			t.Errorf("entry %+v: want an id and the database's now as its time", e)
		}
	}
	// Empty optional fields are stored as NULL, not as zeros or ''.
	var nulls int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE tenant = 'nobody'
		AND website_id IS NULL AND source_shard IS NULL AND target_shard IS NULL AND move_id IS NULL AND detail = ''`).Scan(&nulls); err != nil {
		t.Fatal(err)
	}
	if nulls != 1 {
		t.Error("an entry without website, shards or move should store NULLs")
	}
}

func TestRecord_RefusesIncompleteEntries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MigratedPrimary(t)
	ok := audit.Entry{Actor: "cli:ops@host", Action: audit.Abort, Tenant: "acme", Outcome: audit.Done}
	for name, e := range map[string]audit.Entry{
		"no actor":   {Action: ok.Action, Tenant: ok.Tenant, Outcome: ok.Outcome},
		"no action":  {Actor: ok.Actor, Tenant: ok.Tenant, Outcome: ok.Outcome},
		"no outcome": {Actor: ok.Actor, Action: ok.Action, Tenant: ok.Tenant},
	} {
		if err := audit.Record(ctx, db, e); err == nil || !strings.Contains(err.Error(), "needs an actor, an action and an outcome") {
			t.Errorf("%s: %v; want refused", name, err)
		}
	}
	// The table's checks catch what the code does not.
	for name, e := range map[string]audit.Entry{
		"unknown action":  {Actor: ok.Actor, Action: "delete", Tenant: ok.Tenant, Outcome: ok.Outcome},
		"unknown outcome": {Actor: ok.Actor, Action: ok.Action, Tenant: ok.Tenant, Outcome: "maybe"},
	} {
		if err := audit.Record(ctx, db, e); err == nil || !strings.Contains(err.Error(), "writing the audit log") {
			t.Errorf("%s: %v; want the database to refuse it", name, err)
		}
	}
	if _, total, err := audit.List(ctx, db, audit.Filter{}); err != nil || total != 0 {
		t.Errorf("after refusals: %d entries, %v; want none", total, err)
	}
}

func TestList_NewestFirstFilteredAndPaged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MigratedPrimary(t)
	// Times given out of insertion order: List sorts by time, not by id.
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	record := func(websiteID int64, minute int) {
		t.Helper()
		e := audit.Entry{Actor: "cli:ops@host", Action: audit.Resume, WebsiteID: websiteID, Tenant: fmt.Sprintf("site-%d", websiteID),
			MoveID: int64(minute), Outcome: audit.Done, At: base.Add(time.Duration(minute) * time.Minute)}
		if err := audit.Record(ctx, db, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, minute := range []int{3, 1, 5, 2, 4} {
		record(1, minute)
	}
	record(2, 6)
	record(2, 0)
	record(0, 7) // no tenant found

	minutes := func(f audit.Filter) ([]int64, int) {
		t.Helper()
		got, total, err := audit.List(ctx, db, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, e := range got {
			out = append(out, e.MoveID)
			if !e.At.Equal(base.Add(time.Duration(e.MoveID) * time.Minute)) {
				t.Errorf("entry of minute %d recorded at %v", e.MoveID, e.At)
			}
		}
		return out, total
	}
	for _, c := range []struct {
		f     audit.Filter
		want  []int64
		total int
	}{
		{audit.Filter{}, []int64{7, 6, 5, 4, 3, 2, 1, 0}, 8},
		{audit.Filter{Limit: 3}, []int64{7, 6, 5}, 8},
		{audit.Filter{Limit: 3, Offset: 3}, []int64{4, 3, 2}, 8},
		{audit.Filter{Limit: 3, Offset: 6}, []int64{1, 0}, 8},
		{audit.Filter{Offset: 8}, nil, 8},
		{audit.Filter{WebsiteID: 1}, []int64{5, 4, 3, 2, 1}, 5},
		{audit.Filter{WebsiteID: 1, Limit: 2, Offset: 1}, []int64{4, 3}, 5},
		{audit.Filter{WebsiteID: 2}, []int64{6, 0}, 2},
		{audit.Filter{WebsiteID: 99}, nil, 0},
	} {
		got, total := minutes(c.f)
		if diff := cmp.Diff(c.want, got, cmpopts.EquateEmpty()); diff != "" || total != c.total {
			t.Errorf("List(%+v): total %d (want %d), entries (-want +got):\n%s", c.f, total, c.total, diff)
		}
	}

	// Without a limit, 50 at most.
	for i := range 50 {
		record(3, 10+i)
	}
	if got, total := minutes(audit.Filter{}); len(got) != 50 || total != 58 || got[0] != 59 {
		t.Errorf("List without a limit: %d entries, newest %v, total %d; want 50 of 58, newest first", len(got), got[:1], total)
	}
}

func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	refused := errors.New("refused")
	other := errors.New("not here")
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, audit.Done},
		{refused, audit.Refused},
		{fmt.Errorf("moving tenant 4: %w: shard is down", refused), audit.Refused},
		{fmt.Errorf("lookup: %w", other), audit.Refused},
		{errors.New("refused"), audit.Failed}, // the same text is not the same error
		{context.Canceled, audit.Failed},
	} {
		if got := audit.OutcomeOf(c.err, refused, other); got != c.want {
			t.Errorf("OutcomeOf(%v) = %q; want %q", c.err, got, c.want)
		}
	}
	if got := audit.OutcomeOf(refused); got != audit.Failed {
		t.Errorf("OutcomeOf without refusal errors = %q; want failed", got)
	}
}

func TestEntry_ForWebsite(t *testing.T) {
	t.Parallel()
	e := audit.Entry{Action: audit.Provision, Tenant: "typed", Target: "shard_1"}.
		ForWebsite(registry.Website{ID: 12, Subdomain: "acme", ShardName: "default"})
	if e.WebsiteID != 12 || e.Tenant != "acme" || e.Target != "shard_1" || e.Source != "" {
		t.Errorf("ForWebsite: %+v", e)
	}
}
