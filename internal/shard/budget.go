package shard

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/fault"
)

// ErrBusy means no connection to a shard came free in time: the shard's own
// pool was full, or the process's connection budget was spent and nothing
// idle could be closed to make room. Sites answer it with 503.
var ErrBusy = fault.New(fault.Unavailable, "no database connection free")

// budget caps the connections a process holds across all its shards
// (max_connections_total). A slot is taken when a connection is dialled and
// given back when its socket closes, so it counts exactly what the servers
// see, whatever opened the connection. When every slot is taken, a new
// connection first closes an idle one of another shard's pool, then waits.
type budget struct {
	max int

	mu     sync.Mutex
	used   int
	freed  chan struct{} // closed, and replaced, whenever a slot is given back
	closed chan struct{} // closed when the set is: no slot is handed out any more
	peak   int
	waits  int64
	steals int64
	waited time.Duration

	// steal closes one idle connection of a pool other than except's, and
	// reports whether it did; primary's last idle connection only when
	// lastResort.
	steal func(except string, lastResort bool) bool
}

func newBudget(max int, steal func(string, bool) bool) *budget {
	return &budget{max: max, freed: make(chan struct{}), closed: make(chan struct{}), steal: steal}
}

// close makes every wait for a slot, now and later, end with ErrClosed.
func (b *budget) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.closed:
	default:
		close(b.closed)
	}
}

// stealRetry is how often a waiting dial looks again for an idle connection
// to close: connections come back to their pools without telling the budget.
const stealRetry = 20 * time.Millisecond

// primaryGrace is how long a waiting dial leaves primary's last idle
// connection alone: every request needs primary, so a dial that can wait
// a moment for another slot should, but under a cap too small for
// anything else it must not wait for ever.
const primaryGrace = 250 * time.Millisecond

// take waits for a slot for a connection to shard, until ctx ends.
func (b *budget) take(ctx context.Context, shard string) error {
	waited := false
	start := time.Now()
	for {
		select {
		case <-b.closed:
			return fmt.Errorf("shard %q: %w", shard, ErrClosed)
		default:
		}
		b.mu.Lock()
		if b.used < b.max {
			b.used++
			b.peak = max(b.peak, b.used)
			if waited {
				b.waits++
				b.waited += time.Since(start)
			}
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		if b.steal(shard, time.Since(start) > primaryGrace) {
			b.mu.Lock()
			b.steals++
			b.mu.Unlock()
			continue // its slot is given back as its socket closes
		}
		waited = true
		select {
		case <-ctx.Done():
			return fmt.Errorf("shard %q: %w: all %d connections of max_connections_total are in use", shard, ErrBusy, b.max)
		case <-freed:
		case <-b.closed:
		case <-time.After(stealRetry):
		}
	}
}

func (b *budget) give() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used--
	close(b.freed)
	b.freed = make(chan struct{})
}

// BudgetStats is the connection budget's use.
type BudgetStats struct {
	Max   int   // max_connections_total; 0 when there is no cap
	Used  int   // connections open now
	Peak  int   // the most open at once
	Waits int64 // connections that had to wait for a slot
	// Waited is the time those connections waited in all.
	Waited time.Duration
	// Steals counts idle connections of other shards closed to make room.
	Steals int64
}

func (b *budget) stats() BudgetStats {
	if b == nil {
		return BudgetStats{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{Max: b.max, Used: b.used, Peak: b.peak, Waits: b.waits, Waited: b.waited, Steals: b.steals}
}

// dialer returns a pgconn dial function that holds a slot of b for the life
// of each socket it opens.
func (b *budget) dialer(shard string, dial pgconn.DialFunc) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := b.take(ctx, shard); err != nil {
			return nil, err
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			b.give()
			return nil, err
		}
		return &budgetConn{Conn: c, give: sync.OnceFunc(b.give)}, nil
	}
}

// budgetConn gives its slot back when it is closed, once the server has
// let the connection go.
type budgetConn struct {
	net.Conn
	give func()
}

// serverGoneWait bounds how long a closing connection waits for the server
// to end its side; a server that does not answer is not waited on longer.
const serverGoneWait = 250 * time.Millisecond

// Close waits, briefly, for the server to close its end before giving the
// slot back. pgx has sent its goodbye (Terminate) by now, and a backend
// closes its socket only when it has gone from pg_stat_activity: freeing
// the slot at once would let a new connection start while the old backend
// is still there, and the servers would briefly see more than the cap.
func (c *budgetConn) Close() error {
	if tc, ok := c.Conn.(*net.TCPConn); ok && tc.CloseWrite() == nil {
		_ = tc.SetReadDeadline(time.Now().Add(serverGoneWait))
		_, _ = io.Copy(io.Discard, tc)
	}
	err := c.Conn.Close()
	c.give()
	return err
}

// stealing marks the context of the stealer's own acquire, which is not a
// use of the victim's pool.
type stealing struct{}

// touch records that shard's pool is in use now, for choosing what to close
// when the budget is spent.
func (s *Set) touch(ctx context.Context, name string) {
	if ctx.Value(stealing{}) != nil {
		return
	}
	s.mu.Lock()
	last := s.lastUse[name]
	s.mu.Unlock()
	if last != nil {
		last.Store(time.Now().UnixNano())
	}
}

// stealIdle closes one idle connection of the least recently used pool
// other than except's, to make room under the budget: a shard busy now is
// likely busy again in a moment, one left alone for a while is not.
func (s *Set) stealIdle(except string, lastResort bool) bool {
	s.mu.Lock()
	var victim *pgxpool.Pool
	oldest := int64(math.MaxInt64)
	for name, p := range s.pools {
		idle := p.Stat().IdleConns()
		// Primary keeps its last idle connection unless a dial has waited
		// past primaryGrace: every request reads the registry or a session
		// there, and a background visit to a thousand shards, which closes
		// what it opens, would otherwise find primary the only pool with
		// one to take, again and again.
		if name == except || idle == 0 || name == Default && idle == 1 && !lastResort {
			continue
		}
		if used := s.lastUse[name].Load(); used < oldest {
			victim, oldest = p, used
		}
	}
	s.mu.Unlock()
	if victim == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), stealing{}, true), time.Second)
	defer cancel()
	conns := victim.AcquireAllIdle(ctx)
	if len(conns) == 0 {
		return false
	}
	for _, c := range conns[1:] {
		c.Release()
	}
	conn := conns[0].Hijack()
	conn.Close(ctx) // closes the socket, which gives the slot back
	return true
}
