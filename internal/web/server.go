package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/metrics"
	"github.com/propertywebbuilder/pwb/internal/moves"
	"github.com/propertywebbuilder/pwb/internal/ops"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// Options is what a Server is built from.
type Options struct {
	Shards   *shard.Set
	Registry *registry.Cache
	// PlatformDomains are the platform's own hosts; tenants live on their
	// subdomains, and the platform admin answers only on the hosts
	// themselves (an IP address too, only when listed). Default as in
	// config.DefaultSettings.
	PlatformDomains []string
	// TrustedProxies are the networks whose requests may name the client
	// with X-Forwarded-For and the tenant with X-Website-Slug. Default none.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
	// SessionTTL is how long a site-admin login lasts. Default 12 hours.
	SessionTTL time.Duration
	// SecureCookies marks session cookies Secure; set it when served over
	// HTTPS.
	SecureCookies bool
	// SignInAccount and SignInAddress limit sign-in attempts per account
	// and per client address, counted on primary. Defaults as in
	// config.DefaultSettings.
	SignInAccount, SignInAddress throttle.Rule
	// Enquiries limits enquiries per client address per website.
	Enquiries throttle.Rule
	// RequestTimeout bounds a request's database work; past it the request
	// is answered 503. Default 1.5 s.
	RequestTimeout time.Duration
	// Photos bounds the photos of a property. Defaults as in
	// config.DefaultSettings.
	Photos content.PhotoLimits
	// Metrics, if set, counts every request. It is served apart from this
	// handler (Metrics.Handler), never on the public listener.
	Metrics *metrics.Metrics
	// Moves starts, resumes and aborts the moves of the platform admin,
	// as queued jobs: give it a queue (package jobs). Without it the admin
	// shows moves but cannot start, resume or abort them.
	Moves *moves.Service
	// Health reads every shard's health and figures for the platform
	// admin in the background, once per process however many look at it;
	// its owner runs it (Run). When nil the server makes its own, started
	// on the first platform admin request and stopped when the shard set
	// is closed.
	Health *ops.Poller
}

// Server is the platform's HTTP handler.
type Server struct {
	shards          *shard.Set
	registry        *registry.Cache
	accounts        *pgxpool.Pool // primary: users, memberships, sessions and sign-in counts
	platformDomains []string
	trustedProxies  []netip.Prefix
	log             *slog.Logger
	pages           *renderer
	sessionTTL      time.Duration
	secureCookies   bool
	signInAccount   throttle.Rule
	signInAddress   throttle.Rule
	enquiries       throttle.Rule
	requestTimeout  time.Duration
	photos          content.PhotoLimits
	metrics         *metrics.Metrics
	moves           *moves.Service
	handler         http.Handler
	// health is the platform admin's poller; ownHealth says the server
	// made it and starts it on first use (healthStarted, under healthMu).
	healthMu      sync.Mutex
	health        *ops.Poller
	ownHealth     bool
	healthStarted bool
	// streams ends when the server shuts down, and with it every
	// long-lived response.
	streams      context.Context
	closeStreams context.CancelFunc
}

// New builds the server and its routes. It opens no connection.
func New(o Options) (*Server, error) {
	if o.Shards == nil || o.Registry == nil {
		return nil, errors.New("web: Shards and Registry are required")
	}
	primary, err := o.Shards.Primary()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	pages, err := newRenderer()
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	s := &Server{
		shards:         o.Shards,
		registry:       o.Registry,
		accounts:       primary,
		log:            o.Logger,
		pages:          pages,
		trustedProxies: o.TrustedProxies,
		sessionTTL:     o.SessionTTL,
		secureCookies:  o.SecureCookies,
		signInAccount:  o.SignInAccount,
		signInAddress:  o.SignInAddress,
		enquiries:      o.Enquiries,
		requestTimeout: cmp.Or(o.RequestTimeout, config.DefaultSettings().RequestTimeout),
		photos:         o.Photos,
		metrics:        o.Metrics,
		moves:          o.Moves,
		health:         o.Health,
	}
	if s.health == nil {
		s.health, s.ownHealth = ops.NewPoller(o.Shards, primary, ops.PollerOptions{}), true
	}
	for _, d := range o.PlatformDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		if a, err := netip.ParseAddr(strings.Trim(d, "[]")); err == nil {
			d = a.Unmap().String()
		}
		if d != "" {
			s.platformDomains = append(s.platformDomains, d)
		}
	}
	if len(s.platformDomains) == 0 {
		s.platformDomains = config.DefaultSettings().PlatformDomains
	}
	// Longest first, so pwb.localhost wins over localhost.
	slices.SortStableFunc(s.platformDomains, func(a, b string) int { return len(b) - len(a) })
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.sessionTTL == 0 {
		s.sessionTTL = 12 * time.Hour
	}
	def := config.DefaultSettings()
	s.signInAccount = orRule(s.signInAccount, def.SignInAccount)
	s.signInAddress = orRule(s.signInAddress, def.SignInAddress)
	s.enquiries = orRule(s.enquiries, def.Enquiries)
	for _, r := range []throttle.Rule{s.signInAccount, s.signInAddress, s.enquiries} {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
	}
	if s.photos.PerProperty <= 0 {
		s.photos.PerProperty = def.PhotosPerProperty
	}
	if s.photos.MaxSide <= 0 {
		s.photos.MaxSide = def.PhotoMaxSide
	}
	s.streams, s.closeStreams = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// orRule is r, or the rule of limit l when r is the zero Rule.
func orRule(r throttle.Rule, l config.Limit) throttle.Rule {
	if r != (throttle.Rule{}) {
		return r
	}
	return RuleOf(l)
}

// RuleOf is the throttle rule of a configured limit.
func RuleOf(l config.Limit) throttle.Rule {
	return throttle.Rule{Limit: l.Max, Window: l.Window, Lock: l.Lock, MaxLock: l.MaxLock}
}

// poller returns the platform admin's health poller, starting the server's
// own on first use. Its own runs until the shard set is closed.
func (s *Server) poller() *ops.Poller {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if s.ownHealth && !s.healthStarted {
		s.healthStarted = true
		go func() { _ = s.health.Run(context.Background()) }()
	}
	return s.health
}

// CloseStreams ends every long-lived response (server-sent events), for a
// graceful shutdown.
func (s *Server) CloseStreams() { s.closeStreams() }

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// handlerFunc is a handler that returns its error, for fail to draw.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requestFrom(r.Context()).Route = r.Pattern
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

// routes chains the middlewares explicitly, outermost first.
func (s *Server) routes() http.Handler {
	static, _ := fs.Sub(staticFS, "static")
	staticHandler := http.StripPrefix("/static/", cacheFor(24*time.Hour, s.staticFiles(static)))

	platform := http.NewServeMux()
	platform.Handle("GET /{$}", s.handle(s.platformHome))
	s.platformAdminRoutes(platform)
	platform.Handle("/", s.handle(notFound))

	tenantSite := http.NewServeMux()
	s.publicRoutes(tenantSite)
	s.siteAdminRoutes(tenantSite)
	tenantSite.Handle("/", s.handle(notFound))

	// CrossOriginProtection refuses state-changing requests a browser sends
	// from another origin (CSRF), using Sec-Fetch-Site and Origin.
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(s.handle(func(http.ResponseWriter, *http.Request) error {
		return errorPage(http.StatusForbidden, "Forbidden",
			"This form was sent from another website, so it was refused. Nothing was changed.")
	}))

	outer := http.NewServeMux()
	outer.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	outer.HandleFunc("GET /readyz", s.readyz)
	// The stylesheet and the icon are the same on every host and need no
	// tenant, so error pages of unknown hosts and of tenants that are down
	// are styled too.
	outer.Handle("GET /static/", staticHandler)
	outer.Handle("GET /favicon.ico", cacheFor(24*time.Hour, http.HandlerFunc(serveFavicon)))
	outer.Handle("/", csrf.Handler(s.resolveTenant(platform, tenantSite)))

	// /metrics is not here: it names tenants, so it is served on its own
	// listener (Metrics.Handler), never on the public one.
	return noSniff(recoverPanics(s.log)(requestID(s.clientAddress(accessLog(s.log, s.metrics)(s.limitBody(s.withDeadline(outer)))))))
}

func notFound(http.ResponseWriter, *http.Request) error {
	return errorPage(http.StatusNotFound, "Not found", "There is nothing at this address.")
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	v := fmt.Sprintf("public, max-age=%d", int(d.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", v)
		h.ServeHTTP(w, r)
	})
}

// readyzTimeout bounds readyz's ping of primary, well inside the two seconds
// a load balancer's probe is typically given, so a hung primary is reported
// as not ready rather than as a probe that timed out.
const readyzTimeout = time.Second

// readyz says whether this process can serve: primary answers and the
// registry listener is up.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyzTimeout)
	defer cancel()
	if err := s.accounts.Ping(ctx); err != nil {
		http.Error(w, "primary unreachable", http.StatusServiceUnavailable)
		return
	}
	if !s.registry.Listening() {
		http.Error(w, "registry listener down", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *Server) platformHome(w http.ResponseWriter, r *http.Request) error {
	return s.pages.render(w, http.StatusOK, "platform/home", view{Title: "PropertyWebBuilder", Path: r.URL.Path})
}
