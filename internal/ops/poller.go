package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/report"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// DefaultInterval is how often a Poller checks every shard's health.
const DefaultInterval = 5 * time.Second

// DefaultFiguresInterval is how often a Poller gathers the costly figures
// (database sizes, properties and messages per shard and per tenant, the
// registry's tenant counts).
const DefaultFiguresInterval = time.Minute

// PollerOptions pace a Poller; zero values take the defaults.
type PollerOptions struct {
	// Interval is the time from one health round's start to the next's
	// (DefaultInterval). After a round that took longer than half of it,
	// the poller rests as long as the round took: at a thousand shards,
	// where a round opens a connection to nearly every database, the
	// servers are never kept busy with health checks more than half the
	// time.
	Interval time.Duration
	// Timeout bounds each shard's health check from its turn
	// (DefaultTimeout).
	Timeout time.Duration
	// FiguresInterval is the time between figures rounds
	// (DefaultFiguresInterval); the first follows the first health round.
	FiguresInterval time.Duration
	// FiguresTimeout bounds each shard's figures (report.DefaultTimeout).
	FiguresTimeout time.Duration
	// Width is how many shards are visited at once: by default a quarter
	// of the connection budget (at least 1), so requests keep their
	// connections, or fanout.DefaultWidth without a budget.
	Width int
}

// Poller is the one reader of every shard's health and figures in a
// process, however many people look at the platform admin: each interval
// it checks every configured shard once, and pages read its Snapshot,
// which touches no database. A thousand shards then cost the servers one
// health statement each per interval, not one per viewer per refresh.
type Poller struct {
	set     *shard.Set
	primary *pgxpool.Pool // the registry; nil: the set's primary
	o       PollerOptions
	names   []string // configured shards, in configuration order
	index   map[string]int

	checking  sync.Mutex // one health round at a time
	gathering sync.Mutex // one figures round at a time

	mu        sync.Mutex
	cards     []Card // the last health of each configured shard
	rounds    int
	roundTook time.Duration // the last health round's time
	figures   figures
	changed   chan struct{} // closed, and replaced, when a round ends
}

// figures is one figures round's result. It is replaced whole, never
// changed, so snapshots share its maps and slices.
type figures struct {
	rounds  int
	at      time.Time // when the round began; zero before the first
	took    time.Duration
	totals  report.Totals
	byShard map[string]report.Shard
	// properties counts each tenant's properties on its shard, for the
	// tenants whose shard answered.
	properties map[int64]int64
	// propertiesError says why per-tenant counts are missing, if they are.
	propertiesError string
}

// NewPoller returns a poller of set's shards, which reads the registry on
// primary (nil: the set's primary). It polls once Run is called.
func NewPoller(set *shard.Set, primary *pgxpool.Pool, o PollerOptions) *Poller {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.FiguresInterval <= 0 {
		o.FiguresInterval = DefaultFiguresInterval
	}
	if o.FiguresTimeout <= 0 {
		o.FiguresTimeout = report.DefaultTimeout
	}
	if o.Width <= 0 {
		o.Width = fanout.DefaultWidth
		if b := set.Budget().Max; b > 0 {
			o.Width = max(1, b/4)
		}
	}
	p := &Poller{set: set, primary: primary, o: o, names: set.Names(), index: map[string]int{}, changed: make(chan struct{})}
	natural := slices.SortedFunc(slices.Values(p.names), NaturalCompare)
	for i, name := range p.names {
		p.index[name] = i
		sh, _ := set.Shard(name)
		order, _ := slices.BinarySearchFunc(natural, name, NaturalCompare)
		p.cards = append(p.cards, Card{Name: name, Order: order, Configured: true, Database: sh.Database, Addr: sh.Addr(), Health: Checking})
	}
	return p
}

// Options are the poller's options, defaults filled in.
func (p *Poller) Options() PollerOptions { return p.o }

// Run polls until ctx ends or the shard set is closed, and returns why
// (ctx's error or shard.ErrClosed): a health round every Interval, and a
// figures round in the background right after the first health round and
// every FiguresInterval after that, never two at once. Run it once per
// poller.
func (p *Poller) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer background.Wait()
	defer cancel()
	var gathering atomic.Bool
	var nextFigures time.Time
	for {
		start := time.Now()
		if err := p.Check(ctx); err != nil {
			return err
		}
		if !time.Now().Before(nextFigures) && gathering.CompareAndSwap(false, true) {
			nextFigures = time.Now().Add(p.o.FiguresInterval)
			background.Go(func() {
				defer gathering.Store(false)
				_ = p.Gather(ctx)
			})
		}
		took := time.Since(start)
		wait := time.NewTimer(max(p.o.Interval-took, took))
		select {
		case <-ctx.Done():
			wait.Stop()
			return ctx.Err()
		case <-wait.C:
		}
	}
}

// Check runs one health round now: every configured shard once, Width at
// a time, each within Timeout from its turn. Each shard's card is updated
// as its answer arrives, so a hung shard delays no other's. It returns
// shard.ErrClosed once the set is closed, or ctx's error, and then counts
// no round.
func (p *Poller) Check(ctx context.Context) error {
	p.checking.Lock()
	defer p.checking.Unlock()
	start := time.Now()
	var closed bool
	fanout.Each(ctx, p.set, p.names, fanout.Options{Width: p.o.Width, Timeout: p.o.Timeout},
		func(ctx context.Context, name string) checked { return check(ctx, p.set, name, p.o.Timeout) },
		func(_ int, r checked) {
			switch {
			case errors.Is(r.err, shard.ErrClosed):
				closed = true
			case r.busy, ctx.Err() != nil:
				// Not the shard's doing: its last state stands.
			default:
				p.mu.Lock()
				i := p.index[r.card.Name]
				r.card.Order = p.cards[i].Order
				p.cards[i] = r.card
				p.mu.Unlock()
			}
		})
	if closed || p.closed() {
		return shard.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	p.rounds++
	p.roundTook = time.Since(start)
	p.notify()
	p.mu.Unlock()
	return nil
}

// Gather runs one figures round now: report.Gather (sizes, properties and
// messages per shard, the registry's tenant counts), then each tenant's
// properties, one query per shard, half of Width shards at a time. It returns
// shard.ErrClosed once the set is closed, or ctx's error, and then keeps
// the last figures.
func (p *Poller) Gather(ctx context.Context) error {
	p.gathering.Lock()
	defer p.gathering.Unlock()
	f := figures{at: time.Now(), byShard: map[string]report.Shard{}}
	// Half the health rounds' width: the figures can wait, the health
	// rounds that run meanwhile should not.
	o := fanout.Options{Width: max(1, p.o.Width/2), Timeout: p.o.FiguresTimeout}
	f.totals = report.Gather(ctx, p.set, o, nil)
	for _, s := range f.totals.Shards {
		f.byShard[s.Name] = s
	}
	var err error
	if f.properties, err = p.tenantProperties(ctx, o); err != nil {
		f.propertiesError = err.Error()
	}
	if p.closed() {
		return shard.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.took = time.Since(f.at)
	p.mu.Lock()
	f.rounds = p.figures.rounds + 1
	p.figures = f
	p.notify()
	p.mu.Unlock()
	return nil
}

// tenantProperties counts every tenant's properties on the shard the
// registry puts it on (rows a move left on its old shard, until they are
// deleted, are not counted).
func (p *Poller) tenantProperties(ctx context.Context, o fanout.Options) (map[int64]int64, error) {
	primary := p.primary
	if primary == nil {
		var err error
		if primary, err = p.set.Primary(); err != nil {
			return nil, err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, o.Timeout)
	websites, err := registry.List(rctx, primary)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("reading the registry on primary: %w", shard.Describe(rctx, err, o.Timeout))
	}
	home := map[string][]int64{}
	for _, w := range websites {
		home[w.ShardName] = append(home[w.ShardName], w.ID)
	}
	type answer struct {
		name   string
		counts map[int64]int64
		err    error
	}
	answers := fanout.Each(ctx, p.set, p.names, o, func(ctx context.Context, name string) answer {
		counts, err := countAll(ctx, p.set, name)
		return answer{name: name, counts: counts, err: err}
	}, nil)
	out := map[int64]int64{}
	for _, a := range answers {
		if a.err != nil {
			continue
		}
		for _, id := range home[a.name] {
			out[id] = a.counts[id]
		}
	}
	return out, nil
}

// countAll counts the properties of every website on shard name, in one
// query.
func countAll(ctx context.Context, set *shard.Set, name string) (map[int64]int64, error) {
	pool, err := set.Pool(name)
	if err != nil {
		return nil, err
	}
	conn, fresh, err := acquire(ctx, pool)
	if err != nil {
		return nil, err
	}
	defer release(conn, fresh)
	rows, err := conn.Query(ctx, "SELECT website_id, count(*) FROM properties GROUP BY website_id")
	if err != nil {
		return nil, err
	}
	out := map[int64]int64{}
	var id, n int64
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil })
	return out, err
}

// closed reports whether the shard set is closed, without any I/O: a
// closed set hands out no pool.
func (p *Poller) closed() bool {
	_, err := p.set.Pool(shard.Default)
	return errors.Is(err, shard.ErrClosed)
}

// notify wakes whoever waits for a round; p.mu is held.
func (p *Poller) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Wait blocks until cond holds for the poller's snapshot, looking again
// after each round, or until ctx ends. Tests wait so for a round instead
// of sleeping.
func (p *Poller) Wait(ctx context.Context, cond func(Snapshot) bool) error {
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		if cond(p.Snapshot()) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Snapshot is what the poller knows at one moment.
type Snapshot struct {
	// Shards are the configured shards in configuration order, then the
	// shards the registry names that the configuration lacks (red, from
	// the last figures round).
	Shards []Card `json:"shards"`
	// Totals are the last figures round's (empty before the first).
	Totals report.Totals `json:"totals"`
	// FiguresAt is when the last figures round began; zero before the
	// first has ended.
	FiguresAt time.Time `json:"figures_at"`
	// RegistryError is set when the last figures round could not read
	// primary: tenant counts are then missing.
	RegistryError string `json:"registry_error,omitempty"`
	// Round counts the health rounds finished; FiguresRound the figures
	// rounds.
	Round        int `json:"round"`
	FiguresRound int `json:"figures_round"`
	// RoundTook and FiguresTook are how long the last rounds took: a
	// health round longer than half the interval is followed by a rest as
	// long as itself, so the shards are then checked every twice that.
	RoundTook   time.Duration `json:"round_took_ns"`
	FiguresTook time.Duration `json:"figures_took_ns"`
	// Interval and FiguresInterval are the poller's.
	Interval        time.Duration `json:"interval_ns"`
	FiguresInterval time.Duration `json:"figures_interval_ns"`
	At              time.Time     `json:"at"`
}

// Snapshot returns a copy of what the poller knows, with each pool's usage
// read now. It touches no database.
func (p *Poller) Snapshot() Snapshot {
	p.mu.Lock()
	cards := slices.Clone(p.cards)
	f := p.figures
	rounds, took := p.rounds, p.roundTook
	p.mu.Unlock()
	s := Snapshot{Shards: cards, Totals: f.totals, FiguresAt: f.at, Round: rounds, FiguresRound: f.rounds,
		RoundTook: took, FiguresTook: f.took, Interval: p.o.Interval, FiguresInterval: p.o.FiguresInterval, At: time.Now()}
	s.Totals.Shards = slices.Clone(f.totals.Shards)
	if f.totals.RegistryError != "" {
		s.RegistryError = "tenant counts are missing: " + f.totals.RegistryError
	}
	stats := p.set.Stats()
	for i := range s.Shards {
		c := &s.Shards[i]
		if fs, ok := f.byShard[c.Name]; ok {
			c.Tenants, c.Premium, c.FiguresAt = fs.Tenants, fs.Premium, f.at
			if fs.Reachable {
				c.SizeBytes = fs.SizeBytes
			}
		}
		if st, ok := stats[c.Name]; ok {
			c.Pool = &Pool{Acquired: st.AcquiredConns(), Idle: st.IdleConns(), Total: st.TotalConns(), Max: st.MaxConns()}
		}
	}
	for _, fs := range f.totals.Shards {
		if !fs.Configured {
			s.Shards = append(s.Shards, Card{Name: fs.Name, Order: len(p.names), Health: Red, Tenants: fs.Tenants, Premium: fs.Premium,
				Error: "not in the configuration", FiguresAt: f.at, CheckedAt: f.at,
				Why: "tenants reference this shard, but the configuration does not name it: their sites are unavailable"})
		}
	}
	return s
}

// TenantProperties returns each tenant's property count from the last
// figures round, for the tenants whose shard answered, when that round
// began (zero: none yet), and why the counts are missing, if they are. The
// map is shared: do not change it.
func (p *Poller) TenantProperties() (counts map[int64]int64, at time.Time, problem string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.figures.properties, p.figures.at, p.figures.propertiesError
}

// Missing lists the cards of shards the configuration lacks.
func (s Snapshot) Missing() []Card {
	var out []Card
	for _, c := range s.Shards {
		if !c.Configured {
			out = append(out, c)
		}
	}
	return out
}

// Card returns the card of shard name.
func (s Snapshot) Card(name string) (Card, bool) {
	for _, c := range s.Shards {
		if c.Name == name {
			return c, true
		}
	}
	return Card{}, false
}

// Destination is a configured shard as the target of a tenant's move: Why
// says, in a few words, why it cannot take the move now ("current shard",
// "unreachable: …", "2 migrations pending", or Checking for a shard not
// checked yet), and is empty when it can.
type Destination struct {
	Name string
	Why  string
}

// Destinations lists every configured shard, in configuration order, as a
// target for a tenant on shard from, each with why it cannot take the move
// by the last health check, if it cannot: the current shard, one not
// checked yet, one that did not answer, one with tenant migrations pending.
// The move's pre-flight still checks a shard that can.
func (s Snapshot) Destinations(from string) []Destination {
	var out []Destination
	for _, c := range s.Shards {
		if !c.Configured {
			continue
		}
		d := Destination{Name: c.Name}
		switch {
		case c.Name == from:
			d.Why = "current shard"
		case c.Health == Checking:
			d.Why = Checking
		case !c.Reachable:
			d.Why = c.Why
			if c.Error != "" {
				d.Why += ": " + c.Error
			}
		case c.Pending == 1:
			d.Why = "1 migration pending"
		case c.Pending > 1:
			d.Why = fmt.Sprintf("%d migrations pending", c.Pending)
		}
		out = append(out, d)
	}
	return out
}

// Targets lists the configured shards other than except that can take a
// tenant's move by the last health check (see Destinations), in
// configuration order. A shard not checked yet is not among them.
func (s Snapshot) Targets(except string) []string {
	var out []string
	for _, d := range s.Destinations(except) {
		if d.Why == "" {
			out = append(out, d.Name)
		}
	}
	return out
}
