package mover_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// platform is primary plus shard_1 and shard_2, each on its own server, with
// the tenant to move on primary and a neighbour on every shard, all filled.
type platform struct {
	cluster    *pgtest.Cluster
	set        *shard.Set
	primary    *pgxpool.Pool
	site       registry.Website
	neighbours map[string]registry.Website // by shard
}

func newPlatform(t *testing.T, o movertest.Options) *platform {
	t.Helper()
	c, set := pgtest.MigratedCluster(t, 2)
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	p := &platform{cluster: c, set: set, primary: primary, neighbours: map[string]registry.Website{}}
	p.site = p.register(t, "mover-co", shard.Default, o)
	for _, s := range []string{shard.Default, "shard_1", "shard_2"} {
		p.neighbours[s] = p.register(t, "neighbour-"+strings.ReplaceAll(s, "_", "-"), s, movertest.Options{Properties: 5, Photos: 2})
	}
	return p
}

func (p *platform) register(t *testing.T, sub, shardName string, o movertest.Options) registry.Website {
	t.Helper()
	ctx := context.Background()
	w, err := registry.Create(ctx, p.primary, registry.New{Subdomain: sub, Name: sub, ShardName: shardName})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := p.set.Pool(shardName)
	if err != nil {
		t.Fatal(err)
	}
	if err := movertest.Fill(ctx, pool, w.ID, o); err != nil {
		t.Fatal(err)
	}
	return w
}

func (p *platform) digest(t *testing.T, shardName string, id int64) movertest.Digest {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.cluster.URL[shardName])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	d, err := movertest.TakeDigest(ctx, conn, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// digests reads every tenant's rows on every shard.
func (p *platform) digests(t *testing.T) map[string]movertest.Digest {
	t.Helper()
	out := map[string]movertest.Digest{}
	for _, s := range []string{shard.Default, "shard_1", "shard_2"} {
		for _, w := range append([]registry.Website{p.site}, p.neighbourList()...) {
			out[s+"/"+w.Subdomain] = p.digest(t, s, w.ID)
		}
	}
	return out
}

func (p *platform) neighbourList() []registry.Website {
	return []registry.Website{p.neighbours[shard.Default], p.neighbours["shard_1"], p.neighbours["shard_2"]}
}

func (p *platform) mover(t *testing.T, opt mover.Options) *mover.Mover {
	t.Helper()
	if opt.CleanupDelay == 0 {
		opt.CleanupDelay = mover.NoCleanupDelay
	}
	m, err := mover.New(p.set, opt)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (p *platform) website(t *testing.T) registry.Website {
	t.Helper()
	w, err := registry.Get(context.Background(), p.primary, p.site.ID)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// move plans, starts and runs a move of the platform's site to target.
func (p *platform) move(t *testing.T, m *mover.Mover, target string) journal.Move {
	t.Helper()
	ctx := context.Background()
	plan, err := m.Plan(ctx, p.site.Subdomain, target, journal.ModeFreeze)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	id, err := m.Start(ctx, plan, "test")
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	mv, err := m.Run(ctx, id)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return mv
}

// wantMoved checks the site's rows are byte-identical on target to before,
// gone from every other shard, the registry points at target and the other
// tenants are untouched.
func (p *platform) wantMoved(t *testing.T, before map[string]movertest.Digest, from, target string) {
	t.Helper()
	w := p.website(t)
	if w.ShardName != target || w.Status != registry.StatusActive {
		t.Errorf("registry: tenant is %s on %s, want active on %s", w.Status, w.ShardName, target)
	}
	after := p.digests(t)
	want := map[string]movertest.Digest{}
	for k, v := range before {
		want[k] = v
	}
	key := func(s string) string { return s + "/" + p.site.Subdomain }
	want[key(target)] = before[key(from)]
	want[key(from)] = before[key(target)]
	if diff := cmp.Diff(want, after); diff != "" {
		t.Errorf("rows after the move differ from before (-want +got):\n%s", diff)
	}
	if !after[key(from)].Empty() {
		t.Errorf("rows of the tenant remain on %s: %v", from, after[key(from)])
	}
}

func TestMove_HappyPathBothWays(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, movertest.Options{Properties: 300, Photos: 24})
	m := p.mover(t, mover.Options{})
	before := p.digests(t)
	if d := before[shard.Default+"/"+p.site.Subdomain]; d.Empty() {
		t.Fatal("the fixture wrote no rows")
	}

	mv := p.move(t, m, "shard_1")
	if mv.State != journal.StateDone || mv.FinishedAt == nil || mv.FrozenAt == nil || mv.SwitchedAt == nil {
		t.Errorf("journal after the move: %+v", mv)
	}
	if got, want := mv.RowsCopied(), (movertest.Options{Properties: 300, Photos: 24}).Rows(); got != want || mv.RowsTotal() != want {
		t.Errorf("journal: %d of %d rows copied, want %d", got, mv.RowsTotal(), want)
	}
	for _, tb := range mv.Tables {
		if !tb.Copied || tb.SourceChecksum == "" || tb.SourceChecksum != tb.TargetChecksum || tb.RowsDeleted != tb.RowsTotal {
			t.Errorf("journal table %+v", tb)
		}
	}
	p.wantMoved(t, before, shard.Default, "shard_1")

	middle := p.digests(t)
	p.move(t, m, shard.Default)
	p.wantMoved(t, middle, "shard_1", shard.Default)
	if diff := cmp.Diff(before, p.digests(t)); diff != "" {
		t.Errorf("after moving there and back, rows differ from the start (-want +got):\n%s", diff)
	}
	moves, err := journal.List(context.Background(), p.primary, p.site.ID)
	if err != nil || len(moves) != 2 || moves[0].Source != "shard_1" || moves[1].Source != shard.Default {
		t.Errorf("journal lists %+v, %v", moves, err)
	}
}

func TestMove_ProgressReachesEveryPhase(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, movertest.Options{Properties: 100})
	var phases []journal.Phase
	var lastCopy mover.Event
	m := p.mover(t, mover.Options{Progress: func(e mover.Event) {
		if len(phases) == 0 || phases[len(phases)-1] != e.Phase {
			phases = append(phases, e.Phase)
		}
		if e.Phase == journal.StateCopying.Phase() {
			lastCopy = e
		}
	}})
	p.move(t, m, "shard_2")
	want := []journal.Phase{"frozen", "copying", "copied", "verifying", "verified", "switched", "cleaning", "cleaned", "done"}
	if diff := cmp.Diff(want, phases); diff != "" {
		t.Errorf("phases (-want +got):\n%s", diff)
	}
	if lastCopy.Rows != lastCopy.RowsTotal || lastCopy.RowsTotal != (movertest.Options{Properties: 100}).Rows() {
		t.Errorf("last copy event %+v", lastCopy)
	}
}

// Verify refuses a move whose other shard is not configured before it starts
// any checksum: it never returns while a checksum goroutine still holds a
// connection of the tenant's shard.
func TestVerify_RefusalHoldsNoConnection(t *testing.T) {
	p := newPlatform(t, movertest.Options{Properties: 200, Photos: 2})
	ctx := context.Background()
	if _, err := p.primary.Exec(ctx, `INSERT INTO moves (website_id, source_shard, target_shard, started_by)
		VALUES ($1, 'default', 'gone', 'test')`, p.site.ID); err != nil {
		t.Fatal(err)
	}
	m, err := mover.New(p.set, mover.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := p.set.Pool(shard.Default)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		_, err := m.Verify(ctx, p.site.Subdomain)
		if err == nil || !strings.Contains(err.Error(), `shard "gone" is not configured`) {
			t.Fatalf("Verify = %v; want a refusal naming the shard", err)
		}
		if n := pool.Stat().AcquiredConns(); n != 0 {
			t.Fatalf("Verify returned while %d connection(s) of the tenant's shard were still in use", n)
		}
	}
}

// wantNoArtifacts checks that no shard has a move's replication slot or
// publication, and that no target keeps a stream position.
func (p *platform) wantNoArtifacts(t *testing.T) {
	t.Helper()
	for _, s := range []string{shard.Default, "shard_1", "shard_2"} {
		url := p.cluster.URL[s]
		if n := pgtest.QueryValue[int64](t, url, "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pwb_move_%' AND database = current_database()"); n != 0 {
			t.Errorf("%s keeps %d replication slot(s) of moves", s, n)
		}
		if n := pgtest.QueryValue[int64](t, url, "SELECT count(*) FROM pg_publication WHERE pubname LIKE 'pwb_move_%'"); n != 0 {
			t.Errorf("%s keeps %d publication(s) of moves", s, n)
		}
		if n := pgtest.QueryValue[int64](t, url, "SELECT count(*) FROM move_positions"); n != 0 {
			t.Errorf("%s keeps %d stream position(s)", s, n)
		}
	}
}
