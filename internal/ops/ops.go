// Package ops holds what the platform admin shows about shards and tenants.
// With a thousand shards no page may ask every shard anything, so the
// shards' health and the costly figures are read by one background Poller
// per process (poller.go) and pages read its snapshot; what is left here is
// one shard's health check and the few reads a page makes itself (the
// property counts of the tenants it lists, one tenant's rows per table),
// each within its own deadline, so a shard that is down or hung costs a
// page one timeout and is shown as unavailable, never an error page.
package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/changes"
	"github.com/propertywebbuilder/pwb/internal/fanout"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
	"github.com/propertywebbuilder/pwb/internal/units"
)

// DefaultTimeout bounds each shard's answer.
const DefaultTimeout = 2 * time.Second

// AmberLatency is the health check's time above which a shard's card turns
// amber.
const AmberLatency = 100 * time.Millisecond

// Health states. Checking is a shard the poller has not reached yet: it is
// never shown as down.
const (
	Checking = "checking"
	Green    = "green"
	Amber    = "amber"
	Red      = "red"
	// NotConfigured is the State of a shard the registry names and the
	// configuration lacks; its Health is Red.
	NotConfigured = "unconfigured"
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
	Name string `json:"shard"`
	// Order is the shard's place among the configured shards with their
	// names in natural order (shard_2 before shard_10), worked out once, so
	// a page of a thousand cards sorts on numbers; shards the
	// configuration lacks share the last place.
	Order      int           `json:"-"`
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
	// CheckedAt is when the health was last read; zero while Checking.
	CheckedAt time.Time `json:"checked_at"`
	// FiguresAt is when Tenants, Premium and SizeBytes were gathered;
	// zero before the first figures round.
	FiguresAt time.Time `json:"figures_at"`
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

// State is the card's health, or NotConfigured for a shard the
// configuration lacks.
func (c Card) State() string {
	if !c.Configured {
		return NotConfigured
	}
	return c.Health
}

// States lists every State, worst first.
var States = []string{Red, NotConfigured, Amber, Checking, Green}

// Severity orders states worst first: 0 is the worst.
func Severity(state string) int {
	if i := slices.Index(States, state); i >= 0 {
		return i
	}
	return len(States)
}

// healthMarker starts the health check's statement, so that a server's
// statement log shows which statements are health checks.
const healthMarker = "/* pwb health */"

// healthSQL is a shard's whole health check, in one statement, so one round
// trip on an open connection times the shard: the server's version, the
// tenant schema versions applied ($1 is the version table: NULL when it is
// missing, read through query_to_xml since a statement cannot name a table
// that may not exist), and the move replication slots of this database
// ($2 is their prefix).
const healthSQL = healthMarker + ` SELECT current_setting('server_version'),
  CASE WHEN to_regclass($1) IS NOT NULL THEN
    (SELECT coalesce(array_agg(v::text::bigint), '{}') FROM unnest(xpath('//v/text()', query_to_xml(
      format('SELECT version_id AS v FROM %s WHERE is_applied AND version_id > 0', to_regclass($1)), false, false, ''))) AS v)
  END,
  (SELECT coalesce(json_agg(json_build_object('name', slot_name, 'active', active, 'wal_status', coalesce(wal_status, ''),
      'retained_bytes', coalesce((pg_current_wal_lsn() - restart_lsn)::bigint, 0)) ORDER BY slot_name), '[]')
    FROM pg_replication_slots
    WHERE starts_with(slot_name::text, $2) AND database = current_database() AND NOT temporary)`

// checked is one shard's health check: its card, and the error that made
// it red, if any.
type checked struct {
	card Card
	err  error
	// busy means no connection was free in this process: not the shard's
	// fault, so its last state stands.
	busy bool
}

// check reads one configured shard's health: a connection is taken first,
// then the one statement is timed, so opening a connection (TCP, TLS,
// authentication), which a fresh or idle pool must do first, does not show
// a healthy shard as slow.
func check(ctx context.Context, set *shard.Set, name string, timeout time.Duration) checked {
	sh, _ := set.Shard(name)
	c := Card{Name: name, Configured: true, Database: sh.Database, Addr: sh.Addr(), Health: Red}
	pool, err := set.Pool(name)
	var conn *pgxpool.Conn
	var fresh bool
	if err == nil {
		conn, fresh, err = acquire(ctx, pool)
	}
	if err != nil {
		c.CheckedAt = time.Now()
		c.Error, c.Why = shard.Describe(ctx, err, timeout).Error(), "unreachable"
		return checked{card: c, err: err, busy: errors.Is(err, shard.ErrBusy)}
	}
	defer release(conn, fresh)
	var versions []int64
	start := time.Now()
	err = conn.QueryRow(ctx, healthSQL, pgx.QueryExecModeExec, migrations.Tenant.Table, changes.Prefix).
		Scan(&c.PGVersion, &versions, &c.Slots)
	latency := time.Since(start)
	c.CheckedAt = time.Now()
	if err != nil {
		c.PGVersion, c.Slots = "", nil
		c.Error, c.Why = shard.Describe(ctx, err, timeout).Error(), "unreachable"
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) {
			c.Why = "answers, but its health query fails"
		}
		return checked{card: c, err: err}
	}
	c.Latency, c.Reachable = latency, true
	c.Latest = migrations.Tenant.Latest()
	for _, v := range migrations.Tenant.Versions() {
		if !slices.Contains(versions, v) {
			c.Pending++
		}
	}
	for _, v := range versions {
		c.Schema = max(c.Schema, v)
	}
	var heavy string
	for _, sl := range c.Slots {
		if sl.RetainedBytes > SlotWarnBytes || sl.WALStatus == "lost" || sl.WALStatus == "unreserved" {
			heavy = fmt.Sprintf("replication slot %s keeps %s of WAL (%s)", sl.Name, units.Bytes(sl.RetainedBytes), sl.WALStatus)
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
	return checked{card: c}
}

// acquire takes a connection of pool, and says whether it was opened for
// this (about: another user of the pool may open one at the same moment).
func acquire(ctx context.Context, pool *pgxpool.Pool) (*pgxpool.Conn, bool, error) {
	before := pool.Stat().NewConnsCount()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	return conn, pool.Stat().NewConnsCount() > before, nil
}

// release gives a background visit's connection back. One opened for the
// visit is closed instead: a shard nobody else uses then holds no
// connection for the poller's sake, and, under a connection budget, its
// place is free for the next visit or a request without closing another
// pool's idle connection first. It is closed in the background: closing
// waits for the server to end its side, which the next visit need not.
func release(conn *pgxpool.Conn, fresh bool) {
	if !fresh || conn.Conn().IsClosed() {
		conn.Release()
		return
	}
	c := conn.Hijack()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Close(ctx)
	}()
}

// PropertyCounts counts the properties of websites on their shards, one
// query per shard, several shards at once within the connection budget
// (package fanout), each within timeout from its turn. A page calls it for
// the few tenants it shows. Websites on shards that did not answer are
// missing from counts; failed names those shards.
func PropertyCounts(ctx context.Context, set *shard.Set, websites []registry.Website, timeout time.Duration) (counts map[int64]int64, failed map[string]string) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	byShard := map[string][]int64{}
	for _, w := range websites {
		byShard[w.ShardName] = append(byShard[w.ShardName], w.ID)
	}
	type answer struct {
		name   string
		counts map[int64]int64
		err    error
	}
	names := make([]string, 0, len(byShard))
	for name := range byShard {
		names = append(names, name)
	}
	slices.Sort(names)
	counts, failed = map[int64]int64{}, map[string]string{}
	answers := fanout.Each(ctx, set, names, fanout.Options{Width: len(names), Timeout: timeout},
		func(ctx context.Context, name string) answer {
			got, err := countOn(ctx, set, name, byShard[name], timeout)
			return answer{name: name, counts: got, err: err}
		}, nil)
	for _, a := range answers {
		if a.err != nil {
			failed[a.name] = a.err.Error()
			continue
		}
		for _, id := range byShard[a.name] {
			counts[id] = a.counts[id]
		}
	}
	return counts, failed
}

// countOn counts the properties of websites ids on shard name, within ctx.
func countOn(ctx context.Context, set *shard.Set, name string, ids []int64, timeout time.Duration) (map[int64]int64, error) {
	pool, err := set.Pool(name)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, "SELECT website_id, count(*) FROM properties WHERE website_id = ANY($1) GROUP BY website_id", ids)
	if err != nil {
		return nil, errors.New(shard.Describe(ctx, err, timeout).Error())
	}
	out := map[int64]int64{}
	var id, n int64
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error { out[id] = n; return nil })
	if err != nil {
		return nil, errors.New(shard.Describe(ctx, err, timeout).Error())
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
		return nil, fmt.Errorf("counting rows of tenant %d on %q: %s", w.ID, w.ShardName, shard.Describe(ctx, err, timeout).Error())
	}
	return out, nil
}

// NaturalCompare orders names with their numbers by value: shard_2 before
// shard_10.
func NaturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		if da != "" && db != "" {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), cmp.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitsPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
