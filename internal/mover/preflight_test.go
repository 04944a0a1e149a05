package mover_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// journalSize counts the journal's rows.
func (p *platform) journalSize(t *testing.T) int64 {
	t.Helper()
	return pgtest.QueryValue[int64](t, p.cluster.URL[shard.Default], "SELECT count(*) FROM moves")
}

// Every pre-flight refusal gives a one-line reason and changes nothing: not
// the registry, not the journal, not a row on any shard.
func TestPlan_Refusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, movertest.Options{Properties: 20, Photos: 3})
	m := p.mover(t, mover.Options{})
	site := p.site.Subdomain
	firstProperty := pgtest.QueryValue[string](t, p.cluster.URL[shard.Default],
		"SELECT id::text FROM properties WHERE website_id = $1 ORDER BY slug LIMIT 1", p.site.ID)

	cases := []struct {
		name        string
		tenant      string
		target      string
		setup, undo func(t *testing.T)
		want        string
	}{
		{name: "unknown tenant", tenant: "nobody-here", target: "shard_1", want: "no such tenant"},
		{name: "unknown tenant id", tenant: "99999", target: "shard_1", want: "no such tenant"},
		{name: "same shard", tenant: site, target: shard.Default, want: `already on shard "default"`},
		{name: "target not configured", tenant: site, target: "shard_9", want: `target shard "shard_9" is not configured`},
		{name: "tenant not active", tenant: site, target: "shard_1",
			setup: func(t *testing.T) { p.setStatus(t, registry.StatusMaintenance) },
			undo:  func(t *testing.T) { p.setStatus(t, registry.StatusActive) },
			want:  "is maintenance, not active"},
		{name: "schema versions differ", tenant: site, target: "shard_2",
			setup: func(t *testing.T) {
				pgtest.Exec(t, p.cluster.URL["shard_2"], "UPDATE pwb_tenant_schema_version SET is_applied = false WHERE version_id = 1")
			},
			undo: func(t *testing.T) {
				pgtest.Exec(t, p.cluster.URL["shard_2"], "UPDATE pwb_tenant_schema_version SET is_applied = true WHERE version_id = 1")
			},
			want: "tenant schema versions differ"},
		{name: "rows of the tenant on the target", tenant: site, target: "shard_1",
			setup: func(t *testing.T) {
				pgtest.Exec(t, p.cluster.URL["shard_1"], "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'stray', 'Stray')", p.site.ID)
			},
			undo: func(t *testing.T) {
				pgtest.Exec(t, p.cluster.URL["shard_1"], "DELETE FROM pages WHERE website_id = $1", p.site.ID)
			},
			want: `shard "shard_1" already holds rows of tenant`},
		{name: "id collision", tenant: site, target: "shard_1",
			setup: func(t *testing.T) {
				other := p.neighbours["shard_1"].ID
				pgtest.Exec(t, p.cluster.URL["shard_1"], `INSERT INTO properties (id, website_id, slug, title)
					VALUES ($1::uuid, $2, 'collider', 'Collider')`, firstProperty, other)
			},
			undo: func(t *testing.T) {
				pgtest.Exec(t, p.cluster.URL["shard_1"], "DELETE FROM properties WHERE slug = 'collider'")
			},
			want: "have ids already used on shard \"shard_1\" (for example " + firstProperty},
		{name: "target unreachable", tenant: site, target: "shard_2",
			setup: func(t *testing.T) { p.stop(t, "shard_2") },
			undo:  func(t *testing.T) { p.start(t, "shard_2") },
			want:  `target shard "shard_2" is unreachable`},
		{name: "source unreachable", tenant: "neighbour-shard-1", target: "shard_2",
			setup: func(t *testing.T) { p.stop(t, "shard_1") },
			undo:  func(t *testing.T) { p.start(t, "shard_1") },
			want:  `source shard "shard_1" is unreachable`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := p.digests(t)
			if c.setup != nil {
				c.setup(t)
			}
			w := p.website(t)
			rows := p.journalSize(t)
			_, err := m.Plan(ctx, c.tenant, c.target, journal.ModeFreeze)
			if !errors.Is(err, journal.ErrRefused) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Plan(%s, %s) = %v, want a refusal containing %q", c.tenant, c.target, err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("refusal is not one line: %q", err)
			}
			if got := p.website(t); got != w {
				t.Errorf("registry changed: %+v -> %+v", w, got)
			}
			if got := p.journalSize(t); got != rows {
				t.Errorf("journal grew from %d to %d rows", rows, got)
			}
			if c.undo != nil {
				c.undo(t)
			}
			if diff := cmp.Diff(before, p.digests(t)); diff != "" {
				t.Errorf("rows changed (-before +after):\n%s", diff)
			}
		})
	}

	t.Run("unfinished move", func(t *testing.T) {
		plan, err := m.Plan(ctx, site, "shard_1", journal.ModeFreeze)
		if err != nil {
			t.Fatal(err)
		}
		id, err := m.Start(ctx, plan, "test")
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Plan(ctx, site, "shard_2", journal.ModeFreeze)
		if !errors.Is(err, journal.ErrMoveInProgress) || !strings.Contains(err.Error(), "pwb sharding resume") {
			t.Errorf("Plan with move %d unfinished: %v", id, err)
		}
		if _, err := m.Abort(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
}

func (p *platform) setStatus(t *testing.T, status string) {
	t.Helper()
	if err := registry.SetStatus(context.Background(), p.primary, p.site.ID, status); err != nil {
		t.Fatal(err)
	}
}

func (p *platform) server(name string) int {
	switch name {
	case "shard_1":
		return 1
	case "shard_2":
		return 2
	}
	return 0
}

// stop stops a shard's server, keeping its data; start starts it again on
// the same port.
func (p *platform) stop(t *testing.T, name string) {
	t.Helper()
	if err := p.cluster.Servers[p.server(name)].Stop(context.Background(), false); err != nil {
		t.Fatal(err)
	}
}

func (p *platform) start(t *testing.T, name string) {
	t.Helper()
	if err := p.cluster.Servers[p.server(name)].Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Two moves of one tenant started at the same moment: one runs, the other is
// refused with the reason, by the database's one-unfinished-move rule.
func TestStart_TwoMovesAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, movertest.Options{Properties: 20, Photos: 2})
	m := p.mover(t, mover.Options{})
	plans := make([]mover.Plan, 2)
	for i, target := range []string{"shard_1", "shard_2"} {
		var err error
		if plans[i], err = m.Plan(ctx, p.site.Subdomain, target, journal.ModeFreeze); err != nil {
			t.Fatal(err)
		}
	}
	ids := make([]int64, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range plans {
		wg.Go(func() {
			<-start
			ids[i], errs[i] = m.Start(ctx, plans[i], "test")
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won = i
		case !errors.Is(err, journal.ErrRefused) || !strings.Contains(err.Error(), "unfinished move") && !strings.Contains(err.Error(), "same moment"):
			t.Errorf("losing start: %v, want a refusal naming the other move", err)
		}
	}
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("exactly one start should win: %v, %v", errs[0], errs[1])
	}
	if _, err := m.Run(ctx, ids[won]); err != nil {
		t.Fatal(err)
	}
	if got := p.website(t).ShardName; got != plans[won].Target {
		t.Errorf("tenant on %s, want %s", got, plans[won].Target)
	}
}

// A move runs in one process at a time: while one runs it, resume and abort
// from elsewhere are refused; resume and abort of a finished or unknown move
// are refused too.
func TestRun_OneRunnerAndFinishedMoves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, movertest.Options{Properties: 20, Photos: 2})
	paused, release := make(chan struct{}), make(chan struct{})
	first := p.mover(t, mover.Options{Pause: func(point string) {
		if point == string(journal.StateCopying) {
			close(paused)
			<-release
		}
	}})
	other := p.mover(t, mover.Options{})
	plan, err := first.Plan(ctx, p.site.Subdomain, "shard_1", journal.ModeFreeze)
	if err != nil {
		t.Fatal(err)
	}
	id, err := first.Start(ctx, plan, "test")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := first.Run(ctx, id); done <- err }()
	<-paused
	// The runner's claim is an idle transaction on primary for the whole
	// move; it must not hold a snapshot that stops vacuum.
	if xmin := pgtest.QueryValue[bool](t, p.cluster.URL[shard.Default],
		"SELECT bool_or(backend_xmin IS NOT NULL) FROM pg_stat_activity WHERE application_name = 'pwb-mover'"); xmin {
		t.Error("the mover's claim holds back primary's xmin")
	}
	if _, err := other.Run(ctx, id); !errors.Is(err, mover.ErrBusy) {
		t.Errorf("resume while another process runs the move: %v, want ErrBusy", err)
	}
	if _, err := other.Abort(ctx, id); !errors.Is(err, mover.ErrBusy) {
		t.Errorf("abort while another process runs the move: %v, want ErrBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		call func() error
		want string
	}{
		{"resume done", func() error { _, err := other.Run(ctx, id); return err }, "is already done"},
		{"abort done", func() error { _, err := other.Abort(ctx, id); return err }, "is already done"},
		{"resume unknown", func() error { _, err := other.Run(ctx, 424242); return err }, "no such move"},
		{"abort unknown", func() error { _, err := other.Abort(ctx, 424242); return err }, "no such move"},
	} {
		if err := c.call(); !errors.Is(err, journal.ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal containing %q", c.name, err, c.want)
		}
	}

	// An aborted move cannot be resumed or aborted again.
	plan, err = other.Plan(ctx, p.site.Subdomain, shard.Default, journal.ModeFreeze)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := other.Start(ctx, plan, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Abort(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Run(ctx, id2); !errors.Is(err, journal.ErrRefused) || !strings.Contains(err.Error(), "is already aborted") {
		t.Errorf("resume aborted: %v", err)
	}
	if _, err := other.Abort(ctx, id2); !errors.Is(err, journal.ErrRefused) || !strings.Contains(err.Error(), "is already aborted") {
		t.Errorf("abort aborted: %v", err)
	}
}
