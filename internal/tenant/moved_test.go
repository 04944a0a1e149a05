package tenant_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// copyTenant copies every row of website id from one shard database to
// another, table by table in foreign-key order, as a mover's copy would.
func copyTenant(t *testing.T, fromURL, toURL string, id int64) {
	t.Helper()
	ctx := context.Background()
	from, err := pgx.Connect(ctx, fromURL)
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close(ctx)
	to, err := pgx.Connect(ctx, toURL)
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close(ctx)
	for _, table := range tenant.Tables {
		var b bytes.Buffer
		name := pgx.Identifier{table}.Sanitize()
		if _, err := from.PgConn().CopyTo(ctx, &b, fmt.Sprintf("COPY (SELECT * FROM %s WHERE website_id = %d) TO STDOUT", name, id)); err != nil {
			t.Fatalf("copying %s out: %v", table, err)
		}
		if _, err := to.PgConn().CopyFrom(ctx, &b, "COPY "+name+" FROM STDIN"); err != nil {
			t.Fatalf("copying %s in: %v", table, err)
		}
	}
}

// waitingOnFence waits until a session of the database at url waits for
// website id's advisory lock.
func waitingOnFence(t *testing.T, url string, id int64, failed <-chan error) {
	t.Helper()
	for range 500 { // up to 10 s on a busy machine
		if pgtest.QueryValue[int64](t, url, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND objid = $1`, id) > 0 {
			return
		}
		select {
		case err := <-failed:
			t.Fatalf("the write finished while the fence was held exclusively: %v", err)
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the write never waited on the fence")
}

// An online move's cut-over, played by hand: the fence is held exclusively
// on the source while a write waits for it; the tenant's rows are copied to
// the target and the registry switched there; the fence is let go. The
// waiting write must not land on the source: it gets ErrMoved (still
// ErrWritesPaused for callers that do not follow moves), naming the target,
// and its fn never ran. A scope resolved afresh writes on the target. A
// tenant set read_only instead (whether or not its shard also changed) gets
// plain ErrWritesPaused, never ErrMoved.
func TestScope_WriteWaitingThroughACutOverReportsTheMove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, set := pgtest.MigratedCluster(t, 2)
	primary, _ := set.Primary()
	source, err := set.Pool("shard_1")
	if err != nil {
		t.Fatal(err)
	}

	i := 0
	for _, tc := range []struct {
		name     string
		status   string // the registry's status at the cut-over
		switched bool   // whether the registry points to shard_2 at the cut-over
		moved    bool
	}{
		{"active and switched", registry.StatusActive, true, true},
		{"read_only", registry.StatusReadOnly, false, false},
		{"read_only and switched", registry.StatusReadOnly, true, false},
		{"maintenance and switched", registry.StatusMaintenance, true, false},
	} {
		i++
		t.Run(tc.name, func(t *testing.T) {
			w, err := registry.Create(ctx, primary, registry.New{
				Subdomain: fmt.Sprintf("mover-%d", i), Name: "Mover", Tier: registry.TierPremium, ShardName: "shard_1"})
			if err != nil {
				t.Fatal(err)
			}
			s, err := tenant.Resolve(set, w)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, func(tx tenant.Tx) error {
				_, err := tx.Exec(ctx, "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'about', 'About')", w.ID)
				return err
			}); err != nil {
				t.Fatal(err)
			}

			fence, err := source.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer fence.Rollback(ctx)
			if err := tenant.Freeze(ctx, fence, w.ID); err != nil {
				t.Fatal(err)
			}
			ran := make(chan struct{}, 1)
			done := make(chan error, 1)
			go func() {
				done <- s.Write(ctx, func(tx tenant.Tx) error {
					ran <- struct{}{}
					_, err := tx.Exec(ctx, "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'late', 'Late')", w.ID)
					return err
				})
			}()
			waitingOnFence(t, c.URL["shard_1"], w.ID, done)

			if tc.switched {
				copyTenant(t, c.URL["shard_1"], c.URL["shard_2"], w.ID)
				if err := registry.SetShard(ctx, primary, w.ID, "shard_2"); err != nil {
					t.Fatal(err)
				}
			}
			if tc.status != registry.StatusActive {
				if err := registry.SetStatus(ctx, primary, w.ID, tc.status); err != nil {
					t.Fatal(err)
				}
			}
			if err := fence.Commit(ctx); err != nil {
				t.Fatal(err)
			}

			var werr error
			select {
			case werr = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the write did not end after the fence was let go")
			}
			if !errors.Is(werr, tenant.ErrWritesPaused) {
				t.Fatalf("write through the cut-over: %v, want ErrWritesPaused", werr)
			}
			var moved *tenant.MovedError
			if got := errors.Is(werr, tenant.ErrMoved); got != tc.moved || errors.As(werr, &moved) != tc.moved {
				t.Fatalf("write through the cut-over: %v; ErrMoved %v, want %v", werr, got, tc.moved)
			}
			if tc.moved && (moved.WebsiteID != w.ID || moved.From != "shard_1" || moved.To != "shard_2") {
				t.Errorf("MovedError %+v, want website %d from shard_1 to shard_2", *moved, w.ID)
			}
			select {
			case <-ran:
				t.Error("fn ran although the write was refused")
			default:
			}
			late := func(shard string) int64 {
				return pgtest.QueryValue[int64](t, c.URL[shard], "SELECT count(*) FROM pages WHERE website_id = $1 AND slug = 'late'", w.ID)
			}
			if n1, n2 := late("shard_1"), late("shard_2"); n1 != 0 || n2 != 0 {
				t.Fatalf("a refused write left rows: %d on shard_1, %d on shard_2", n1, n2)
			}
			if !tc.moved {
				return
			}

			// What the site does with ErrMoved: resolve again from primary
			// and write on the new shard.
			fresh, err := registry.Get(ctx, primary, w.ID)
			if err != nil {
				t.Fatal(err)
			}
			s2, err := tenant.Resolve(set, fresh)
			if err != nil {
				t.Fatal(err)
			}
			if err := s2.Write(ctx, func(tx tenant.Tx) error {
				_, err := tx.Exec(ctx, "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'late', 'Late')", w.ID)
				return err
			}); err != nil {
				t.Fatalf("write through a scope resolved after the move: %v", err)
			}
			if n1, n2 := late("shard_1"), late("shard_2"); n1 != 0 || n2 != 1 {
				t.Errorf("after the retry: %d rows on shard_1, %d on shard_2; want 0 and 1", n1, n2)
			}
			// The stale scope keeps being refused, never writing on the source.
			if err := s.Write(ctx, func(tenant.Tx) error { return errors.New("must not run") }); !errors.Is(err, tenant.ErrMoved) {
				t.Errorf("the stale scope after the move: %v, want ErrMoved", err)
			}
		})
	}
}
