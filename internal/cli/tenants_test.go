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
	if !strings.Contains(out, "acme") || !strings.Contains(out, "default") {
		t.Errorf("create output: %s", out)
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
	if len(list) != 2 || list[0].Subdomain != "acme" || list[1].Subdomain != "prestige" {
		t.Errorf("list: %+v", list)
	}
	text := mustPWB(t, c.ConfigPath, "tenants", "list")
	for _, want := range []string{"acme", "Prestige", "premium", "shard_1", "2 tenant(s)"} {
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
		want string
	}{
		{[]string{"--subdomain", "ACME", "--name", "Again"}, `subdomain "acme": already taken`},
		{[]string{"--subdomain", "other", "--name", "X", "--custom-domain", "ACME.example"}, "already taken"},
		{[]string{"--subdomain", "a", "--name", "X"}, "2 to 63 characters"},
		{[]string{"--subdomain", strings.Repeat("a", 64), "--name", "X"}, "2 to 63 characters"},
		{[]string{"--subdomain", "bad_name", "--name", "X"}, "lower-case letters, digits and hyphens"},
		{[]string{"--subdomain", "-bad", "--name", "X"}, "not starting or ending with a hyphen"},
		{[]string{"--subdomain", "héllo", "--name", "X"}, "lower-case letters"},
		{[]string{"--subdomain", "admin", "--name", "X"}, "reserved"},
		{[]string{"--subdomain", "www", "--name", "X"}, "reserved"},
		{[]string{"--subdomain", "fine", "--name", "   "}, "name: must not be empty"},
		{[]string{"--subdomain", "fine", "--name", strings.Repeat("n", 201)}, "at most 200"},
		{[]string{"--subdomain", "fine", "--name", "X", "--tier", "gold"}, `tier "gold"`},
		{[]string{"--subdomain", "fine", "--name", "X", "--shard", "shard_9"}, "--shard shard_9: not configured"},
		{[]string{"--subdomain", "x'; DROP TABLE websites; --", "--name", "X"}, "lower-case letters"},
		{[]string{"--subdomain", "fine", "--name", "X", "--custom-domain", "https://fine.example"}, "no scheme, port or path"},
	} {
		wantRefused(t, pwb(t, c.ConfigPath, append([]string{"tenants", "create"}, tc.args...)...), tc.want)
	}
	if n := pgtest.QueryValue[int64](t, c.URL["default"], "SELECT count(*) FROM websites"); n != 1 {
		t.Errorf("refused creates must write nothing: %d websites", n)
	}
}
