package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// metricValue finds the sample of name whose labels include every one of
// labels (written as `key="value"`) and returns its value.
func metricValue(t *testing.T, text, name string, labels ...string) (float64, bool) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{.*\})? (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		all := true
		for _, l := range labels {
			all = all && strings.Contains(m[1], l)
		}
		if all {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("%s: %v", m[0], err)
			}
			return v, true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := newPlatform(t, platformOptions{shards: 1})
	p.tenant("acme", "shard_1")
	// Until one lookup is answered from the cache: the notification of
	// acme's creation may empty it after the first lookups.
	homePages := 0
	for hits, _ := p.cache.Stats(); hits == 0 && homePages < 50; hits, _ = p.cache.Stats() {
		wantStatus(t, p.get("acme.localhost", "/"), 200)
		homePages++
		time.Sleep(20 * time.Millisecond)
	}
	wantStatus(t, p.get("nobody.localhost", "/"), 404)

	// One finished move and one only planned, from the journal.
	m, err := mover.New(p.set, mover.Options{CleanupDelay: mover.NoCleanupDelay})
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"moved", "halfway"} {
		w := p.tenant(sub, shard.Default)
		pool, _ := p.set.Primary()
		if err := movertest.Fill(ctx, pool, w.ID, movertest.Options{Properties: 10, Photos: 1}); err != nil {
			t.Fatal(err)
		}
		plan, err := m.Plan(ctx, sub, "shard_1", journal.ModeFreeze)
		if err != nil {
			t.Fatal(err)
		}
		id, err := m.Start(ctx, plan, "test")
		if err != nil {
			t.Fatal(err)
		}
		if sub == "moved" {
			if _, err := m.Run(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}

	// An online move done, and one stopped while it streams.
	for _, sub := range []string{"online", "streaming"} {
		w := p.tenant(sub, shard.Default)
		pool, _ := p.set.Primary()
		if err := movertest.Fill(ctx, pool, w.ID, movertest.Options{Properties: 10, Photos: 1}); err != nil {
			t.Fatal(err)
		}
		run, stop := context.WithCancel(ctx)
		om, err := mover.New(p.set, mover.Options{CleanupDelay: mover.NoCleanupDelay, Pause: func(point string) {
			if sub == "streaming" && point == string(journal.StateVerified) {
				stop()
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		plan, err := om.Plan(ctx, sub, "shard_1", journal.ModeOnline)
		if err != nil {
			t.Fatal(err)
		}
		id, err := om.Start(ctx, plan, "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := om.Run(run, id); (err != nil) != (sub == "streaming") {
			t.Fatalf("online move of %s: %v", sub, err)
		}
		stop()
	}

	// /metrics is only on the handler served on its own listener.
	ms := httptest.NewServer(p.metrics.Handler())
	defer ms.Close()
	mres, err := http.Get(ms.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mres.Body)
	mres.Body.Close()
	if mres.StatusCode != http.StatusOK {
		t.Fatalf("metrics listener: status %d", mres.StatusCode)
	}
	text := string(body)
	for _, c := range []struct {
		name   string
		labels []string
		want   func(float64) bool
	}{
		{"pwb_http_requests_total", []string{`route="GET /{$}"`, `shard="shard_1"`, `status="200"`}, func(v float64) bool { return v == float64(homePages) }},
		{"pwb_http_requests_total", []string{`shard="none"`, `status="404"`}, func(v float64) bool { return v == 1 }},
		{"pwb_http_request_duration_seconds_count", []string{`route="GET /{$}"`, `shard="shard_1"`}, func(v float64) bool { return v == float64(homePages) }},
		{"pwb_db_pool_connections", []string{`shard="shard_1"`, `state="max"`}, func(v float64) bool { return v >= 1 }},
		{"pwb_db_pool_acquires_total", []string{`shard="default"`}, func(v float64) bool { return v >= 1 }},
		{"pwb_registry_cache_hits_total", nil, func(v float64) bool { return v >= 1 }},
		{"pwb_registry_cache_misses_total", nil, func(v float64) bool { return v >= 2 }}, // acme, nobody
		{"pwb_moves", []string{`state="done"`}, func(v float64) bool { return v == 2 }},
		{"pwb_moves", []string{`state="failed"`}, func(v float64) bool { return v == 1 }},
		{"pwb_move_writes_blocked_seconds_count", []string{`mode="online"`}, func(v float64) bool { return v == 1 }},
		{"pwb_move_writes_blocked_seconds_count", []string{`mode="freeze"`}, func(v float64) bool { return v == 1 }},
		{"pwb_move_writes_blocked_seconds_bucket", []string{`mode="online"`, `le="1"`}, func(v float64) bool { return v == 1 }},
		{"pwb_move_lag", []string{`tenant="streaming"`, `unit="bytes"`}, func(v float64) bool { return v >= 0 }},
		{"pwb_move_lag", []string{`tenant="streaming"`, `unit="seconds"`}, func(v float64) bool { return v >= 0 && v < 60 }},
		{"pwb_move_changes_applied", []string{`tenant="streaming"`}, func(v float64) bool { return v >= 0 }},
		{"pwb_moves", []string{`state="planned"`}, func(v float64) bool { return v == 1 }},
		{"pwb_move_rows", []string{`tenant="halfway"`, `kind="total"`, `source="default"`, `target="shard_1"`, `state="planned"`},
			func(v float64) bool { return v == float64((movertest.Options{Properties: 10, Photos: 1}).Rows()) }},
		{"pwb_move_rows", []string{`tenant="halfway"`, `kind="copied"`}, func(v float64) bool { return v == 0 }},
		{"pwb_move_duration_seconds_count", nil, func(v float64) bool { return v == 2 }},
		{"pwb_move_read_only_seconds_count", nil, func(v float64) bool { return v == 1 }},
	} {
		v, ok := metricValue(t, text, c.name, c.labels...)
		if !ok || !c.want(v) {
			t.Errorf("%s%v = %v (found %v)", c.name, c.labels, v, ok)
		}
	}
	if _, ok := metricValue(t, text, "pwb_move_rows", `tenant="moved"`); ok {
		t.Error("a finished move should not be reported as in progress")
	}
	// It names tenants, so it is on no host of the public handler.
	for _, host := range []string{"localhost", "acme.localhost", "nobody.example", "127.0.0.1", "[::1]:3000"} {
		if r := p.get(host, "/metrics"); r.StatusCode != http.StatusNotFound || strings.Contains(r.Body, "pwb_") {
			t.Errorf("/metrics on the public handler for host %s: status %d", host, r.StatusCode)
		}
	}
}
