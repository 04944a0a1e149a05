package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/propertywebbuilder/pwb/internal/web"
)

// Exit codes of a command stopped by a signal that did not end in time,
// or by a second one.
const (
	ExitStopped = 130 // a second Ctrl-C or SIGTERM: out at once
)

// stopGrace is how long a command has, after Ctrl-C or SIGTERM, to end on
// its own before pwb exits anyway: a shard that hangs must not keep the
// operator waiting. The server gets its graceful shutdown first.
func stopGrace(args []string) time.Duration {
	if len(args) > 0 && (args[0] == "serve" || args[0] == "dev") {
		return web.ShutdownGrace + 5*time.Second
	}
	return 5 * time.Second
}

// Main runs pwb as a program: Run, stopped by Ctrl-C or SIGTERM. The first
// signal asks the command to stop (its context ends); if it has not ended
// within its grace, or on a second signal, the process exits at once. It
// returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		cancel()
		grace := stopGrace(args)
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "pwb: stopped at once")
		case <-time.After(grace):
			fmt.Fprintf(stderr, "pwb: stopped: the command did not end within %s of being asked to\n", grace)
		}
		os.Exit(ExitStopped)
	}()
	return Run(ctx, args, stdin, stdout, stderr)
}
