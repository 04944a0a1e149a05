package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

// freePorts finds n free ports for servers whose ports are written into a
// configuration before they start. They are taken below the kernel's range
// of ephemeral ports (32768 and up on Linux), from which every other test's
// servers and clients get theirs, so none of those can take one in between.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatal("no free port found from 20000 to 32767")
		}
		port := 20000 + rand.IntN(12768)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil || slices.Contains(ports, port) {
			continue
		}
		l.Close()
		ports = append(ports, port)
	}
	return ports
}

// runDev starts `pwb dev` as a process, waits until it serves, checks it
// with the CLI and over HTTP, then stops it with Ctrl-C (SIGINT).
func runDev(t *testing.T, cfg, dir string) string {
	t.Helper()
	p := startPWB(t, cfg, "pwb: serving on", "dev", "--dir", dir, "--addr", "127.0.0.1:0")
	list := mustPWB(t, cfg, "sharding", "list")
	checkDevSites(t, p.out.String())
	checkDevOps(t, p.out.String())
	out, err := p.interrupt()
	if err != nil {
		t.Fatalf("pwb dev exited with %v after Ctrl-C:\n%s", err, out)
	}
	if last := lastLine(p.out.String()); !strings.HasPrefix(last, "Everything has stopped: the web server and 3 PostgreSQL server(s).") {
		t.Errorf("after Ctrl-C the last line should say everything stopped, not %q", last)
	}
	return out + list
}

func TestDev_StartsSeedsStopsAndReuses(t *testing.T) {
	t.Parallel()
	pgtest.RequireBinaries(t)
	ports := freePorts(t, 3)
	cfg := filepath.Join(t.TempDir(), "database.yml")
	yml := "test:\n"
	for i, key := range []string{"primary", "shard_1", "shard_2"} {
		yml += fmt.Sprintf("  %s:\n    host: 127.0.0.1\n    port: %d\n    username: pwb\n    database: dev_%s\n    sslmode: disable\n", key, ports[i], key)
	}
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pwb-devtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		// A folder the postgres user cannot reach is refused with a way out.
		// Any free port: the default, 3000, may be taken on this machine.
		r := pwb(t, cfg, "dev", "--dir", filepath.Join(dir, "x"), "--addr", "127.0.0.1:0")
		wantRefused(t, r, "--dir")
	}
	os.Chmod(dir, 0o755)

	first := runDev(t, cfg, dir)
	for _, want := range []string{"created", ": migrated ", "acme", "prestige", "premium  on shard_1", "Stopping PostgreSQL"} {
		if !strings.Contains(first, want) {
			t.Errorf("first run does not say %q:\n%s", want, first)
		}
	}
	// sharding list, taken while it ran: one tenant each on default and shard_1.
	for _, row := range []string{"default ", "shard_1 ", "shard_2 "} {
		if !strings.Contains(first, row) {
			t.Errorf("sharding list lacks %q", row)
		}
	}
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still served after Ctrl-C", p)
		}
	}

	second := runDev(t, cfg, dir)
	if strings.Contains(second, ": created") || strings.Contains(second, ": migrated ") {
		t.Errorf("second run should reuse the data:\n%s", second)
	}
	if strings.Count(second, "already exists") != 3 || strings.Count(second, ": already current") != 3 {
		t.Errorf("second run should find databases and schema in place:\n%s", second)
	}
	if !strings.Contains(second, "acme") || !strings.Contains(second, "prestige") {
		t.Errorf("demo tenants missing on reuse:\n%s", second)
	}
}

var devOpsRE = regexp.MustCompile(`Platform admin: http://localhost:(\d+)/admin\s+login (\S+) / (\S+)`)

// checkDevOps signs in to the platform admin with the login pwb dev printed.
func checkDevOps(t *testing.T, out string) {
	t.Helper()
	m := devOpsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("pwb dev printed no platform admin login:\n%s", out)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, err := client.PostForm("http://localhost:"+m[1]+"/admin/login", url.Values{"email": {m[2]}, "password": {m[3]}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "Platform operations") || !strings.Contains(string(body), `data-shard="default"`) {
		t.Errorf("platform admin: signing in as %s: status %d, want the dashboard:\n%.2000s", m[2], res.StatusCode, body)
	}
}

var devURLRE = regexp.MustCompile(`http://(\w+)\.localhost:(\d+)/site_admin\s+login (\S+) / (\S+)`)

// checkDevSites visits each demo tenant that pwb dev printed: its home page
// shows seeded properties, and its printed login opens its site admin.
func checkDevSites(t *testing.T, out string) {
	t.Helper()
	sites := devURLRE.FindAllStringSubmatch(out, -1)
	if len(sites) != 2 {
		t.Fatalf("pwb dev printed %d site admin logins, want 2:\n%s", len(sites), out)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	for _, m := range sites {
		sub, port, email, password := m[1], m[2], m[3], m[4]
		base := "http://" + sub + ".localhost:" + port
		// Go does not resolve *.localhost as browsers do; dial loopback.
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
		}}
		res, err := client.Get(base + "/buy")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !regexp.MustCompile(`\b(1[0-9]|[2-9][0-9]) properties`).Match(body) {
			t.Errorf("%s/buy: status %d, want a page listing the seeded properties:\n%.2000s", base, res.StatusCode, body)
		}
		res, err = client.PostForm(base+"/site_admin/login", url.Values{"email": {email}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), "Signed in as "+email) {
			t.Errorf("%s: logging in as %s: status %d, want the dashboard:\n%.2000s", base, email, res.StatusCode, body)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
