package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
)

// migrateOnTerminal runs a freeze move of tenant sub to target as its own
// process with standard error on a pseudo-terminal of cols by rows, and
// returns what the terminal and standard output showed.
func migrateOnTerminal(t *testing.T, cfg, sub, target string, cols, rows uint16) (term, stdout string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: cols, Rows: rows}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := pwbProcess(ctx, cfg, "sharding", "migrate", sub, target, "--yes", "--mode", "freeze")
	cmd.Stdout, cmd.Stderr = &out, tty
	shown := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, ptmx) // until the terminal's last writer is gone
		shown <- b.String()
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds its own copy
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pwb sharding migrate: %v\nstdout: %s", err, out.String())
	}
	select {
	case s := <-shown:
		return s, out.String()
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal did not close after the move")
		return "", ""
	}
}

// At a terminal the move's copy is a bar of rows that starts with the first
// rows copied (never "0 rows/hr"); at a terminal that does not say its
// size, the move is told line by line instead.
func TestMigrate_ProgressBarAtATerminal(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	mvTenant(t, c, "barco", "default", movertest.Options{Properties: 3000})

	term, stdout := migrateOnTerminal(t, c.ConfigPath, "barco", "shard_1", 120, 40)
	if !strings.Contains(term, "rows") || !strings.Contains(term, "%") {
		t.Errorf("no bar of rows on the terminal:\n%q", term)
	}
	if strings.Contains(term, "0 rows/hr") {
		t.Errorf("the bar showed a rate of nothing:\n%q", term)
	}
	if !strings.Contains(stdout, "Move ") {
		t.Errorf("stdout: %s", stdout)
	}

	term, stdout = migrateOnTerminal(t, c.ConfigPath, "barco", "default", 0, 0)
	if strings.Contains(term, "%") || strings.Contains(term, "rows/") {
		t.Errorf("a bar on a terminal of unknown size:\n%q", term)
	}
	if !strings.Contains(stdout, "copying\n") {
		t.Errorf("no line for the copy on stdout:\n%s", stdout)
	}
}
