package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/pglocal"
)

// Hang makes srv a hung server, as a stopped process or a machine that froze
// would be: it stops its postmaster and every process the postmaster started
// (backends, background workers) with SIGSTOP. The kernel still accepts new
// TCP connections, which then wait at start-up, and connections already open
// get no answer. resume sends SIGCONT to them all; it runs at cleanup too,
// and, through a small watchdog process, if the test process dies first, so
// no test leaves a stopped server behind. Calling resume more than once is
// harmless.
func Hang(t testing.TB, srv *pglocal.Server) (resume func()) {
	t.Helper()
	pid, err := postmasterPID(srv)
	if err != nil {
		t.Fatal(err)
	}
	var stopped []int
	cont := func() {
		// Children first, so none waits on a postmaster that runs again
		// before them.
		for i := len(stopped) - 1; i >= 0; i-- {
			_ = syscall.Kill(stopped[i], syscall.SIGCONT)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("stopping the postmaster %d: %v", pid, err)
	}
	stopped = append(stopped, pid)
	// A backend the postmaster forked just before it stopped may not have
	// been seen by the first look: look again until a look finds nothing new.
	seen := map[int]bool{pid: true}
	for {
		var found []int
		for _, c := range descendants(pid) {
			if !seen[c] {
				seen[c] = true
				found = append(found, c)
			}
		}
		if len(found) == 0 {
			break
		}
		for _, c := range found {
			if err := syscall.Kill(c, syscall.SIGSTOP); err == nil {
				stopped = append(stopped, c)
			}
		}
	}
	if err := waitStopped(stopped, 5*time.Second); err != nil {
		cont()
		t.Fatal(err)
	}

	var pids []string
	for _, p := range stopped {
		pids = append(pids, strconv.Itoa(p))
	}
	script := `
test=$1; shift
while [ -d /proc/$test ]; do sleep 0.2; done
kill -CONT "$@" 2>/dev/null`
	watchdog := exec.Command("/bin/sh", append([]string{"-c", script, "hang-watchdog", strconv.Itoa(os.Getpid())}, pids...)...)
	watchdog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // survives a Ctrl-C of the test run
	if err := watchdog.Start(); err != nil {
		cont()
		t.Fatalf("starting the hung server's watchdog: %v", err)
	}
	resume = sync.OnceFunc(func() {
		cont()
		watchdog.Process.Kill()
		watchdog.Wait()
	})
	t.Cleanup(resume)
	return resume
}

// postmasterPID reads the postmaster's process id from the first line of
// postmaster.pid in the data folder.
func postmasterPID(srv *pglocal.Server) (int, error) {
	b, err := os.ReadFile(filepath.Join(srv.DataDir(), "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("finding the postmaster of %s: %w", srv.DataDir(), err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid of %s: %w", srv.DataDir(), err)
	}
	return pid, nil
}

// descendants lists the processes below pid, read from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, ppid, ok := procStat(p); ok {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}

// procStat returns a process's state letter and parent from
// /proc/<pid>/stat. The command name, in parentheses, may hold spaces and
// parentheses itself, so the fields are read after its last ')'.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0][0], ppid, err == nil
}

// waitStopped waits until every process of pids is stopped or gone: SIGSTOP
// takes effect asynchronously, and the test's clock of the hang should
// start when the server really stopped.
func waitStopped(pids []int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, p := range pids {
		for {
			state, _, ok := procStat(p)
			if !ok || state == 'T' || state == 't' || state == 'Z' {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("process %d did not stop within %s (state %c)", p, limit, state)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// StallProxy forwards connections to a server, and on Stall stops
// forwarding the connections open at that moment, in both directions,
// without closing them: to both ends, the network between has silently lost
// them, as when a NAT entry expires or a firewall fails over. Connections
// made afterwards pass.
type StallProxy struct {
	port int

	mu    sync.Mutex
	pairs []*stallPair
}

type stallPair struct {
	client, server net.Conn
	mu             sync.Mutex
	stalled        bool
	open           int // directions still forwarding
}

// NewStallProxy listens on a loopback port and forwards every connection to
// target; it closes when the test ends.
func NewStallProxy(t testing.TB, target string) *StallProxy {
	t.Helper()
	p := &StallProxy{}
	p.port = forward(t, target, func(client, server net.Conn) {
		c := &stallPair{client: client, server: server, open: 2}
		p.mu.Lock()
		p.pairs = append(p.pairs, c)
		p.mu.Unlock()
		go c.copy(server, client)
		go c.copy(client, server)
	})
	return p
}

// Port is where the proxy listens.
func (p *StallProxy) Port() int { return p.port }

// Stall silently drops everything sent on the connections open now, from
// either end, for as long as the proxy lives, and returns how many there
// were.
func (p *StallProxy) Stall() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.pairs {
		c.mu.Lock()
		if c.open == 2 {
			c.stalled = true
			n++
		}
		c.mu.Unlock()
	}
	return n
}

// copy forwards src to dst until either closes, or, once stalled, reads and
// drops whatever src sends and never closes dst.
func (c *stallPair) copy(dst, src net.Conn) {
	defer func() {
		c.mu.Lock()
		c.open--
		c.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		c.mu.Lock()
		stalled := c.stalled
		c.mu.Unlock()
		if stalled {
			if err != nil {
				return
			}
			continue
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && !errors.Is(err, net.ErrClosed) {
				tc.CloseWrite()
			}
			return
		}
	}
}
