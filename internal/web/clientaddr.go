package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddress finds who a request is from before anything counts it. The
// connection's far end is the client unless it is one of the configured
// trusted proxies; only then does X-Forwarded-For name the client, read
// from the right past every proxy that is itself trusted, and only then may
// X-Website-Slug name the tenant. From anyone else both headers are
// ignored, so a client cannot pick a new address for every guess or reach a
// tenant by a header.
func (s *Server) clientAddress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := requestFrom(r.Context())
		ri.Client, ri.ViaProxy = s.clientOf(r)
		if !ri.ViaProxy {
			r.Header.Del("X-Forwarded-For")
			r.Header.Del("X-Website-Slug")
		}
		next.ServeHTTP(w, r)
	})
}

// clientOf returns the client address of r and whether r came through a
// trusted proxy.
func (s *Server) clientOf(r *http.Request) (netip.Addr, bool) {
	peer := remoteAddr(r)
	if !s.trusted(peer) {
		return peer, false
	}
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		list := strings.Split(hops[i], ",")
		for j := len(list) - 1; j >= 0; j-- {
			a, ok := forwardedAddr(list[j])
			if !ok {
				// Garbage the proxy passed on: the last address it vouched
				// for is the best we know.
				return client, true
			}
			client = a
			if !s.trusted(a) {
				return client, true
			}
		}
	}
	return client, true
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddr is the address of the connection's far end.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// forwardedAddr reads one entry of X-Forwarded-For: an address, possibly
// with a port or in brackets.
func forwardedAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// schemeOf is the scheme the client reached the site by, for absolute
// links: what a trusted proxy says in X-Forwarded-Proto (the first entry,
// the one the client used), else https when the connection itself is TLS.
// From anyone but a trusted proxy the header is ignored.
func schemeOf(r *http.Request) string {
	if requestFrom(r.Context()).ViaProxy {
		first, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
		if p := strings.ToLower(strings.TrimSpace(first)); p == "https" || p == "http" {
			return p
		}
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}
