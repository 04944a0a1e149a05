package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// hostName returns the lower-case host name of a Host header without its port,
// or false when the header is not a host name or IP address.
func hostName(hostport string) (string, bool) {
	h := hostport
	if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
		host, port, err := net.SplitHostPort(h)
		if err != nil || !validPort(port) {
			return "", false
		}
		h = host
	}
	if isIP(h) {
		return h, true
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if h == "" || len(h) > 253 {
		return "", false
	}
	// Labels of 1-63 letters, digits and inner hyphens, checked in place: this
	// runs on every request.
	start := 0
	for i := 0; i <= len(h); i++ {
		if i < len(h) && h[i] != '.' {
			c := h[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", false
			}
			continue
		}
		if n := i - start; n == 0 || n > 63 || h[start] == '-' || h[i-1] == '-' {
			return "", false
		}
		start = i + 1
	}
	return h, true
}

// isIP reports whether h is an IP address, without the cost of parsing every
// host name as one.
func isIP(h string) bool {
	if h == "" || !strings.Contains(h, ":") && strings.Trim(h, "0123456789.") != "" {
		return false
	}
	_, err := netip.ParseAddr(h)
	return err == nil
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for _, c := range []byte(p) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// errNoSuchSite is a host that names no tenant.
var errNoSuchSite = errors.New("no website at this host")

// lookup finds the tenant a request is for, as docs/decisions.md describes: the
// X-Website-Slug header first, then a custom domain, then the label just
// before a platform domain. It reports platform=true for the platform's own
// host.
func (s *Server) lookup(ctx context.Context, host, slug string) (w registry.Website, platform bool, err error) {
	if slug != "" {
		sub, err := registry.NormalizeSubdomain(slug)
		if err != nil {
			return w, false, errNoSuchSite
		}
		w, err = s.registry.BySubdomain(ctx, sub)
		return w, false, notFoundAsNoSite(err)
	}
	if isIP(host) {
		// An address is the platform's only when configured as one of
		// its hosts: anyone can reach a server by its address.
		if a, err := netip.ParseAddr(host); err == nil && slices.Contains(s.platformDomains, a.Unmap().String()) {
			return w, true, nil
		}
		return w, false, errNoSuchSite
	}
	for _, d := range s.platformDomains {
		if host == d {
			return w, true, nil
		}
		if prefix, ok := strings.CutSuffix(host, "."+d); ok {
			sub := prefix[strings.LastIndexByte(prefix, '.')+1:]
			w, err = s.registry.BySubdomain(ctx, sub)
			return w, false, notFoundAsNoSite(err)
		}
	}
	w, err = s.registry.ByCustomDomain(ctx, host)
	return w, false, notFoundAsNoSite(err)
}

func notFoundAsNoSite(err error) error {
	if errors.Is(err, registry.ErrNotFound) {
		return errNoSuchSite
	}
	return err
}

// resolveTenant sends the platform's own host to platform and every tenant
// host to tenantSite, with the tenant and its scope in the context. It fails
// closed: an unknown host is a 404 page, a tenant in maintenance or whose
// shard is not configured a 503 page, and a read_only tenant's writes a 503
// with Retry-After (its enquiry forms answer that themselves, keeping the
// visitor's text).
func (s *Server) resolveTenant(platform, tenantSite http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, ok := hostName(r.Host)
		if !ok {
			s.fail(w, r, errorPage(http.StatusBadRequest, "Bad request",
				"The Host header of this request is not a valid host name."))
			return
		}
		ri := requestFrom(r.Context())
		if ri.ViaProxy {
			// A trusted proxy may name the tenant by header, so what is
			// answered depends on it for any cache between.
			w.Header().Add("Vary", "X-Website-Slug")
		}
		ws, isPlatform, err := s.lookup(r.Context(), host, r.Header.Get("X-Website-Slug"))
		switch {
		case errors.Is(err, errNoSuchSite):
			s.fail(w, r, errorPage(http.StatusNotFound, "No website here",
				"There is no website at "+host+". Check the address for typing mistakes."))
			return
		case err != nil:
			s.fail(w, r, errUnavailable.because(err))
			return
		case isPlatform:
			platform.ServeHTTP(w, r)
			return
		}
		ri.Website, ri.Tenant, ri.Shard, ri.SiteName = ws.ID, ws.Subdomain, ws.ShardName, ws.Name
		if ws.Status == registry.StatusMaintenance {
			s.fail(w, r, errorPage(http.StatusServiceUnavailable, "Down for maintenance",
				ws.Name+" is down for maintenance."))
			return
		}
		sc, err := tenant.Resolve(s.shards, ws)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		st := &site{Website: ws, Scope: sc}
		ctx := withSite(r.Context(), st)
		// An enquiry is let through: its form answers a paused tenant
		// itself, keeping what the visitor typed, and its write is refused
		// by the write fence all the same.
		if ws.Status == registry.StatusReadOnly && !safeMethod(r.Method) && !signingInOrOut(r.URL.Path) && !sendsEnquiry(r.URL.Path) {
			s.fail(w, r.WithContext(ctx), errWritesPaused.because(tenant.ErrWritesPaused))
			return
		}
		tenantSite.ServeHTTP(w, r.WithContext(ctx))
	})
}

// signingInOrOut is a site-admin request that writes only to primary's
// sessions, never to the tenant's shard, so a read_only tenant still takes it.
func signingInOrOut(path string) bool {
	return path == adminPrefix+"/login" || path == adminPrefix+"/logout"
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
