// Package pgtest gives tests throw-away PostgreSQL servers started from the
// machine's own binaries through pglocal. Every test that needs a database uses
// it, so there is one way to get one: real, isolated, and cleaned up even when
// the test fails. Under CI=true a machine without the binaries fails the test
// instead of skipping it, so a green CI always means the database tests ran.
package pgtest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/pglocal"
)

// RequireBinaries skips the test when PostgreSQL is not installed, or fails
// it under CI=true. PWB_PG_BIN selects the binaries' folder.
func RequireBinaries(t testing.TB) {
	t.Helper()
	if d := os.Getenv("PWB_PG_BIN"); d != "" {
		pglocal.BinDir = d
	}
	if _, err := pglocal.FindBinaries(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v: `make test` installs them", err)
		}
		t.Skipf("%v (run `make test`, which installs them)", err)
	}
}

var (
	templateOnce sync.Once
	templateDir  string
	templateErr  error
)

// template returns an initialised data folder that every test server is a
// copy of, which is several times faster than running initdb for each. It is
// kept in the temp folder, one per PostgreSQL version, and shared by every
// test process: a new one is built aside and renamed into place, so processes
// racing to build it never see half of one.
func template() (string, error) {
	templateOnce.Do(func() {
		bin, err := pglocal.FindBinaries()
		if err != nil {
			templateErr = err
			return
		}
		final := filepath.Join(os.TempDir(), "pwb-pgtemplate-"+strings.ReplaceAll(strings.Trim(bin, "/"), "/", "_"))
		if _, err := os.Stat(filepath.Join(final, "data", "PG_VERSION")); err == nil {
			templateDir = final
			return
		}
		dir, err := os.MkdirTemp("", "pwb-pgtemplate-new-")
		if err != nil {
			templateErr = err
			return
		}
		defer os.RemoveAll(dir) // gone after a successful rename
		if err := os.Chmod(dir, 0o755); err != nil {
			templateErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := pglocal.New(ctx, pglocal.Options{Dir: dir}); err != nil {
			templateErr = err
			return
		}
		if err := os.Rename(dir, final); err != nil {
			if _, statErr := os.Stat(filepath.Join(final, "data", "PG_VERSION")); statErr != nil {
				templateErr = fmt.Errorf("installing PostgreSQL template: %w", err)
				return
			}
		}
		templateDir = final
	})
	return templateDir, templateErr
}

// Options for Start.
type Options struct {
	MaxConnections int
	// Durable keeps fsync on, for benchmarks that should see commit costs
	// as production does.
	Durable bool
	// WalLevel is passed to pglocal.Options: empty for logical, like every
	// server pwb starts; "replica" for a shard that cannot stream changes.
	WalLevel string
}

// Start starts n throw-away servers in parallel and stops and removes them
// when the test ends.
func Start(t testing.TB, n int, opts ...Options) []*pglocal.Server {
	t.Helper()
	RequireBinaries(t)
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	tmpl, err := template()
	if err != nil {
		t.Fatalf("preparing PostgreSQL template: %v", err)
	}
	servers := make([]*pglocal.Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { servers[i], errs[i] = startCopy(t, tmpl, o) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return servers
}

func startCopy(t testing.TB, tmpl string, o Options) (*pglocal.Server, error) {
	dir, err := os.MkdirTemp("", "pwb-pgtest-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "cp", "-a", filepath.Join(tmpl, "data"), filepath.Join(dir, "data")).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("copying PostgreSQL template: %v: %s", err, out)
	}
	srv, err := pglocal.Adopt(pglocal.Options{Dir: dir, ForTests: !o.Durable, MaxConnections: o.MaxConnections, WalLevel: o.WalLevel})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	watchdog := exec.Command("/bin/sh", "-c", watchdogScript, "watchdog", strconv.Itoa(os.Getpid()), dir, srv.DataDir())
	watchdog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // survives a Ctrl-C of the test run
	if err := watchdog.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting the test server's watchdog: %w", err)
	}
	t.Cleanup(func() {
		watchdog.Process.Kill()
		watchdog.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Stop(ctx, true); err != nil {
			t.Logf("stopping test PostgreSQL: %v", err)
		}
		os.RemoveAll(dir)
	})
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	return srv, nil
}

// watchdogScript stops a test server and removes its folder once the test
// process is gone without having cleaned up (killed, or timed out), so no
// test run leaves servers behind. Arguments: test pid, folder, data folder.
const watchdogScript = `
while [ -d /proc/$1 ]; do sleep 1; done
pid=$(head -n 1 "$3/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ]; then
  kill -QUIT "$pid" 2>/dev/null
  while [ -d "/proc/$pid" ]; do sleep 0.2; done
fi
rm -rf "$2"
`

// CreateDatabase creates database name on srv and returns its URL.
func CreateDatabase(t testing.TB, srv *pglocal.Server, name string) string {
	t.Helper()
	Exec(t, srv.URL("postgres"), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return srv.URL(name)
}

// Exec runs SQL statements against url, failing the test on error.
func Exec(t testing.TB, url string, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("executing %q: %v", sql, err)
	}
}

// QueryValue returns the single value of a one-row, one-column query.
func QueryValue[T any](t testing.TB, url string, sql string, args ...any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var v T
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		t.Fatalf("querying %q: %v", sql, err)
	}
	return v
}

// Shard names one database of a test config.
type Shard struct {
	Key    string // YAML key: "primary", "shard_1", ...
	Server *pglocal.Server
	DB     string
	Port   int // connect here instead of the server's port (a proxy), when set
	// Settings are added to this entry, such as prepared_statements.
	Settings map[string]string
}

// WriteConfig writes a database.yml with a `test` environment for the given
// shards and returns its path.
func WriteConfig(t testing.TB, shards ...Shard) string {
	t.Helper()
	return WriteConfigWith(t, ConfigOptions{}, shards...)
}

// ConfigOptions adds settings to a written config.
type ConfigOptions struct {
	Env   map[string]string // environment-level keys, such as max_connections_total
	Entry map[string]string // keys added to every entry, such as pool or idle_timeout
}

// WriteConfigWith is WriteConfig with extra settings.
func WriteConfigWith(t testing.TB, o ConfigOptions, shards ...Shard) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("test:\n")
	for _, k := range slices.Sorted(maps.Keys(o.Env)) {
		fmt.Fprintf(&b, "  %s: %s\n", k, o.Env[k])
	}
	for _, s := range shards {
		port := s.Port
		if port == 0 {
			port = s.Server.Port()
		}
		fmt.Fprintf(&b, "  %s:\n    host: 127.0.0.1\n    port: %d\n    username: %s\n    database: %s\n    sslmode: disable\n",
			s.Key, port, pglocal.User, s.DB)
		for _, k := range slices.Sorted(maps.Keys(o.Entry)) {
			fmt.Fprintf(&b, "    %s: %s\n", k, o.Entry[k])
		}
		for _, k := range slices.Sorted(maps.Keys(s.Settings)) {
			fmt.Fprintf(&b, "    %s: %s\n", k, s.Settings[k])
		}
		if s.Key != "primary" {
			b.WriteString("    migrations_paths: db/migrate_tenants\n")
		}
	}
	path := filepath.Join(t.TempDir(), "database.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Cluster is a throw-away platform: primary plus tenant shards, each on its
// own server, with databases created (not migrated) and a config written.
type Cluster struct {
	Servers    []*pglocal.Server
	ConfigPath string
	// URL of each shard's database by logical name ("default", "shard_1", ...).
	URL map[string]string
	// Database name of each shard by logical name.
	Database map[string]string
}

// StartCluster starts 1+shards servers: primary and shard_1..shard_N.
func StartCluster(t testing.TB, shards int) *Cluster {
	t.Helper()
	servers := Start(t, 1+shards)
	c := &Cluster{Servers: servers, URL: map[string]string{}, Database: map[string]string{}}
	var cfg []Shard
	for i, srv := range servers {
		key, name, db := "primary", "default", "pwb_test_primary"
		if i > 0 {
			key = fmt.Sprintf("shard_%d", i)
			name, db = key, "pwb_test_"+key
		}
		c.URL[name] = CreateDatabase(t, srv, db)
		c.Database[name] = db
		cfg = append(cfg, Shard{Key: key, Server: srv, DB: db})
	}
	c.ConfigPath = WriteConfig(t, cfg...)
	return c
}
