package pglocal_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

func TestServer_RestartsOnTheSameData(t *testing.T) {
	t.Parallel()
	pgtest.RequireBinaries(t)
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "pwb-pglocal-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })

	srv, err := pglocal.New(ctx, pglocal.Options{Dir: dir, ForTests: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background(), true) })
	if !srv.Running(ctx) {
		t.Fatal("server not running after Start")
	}
	if os.Geteuid() == 0 {
		if user := pgtest.QueryValue[string](t, srv.URL("postgres"), "SELECT usename FROM pg_stat_activity WHERE pid = pg_backend_pid()"); user != pglocal.User {
			t.Errorf("connected as %s", user)
		}
		out, _ := exec.Command("ps", "-o", "user=", "-C", "postgres").Output()
		if strings.Contains(string(out), "root") {
			t.Errorf("a postgres process runs as root:\n%s", out)
		}
	}
	pgtest.Exec(t, srv.URL("postgres"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
	firstPort := srv.Port()
	if err := srv.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
	if srv.Running(ctx) {
		t.Fatal("server still running after Stop")
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(firstPort), time.Second); err == nil {
		c.Close()
		t.Fatal("port still open after Stop")
	}

	again, err := pglocal.New(ctx, pglocal.Options{Dir: dir, ForTests: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if v := pgtest.QueryValue[string](t, again.URL("postgres"), "SELECT v FROM kept"); v != "still here" {
		t.Errorf("after restart: %q", v)
	}
	if err := again.Stop(ctx, false); err != nil {
		t.Fatal(err)
	}
}

// childServer runs TestHelperChildServer in a child process that starts a
// test server, reports its data folder and port, and then either fails
// (mode "fail") or hangs (mode "hang"). It returns the running child and a
// function that waits for the report.
func childServer(t *testing.T, mode string) (*exec.Cmd, func() (dataDir, port string)) {
	t.Helper()
	pgtest.RequireBinaries(t)
	report := filepath.Join(t.TempDir(), "report")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperChildServer$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "PWB_CHILD_SERVER="+mode, "PWB_CHILD_REPORT="+report)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, func() (string, string) {
		for range 300 {
			if data, _ := os.ReadFile(report); len(data) > 0 {
				dataDir, port, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
				return dataDir, port
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal("the child never started its server")
		return "", ""
	}
}

func TestHelperChildServer(t *testing.T) {
	mode := os.Getenv("PWB_CHILD_SERVER")
	if mode == "" {
		t.Skip("run by the cleanup tests")
	}
	srv := pgtest.Start(t, 1)[0]
	os.WriteFile(os.Getenv("PWB_CHILD_REPORT"), []byte(srv.DataDir()+" "+strconv.Itoa(srv.Port())), 0o644)
	if mode == "hang" {
		time.Sleep(time.Minute)
	}
	t.Fatal("failing on purpose")
}

// waitGone waits until the folder is removed and the port closed.
func waitGone(t *testing.T, dataDir, port string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, statErr := os.Stat(dataDir)
		c, dialErr := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if dialErr == nil {
			c.Close()
		}
		if os.IsNotExist(statErr) && dialErr != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s later: folder exists=%v, server answering=%v", within, statErr == nil, dialErr == nil)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A test that fails still stops and removes its servers, before the test
// process ends.
func TestPgtest_CleansUpAfterAFailingTest(t *testing.T) {
	t.Parallel()
	cmd, report := childServer(t, "fail")
	dataDir, port := report()
	if err := cmd.Wait(); err == nil {
		t.Fatal("the child test should have failed")
	}
	waitGone(t, dataDir, port, 0)
}

// A test process killed outright (no cleanup runs) still leaves no server:
// the watchdog stops it and removes its folder.
func TestPgtest_KilledTestLeavesNoServer(t *testing.T) {
	t.Parallel()
	cmd, report := childServer(t, "hang")
	dataDir, port := report()
	cmd.Process.Kill()
	cmd.Wait()
	waitGone(t, dataDir, port, 20*time.Second)
}

// Under CI=true a machine without PostgreSQL fails the suite; elsewhere the
// database tests skip with a pointer to `make test`.
func TestRequireBinaries_FailsUnderCISkipsElsewhere(t *testing.T) {
	t.Parallel()
	run := func(ci string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperNeedsPostgres$", "-test.count", "1", "-test.v")
		cmd.Env = append(os.Environ(), "PWB_NEEDS_POSTGRES=1", "PWB_PG_BIN=/nonexistent", "CI="+ci)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("true")
	if err == nil || !strings.Contains(out, "--- FAIL") || !strings.Contains(out, "CI=true") {
		t.Errorf("CI=true without PostgreSQL should fail the test, got err=%v:\n%s", err, out)
	}
	out, err = run("")
	if err != nil || !strings.Contains(out, "--- SKIP") || !strings.Contains(out, "make test") {
		t.Errorf("without CI, the test should skip, got err=%v:\n%s", err, out)
	}
}

func TestHelperNeedsPostgres(t *testing.T) {
	if os.Getenv("PWB_NEEDS_POSTGRES") == "" {
		t.Skip("run by TestRequireBinaries_FailsUnderCISkipsElsewhere")
	}
	pgtest.RequireBinaries(t)
	t.Log("binaries found")
}

func TestServer_TakenPortIsExplained(t *testing.T) {
	t.Parallel()
	pgtest.RequireBinaries(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "pwb-pglocal-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	srv, err := pglocal.New(ctx, pglocal.Options{Dir: dir, ForTests: true, Port: l.Addr().(*net.TCPAddr).Port})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start(ctx)
	if err == nil {
		srv.Stop(ctx, true)
		t.Fatal("started on a port that is taken")
	}
	if !strings.Contains(err.Error(), "Address already in use") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error should say the port is taken, on one line: %q", err)
	}
}
