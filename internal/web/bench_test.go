package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/benchenv"
	"github.com/propertywebbuilder/pwb/internal/demo"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// BenchmarkResolveTenant measures what the routing middleware does per
// request once the registry cache is warm: parse the Host header, look the
// tenant up in the cache, and build its scope.
func BenchmarkResolveTenant(b *testing.B) {
	p := newPlatform(b, platformOptions{shards: 1, quiet: true})
	w := p.tenant("prestige", "shard_1")
	ctx := context.Background()
	for _, bc := range []struct{ name, host string }{
		{"subdomain", "prestige.localhost:3000"},
		{"subdomain-www", "www.prestige.localhost"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				host, ok := hostName(bc.host)
				if !ok {
					b.Fatal("bad host")
				}
				ws, _, err := p.server.lookup(ctx, host, "")
				if err != nil || ws.ID != w.ID {
					b.Fatal(err)
				}
				if _, err := tenant.Resolve(p.set, ws); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var requestsPerSec = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// TestWrk_RoutedVersusDirectHomePage is the HTTP benchmark quoted in
// docs/benchmarks.md, run with `make bench-wrk`: wrk against a tenant's home
// page through the whole middleware chain, and against the same handler
// bound straight to the tenant's scope, in alternating rounds of one run.
// It measures and reports; it is not part of `make test`.
func TestWrk_RoutedVersusDirectHomePage(t *testing.T) {
	if os.Getenv("PWB_BENCH_WRK") == "" {
		t.Skip("set PWB_BENCH_WRK=1 (make bench-wrk) to run the wrk benchmark")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatal("wrk is not installed (apt-get install wrk)")
	}
	rounds, _ := strconv.Atoi(os.Getenv("PWB_BENCH_ROUNDS"))
	if rounds == 0 {
		rounds = 7
	}
	duration := os.Getenv("PWB_BENCH_DURATION")
	if duration == "" {
		duration = "5s"
	}
	p := newPlatform(t, platformOptions{shards: 1, quiet: true})
	w := p.tenant("prestige", "shard_1")
	sc := p.scope(w)
	if _, err := demo.Seed(context.Background(), sc, p.primary, w, demo.Options{OwnerPassword: "bench-password", Seed: 1}); err != nil {
		t.Fatal(err)
	}
	direct := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ctx := withSite(r.Context(), &site{Website: w, Scope: sc})
		p.server.handle(p.server.home).ServeHTTP(rw, r.WithContext(ctx))
	}))
	defer direct.Close()

	run := func(url string) float64 {
		out, err := exec.Command("wrk", "-t2", "-c16", "-d"+duration, "-H", "Host: prestige.localhost", url+"/").CombinedOutput()
		if err != nil {
			t.Fatalf("wrk: %v\n%s", err, out)
		}
		m := requestsPerSec.FindSubmatch(out)
		if m == nil {
			t.Fatalf("no Requests/sec in wrk output:\n%s", out)
		}
		if regexp.MustCompile(`Non-2xx or 3xx responses`).Match(out) {
			t.Fatalf("wrk saw error responses:\n%s", out)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	run(p.http.URL) // warm both
	run(direct.URL)
	var routed, straight, ratios []float64
	for i := range rounds {
		var r, d float64
		if i%2 == 0 { // alternate which goes first
			r, d = run(p.http.URL), run(direct.URL)
		} else {
			d, r = run(direct.URL), run(p.http.URL)
		}
		routed, straight, ratios = append(routed, r), append(straight, d), append(ratios, r/d)
		t.Logf("round %d: routed %.0f req/s, direct %.0f req/s, ratio %.3f", i+1, r, d, r/d)
	}
	fmt.Printf("wrk home page, %d rounds of %s, -t2 -c16: median routed %.0f req/s, median direct %.0f req/s, median ratio %.3f\n",
		rounds, duration, benchenv.Median(routed), benchenv.Median(straight), benchenv.Median(ratios))
}
