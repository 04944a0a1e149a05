package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/pglocal"
)

// PgBouncerPath is where Debian's pgbouncer package installs the pooler.
const PgBouncerPath = "/usr/sbin/pgbouncer"

// RequirePgBouncer skips the test when PgBouncer is not installed, except
// under CI=true, where it fails: `make test` installs it.
func RequirePgBouncer(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, serr := os.Stat(PgBouncerPath); serr == nil {
			path, err = PgBouncerPath, nil
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pgbouncer is not installed; `make test` installs it (apt-get install pgbouncer)")
		}
		t.Skip("pgbouncer is not installed; `make test` installs it")
	}
	return path
}

// StartPgBouncer runs a PgBouncer in transaction pooling mode in front of
// the given databases of srv, and returns its port; the databases keep
// their names. It stops when the test ends.
func StartPgBouncer(t testing.TB, srv *pglocal.Server, databases ...string) int {
	t.Helper()
	bin := RequirePgBouncer(t)
	dir, err := os.MkdirTemp("", "pwb-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port, err := pglocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var dbs strings.Builder
	for _, db := range databases {
		fmt.Fprintf(&dbs, "%s = host=127.0.0.1 port=%d dbname=%s\n", db, srv.Port(), db)
	}
	ini := fmt.Sprintf(`[databases]
%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = 20
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = %s
pidfile = %s
`, dbs.String(), port, filepath.Join(dir, "userlist.txt"), filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	for name, body := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": fmt.Sprintf("%q \"\"\n", pglocal.User)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	if err := pglocal.AsServerUser(cmd, dir); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pgbouncer: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return port
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Fatalf("pgbouncer exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Fatalf("pgbouncer is not listening on %s after 10s\n%s", addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
