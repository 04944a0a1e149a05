package cli

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

// TestMain lets tests run the CLI as a separate process (the test binary
// re-executed with PWB_TEST_MAIN=1), for what only real processes show:
// concurrent runs, signals.
func TestMain(m *testing.M) {
	if os.Getenv("PWB_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// result is what one pwb invocation did.
type result struct {
	code           int
	stdout, stderr string
}

// pwb runs the CLI in-process against the config at cfgPath, environment `test`.
func pwb(t *testing.T, cfgPath string, args ...string) result {
	t.Helper()
	return pwbEnv(map[string]string{"PWB_ENV": "test", "PWB_CONFIG": cfgPath}, args...)
}

// pwbEnv runs the CLI in-process with exactly the environment env.
func pwbEnv(env map[string]string, args ...string) result {
	return pwbInput(env, "", args...)
}

// pwbInput runs the CLI in-process with env and stdin.
func pwbInput(env map[string]string, stdin string, args ...string) result {
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

// pwbProcess runs the CLI as a separate process.
func pwbProcess(ctx context.Context, cfgPath string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	// Metrics on a port of their own: test processes run side by side.
	cmd.Env = append(os.Environ(), "PWB_TEST_MAIN=1", "PWB_ENV=test", "PWB_CONFIG="+cfgPath, "PWB_METRICS_ADDR=127.0.0.1:0")
	return cmd
}

// mustPWB runs pwb and fails the test unless it exits 0.
func mustPWB(t *testing.T, cfgPath string, args ...string) string {
	t.Helper()
	r := pwb(t, cfgPath, args...)
	if r.code != 0 {
		t.Fatalf("pwb %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// wantRefused checks a refused command: exit 1 and exactly one line on stderr
// that contains want.
func wantRefused(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != ExitFailed {
		t.Errorf("exit code %d, want %d (stdout %q, stderr %q)", r.code, ExitFailed, r.stdout, r.stderr)
	}
	if lines := strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") + 1; lines != 1 || !strings.HasPrefix(r.stderr, "pwb: ") {
		t.Errorf("stderr should be one line starting with 'pwb: ', got %q", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q does not say %q", r.stderr, want)
	}
}

// wantUsage checks a command called wrongly or given an invalid value: exit
// 2, stderr saying want and pointing at --help.
func wantUsage(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != ExitUsage || !strings.HasPrefix(r.stderr, "pwb: ") || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "--help") {
		t.Errorf("exit %d, stderr %q; want %d saying %q and pointing at --help", r.code, r.stderr, ExitUsage, want)
	}
}

// migratedCluster starts primary and n shards on separate servers, creates
// and migrates them through the CLI.
func migratedCluster(t *testing.T, shards int) *pgtest.Cluster {
	t.Helper()
	c := pgtest.StartCluster(t, shards)
	mustPWB(t, c.ConfigPath, "db", "migrate")
	return c
}

func TestUsageErrorsExitWithTwo(t *testing.T) {
	t.Parallel()
	cfg := pgtest.WriteConfig(t) // never read: usage is checked first
	for _, args := range [][]string{
		{"bogus"},
		{"db"},
		{"db", "bogus"},
		{"db", "migrate", "--bogus"},
		{"db", "migrate", "--parallel", "x"},
		{"db", "migrate", "--parallel", "0"},
		{"db", "status", "extra"},
		{"tenants", "create", "--subdomain", "acme"},
		{"sharding", "provision", "acme"},
		{"sharding", "provision", "a", "b", "c"},
	} {
		r := pwb(t, cfg, args...)
		if r.code != ExitUsage {
			t.Errorf("pwb %v: exit %d, want %d (stderr %q)", args, r.code, ExitUsage, r.stderr)
		}
		if !strings.HasPrefix(r.stderr, "pwb: ") || !strings.Contains(r.stderr, "--help") {
			t.Errorf("pwb %v: stderr %q should say what is wrong and point at --help", args, r.stderr)
		}
	}
}

// An unknown command is called so, with the closest commands suggested, or
// else every command listed as "a, b, c".
func TestUnknownCommandsSuggestTheClosest(t *testing.T) {
	t.Parallel()
	cfg := pgtest.WriteConfig(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"shardng", "list"}, `unknown command "shardng" for "pwb": did you mean sharding?`},
		{[]string{"tenant", "list"}, `unknown command "tenant" for "pwb": did you mean tenants?`},
		{[]string{"db", "stauts"}, `unknown command "stauts" for "pwb db": did you mean status?`},
		{[]string{"sharding", "mov"}, `unknown command "mov" for "pwb sharding": did you mean moves?`},
		{[]string{"bogus"}, `unknown command "bogus" for "pwb" (choose one of: completion, db, dev, report, serve, sharding, tenants, users)`},
		{[]string{"db", "xyzzy"}, `unknown command "xyzzy" for "pwb db" (choose one of: create, migrate, status)`},
	} {
		r := pwb(t, cfg, c.args...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("pwb %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), r.code, r.stderr, ExitUsage, c.want)
		}
	}
}

func TestConfigErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	r := pwb(t, "/nonexistent/database.yml", "db", "status")
	wantRefused(t, r, "/nonexistent/database.yml")
	bad := pgtest.WriteConfig(t)
	if err := os.WriteFile(bad, []byte("test:\n  primary: [unclosed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, pwb(t, bad, "sharding", "list"), bad)
}

func TestErrorsNameTheDatabaseAndSuggestMigrating(t *testing.T) {
	t.Parallel()
	c := pgtest.StartCluster(t, 1)
	wantRefused(t, pwb(t, c.ConfigPath, "tenants", "list"), "run `pwb db migrate`")
	wantRefused(t, pwb(t, c.ConfigPath, "sharding", "provision", "acme", "shard_1"), "run `pwb db migrate`")
	c.Servers[0].Stop(context.Background(), true)
	r := pwb(t, c.ConfigPath, "tenants", "create", "--subdomain", "acme", "--name", "Acme")
	wantRefused(t, r, "cannot connect to database pwb_test_primary on 127.0.0.1:")
	if !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("the cause should be shown: %q", r.stderr)
	}
	wantRefused(t, pwb(t, c.ConfigPath, "sharding", "list"), "cannot connect to database pwb_test_primary")
}

// --config wins over PWB_CONFIG, and PWB_ENV picks the environment
// (development when unset).
func TestConfigFlagAndEnvironment(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	r := pwbEnv(map[string]string{"PWB_ENV": "test", "PWB_CONFIG": "/nonexistent.yml"}, "--config", c.ConfigPath, "sharding", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "pwb_test_shard_1") {
		t.Errorf("--config should override PWB_CONFIG: %+v", r)
	}
	// The same file read as `development`, which it does not have.
	r = pwbEnv(map[string]string{"PWB_CONFIG": c.ConfigPath}, "sharding", "list")
	wantRefused(t, r, `environment "development" not found (have: test)`)
	r = pwbEnv(map[string]string{"PWB_CONFIG": c.ConfigPath, "PWB_ENV": "staging"}, "sharding", "list")
	wantRefused(t, r, `environment "staging" not found`)
}

// runningPWB is pwb running as a child process, its output read up to a line.
type runningPWB struct {
	cmd    *exec.Cmd
	sc     *bufio.Scanner
	out    strings.Builder
	stderr strings.Builder
}

// startPWB starts pwb as a process and reads its output until a line contains
// ready, failing the test if it ends first. The process is killed at cleanup
// if still running.
func startPWB(t *testing.T, cfg, ready string, args ...string) *runningPWB {
	t.Helper()
	return startPWBEnv(t, cfg, nil, ready, args...)
}

// startPWBEnv is startPWB with env (NAME=value) added to the process's
// environment. The process lives until the test ends.
func startPWBEnv(t *testing.T, cfg string, env []string, ready string, args ...string) *runningPWB {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &runningPWB{cmd: pwbProcess(ctx, cfg, args...)}
	p.cmd.Env = append(p.cmd.Env, env...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		cancel()
	})
	p.sc = bufio.NewScanner(stdout)
	for p.sc.Scan() {
		p.out.WriteString(p.sc.Text() + "\n")
		if strings.Contains(p.sc.Text(), ready) {
			return p
		}
	}
	p.cmd.Wait()
	t.Fatalf("pwb %s did not come up:\n%s\n%s", strings.Join(args, " "), p.out.String(), p.stderr.String())
	return nil
}

// interrupt sends Ctrl-C and waits for the process to end, returning all it
// printed.
func (p *runningPWB) interrupt() (string, error) {
	p.cmd.Process.Signal(os.Interrupt)
	for p.sc.Scan() {
		p.out.WriteString(p.sc.Text() + "\n")
	}
	err := p.cmd.Wait()
	return p.out.String() + p.stderr.String(), err
}
