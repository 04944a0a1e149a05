package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/jobs"
	"github.com/propertywebbuilder/pwb/internal/metrics"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/moves"
	"github.com/propertywebbuilder/pwb/internal/ops"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/web"
)

// serveConnectTimeout bounds connecting to a shard while serving, so a tenant
// whose shard is down gets its 503 page within two seconds.
const serveConnectTimeout = 1500 * time.Millisecond

// serveStatementTimeout is the server-side backstop of pwb serve's
// statements: requests have deadlines of their own (request_timeout), but a
// statement whose client stopped waiting, or one without a deadline, is
// ended by the server at this point. Moves, which pwb serve runs too, lift
// it for their long statements.
const serveStatementTimeout = 30 * time.Second

// registryTTL bounds how stale a cached tenant may be if a change
// notification is lost.
const registryTTL = 5 * time.Second

type serveOptions struct {
	Addr      string
	LogFormat string
	// MetricsAddr, when set, overrides the metrics_addr setting; "off"
	// serves no metrics.
	MetricsAddr string
}

func (o serveOptions) Validate() error {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return usagef("--addr %q: want host:port or :port", o.Addr)
	}
	if o.MetricsAddr != "" && o.MetricsAddr != "off" {
		if _, _, err := net.SplitHostPort(o.MetricsAddr); err != nil {
			return usagef("--metrics-addr %q: want host:port, or off", o.MetricsAddr)
		}
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		return usagef("--log-format %q: want text or json", o.LogFormat)
	}
	return nil
}

func (a *app) serveCommand() *cobra.Command {
	o := serveOptions{}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve every tenant's website and site admin over HTTP",
		Long: `Serves tenant websites by host name: <subdomain>.<platform domain> or a
tenant's custom domain, and the platform admin on the platform domains
themselves. Settings (platform domains, trusted proxies, sign-in and
enquiry limits, ...) come from config/pwb.yml beside the database
configuration, or PWB_SETTINGS, and from PWB_* environment variables.
/metrics is served on its own listener (--metrics-addr, default the
metrics_addr setting, 127.0.0.1:9394), never on the public one. Stops
gracefully on Ctrl-C or SIGTERM, letting requests in flight finish.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", o.Addr)
			if err != nil {
				return fmt.Errorf("cannot listen on %s: %w", o.Addr, err)
			}
			a.connectTimeout = serveConnectTimeout
			a.statementTimeout = serveStatementTimeout
			return a.serve(ln, o)
		},
	}
	c.Flags().StringVar(&o.Addr, "addr", ":3000", "address to listen on")
	c.Flags().StringVar(&o.LogFormat, "log-format", "text", "request log format: text or json")
	c.Flags().StringVar(&o.MetricsAddr, "metrics-addr", "", "address of the /metrics listener, or off (default the metrics_addr setting)")
	return c
}

// serve runs the web server on ln until the command's context ends, on the
// process's shard set.
func (a *app) serve(ln net.Listener, o serveOptions) error {
	defer ln.Close()
	settings, err := a.settings()
	if err != nil {
		return err
	}
	if o.MetricsAddr != "" {
		settings.MetricsAddr = strings.TrimPrefix(o.MetricsAddr, "off")
	}
	set, primary, err := a.primary()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	st, err := migrations.Status(ctx, primary, migrations.Global)
	cancel()
	if err != nil {
		return err
	}
	if st.Pending > 0 {
		return fmt.Errorf("primary has %d pending global migration(s); run `pwb db migrate` first", st.Pending)
	}
	ctx, cancel = context.WithTimeout(a.ctx, 10*time.Second)
	st, err = migrations.RiverStatus(ctx, primary)
	cancel()
	if err != nil {
		return err
	}
	if st.Pending > 0 {
		return fmt.Errorf("primary has %d pending job queue migration(s); run `pwb db migrate` first", st.Pending)
	}
	log := a.logger(o.LogFormat)
	svc, err := moves.New(set, moves.Options{
		Mover: mover.Options{Progress: logPhases(log), Pause: a.testPause(nil)},
		Warn: func(e audit.Entry, err error) {
			log.Error("audit", "error", err, "action", e.Action, "move", e.MoveID)
		},
	})
	if err != nil {
		return err
	}
	queue, err := jobs.New(set, svc, jobs.Options{Logger: log, Work: true})
	if err != nil {
		return err
	}
	// Stopped explicitly below, so a move in flight is snoozed for the next
	// process rather than cut off by Ctrl-C.
	if err := queue.Start(context.WithoutCancel(a.ctx)); err != nil {
		return fmt.Errorf("starting the job queue: %w", err)
	}
	stopQueue := sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := queue.Stop(ctx); err != nil {
			log.Error("stopping the job queue", "error", err)
		}
	})
	defer stopQueue()
	// Behind a transaction pooler (advisory_locks: false), primary cannot
	// carry LISTEN: the cache then lives on its TTL alone.
	sh, _ := set.Shard(shard.Default)
	cache := registry.NewCache(primary, registry.CacheOptions{TTL: registryTTL, Logger: log, NoListen: sh.ThroughPooler()})
	if err := cache.Start(a.ctx); err != nil {
		log.Warn("registry change notifications are not flowing yet; retrying", "error", err)
	}
	defer cache.Close()
	m := metrics.New(set, cache, log)
	// One health poller for the process, however many people look at the
	// platform admin: it checks every shard once per interval, from now.
	health := ops.NewPoller(set, primary, ops.PollerOptions{Interval: settings.HealthInterval})
	pollCtx, stopPolling := context.WithCancel(a.ctx)
	pollerDone := make(chan struct{})
	go func() {
		defer close(pollerDone)
		_ = health.Run(pollCtx)
	}()
	defer func() { stopPolling(); <-pollerDone }()
	srv, err := web.New(web.Options{
		Shards:          set,
		Registry:        cache,
		PlatformDomains: settings.PlatformDomains,
		TrustedProxies:  settings.TrustedProxies,
		Logger:          log,
		SecureCookies:   settings.SecureCookies,
		SignInAccount:   web.RuleOf(settings.SignInAccount),
		SignInAddress:   web.RuleOf(settings.SignInAddress),
		Enquiries:       web.RuleOf(settings.Enquiries),
		RequestTimeout:  settings.RequestTimeout,
		Photos:          content.PhotoLimits{PerProperty: settings.PhotosPerProperty, MaxSide: settings.PhotoMaxSide},
		Metrics:         m,
		Moves:           svc,
		Health:          health,
	})
	if err != nil {
		return err
	}
	var metricsDone <-chan error
	if settings.MetricsAddr != "" {
		mln, err := net.Listen("tcp", settings.MetricsAddr)
		if err != nil {
			return fmt.Errorf("cannot listen for metrics on %s (set --metrics-addr or metrics_addr, or off): %w", settings.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		done := make(chan error, 1)
		go func() { done <- web.Serve(a.ctx, mln, mux) }()
		metricsDone = done
		fmt.Fprintf(a.stdout, "pwb: metrics on http://%s/metrics\n", mln.Addr())
	}
	fmt.Fprintf(a.stdout, "pwb: serving on http://%s/ (Ctrl-C to stop)\n", displayAddr(ln.Addr()))
	err = web.Serve(a.ctx, ln, srv)
	if metricsDone != nil {
		<-metricsDone
	}
	stopQueue()
	fmt.Fprintln(a.stdout, "pwb: stopped")
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("some requests did not finish within the shutdown grace period")
	}
	return err
}

func (a *app) logger(format string) *slog.Logger {
	var w io.Writer = a.stderr
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// displayAddr names a listening address the way a browser would reach it.
func displayAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// settings loads the web settings: PWB_SETTINGS, else pwb.yml beside the
// database configuration, with PWB_* variables over both.
func (a *app) settings() (config.Settings, error) {
	path := a.getenv("PWB_SETTINGS")
	if path == "" {
		path = filepath.Join(filepath.Dir(a.configFile()), "pwb.yml")
	}
	return config.LoadSettings(path, a.env(), func(k string) (string, bool) {
		v := a.getenv(k)
		return v, v != ""
	})
}

// logPhases logs each phase a move of this process enters; the journal has
// the rows.
func logPhases(log *slog.Logger) func(mover.Event) {
	return func(e mover.Event) {
		if e.Table == "" {
			log.Info("move", "move", e.Move, "phase", e.Phase)
		}
	}
}
