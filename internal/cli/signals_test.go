package cli

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// exitOf waits for ch's process to end, at most limit, and returns its
// exit code and how long it took.
func exitOf(t *testing.T, ch *crashChild, limit time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { <-ch.closed; done <- ch.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode(), time.Since(start)
		}
		return 0, time.Since(start)
	case <-time.After(limit):
		t.Fatalf("pwb did not exit within %s\nstderr: %s", limit, ch.stderr.String())
		return 0, 0
	}
}

// A command that does not end when asked (here held at a test pause that
// ignores its context) is stopped by pwb itself after its grace; a second
// Ctrl-C stops it at once.
func TestSignals_AStuckCommandStillExits(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	mvTenant(t, c, "stuck-co", shard.Default, movertest.Options{Properties: 10, Photos: 1})
	mvTenant(t, c, "twice-co", shard.Default, movertest.Options{Properties: 10, Photos: 1})

	once := crashStart(t, c.ConfigPath, "frozen", "sharding", "migrate", "stuck-co", "shard_1", "--mode", "freeze", "--yes")
	once.waitPause(t)
	once.cmd.Process.Signal(syscall.SIGTERM)
	code, took := exitOf(t, once, 15*time.Second)
	if code != ExitStopped || took < 4*time.Second || !strings.Contains(once.stderr.String(), "did not end within 5s of being asked to") {
		t.Errorf("stuck command after SIGTERM: exit %d after %s\nstderr: %s", code, took, once.stderr.String())
	}

	twice := crashStart(t, c.ConfigPath, "frozen", "sharding", "migrate", "twice-co", "shard_1", "--mode", "freeze", "--yes")
	twice.waitPause(t)
	twice.cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(300 * time.Millisecond)
	twice.cmd.Process.Signal(syscall.SIGINT)
	code, took = exitOf(t, twice, 5*time.Second)
	if code != ExitStopped || took > time.Second || !strings.Contains(twice.stderr.String(), "pwb: stopped at once") {
		t.Errorf("stuck command after a second Ctrl-C: exit %d after %s\nstderr: %s", code, took, twice.stderr.String())
	}
}

// A command whose shard hangs (its server stopped with SIGSTOP) ends
// within a few seconds of SIGTERM.
func TestSignals_HungShardCommandExits(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	resume := pgtest.Hang(t, c.Servers[1])
	defer resume()
	ch := crashStart(t, c.ConfigPath, "none", "db", "status")
	time.Sleep(500 * time.Millisecond)
	ch.cmd.Process.Signal(syscall.SIGTERM)
	code, took := exitOf(t, ch, 10*time.Second)
	if code == 0 || took > 6*time.Second {
		t.Errorf("db status with a hung shard after SIGTERM: exit %d after %s\nstderr: %s", code, took, ch.stderr.String())
	}
}
