package web

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// wantSiteChrome checks r is drawn in the public site's layout: the site's
// name, its navigation and its footer.
func wantSiteChrome(t *testing.T, r response, siteName string) {
	t.Helper()
	bodyHas(t, r, `<a class="brand" href="/">`+siteName+`</a>`, `<nav class="menu" aria-label="Main">`,
		`href="/buy"`, `href="/rent"`, `href="/contact"`, `class="site-footer"`)
}

// A page of results past the last one is a 404 that links to the first
// page of the same search; page 1 of no results is still a page.
func TestPublic_PagePastTheLastIsA404LinkingToTheFirst(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{})
	sc := p.scope(p.tenant("acme", shard.Default))
	for i := range content.DefaultPerPage + 2 {
		listing(t, sc, fmt.Sprintf("House %02d", i), func(in *content.PropertyInput) { in.Bedrooms = 3 })
	}
	const host = "acme.localhost"
	bodyHas(t, p.get(host, "/buy?page=2&bedrooms=2"), "Page 2 of 2")

	for _, tc := range []struct{ path, first, says string }{
		{"/buy?page=99&bedrooms=2&city=Lisbon", `href="/buy?bedrooms=2&amp;city=Lisbon"`, "There is no page 99 of these results: they fit on 2 pages."},
		{"/buy?page=3", `href="/buy"`, "There is no page 3"},
		{"/rent?page=2&type=Flat", `href="/rent?type=Flat"`, "they fit on one page"},
		{"/buy?city=Nowhere&page=2", `href="/buy?city=Nowhere"`, "There is no page 2"},
	} {
		r := p.get(host, tc.path)
		wantStatus(t, r, http.StatusNotFound)
		bodyHas(t, r, tc.says, tc.first+`>Go to the first page</a>`)
		bodyLacks(t, r, `class="pager"`, "Previous")
		wantSiteChrome(t, r, "Acme Homes")
	}
	// The first page of nothing is a page that says so.
	for _, path := range []string{"/rent", "/rent?page=1", "/buy?city=Nowhere"} {
		r := p.get(host, path)
		wantStatus(t, r, http.StatusOK)
		bodyHas(t, r, "0 properties", "No property matches")
	}
}

// Error pages of a known tenant are drawn in its site's layout, with its
// navigation, without asking its shard; they say when to try again. Other
// hosts' error pages stay plain.
func TestPublic_ErrorPagesShowTheSiteNavigation(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 2})
	ctx := context.Background()
	down := p.tenant("down", "shard_2")
	shut := p.tenant("shut", "shard_1")
	if _, err := content.CreatePage(ctx, p.scope(down), content.PageInput{Slug: "about", Title: "About", Visible: true}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, p.get("down.localhost", "/p/about"), http.StatusOK)

	missing := p.get("shut.localhost", "/no/such/page")
	wantStatus(t, missing, http.StatusNotFound)
	wantSiteChrome(t, missing, "Shut Homes")
	bodyHas(t, missing, "There is nothing at this address.")
	bodyLacks(t, missing, "try again")

	unknown := p.get("nobody.localhost", "/")
	wantStatus(t, unknown, http.StatusNotFound)
	bodyLacks(t, unknown, `href="/buy"`, `class="site-footer"`)

	// Maintenance: the tenant is known, though its pages are not served.
	if err := registry.SetStatus(ctx, p.primary, shut.ID, registry.StatusMaintenance); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.get("shut.localhost", "/").StatusCode == http.StatusServiceUnavailable })
	r := p.get("shut.localhost", "/buy")
	wantStatus(t, r, http.StatusServiceUnavailable)
	wantSiteChrome(t, r, "Shut Homes")
	bodyHas(t, r, "Shut Homes is down for maintenance.", "Please try again in 30 seconds.")

	// A shard that stopped: the page cannot come from it, the layout can.
	if err := p.cluster.Servers[2].Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/p/about", "/"} {
		r := p.get("down.localhost", path)
		wantStatus(t, r, http.StatusServiceUnavailable)
		if got := r.Header.Get("Retry-After"); got != "30" {
			t.Errorf("%s: Retry-After %q, want 30", path, got)
		}
		wantSiteChrome(t, r, "Down Homes")
		bodyHas(t, r, "This website cannot be reached right now.", "Please try again in 30 seconds.")
	}
}
