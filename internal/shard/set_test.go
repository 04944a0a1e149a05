package shard

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/config"
)

func TestPoolSettingsFromConfig(t *testing.T) {
	cfg, err := config.Parse([]byte(`test:
  max_connections_total: 3
  primary:
    database: p
    pool: 10
    idle_timeout: 2
    checkout_timeout: 250ms
    prepared_statements: false
  shard_1:
    database: s
    migrations_paths: db/migrate_tenants
`), "database.yml", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	set := NewSet(cfg)
	defer set.Close()
	p, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	pc := p.Config()
	if pc.MaxConns != 3 {
		t.Errorf("primary MaxConns = %d; want 3, the process cap, below its pool of 10", pc.MaxConns)
	}
	if pc.MaxConnIdleTime != 2*time.Second || pc.HealthCheckPeriod != time.Second {
		t.Errorf("idle time %s, health check every %s; want 2s and 1s", pc.MaxConnIdleTime, pc.HealthCheckPeriod)
	}
	if pc.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeExec {
		t.Errorf("query mode %v; want exec (no named prepared statements) with prepared_statements: false", pc.ConnConfig.DefaultQueryExecMode)
	}
	if got := set.CheckoutTimeout("default"); got != 250*time.Millisecond {
		t.Errorf("primary checkout timeout %s, want 250ms", got)
	}
	s1, err := set.Pool("shard_1")
	if err != nil {
		t.Fatal(err)
	}
	if c := s1.Config(); c.MaxConnIdleTime != DefaultIdleTimeout || c.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement {
		t.Errorf("shard_1: idle %s, mode %v; want the defaults", c.MaxConnIdleTime, c.ConnConfig.DefaultQueryExecMode)
	}
	if got := set.CheckoutTimeout("shard_1"); got != DefaultCheckoutTimeout {
		t.Errorf("shard_1 checkout timeout %s, want %s", got, DefaultCheckoutTimeout)
	}
	if b := set.Budget(); b.Max != 3 || b.Used != 0 {
		t.Errorf("budget %+v; want max 3, nothing used", b)
	}
}

// The budget's slots: taken up to the cap, then a wait that ends with the
// context as ErrBusy, or when a slot is given back.
func TestBudgetWaitsAndGivesBack(t *testing.T) {
	stolen := 0
	b := newBudget(2, func(string, bool) bool { stolen++; return false })
	ctx := context.Background()
	for range 2 {
		if err := b.take(ctx, "s"); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := b.take(short, "s"); !errors.Is(err, ErrBusy) {
		t.Fatalf("take over the cap = %v; want ErrBusy", err)
	}
	if stolen == 0 {
		t.Error("a full budget did not try to close an idle connection first")
	}
	got := make(chan error, 1)
	go func() { got <- b.take(ctx, "s") }()
	time.Sleep(30 * time.Millisecond)
	b.give()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting take did not get the slot given back")
	}
	if st := b.stats(); st.Used != 2 || st.Peak != 2 || st.Waits != 1 {
		t.Errorf("stats %+v; want 2 used, peak 2, 1 wait", st)
	}
}
