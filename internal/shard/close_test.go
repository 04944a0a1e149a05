package shard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// Closing a set while hundreds of dials wait for the connection budget
// returns at once: it holds no lock a waiting dial needs, and the waiting
// dials give up. Nothing opens a connection afterwards.
func TestClose_WithDialsWaitingOnTheBudget(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, 1)[0]
	pgtest.CreateDatabase(t, srv, "main")
	const waiting = 300
	shards := []pgtest.Shard{{Key: "primary", Server: srv, DB: "main"}}
	for i := range waiting {
		// Databases that need not exist: their dials never get a slot.
		shards = append(shards, pgtest.Shard{Key: fmt.Sprintf("shard_%d", i+1), Server: srv, DB: fmt.Sprintf("waiting_%d", i+1)})
	}
	path := pgtest.WriteConfigWith(t, pgtest.ConfigOptions{Env: map[string]string{"max_connections_total": "2"}}, shards...)
	cfg, err := config.Load(path, "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg)
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var held []*pgxpool.Conn
	for range 2 {
		c, err := primary.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	errs := make(chan error, waiting)
	var wg sync.WaitGroup
	for i := range waiting {
		wg.Go(func() {
			pool, err := set.Pool(fmt.Sprintf("shard_%d", i+1))
			if err == nil {
				var c *pgxpool.Conn
				wctx, cancel := context.WithTimeout(ctx, time.Minute)
				c, err = pool.Acquire(wctx)
				cancel()
				if c != nil {
					c.Release()
				}
			}
			errs <- err
		})
	}
	time.Sleep(500 * time.Millisecond) // every dial is waiting for a slot
	if st := set.Budget(); st.Used != 2 {
		t.Fatalf("budget %+v; want its 2 slots held", st)
	}
	// The held connections go back idle: waiting dials now try to close
	// them to make room, which takes the set's lock.
	for _, c := range held {
		c.Release()
	}
	start := time.Now()
	closed := make(chan struct{})
	go func() { set.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5 s while dials waited on the budget")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %s with %d dials waiting; want under a second", took, waiting)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("waiting dials did not end after Close")
	}
	close(errs)
	for err := range errs {
		if err == nil {
			t.Error("a dial to a database that does not exist succeeded")
		}
	}
	if _, err := set.Pool("shard_1"); !errors.Is(err, shard.ErrClosed) {
		t.Errorf("Pool after Close: %v; want ErrClosed", err)
	}
}
