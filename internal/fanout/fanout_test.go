package fanout_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

func names(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("shard_%d", i))
	}
	return out
}

// setWithCap is a shard set with no shards and a connection budget of max
// (none when 0): enough for the width arithmetic.
func setWithCap(max int) *shard.Set {
	return shard.NewSet(&config.Config{MaxConnectionsTotal: max})
}

func TestLanes_FollowTheBudget(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		max     int
		o       fanout.Options
		n, want int
	}{
		{"no budget, default width", 0, fanout.Options{}, 1000, fanout.DefaultWidth},
		{"no budget, fewer shards than the width", 0, fanout.Options{}, 3, 3},
		{"asked width", 0, fanout.Options{Width: 4}, 1000, 4},
		{"budget of 40 keeps one for primary", 40, fanout.Options{Width: 100}, 1000, 39},
		{"two connections per visit", 40, fanout.Options{Width: 100, ConnsPerVisit: 2}, 1000, 19},
		{"a reserve for requests", 40, fanout.Options{Width: 100, Reserve: 30}, 1000, 10},
		{"budget of 2 with two per visit still makes progress", 2, fanout.Options{ConnsPerVisit: 2}, 1000, 1},
		{"budget of 1", 1, fanout.Options{}, 1000, 1},
		{"no shards", 40, fanout.Options{}, 0, 1},
	}
	for _, c := range cases {
		if got := c.o.Lanes(setWithCap(c.max), c.n); got != c.want {
			t.Errorf("%s: %d lanes; want %d", c.name, got, c.want)
		}
	}
}

func TestEach_NeverMoreThanItsLanesAtOnce_ResultsInOrder(t *testing.T) {
	t.Parallel()
	in := names(50)
	var running, peak atomic.Int32
	var ks []int
	got := fanout.Each(context.Background(), setWithCap(5), in, fanout.Options{}, func(_ context.Context, name string) string {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		return name
	}, func(k int, _ string) { ks = append(ks, k) })
	if p := peak.Load(); p > 4 || p < 2 {
		t.Errorf("peak of %d visits at once under a budget of 5; want 2 to 4", p)
	}
	if !slices.Equal(got, in) {
		t.Errorf("results out of order: %v", got)
	}
	for i, k := range ks {
		if k != i+1 {
			t.Fatalf("done counted %v; want 1, 2, 3, ...", ks)
		}
	}
	if len(ks) != len(in) {
		t.Errorf("done called %d times; want %d", len(ks), len(in))
	}
}

// The deadline of a visit starts with its turn: a shard at the end of a
// long line has as long as the first.
func TestEach_TimeoutStartsAtTheShardsTurn(t *testing.T) {
	t.Parallel()
	const visit, timeout = 40 * time.Millisecond, 400 * time.Millisecond
	got := fanout.Each(context.Background(), setWithCap(0), names(20), fanout.Options{Width: 1, Timeout: timeout},
		func(ctx context.Context, _ string) error {
			select {
			case <-time.After(visit):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, nil)
	// 20 visits of 40 ms in one lane take 800 ms, twice the timeout: a
	// deadline counted from the start of the fan-out would fail the last half.
	for i, err := range got {
		if err != nil {
			t.Errorf("visit %d: %v", i, err)
		}
	}
}

func TestEach_AfterCancelEveryShardStillGetsAResult(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var visited atomic.Int32
	got := fanout.Each(ctx, setWithCap(0), names(100), fanout.Options{Width: 2}, func(ctx context.Context, _ string) error {
		if visited.Add(1) == 10 {
			cancel()
		}
		return ctx.Err()
	}, nil)
	if visited.Load() != 100 {
		t.Errorf("%d visits; want all 100", visited.Load())
	}
	canceled := 0
	for _, err := range got {
		if errors.Is(err, context.Canceled) {
			canceled++
		}
	}
	if canceled < 85 {
		t.Errorf("%d visits saw the cancellation; want at least 85 of the 90 after it", canceled)
	}
}

// The fault the fan-out exists to prevent: hundreds of shards under a small
// connection cap, each with a short timeout. Started all at once, most
// timed out waiting for a connection and were called unreachable.
func TestEach_ManyShardsUnderASmallCapAreAllReached(t *testing.T) {
	t.Parallel()
	many := pgtest.StartManyShards(t, 300, 1)
	path := pgtest.WriteConfigWith(t, pgtest.ConfigOptions{Env: map[string]string{"max_connections_total": "4"}}, many.Shards...)
	cfg, err := config.Load(path, "test")
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg)
	defer set.Close()
	got := fanout.Each(context.Background(), set, set.Names(), fanout.Options{Timeout: 2 * time.Second},
		func(ctx context.Context, name string) error {
			_, err := set.Ping(ctx, name)
			return err
		}, nil)
	for i, err := range got {
		if err != nil {
			t.Errorf("%s: %v", set.Names()[i], err)
		}
	}
	if b := set.Budget(); b.Peak > 4 {
		t.Errorf("%d connections open at once; the cap is 4", b.Peak)
	}
}
