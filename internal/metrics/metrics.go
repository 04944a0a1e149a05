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

	"github.com/propertywebbuilder/pwb/internal/journal"
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
		"Time the finished freeze-mode moves (done) kept their tenant read-only, from freeze to switch.", nil, nil)
	moveBlocked = prometheus.NewDesc("pwb_move_writes_blocked_seconds",
		"Time the finished moves (done) blocked their tenant's writes: the whole freeze, or an online move's cut-over.",
		[]string{"mode"}, nil)
	moveLag = prometheus.NewDesc("pwb_move_lag",
		"How far an unfinished online move's target is behind its source, as last recorded: in bytes of WAL and in seconds.",
		[]string{"move", "tenant", "source", "target", "unit"}, nil)
	moveChanges = prometheus.NewDesc("pwb_move_changes_applied",
		"Changes an unfinished online move has streamed to its target, as last recorded.",
		[]string{"move", "tenant", "source", "target"}, nil)
	moveBuckets    = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}
	blockedBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60, 300, 1800}
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
	ch <- moveBlocked
	ch <- moveLag
	ch <- moveChanges
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
	byState, err := journal.CountByState(ctx, primary)
	if err != nil {
		return err
	}
	for state, n := range byState {
		ch <- prometheus.MustNewConstMetric(movesByState, prometheus.GaugeValue, float64(n), string(state))
	}
	running, err := journal.ListUnfinished(ctx, primary)
	if err != nil {
		return err
	}
	for _, m := range running {
		labels := []string{strconv.FormatInt(m.ID, 10), m.Subdomain, m.Source, m.Target, string(m.State)}
		ch <- prometheus.MustNewConstMetric(moveRows, prometheus.GaugeValue, float64(m.RowsCopied()), append(labels, "copied")...)
		ch <- prometheus.MustNewConstMetric(moveRows, prometheus.GaugeValue, float64(m.RowsTotal()), append(labels, "total")...)
		if m.Online() && m.StreamedAt != nil {
			ids := labels[:4:4] // without the state; appending copies
			ch <- prometheus.MustNewConstMetric(moveChanges, prometheus.GaugeValue, float64(m.ChangesApplied), ids...)
			if m.LagBytes != nil && m.LagSeconds != nil {
				ch <- prometheus.MustNewConstMetric(moveLag, prometheus.GaugeValue, float64(*m.LagBytes), append(ids, "bytes")...)
				ch <- prometheus.MustNewConstMetric(moveLag, prometheus.GaugeValue, *m.LagSeconds, append(ids, "seconds")...)
			}
		}
	}
	timings, err := journal.Timings(ctx, primary)
	if err != nil {
		return err
	}
	whole, readOnly := newHistogram(moveBuckets), newHistogram(moveBuckets)
	blocked := map[journal.Mode]*histogram{journal.ModeFreeze: newHistogram(blockedBuckets), journal.ModeOnline: newHistogram(blockedBuckets)}
	for _, t := range timings {
		whole.observe(t.Whole.Seconds())
		if t.Mode == journal.ModeFreeze {
			readOnly.observe(t.Blocked.Seconds())
		}
		if h := blocked[t.Mode]; h != nil {
			h.observe(t.Blocked.Seconds())
		}
	}
	ch <- whole.metric(moveDuration)
	ch <- readOnly.metric(moveReadOnly)
	for mode, h := range blocked {
		ch <- h.metric(moveBlocked, string(mode))
	}
	return nil
}

// histogram builds a constant histogram from values read at scrape time.
type histogram struct {
	bounds  []float64
	count   uint64
	sum     float64
	buckets map[float64]uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, buckets: map[float64]uint64{}}
}

func (h *histogram) observe(v float64) {
	h.count++
	h.sum += v
	for _, b := range h.bounds {
		if v <= b {
			h.buckets[b]++
		}
	}
}

func (h *histogram) metric(d *prometheus.Desc, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstHistogram(d, h.count, h.sum, h.buckets, labels...)
}
