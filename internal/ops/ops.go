// Package ops gathers what the platform admin shows about shards and
// tenants: each shard's health card, every tenant's property count, one
// tenant's rows per table. Like package report, it asks every shard at once,
// each within its own deadline, so a shard that is down or hung costs the
// page one timeout and is shown as unavailable, never an error page.
package ops

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/changes"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/report"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// DefaultTimeout bounds each shard's answer.
const DefaultTimeout = 2 * time.Second

// AmberLatency is the ping time above which a shard's card turns amber.
const AmberLatency = 100 * time.Millisecond

// Health colours.
const (
	Green = "green"
	Amber = "amber"
	Red   = "red"
)

// Pool is a live connection pool's usage.
type Pool struct {
	Acquired int32 `json:"acquired"`
	Idle     int32 `json:"idle"`
	Total    int32 `json:"total"`
	Max      int32 `json:"max"`
}

// Card is one shard's health card. A shard the registry names but the
// configuration lacks has Configured false and only its tenant counts.
type Card struct {
	Name       string        `json:"shard"`
	Configured bool          `json:"configured"`
	Database   string        `json:"database,omitempty"`
	Addr       string        `json:"addr,omitempty"`
	Reachable  bool          `json:"reachable"`
	Error      string        `json:"error,omitempty"`
	Health     string        `json:"health"`
	Why        string        `json:"why,omitempty"` // what made it amber or red
	Latency    time.Duration `json:"latency_ns"`
	Pool       *Pool         `json:"pool,omitempty"`
	Tenants    int           `json:"tenants"`
	Premium    int           `json:"premium"`
	SizeBytes  int64         `json:"size_bytes"`
	Schema     int64         `json:"schema_version"`
	Latest     int64         `json:"schema_latest"`
	Pending    int           `json:"schema_pending"`
	PGVersion  string        `json:"postgres_version,omitempty"`
	// Slots are the online moves' replication slots in the shard's
	// database, with the WAL each keeps on the server's disk.
	Slots []Slot `json:"slots,omitempty"`
}

// Slot is an online move's replication slot as a shard card shows it.
type Slot struct {
	Name          string `json:"name"`
	Active        bool   `json:"active"`
	WALStatus     string `json:"wal_status"`
	RetainedBytes int64  `json:"retained_bytes"`
}

// SlotWarnBytes is how much WAL a move's slot may keep before its shard's
// card turns amber.
const SlotWarnBytes = 1 << 30

// Standard counts the card's standard-tier tenants.
func (c Card) Standard() int { return c.Tenants - c.Premium }

// Overview is the admin's dashboard: a card per shard and the platform's
// totals.
type Overview struct {
	Cards  []Card        `json:"shards"`
	Totals report.Totals `json:"totals"`
	// RegistryError is set when primary could not be read: tenant counts
	// are then missing.
	RegistryError string    `json:"registry_error,omitempty"`
	At            time.Time `json:"at"`
}

// Missing lists the cards of shards the configuration lacks.
func (o Overview) Missing() []Card {
	var out []Card
	for _, c := range o.Cards {
		if !c.Configured {
			out = append(out, c)
		}
	}
	return out
}

// Gather builds the overview, asking every shard concurrently within
// timeout (DefaultTimeout if 0).
func Gather(ctx context.Context, set *shard.Set, timeout time.Duration) Overview {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	names := set.Names()
	o := Overview{Cards: make([]Card, len(names)), At: time.Now()}
	var wg sync.WaitGroup
	// The totals already read the registry's tenant counts and every
	// shard's size; the cards take them from there.
	wg.Go(func() { o.Totals = report.Gather(ctx, set, timeout) })
	for i, name := range names {
		wg.Go(func() { o.Cards[i] = card(ctx, set, name, timeout) })
	}
	wg.Wait()
	if o.Totals.RegistryError != "" {
		o.RegistryError = "tenant counts are missing: " + o.Totals.RegistryError
	}
	figures := map[string]report.Shard{}
	for _, s := range o.Totals.Shards {
		figures[s.Name] = s
		if !s.Configured {
			o.Cards = append(o.Cards, Card{Name: s.Name, Health: Red, Tenants: s.Tenants, Premium: s.Premium,
				Error: "not in the configuration", Why: "tenants reference this shard, but the configuration does not name it: their sites are unavailable"})
		}
	}
	stats := set.Stats()
	for i := range o.Cards[:len(names)] {
		c := &o.Cards[i]
		f := figures[c.Name]
		c.Tenants, c.Premium, c.SizeBytes = f.Tenants, f.Premium, f.SizeBytes
		if st, ok := stats[c.Name]; ok {
			c.Pool = &Pool{Acquired: st.AcquiredConns(), Idle: st.IdleConns(), Total: st.TotalConns(), Max: st.MaxConns()}
		}
	}
	return o
}

// card reads one configured shard's health.
func card(ctx context.Context, set *shard.Set, name string, timeout time.Duration) Card {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sh, _ := set.Shard(name)
	c := Card{Name: name, Configured: true, Database: sh.Database, Addr: sh.Addr(), Health: Red}
	pool, err := set.Pool(name)
	var latency time.Duration
	if err == nil {
		latency, err = roundTrip(ctx, pool)
	}
	if err != nil {
		c.Error = describe(ctx, err, timeout)
		c.Why = "unreachable"
		return c
	}
	c.Latency, c.Reachable = latency, true
	err = pool.QueryRow(ctx, "SELECT current_setting('server_version')").Scan(&c.PGVersion)
	var st migrations.State
	if err == nil {
		st, err = migrations.Status(ctx, pool, migrations.Tenant)
	}
	if err != nil {
		c.Error = describe(ctx, err, timeout)
		c.Why = "answers pings but not queries"
		return c
	}
	c.Schema, c.Latest, c.Pending = st.Current, st.Latest, st.Pending
	slots, err := changes.Slots(ctx, pool)
	if err != nil {
		c.Error = describe(ctx, err, timeout)
		c.Why = "answers pings but not queries"
		return c
	}
	var heavy string
	for _, sl := range slots {
		if sl.Database != sh.Database || sl.Temporary {
			continue
		}
		c.Slots = append(c.Slots, Slot{Name: sl.Name, Active: sl.Active, WALStatus: sl.WALStatus, RetainedBytes: sl.RetainedBytes})
		if sl.RetainedBytes > SlotWarnBytes || sl.WALStatus == "lost" || sl.WALStatus == "unreserved" {
			heavy = fmt.Sprintf("replication slot %s keeps %s of WAL (%s)", sl.Name, fmt.Sprintf("%d MiB", sl.RetainedBytes>>20), sl.WALStatus)
		}
	}
	switch {
	case heavy != "":
		c.Health, c.Why = Amber, heavy
	case c.Pending > 0:
		c.Health, c.Why = Amber, fmt.Sprintf("%d tenant migration(s) pending", c.Pending)
	case latency > AmberLatency:
		c.Health, c.Why = Amber, fmt.Sprintf("slow: ping took %s", latency.Round(time.Millisecond))
	default:
		c.Health = Green
	}
	return c
}

// roundTrip times one ping of the shard on a connection that is already
// open: opening one (TCP, TLS, authentication), which a fresh or idle pool
// must do first, takes several round trips and would show a healthy shard
// as slow.
func roundTrip(ctx context.Context, pool *pgxpool.Pool) (time.Duration, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	start := time.Now()
	if err := conn.Ping(ctx); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func describe(ctx context.Context, err error, timeout time.Duration) string {
	if ctx.Err() != nil {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return shard.Unwrap(err).Error()
}

// PropertyCounts counts the properties of websites on their shards, one
// query per shard, all at once, each within timeout. Websites on shards that
// did not answer are missing from counts; failed names those shards.
func PropertyCounts(ctx context.Context, set *shard.Set, websites []registry.Website, timeout time.Duration) (counts map[int64]int64, failed map[string]string) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	byShard := map[string][]int64{}
	for _, w := range websites {
		byShard[w.ShardName] = append(byShard[w.ShardName], w.ID)
	}
	counts, failed = map[int64]int64{}, map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, ids := range byShard {
		wg.Go(func() {
			got, err := countOn(ctx, set, name, ids, timeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[name] = err.Error()
				return
			}
			for _, id := range ids {
				counts[id] = got[id]
			}
		})
	}
	wg.Wait()
	return counts, failed
}

func countOn(ctx context.Context, set *shard.Set, name string, ids []int64, timeout time.Duration) (map[int64]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pool, err := set.Pool(name)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, "SELECT website_id, count(*) FROM properties WHERE website_id = ANY($1) GROUP BY website_id", ids)
	if err != nil {
		return nil, fmt.Errorf("%s", describe(ctx, err, timeout))
	}
	out := map[int64]int64{}
	var id, n int64
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("%s", describe(ctx, err, timeout))
	}
	return out, nil
}

// TableCount is a tenant's rows in one table and their stored size.
type TableCount struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
}

// TableCounts reads w's rows per tenant table from its shard, in
// foreign-key order, within timeout.
func TableCounts(ctx context.Context, set *shard.Set, w registry.Website, timeout time.Duration) ([]TableCount, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pool, err := set.Pool(w.ShardName)
	if err != nil {
		return nil, err
	}
	batch := &pgx.Batch{}
	out := make([]TableCount, len(tenant.Tables))
	for i, t := range tenant.Tables {
		out[i].Table = t
		batch.Queue("SELECT count(*), COALESCE(sum(pg_column_size(t.*)), 0)::bigint FROM "+pgx.Identifier{t}.Sanitize()+
			" t WHERE website_id = $1", w.ID).QueryRow(func(row pgx.Row) error {
			return row.Scan(&out[i].Rows, &out[i].Bytes)
		})
	}
	if err := pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("counting rows of tenant %d on %q: %s", w.ID, w.ShardName, describe(ctx, err, timeout))
	}
	return out, nil
}

// ReachableTargets lists the configured shards other than except that
// answer a ping within timeout, in configuration order: where a tenant may
// be moved.
func ReachableTargets(ctx context.Context, set *shard.Set, except string, timeout time.Duration) []string {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	names := set.Names()
	ok := make([]bool, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		if name == except {
			continue
		}
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			_, err := set.Ping(pctx, name)
			ok[i] = err == nil
		})
	}
	wg.Wait()
	var out []string
	for i, name := range names {
		if ok[i] {
			out = append(out, name)
		}
	}
	return out
}
