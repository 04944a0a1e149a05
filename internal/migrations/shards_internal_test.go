package migrations

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestForEachShard_NeverExceedsParallel(t *testing.T) {
	t.Parallel()
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("shard_%d", i))
	}
	var running, peak atomic.Int32
	got := forEachShard(context.Background(), names, 4, nil, func(_ context.Context, name string) string {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
		running.Add(-1)
		return name
	})
	if p := peak.Load(); p > 4 || p < 2 {
		t.Errorf("peak concurrency %d; want between 2 and 4", p)
	}
	for i, n := range got {
		if n != names[i] {
			t.Fatalf("results out of order at %d: %s", i, n)
		}
	}
}
