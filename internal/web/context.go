package web

import (
	"context"
	"net/netip"

	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

type ctxKey int

const (
	requestKey ctxKey = iota
	siteKey
)

// requestInfo is what the access log reports of a request. The request id
// middleware creates it; tenant resolution fills in the tenant and shard.
type requestInfo struct {
	ID      string
	Website int64
	Tenant  string
	Shard   string
	Route   string // the pattern of the route that served it
	// SiteName is the tenant's site name once the tenant is known, so
	// error pages can show the site's header even before it has a scope.
	SiteName string
	// Client is the client's address: the connection's far end, or what a
	// trusted proxy forwarded.
	Client netip.Addr
	// ViaProxy says the request came through a trusted proxy, so its
	// X-Forwarded-For and X-Website-Slug headers are honoured.
	ViaProxy bool
}

func requestFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestKey).(*requestInfo)
	if ri == nil {
		return &requestInfo{}
	}
	return ri
}

// site is the resolved tenant of a request.
type site struct {
	Website registry.Website
	Scope   tenant.Scope
}

func withSite(ctx context.Context, s *site) context.Context {
	return context.WithValue(ctx, siteKey, s)
}

// siteFrom returns the request's tenant. Tenant routes are mounted only behind
// the resolving middleware, so a missing site is a programming error.
func siteFrom(ctx context.Context) *site {
	s, _ := ctx.Value(siteKey).(*site)
	if s == nil {
		panic("web: tenant route reached without a resolved tenant")
	}
	return s
}
