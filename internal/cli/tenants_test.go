package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

func TestTenants_CreateAndList(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	out := mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "Acme", "--name", "Acme Realty")
	if !strings.Contains(out, "acme") || !strings.Contains(out, "default") || strings.Contains(out, "Note:") {
		t.Errorf("create output: %s", out)
	}
	// A premium tenant left on the shared shard is told so, and how to
	// give it its own.
	out = mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "waiting", "--name", "Waiting", "--tier", "premium")
	if !strings.Contains(out, "Note: premium, but on the shared shard default until it is given its own: pwb sharding provision waiting SHARD") {
		t.Errorf("create output for a premium tenant on default: %s", out)
	}
	var w registry.Website
	if err := json.Unmarshal([]byte(mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "prestige",
		"--name", "Prestige", "--tier", "premium", "--shard", "shard_1", "--custom-domain", "WWW.Prestige.example", "--json")), &w); err != nil {
		t.Fatal(err)
	}
	if w.Tier != "premium" || w.ShardName != "shard_1" || w.Status != "active" || w.CustomDomain != "www.prestige.example" || w.ID == 0 {
		t.Errorf("created %+v", w)
	}

	var list []registry.Website
	if err := json.Unmarshal([]byte(mustPWB(t, c.ConfigPath, "tenants", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Subdomain != "acme" || list[1].Subdomain != "waiting" || list[2].Subdomain != "prestige" {
		t.Errorf("list: %+v", list)
	}
	text := mustPWB(t, c.ConfigPath, "tenants", "list")
	for _, want := range []string{"acme", "Prestige", "premium", "shard_1", "3 tenant(s)"} {
		if !strings.Contains(text, want) {
			t.Errorf("list does not show %q:\n%s", want, text)
		}
	}
}

func TestTenants_CreateRefusesBadInput(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "acme", "--name", "Acme", "--custom-domain", "acme.example")
	for _, tc := range []struct {
		args []string
		code int // the name taken and the unknown shard fail; bad values are usage
		want string
	}{
		{[]string{"--subdomain", "ACME", "--name", "Again"}, ExitFailed, `subdomain "acme": already taken`},
		{[]string{"--subdomain", "other", "--name", "X", "--custom-domain", "ACME.example"}, ExitFailed, "already taken"},
		{[]string{"--subdomain", "a", "--name", "X"}, ExitUsage, "2 to 63 characters"},
		{[]string{"--subdomain", strings.Repeat("a", 64), "--name", "X"}, ExitUsage, "2 to 63 characters"},
		{[]string{"--subdomain", "bad_name", "--name", "X"}, ExitUsage, "lower-case letters, digits and hyphens"},
		{[]string{"--subdomain", "-bad", "--name", "X"}, ExitUsage, "not starting or ending with a hyphen"},
		{[]string{"--subdomain", "héllo", "--name", "X"}, ExitUsage, "lower-case letters"},
		{[]string{"--subdomain", "admin", "--name", "X"}, ExitUsage, "reserved"},
		{[]string{"--subdomain", "www", "--name", "X"}, ExitUsage, "reserved"},
		{[]string{"--subdomain", "fine", "--name", "   "}, ExitUsage, "name: must not be empty"},
		{[]string{"--subdomain", "fine", "--name", strings.Repeat("n", 201)}, ExitUsage, "at most 200"},
		{[]string{"--subdomain", "fine", "--name", "X", "--tier", "gold"}, ExitUsage, `tier "gold"`},
		{[]string{"--subdomain", "fine", "--name", "X", "--shard", "shard_9"}, ExitFailed, "--shard shard_9: not configured"},
		{[]string{"--subdomain", "x'; DROP TABLE websites; --", "--name", "X"}, ExitUsage, "lower-case letters"},
		{[]string{"--subdomain", "fine", "--name", "X", "--custom-domain", "https://fine.example"}, ExitUsage, "no scheme, port or path"},
	} {
		r := pwb(t, c.ConfigPath, append([]string{"tenants", "create"}, tc.args...)...)
		if tc.code == ExitFailed {
			wantRefused(t, r, tc.want)
		} else {
			wantUsage(t, r, tc.want)
		}
	}
	if n := pgtest.QueryValue[int64](t, c.URL["default"], "SELECT count(*) FROM websites"); n != 1 {
		t.Errorf("refused creates must write nothing: %d websites", n)
	}
}

func TestTenants_SetStatus(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 0)
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "acme", "--name", "Acme")
	out := mustPWB(t, c.ConfigPath, "tenants", "set-status", "acme", "read_only")
	if !strings.Contains(out, "active -> read_only") {
		t.Errorf("set-status output: %s", out)
	}
	var w registry.Website
	if err := json.Unmarshal([]byte(mustPWB(t, c.ConfigPath, "tenants", "set-status", "1", "maintenance", "--json")), &w); err != nil {
		t.Fatal(err)
	}
	if w.Status != "maintenance" {
		t.Errorf("status %q", w.Status)
	}
	status := func() string {
		return pgtest.QueryValue[string](t, c.URL["default"], "SELECT status FROM websites WHERE subdomain = 'acme'")
	}
	if r := pwb(t, c.ConfigPath, "tenants", "set-status", "acme", "closed"); r.code != ExitUsage || !strings.Contains(r.stderr, "active, read_only or maintenance") {
		t.Errorf("bad status: %+v", r)
	}
	wantRefused(t, pwb(t, c.ConfigPath, "tenants", "set-status", "nobody", "active"), "nobody")
	if r := pwb(t, c.ConfigPath, "tenants", "set-status", "acme"); r.code != ExitUsage {
		t.Errorf("missing argument: %+v", r)
	}
	if got := status(); got != "maintenance" {
		t.Errorf("refusals changed the status to %q", got)
	}
}

func TestTenants_AddMember(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 0)
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "acme", "--name", "Acme")
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "other", "--name", "Other")
	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": c.ConfigPath}
	r := pwbInput(env, "a-long-password\n", "tenants", "add-member", "acme", "--email", "Ann@Example.com")
	if r.code != 0 || !strings.Contains(r.stdout, "Created user ann@example.com as owner of tenant 1 (acme)") {
		t.Fatalf("add-member: %+v", r)
	}
	// An existing user joins another tenant without a new password.
	r = pwbInput(env, "", "tenants", "add-member", "other", "--email", "ann@example.com", "--role", "admin")
	if r.code != 0 || !strings.Contains(r.stdout, "Added existing user ann@example.com as admin of tenant 2") {
		t.Fatalf("add-member existing: %+v", r)
	}
	counts := func() string {
		return pgtest.QueryValue[string](t, c.URL["default"],
			"SELECT (SELECT count(*) FROM users) || '/' || (SELECT count(*) FROM memberships)")
	}
	before := counts()
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"", []string{"acme"}, ExitUsage, "--email is required"},
		{"", []string{"acme", "--email", "not-an-email"}, ExitUsage, "--email"},
		{"", []string{"acme", "--email", "b@example.com", "--role", "king"}, ExitUsage, "owner or admin"},
		{"", []string{"nobody", "--email", "b@example.com"}, ExitFailed, "nobody"},
		{"", []string{"acme", "--email", "b@example.com"}, ExitFailed, "no password"},
		{"short\n", []string{"acme", "--email", "b@example.com"}, ExitUsage, "password: must be at least 8 characters"},
	} {
		r := pwbInput(env, tc.stdin, append([]string{"tenants", "add-member"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("add-member %v: exit %d %q, want %d mentioning %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	if after := counts(); after != before {
		t.Errorf("refusals changed users/memberships: %s -> %s", before, after)
	}
}
