// Package metrics exposes an app process's figures to Prometheus at
// /metrics: requests by shard, status and route with their latency, the
// connection pools of the shards it uses, the registry cache's hits and
// misses, and tenant moves read from the journal. Pools, cache and moves are
// read when scraped, so the hot path only counts requests.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// Metrics is one process's collectors.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New registers the collectors for a process serving set, with cache as its
// registry cache. log receives errors reading the journal.
func New(set *shard.Set, cache *registry.Cache, log *slog.Logger) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pwb_http_requests_total",
			Help: "HTTP requests served, by tenant shard (none for platform pages), status and route pattern.",
		}, []string{"shard", "status", "route"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pwb_http_request_duration_seconds",
			Help:    "Time to serve a request, by tenant shard and route pattern.",
			Buckets: []float64{.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"shard", "route"}),
	}
	m.reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		poolCollector{set}, cacheCollector{cache}, moveCollector{set: set, log: log})
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil})
}

// ObserveRequest counts one served request.
func (m *Metrics) ObserveRequest(shardName, route string, status int, d time.Duration) {
	if shardName == "" {
		shardName = "none"
	}
	m.requests.WithLabelValues(shardName, strconv.Itoa(status), route).Inc()
	m.latency.WithLabelValues(shardName, route).Observe(d.Seconds())
}

var (
	poolConns = prometheus.NewDesc("pwb_db_pool_connections",
		"Connections of a shard's pool by state: acquired, idle, constructing; and the pool's total and max.",
		[]string{"shard", "state"}, nil)
	poolAcquires = prometheus.NewDesc("pwb_db_pool_acquires_total",
		"Connections acquired from a shard's pool.", []string{"shard"}, nil)
	poolWait = prometheus.NewDesc("pwb_db_pool_acquire_wait_seconds_total",
		"Time spent waiting for a connection of a shard's pool.", []string{"shard"}, nil)
	poolEmpty = prometheus.NewDesc("pwb_db_pool_empty_acquires_total",
		"Acquires that had to wait because the shard's pool had no idle connection.", []string{"shard"}, nil)
	budgetConns = prometheus.NewDesc("pwb_db_connections",
		"Connections this process holds across all shards (open), and its cap, max_connections_total (max; absent without one).",
		[]string{"state"}, nil)
	budgetWaits = prometheus.NewDesc("pwb_db_connection_budget_waits_total",
		"New connections that waited for room under max_connections_total.", nil, nil)
)

// poolCollector reads the statistics of every pool the process has opened.
type poolCollector struct{ set *shard.Set }

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolConns
	ch <- poolAcquires
	ch <- poolWait
	ch <- poolEmpty
	ch <- budgetConns
	ch <- budgetWaits
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for name, st := range c.set.Stats() {
		for state, v := range map[string]int32{
			"acquired": st.AcquiredConns(), "idle": st.IdleConns(), "constructing": st.ConstructingConns(),
			"total": st.TotalConns(), "max": st.MaxConns(),
		} {
			ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(v), name, state)
		}
		ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(st.AcquireCount()), name)
		ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, st.AcquireDuration().Seconds(), name)
		ch <- prometheus.MustNewConstMetric(poolEmpty, prometheus.CounterValue, float64(st.EmptyAcquireCount()), name)
	}
	if b := c.set.Budget(); b.Max > 0 {
		ch <- prometheus.MustNewConstMetric(budgetConns, prometheus.GaugeValue, float64(b.Used), "open")
		ch <- prometheus.MustNewConstMetric(budgetConns, prometheus.GaugeValue, float64(b.Max), "max")
		ch <- prometheus.MustNewConstMetric(budgetWaits, prometheus.CounterValue, float64(b.Waits))
	}
}

var (
	cacheHits = prometheus.NewDesc("pwb_registry_cache_hits_total",
		"Tenant lookups answered from the process's registry cache.", nil, nil)
	cacheMisses = prometheus.NewDesc("pwb_registry_cache_misses_total",
		"Tenant lookups that asked primary.", nil, nil)
)

type cacheCollector struct{ cache *registry.Cache }

func (cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheHits
	ch <- cacheMisses
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	hits, misses := c.cache.Stats()
	ch <- prometheus.MustNewConstMetric(cacheHits, prometheus.CounterValue, float64(hits))
	ch <- prometheus.MustNewConstMetric(cacheMisses, prometheus.CounterValue, float64(misses))
}

var (
	movesByState = prometheus.NewDesc("pwb_moves",
		"Tenant moves in the journal, by state.", []string{"state"}, nil)
	moveRows = prometheus.NewDesc("pwb_move_rows",
		"Rows of an unfinished move: copied so far and in all.",
		[]string{"move", "tenant", "source", "target", "state", "kind"}, nil)
	moveDuration = prometheus.NewDesc("pwb_move_duration_seconds",
		"Whole time of the finished moves (done), from start to finish.", nil, nil)
	moveReadOnly = prometheus.NewDesc("pwb_move_read_only_seconds",
		"Time the finished moves (done) kept their tenant read-only, from freeze to switch.", nil, nil)
	moveBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}
)

// moveCollector reads the move journal on primary, so every app process
// shows every move, whichever process runs it.
type moveCollector struct {
	set *shard.Set
	log *slog.Logger
}

func (moveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- movesByState
	ch <- moveRows
	ch <- moveDuration
	ch <- moveReadOnly
}

// journalTimeout bounds the journal reads of one scrape.
const journalTimeout = 2 * time.Second

func (c moveCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), journalTimeout)
	defer cancel()
	primary, err := c.set.Primary()
	if err == nil {
		err = collectMoves(ctx, primary, ch)
	}
	if err != nil && c.log != nil {
		c.log.Warn("metrics: reading the move journal", "err", err)
	}
}

func collectMoves(ctx context.Context, primary *pgxpool.Pool, ch chan<- prometheus.Metric) error {
	rows, err := primary.Query(ctx, "SELECT state, count(*) FROM moves GROUP BY state")
	if err != nil {
		return err
	}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			rows.Close()
			return err
		}
		ch <- prometheus.MustNewConstMetric(movesByState, prometheus.GaugeValue, float64(n), state)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = primary.Query(ctx, `SELECT m.id, w.subdomain, m.source_shard, m.target_shard, m.state,
		COALESCE(sum(t.rows_copied), 0)::bigint, COALESCE(sum(t.rows_total), 0)::bigint
		FROM moves m JOIN websites w ON w.id = m.website_id LEFT JOIN move_tables t ON t.move_id = m.id
		WHERE m.state NOT IN ('done', 'aborted') GROUP BY m.id, w.subdomain`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, copied, total int64
		var tenant, source, target, state string
		if err := rows.Scan(&id, &tenant, &source, &target, &state, &copied, &total); err != nil {
			rows.Close()
			return err
		}
		labels := []string{strconv.FormatInt(id, 10), tenant, source, target, state}
		ch <- prometheus.MustNewConstMetric(moveRows, prometheus.GaugeValue, float64(copied), append(labels, "copied")...)
		ch <- prometheus.MustNewConstMetric(moveRows, prometheus.GaugeValue, float64(total), append(labels, "total")...)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = primary.Query(ctx, `SELECT extract(epoch FROM finished_at - started_at)::float8,
		extract(epoch FROM switched_at - frozen_at)::float8 FROM moves WHERE state = 'done'`)
	if err != nil {
		return err
	}
	whole, readOnly := newHistogram(), newHistogram()
	for rows.Next() {
		var w, r float64
		if err := rows.Scan(&w, &r); err != nil {
			rows.Close()
			return err
		}
		whole.observe(w)
		readOnly.observe(r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	ch <- whole.metric(moveDuration)
	ch <- readOnly.metric(moveReadOnly)
	return nil
}

// histogram builds a constant histogram from values read at scrape time.
type histogram struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64
}

func newHistogram() *histogram { return &histogram{buckets: map[float64]uint64{}} }

func (h *histogram) observe(v float64) {
	h.count++
	h.sum += v
	for _, b := range moveBuckets {
		if v <= b {
			h.buckets[b]++
		}
	}
}

func (h *histogram) metric(d *prometheus.Desc) prometheus.Metric {
	return prometheus.MustNewConstHistogram(d, h.count, h.sum, h.buckets)
}
