// Package fanout visits many shards at once without asking for more
// connections than the process may hold. Every operation that goes to all
// shards (creating and migrating their databases, reading their status and
// figures, the admin's health poller, the move sweep) goes through Each, so
// that a thousand shards under a cap of forty connections behave like ten
// shards do: a bounded number of visits run at once, each shard's deadline
// starts when its turn does (waiting in line is not the shard's fault), and
// results are handed over as they arrive.
package fanout

import (
	"context"
	"sync"
	"time"

	"github.com/propertywebbuilder/pwb/internal/shard"
)

// DefaultWidth is how many shards are visited at once when the caller does
// not say. Visits wait mostly on the servers (round trips, locks, commits),
// so more run well side by side than the machine has cores.
const DefaultWidth = 16

// Options pace a fan-out.
type Options struct {
	// Width is the most visits at once; <= 0 means DefaultWidth. It is
	// lowered to what the connection budget can give (see Lanes).
	Width int
	// Timeout is each visit's own deadline, counted from the moment its
	// turn starts; 0 means none beyond the caller's context.
	Timeout time.Duration
	// ConnsPerVisit is how many connections one visit holds at once (a
	// migration holds its lock on one and works on another); <= 0 means 1.
	ConnsPerVisit int
	// Reserve is how many connections of the budget are left for others
	// while the fan-out runs (primary's registry reads, a web server's
	// requests); <= 0 means 1.
	Reserve int
}

// Lanes is how many visits run at once over n shards of set: the asked
// width, no more than n, and no more than the connection budget can hold
// after the reserve, so that no visit ever waits for a connection another
// visit holds. At least 1.
func (o Options) Lanes(set *shard.Set, n int) int {
	w := o.Width
	if w <= 0 {
		w = DefaultWidth
	}
	if max := set.Budget().Max; max > 0 {
		per, reserve := o.ConnsPerVisit, o.Reserve
		if per <= 0 {
			per = 1
		}
		if reserve <= 0 {
			reserve = 1
		}
		w = min(w, (max-reserve)/per)
	}
	return max(1, min(w, n))
}

// Each calls visit for every name, Lanes at a time, and returns the results
// in the order of names. Every name gets a result: once ctx has ended, the
// visits not yet started are still called, with the ended context, and are
// expected to return at once with its error. done, if not nil, is given each
// result as it arrives, one call at a time, with k the number of results so
// far (the "[k/N]" of a progress line).
func Each[R any](ctx context.Context, set *shard.Set, names []string, o Options, visit func(ctx context.Context, name string) R, done func(k int, r R)) []R {
	results := make([]R, len(names))
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range names {
			next <- i
		}
	}()
	var mu sync.Mutex
	k := 0
	var wg sync.WaitGroup
	for range o.Lanes(set, len(names)) {
		wg.Go(func() {
			for i := range next {
				r := run(ctx, o.Timeout, names[i], visit)
				results[i] = r
				if done != nil {
					mu.Lock()
					k++
					done(k, r)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return results
}

// run is one visit, with its own deadline from now.
func run[R any](ctx context.Context, timeout time.Duration, name string, visit func(context.Context, string) R) R {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return visit(ctx, name)
}
