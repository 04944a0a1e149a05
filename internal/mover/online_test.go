package mover_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// An online move of an idle tenant ends like a freeze move: the same rows
// on the target, none left on the source, the neighbours untouched, and no
// slot or publication left behind; the tenant was never read-only.
func TestOnlineMove_Idle(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, movertest.Options{Properties: 200, Photos: 12})
	var phases []journal.Phase
	m := p.mover(t, mover.Options{Progress: func(e mover.Event) {
		if len(phases) == 0 || phases[len(phases)-1] != e.Phase {
			phases = append(phases, e.Phase)
		}
	}})
	before := p.digests(t)
	ctx := context.Background()
	plan, err := m.Plan(ctx, p.site.Subdomain, "shard_1", "")
	if err != nil {
		t.Fatal(err)
	}
	if plan.Mode != journal.ModeOnline || plan.ModeReason != "" {
		t.Fatalf("plan mode %s (%s), want online", plan.Mode, plan.ModeReason)
	}
	id, err := m.Start(ctx, plan, "test")
	if err != nil {
		t.Fatal(err)
	}
	mv, err := m.Run(ctx, id)
	if err != nil {
		t.Fatalf("run: %v (phases %v)", err, phases)
	}
	t.Logf("phases %v", phases)
	if mv.State != journal.StateDone || !mv.Online() || mv.FrozenAt != nil || !mv.ArtifactsDropped || mv.BlockedUS == nil {
		t.Errorf("journal after the move: %+v", mv)
	}
	if d, _ := mv.Blocked(); d <= 0 || d > mover.DefaultCutoverBudget {
		t.Errorf("writes blocked for %s, want within the budget of %s", d, mover.DefaultCutoverBudget)
	}
	p.wantMoved(t, before, shard.Default, "shard_1")
	p.wantNoArtifacts(t)
}

// writerFor returns a movertest.Writer of website w that writes the way the
// app does: through the tenant's scope, resolved from the registry, and
// once more on the new shard when the first attempt finds the tenant moved.
func (p *platform) writerFor(t *testing.T, w registry.Website) *movertest.Writer {
	t.Helper()
	write := func(ctx context.Context, fn func(tenant.Tx) error) error {
		attempt := func() error {
			now, err := registry.Get(ctx, p.primary, w.ID)
			if err != nil {
				return err
			}
			sc, err := tenant.Resolve(p.set, now)
			if err != nil {
				return err
			}
			return sc.Write(ctx, fn)
		}
		err := attempt()
		if errors.Is(err, tenant.ErrMoved) {
			err = attempt()
		}
		return err
	}
	wr := &movertest.Writer{Write: write}
	pool, err := p.set.Pool(w.ShardName)
	if err != nil {
		t.Fatal(err)
	}
	if err := wr.Load(context.Background(), pool, w.ID); err != nil {
		t.Fatal(err)
	}
	return wr
}

// An online move while the tenant and a neighbour on the same source keep
// writing: every acknowledged write of the tenant is on the target exactly
// once, nothing is refused, no write waits a second, and the neighbour's
// writes never fail.
func TestOnlineMove_UnderWrites(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, movertest.Options{Properties: 2000, Photos: 20})
	m := p.mover(t, mover.Options{})
	site, neighbour := p.writerFor(t, p.site), p.writerFor(t, p.neighbours[shard.Default])
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { site.Run(ctx, p.site.ID) })
	wg.Go(func() { neighbour.Run(ctx, p.neighbours[shard.Default].ID) })
	time.Sleep(300 * time.Millisecond)
	plan, err := m.Plan(context.Background(), p.site.Subdomain, "shard_1", journal.ModeOnline)
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Start(context.Background(), plan, "test")
	if err != nil {
		t.Fatal(err)
	}
	mv, err := m.Run(context.Background(), id)
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("site: %d writes acknowledged, %d refused, longest %s; neighbour: %d, %d; %d changes streamed, writes blocked %v",
		site.Acked, site.Refused, site.MaxWait, neighbour.Acked, neighbour.Refused, mv.ChangesApplied, fmtBlocked(mv))
	if site.Refused != 0 || neighbour.Refused != 0 {
		t.Errorf("refused writes: site %v, neighbour %v", site.Failures, neighbour.Failures)
	}
	if site.MaxWait >= time.Second {
		t.Errorf("a write of the moving tenant waited %s", site.MaxWait)
	}
	if site.Acked < 50 || mv.ChangesApplied == 0 {
		t.Errorf("only %d writes during the move, %d streamed: the test proves little", site.Acked, mv.ChangesApplied)
	}
	target, _ := p.set.Pool("shard_1")
	if err := site.Check(context.Background(), target, p.site.ID); err != nil {
		t.Errorf("the target does not hold what the acknowledged writes left:\n%v", err)
	}
	source, _ := p.set.Pool(shard.Default)
	if err := neighbour.Check(context.Background(), source, p.neighbours[shard.Default].ID); err != nil {
		t.Errorf("the neighbour's rows:\n%v", err)
	}
	if d := p.digest(t, shard.Default, p.site.ID); !d.Empty() {
		t.Errorf("rows of the tenant remain on the source: %v", d)
	}
	p.wantNoArtifacts(t)
}

func fmtBlocked(mv journal.Move) string {
	d, ok := mv.Blocked()
	if !ok {
		return "-"
	}
	return d.String()
}
