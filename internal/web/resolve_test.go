package web

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

func TestHostName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"acme.localhost:3000", "acme.localhost", true},
		{"ACME.LocalHost", "acme.localhost", true},
		{"acme.localhost.", "acme.localhost", true},
		{"www.acme-homes.com", "www.acme-homes.com", true},
		{"127.0.0.1:8080", "127.0.0.1", true},
		{"[::1]:3000", "::1", true},
		{"", "", false},
		{"acme.localhost:", "", false},
		{"acme.localhost:99999x", "", false},
		{"acme..localhost", "", false},
		{"-acme.localhost", "", false},
		{"acme_co.localhost", "", false},
		{"acme.localhost/evil", "", false},
		{"a b.localhost", "", false},
		{"acme.localhost:3000:1", "", false},
		{"<script>.localhost", "", false},
		{strings.Repeat("a", 64) + ".localhost", "", false},
	} {
		got, ok := hostName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("hostName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// Resolution: the X-Website-Slug header (from a trusted proxy; the test
// client is one here), then a custom domain (with or without www.), then the
// label before a platform domain; the bare platform host is the platform's
// own site, and an IP address is nobody's unless configured.
func TestResolve_FindsTheTenantByHeaderSubdomainAndCustomDomain(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1, trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	ctx := context.Background()
	acme := p.tenant("acme", shard.Default)
	prem, err := registry.Create(ctx, p.primary, registry.New{Subdomain: "prestige", Name: "Prestige Estates",
		Tier: registry.TierPremium, ShardName: "shard_1", CustomDomain: "prestige-homes.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, slug string
		wantStatus int
		wantText   string
	}{
		{"acme.localhost", "", 200, acme.Name},
		{"ACME.localhost:3000", "", 200, acme.Name},
		{"www.acme.localhost", "", 200, acme.Name},
		{"acme.pwb.localhost", "", 200, acme.Name},
		{"prestige.localhost", "", 200, prem.Name},
		{"prestige-homes.example", "", 200, prem.Name},
		{"www.prestige-homes.example", "", 200, prem.Name},
		{"PRESTIGE-HOMES.example:443", "", 200, prem.Name},
		{"localhost", "prestige", 200, prem.Name},
		{"acme.localhost", "prestige", 200, prem.Name},
		{"localhost", "", 200, "Websites for estate agents"},
		{"pwb.localhost", "", 200, "Websites for estate agents"},
		// The platform's own home leads its operators to the admin.
		{"localhost", "", 200, `<a class="button" href="/admin" data-admin-link>Platform operations</a>`},
		{"127.0.0.1", "", 404, "There is no website at 127.0.0.1"},
		{"nobody.localhost", "", 404, "There is no website at nobody.localhost"},
		{"unknown-domain.example", "", 404, "There is no website at unknown-domain.example"},
		{"localhost", "nobody", 404, "There is no website"},
		{"localhost", "Bad Slug!", 404, "There is no website"},
		{"bad_host.localhost", "", 400, "not a valid host name"},
	} {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		if tc.slug != "" {
			req.Header.Set("X-Website-Slug", tc.slug)
		}
		r := p.do(tc.host, req)
		if r.StatusCode != tc.wantStatus || !strings.Contains(r.Body, tc.wantText) {
			t.Errorf("host %q slug %q: status %d, want %d containing %q; body:\n%s", tc.host, tc.slug, r.StatusCode, tc.wantStatus, tc.wantText, excerpt(r.Body))
		}
		if r.Header.Get("X-Request-Id") == "" {
			t.Errorf("host %q: no X-Request-Id", tc.host)
		}
	}
	// A host header with a path or spaces never reaches the registry.
	r := p.get("acme.localhost%2Fx", "/")
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed host: status %d, want 400", r.StatusCode)
	}
	// The access log names the tenant and shard of resolved requests.
	if !strings.Contains(p.log.String(), "tenant=prestige shard=shard_1") {
		t.Errorf("access log lacks tenant and shard:\n%s", p.log.String())
	}
}

// /healthz answers on any host; /readyz also checks primary and the registry
// listener, and says so when either is missing.
func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	for _, host := range []string{"localhost", "10.0.0.7:3000", "nobody.localhost"} {
		wantStatus(t, p.get(host, "/healthz"), http.StatusOK)
		wantStatus(t, p.get(host, "/readyz"), http.StatusOK)
	}
	p.cache.Close()
	r := p.get("localhost", "/readyz")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(r.Body, "registry listener down") {
		t.Errorf("readyz body %q", r.Body)
	}
	if err := p.cluster.Servers[0].Stop(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	r = p.get("localhost", "/readyz")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(r.Body, "primary unreachable") {
		t.Errorf("readyz body %q", r.Body)
	}
	wantStatus(t, p.get("localhost", "/healthz"), http.StatusOK)
	// Error pages of unknown hosts are styled: the stylesheet needs no tenant.
	wantStatus(t, p.get("nobody.localhost", "/static/site.css"), http.StatusOK)
}
