package cli

import (
	"bufio"
	"fmt"
)

// pauseEnv names the tests' pause hook: when set to a pause point of the
// mover (mover.Options.Pause), the mover stops there, says so on stderr, and
// waits for a line on stdin. Crash tests kill the process while it waits.
// Only the test binary reads it: the shipped pwb has no pause hook.
const pauseEnv = "PWB_TEST_PAUSE_AT"

func init() { testPauseHook = envPause }

func envPause(a *app, before func()) func(string) {
	at := a.getenv(pauseEnv)
	if at == "" {
		return nil
	}
	in := bufio.NewReader(a.stdin)
	return func(point string) {
		if point == at {
			if before != nil {
				before()
			}
			fmt.Fprintf(a.stderr, "pwb: test pause at %s\n", point)
			in.ReadString('\n')
		}
	}
}
