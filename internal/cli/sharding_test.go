package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/sharding"
)

func TestShardingList_CountsAndFlagsMissingShards(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 2)
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "std-one", "--name", "One")
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "std-two", "--name", "Two")
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "prem", "--name", "Prem", "--tier", "premium", "--shard", "shard_1")
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "stray", "--name", "Stray", "--tier", "premium")
	// A shard removed from the configuration while a tenant still points at it.
	pgtest.Exec(t, c.URL["default"], "UPDATE websites SET shard_name = 'shard_9' WHERE subdomain = 'stray'")

	var infos []sharding.ShardInfo
	r := pwb(t, c.ConfigPath, "sharding", "list", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &infos); err != nil {
		t.Fatal(err)
	}
	// The missing shard makes it exit 1, as report totals does.
	wantRefused(t, r, "missing from the configuration, so those tenants are unavailable: shard_9")
	got := map[string]sharding.ShardInfo{}
	for _, i := range infos {
		got[i.Name] = i
	}
	if len(infos) != 4 {
		t.Fatalf("want default, shard_1, shard_2 and the missing shard_9: %+v", infos)
	}
	check := func(name string, configured, reachable bool, tenants, premium int) {
		t.Helper()
		i := got[name]
		if i.Configured != configured || i.Reachable != reachable || i.Tenants != tenants || i.Premium != premium {
			t.Errorf("%s: %+v", name, i)
		}
	}
	check("default", true, true, 2, 0)
	check("shard_1", true, true, 1, 1)
	check("shard_2", true, true, 0, 0)
	check("shard_9", false, false, 1, 1)
	if got["shard_1"].Database != "pwb_test_shard_1" || got["shard_1"].Addr == "" {
		t.Errorf("shard_1 database/addr: %+v", got["shard_1"])
	}

	// Stop shard_2's server: it is listed as unreachable, the rest still shown.
	c.Servers[2].Stop(context.Background(), true)
	r = pwb(t, c.ConfigPath, "sharding", "list")
	text := r.stdout
	if r.code != ExitFailed || !strings.Contains(r.stderr, "1 of 3 shards did not answer: shard_2; 1 shard name(s) used by tenants are missing from the configuration, so those tenants are unavailable: shard_9") {
		t.Errorf("sharding list with shard_2 down and shard_9 missing: exit %d, stderr %q; want 1, naming both", r.code, r.stderr)
	}
	for _, want := range []string{"shard_9 !! NOT CONFIGURED", "NO: ", "pwb_test_shard_1"} {
		if !strings.Contains(text, want) {
			t.Errorf("sharding list does not show %q:\n%s", want, text)
		}
	}
}

func TestShardingProvision_MovesEmptyTenant(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	mustPWB(t, c.ConfigPath, "tenants", "create", "--subdomain", "newco", "--name", "New Co", "--tier", "premium")
	out := mustPWB(t, c.ConfigPath, "sharding", "provision", "newco", "shard_1")
	if !strings.Contains(out, "now on shard shard_1") {
		t.Errorf("provision output: %s", out)
	}
	if s := pgtest.QueryValue[string](t, c.URL["default"], "SELECT shard_name FROM websites WHERE subdomain = 'newco'"); s != "shard_1" {
		t.Errorf("registry says %s", s)
	}
	// Back to default, by id: it is already provisioned, so the question
	// comes first; anything but yes, or no answer, changes nothing.
	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": c.ConfigPath}
	for _, answer := range []string{"", "no\n", "maybe\n"} {
		r := pwbInput(env, answer, "sharding", "provision", "1", "default")
		if r.code != ExitFailed || !strings.Contains(r.stderr, "already provisioned on shard shard_1. Point it at default instead?") ||
			!strings.Contains(r.stderr, "not confirmed") {
			t.Errorf("answer %q: exit %d, stderr %q; want the question, then a refusal", answer, r.code, r.stderr)
		}
		if s := pgtest.QueryValue[string](t, c.URL["default"], "SELECT shard_name FROM websites WHERE id = 1"); s != "shard_1" {
			t.Fatalf("answer %q: registry says %s; want shard_1, unchanged", answer, s)
		}
	}
	if r := pwbInput(env, "yes\n", "sharding", "provision", "1", "default"); r.code != ExitOK || !strings.Contains(r.stdout, "now on shard default") {
		t.Errorf("confirmed: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if s := pgtest.QueryValue[string](t, c.URL["default"], "SELECT shard_name FROM websites WHERE id = 1"); s != "default" {
		t.Errorf("registry says %s", s)
	}
	// From default, nothing is asked; --yes skips the question.
	mustPWB(t, c.ConfigPath, "sharding", "provision", "newco", "shard_1")
	if out := mustPWB(t, c.ConfigPath, "sharding", "provision", "newco", "default", "--yes"); !strings.Contains(out, "now on shard default") {
		t.Errorf("provision --yes: %s", out)
	}
}

func TestShardingProvision_Refusals(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 3)
	// shard_3 is configured but its tenant schema was rolled back to nothing.
	pgtest.Exec(t, c.URL["shard_3"], "DELETE FROM pwb_tenant_schema_version WHERE version_id > 0")
	for _, args := range [][]string{
		{"--subdomain", "empty", "--name", "Empty"},
		{"--subdomain", "busy", "--name", "Busy"},
		{"--subdomain", "frozen", "--name", "Frozen"},
		{"--subdomain", "onone", "--name", "On One", "--shard", "shard_1"},
		{"--subdomain", "ghost", "--name", "Ghost"},
		{"--subdomain", "lefty", "--name", "Lefty"},
	} {
		mustPWB(t, c.ConfigPath, append([]string{"tenants", "create"}, args...)...)
	}
	primary := c.URL["default"]
	// busy has data on its current shard; lefty has stray rows on shard_1.
	pgtest.Exec(t, primary, "INSERT INTO agencies (id, website_id, name) SELECT gen_random_uuid(), id, 'Busy Agency' FROM websites WHERE subdomain = 'busy'")
	pgtest.Exec(t, primary, "UPDATE websites SET status = 'read_only' WHERE subdomain = 'frozen'")
	pgtest.Exec(t, primary, "UPDATE websites SET shard_name = 'shard_9' WHERE subdomain = 'ghost'")
	leftyID := pgtest.QueryValue[int64](t, primary, "SELECT id FROM websites WHERE subdomain = 'lefty'")
	pgtest.Exec(t, c.URL["shard_1"], "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'about', 'About')", leftyID)
	// shard_2's server is down.
	c.Servers[2].Stop(context.Background(), true)

	registryBefore := pgtest.QueryValue[string](t, primary, "SELECT string_agg(id || ':' || shard_name || ':' || status, ',' ORDER BY id) FROM websites")
	for _, tc := range []struct {
		tenant, shard, want string
	}{
		{"nobody", "shard_1", `tenant "nobody": no such tenant`},
		{"999", "shard_1", "tenant 999: no such tenant"},
		{"empty", "shard_9", `shard "shard_9" is not configured`},
		{"empty", "shard_2", `shard "shard_2" is unreachable`},
		{"empty", "shard_3", "pending tenant migrations"},
		{"empty", "default", `already on shard "default"`},
		{"onone", "shard_1", `already on shard "shard_1"`},
		{"busy", "shard_1", "already has data on shard \"default\": use `pwb sharding migrate"},
		{"frozen", "shard_1", "is read_only, not active"},
		{"ghost", "shard_1", "tenant's shard is not configured"},
		{"lefty", "shard_1", `shard "shard_1" already holds rows`},
	} {
		wantRefused(t, pwb(t, c.ConfigPath, "sharding", "provision", tc.tenant, tc.shard), tc.want)
	}
	registryAfter := pgtest.QueryValue[string](t, primary, "SELECT string_agg(id || ':' || shard_name || ':' || status, ',' ORDER BY id) FROM websites")
	if registryAfter != registryBefore {
		t.Errorf("refused provisions changed the registry:\nbefore %s\nafter  %s", registryBefore, registryAfter)
	}
}
