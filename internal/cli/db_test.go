package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// tables lists the user tables of a database.
func tables(t *testing.T, url string) []string {
	t.Helper()
	return pgtest.QueryValue[[]string](t, url, `SELECT COALESCE(array_agg(tablename::text ORDER BY tablename), '{}')
		FROM pg_tables WHERE schemaname = 'public'`)
}

func statusJSON(t *testing.T, cfg string) []migrations.ShardStatus {
	t.Helper()
	r := pwb(t, cfg, "db", "status", "--json")
	var st []migrations.ShardStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("db status --json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	return st
}

func TestDBMigrate_GlobalOnPrimaryOnlyTenantEverywhere(t *testing.T) {
	t.Parallel()
	c := pgtest.StartCluster(t, 2)

	before := statusJSON(t, c.ConfigPath)
	for _, s := range before {
		if !s.Reachable || s.Tenant == nil || s.Tenant.Current != 0 || s.Pending == 0 {
			t.Fatalf("before migrating, %s should be reachable with everything pending: %+v", s.Shard, s)
		}
	}

	out := mustPWB(t, c.ConfigPath, "db", "migrate")
	for _, name := range []string{"default", "shard_1", "shard_2"} {
		if !strings.Contains(out, name) {
			t.Errorf("migrate output has no line for %s:\n%s", name, out)
		}
	}

	tenantTables := append([]string{}, tenant.Tables...)
	for name, url := range c.URL {
		got := tables(t, url)
		// move_positions belongs to the tenant set but is not a tenant table.
		want := append([]string{"pwb_tenant_schema_version", "move_positions"}, tenantTables...)
		if name == "default" {
			want = append(want, "audit_log", "memberships", "move_tables", "moves", "platform_sessions", "pwb_global_schema_version",
				"sessions", "throttles", "users", "websites",
				// The job queue's own tables.
				"river_job", "river_leader", "river_migration", "river_notification", "river_queue")
		}
		if diff := cmp.Diff(sorted(want), got); diff != "" {
			t.Errorf("tables on %s (-want +got):\n%s", name, diff)
		}
	}

	after := statusJSON(t, c.ConfigPath)
	for _, s := range after {
		if !s.Reachable || s.Pending != 0 || s.Tenant.Current != migrations.Tenant.Latest() {
			t.Errorf("after migrating, %s: %+v", s.Shard, s)
		}
		if (s.Shard == "default") != (s.Global != nil) || (s.Shard == "default") != (s.Jobs != nil) {
			t.Errorf("%s: global version shown = %v, job queue's = %v; want them on primary only", s.Shard, s.Global != nil, s.Jobs != nil)
		}
		if s.Jobs != nil && (s.Jobs.Pending != 0 || s.Jobs.Current != s.Jobs.Latest) {
			t.Errorf("%s: job queue migrations %+v; want all applied", s.Shard, *s.Jobs)
		}
		// What migrate said it applied is what status counts, set by set.
		want := fmt.Sprintf("migrated tenant %d in ", s.Tenant.Current)
		if s.Global != nil {
			want = fmt.Sprintf("migrated global %d, tenant %d, jobs %d in ", s.Global.Current, s.Tenant.Current, s.Jobs.Current)
		}
		if !regexp.MustCompile(`(?m)^\[\d/3\] ` + s.Shard + ` .*: ` + want).MatchString(out) {
			t.Errorf("migrate's line for %s does not say %q:\n%s", s.Shard, want, out)
		}
	}
	text := mustPWB(t, c.ConfigPath, "db", "status")
	for _, want := range []string{"SHARD", "pwb_test_shard_2", fmt.Sprintf("127.0.0.1:%d", c.Servers[1].Port()), "yes"} {
		if !strings.Contains(text, want) {
			t.Errorf("db status does not show %q:\n%s", want, text)
		}
	}

	again := mustPWB(t, c.ConfigPath, "db", "migrate")
	if !strings.Contains(again, "0 shard(s) migrated, 3 already current, 0 failed") || strings.Count(again, ": already current") != 3 {
		t.Errorf("second migrate should find every shard current:\n%s", again)
	}
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestDBMigrate_TwoProcessesAtOnceEndTheSame(t *testing.T) {
	t.Parallel()
	c := pgtest.StartCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { outs[i], errs[i] = pwbProcess(ctx, c.ConfigPath, "db", "migrate").CombinedOutput() })
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Errorf("migrate process %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	for name, url := range c.URL {
		applied := pgtest.QueryValue[int64](t, url, "SELECT count(*) FROM pwb_tenant_schema_version WHERE version_id > 0")
		if applied != int64(len(migrations.Tenant.Versions())) {
			t.Errorf("%s: %d tenant versions recorded, want %d (each exactly once)", name, applied, len(migrations.Tenant.Versions()))
		}
	}
	for _, s := range statusJSON(t, c.ConfigPath) {
		if s.Pending != 0 {
			t.Errorf("%s still has %d pending", s.Shard, s.Pending)
		}
	}
}

func TestDBMigrate_FailedShardIsReportedOthersMigrate(t *testing.T) {
	t.Parallel()
	c := pgtest.StartCluster(t, 2)
	// shard_2's tenant schema is blocked by a table in the way.
	pgtest.Exec(t, c.URL["shard_2"], "CREATE TABLE properties (x int)")

	r := pwb(t, c.ConfigPath, "db", "migrate", "--parallel", "1")
	wantRefused(t, r, "1 of 3 shards failed")
	if !strings.Contains(r.stdout, "shard_2") || !strings.Contains(r.stdout, "FAILED") || !strings.Contains(r.stdout, `relation "properties" already exists`) {
		t.Errorf("the failed shard should be named with its reason:\n%s", r.stdout)
	}
	// --json: one object per shard, the failure with its reason.
	r = pwb(t, c.ConfigPath, "db", "migrate", "--json")
	wantRefused(t, r, "1 of 3 shards failed")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 JSON lines:\n%s", r.stdout)
	}
	byShard := map[string]migrateJSON{}
	for _, l := range lines {
		var m migrateJSON
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		byShard[m.Shard] = m
	}
	if byShard["shard_2"].Error == "" || byShard["shard_1"].Error != "" || byShard["default"].Database != "pwb_test_primary" {
		t.Errorf("JSON results: %+v", byShard)
	}
	for _, name := range []string{"default", "shard_1"} {
		if n := pgtest.QueryValue[int64](t, c.URL[name], "SELECT count(*) FROM pwb_tenant_schema_version WHERE version_id > 0"); n == 0 {
			t.Errorf("%s was not migrated although only shard_2 failed", name)
		}
	}
}

func TestDBMigrate_OneShard(t *testing.T) {
	t.Parallel()
	c := pgtest.StartCluster(t, 2)
	mustPWB(t, c.ConfigPath, "db", "migrate", "--shard", "shard_1")
	if got := tables(t, c.URL["shard_1"]); len(got) == 0 {
		t.Error("shard_1 not migrated")
	}
	if got := tables(t, c.URL["shard_2"]); len(got) != 0 {
		t.Errorf("shard_2 should be untouched, has %v", got)
	}
	wantRefused(t, pwb(t, c.ConfigPath, "db", "migrate", "--shard", "shard_9"), "shard_9: not configured")
}

func TestDBCreate_CreatesMissingDatabases(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, 1)[0]
	cfg := pgtest.WriteConfig(t,
		pgtest.Shard{Key: "primary", Server: srv, DB: "fresh_primary"},
		pgtest.Shard{Key: "shard_1", Server: srv, DB: "fresh shard \"1\""},
	)
	out := mustPWB(t, cfg, "db", "create")
	if strings.Count(out, "created") != 2 {
		t.Errorf("want two databases created:\n%s", out)
	}
	out = mustPWB(t, cfg, "db", "create")
	if strings.Count(out, "already exists") != 2 {
		t.Errorf("second create should find both:\n%s", out)
	}
	mustPWB(t, cfg, "db", "migrate")

	srv.Stop(context.Background(), true)
	r := pwb(t, cfg, "db", "create")
	wantRefused(t, r, "2 of 2 databases could not be created")
	if !strings.Contains(r.stdout, "connection refused") {
		t.Errorf("the reason should be shown per shard:\n%s", r.stdout)
	}
	r = pwb(t, cfg, "db", "status")
	wantRefused(t, r, "2 of 2 shards could not be read")
	if !strings.Contains(r.stdout, "NO: ") {
		t.Errorf("status should mark unreachable shards:\n%s", r.stdout)
	}
}

// Migrating at scale: 50 shards over two servers, one of them
// broken. With --canary on the broken one nothing else is touched; without,
// the other 49 migrate and the summary names the broken one.
func TestDBMigrate_FiftyShardsOneBroken(t *testing.T) {
	t.Parallel()
	servers := pgtest.Start(t, 2)
	shards := make([]pgtest.Shard, 50)
	urls := make([]string, 50)
	var wg sync.WaitGroup
	for i := range shards {
		key := fmt.Sprintf("shard_%d", i)
		if i == 0 {
			key = "primary"
		}
		db := "pwb_test_" + key
		shards[i] = pgtest.Shard{Key: key, Server: servers[i%2], DB: db}
		wg.Go(func() { urls[i] = pgtest.CreateDatabase(t, servers[i%2], db) })
	}
	wg.Wait()
	cfg := pgtest.WriteConfig(t, shards...)
	const broken = 17
	pgtest.Exec(t, urls[broken], "CREATE TABLE properties (x int)")
	migrated := func(i int) bool {
		return pgtest.QueryValue[bool](t, urls[i], "SELECT to_regclass('pwb_tenant_schema_version') IS NOT NULL")
	}

	r := pwb(t, cfg, "db", "migrate", "--canary", "shard_17")
	wantRefused(t, r, "canary shard shard_17 failed to migrate: the other 49 shards were not touched")
	if strings.Count(r.stdout, "not attempted (the canary failed)") != 49 || !strings.Contains(r.stdout, `ms  FAILED: `) ||
		!strings.Contains(r.stdout, `relation "properties" already exists`) || !strings.Contains(r.stdout, "0 shard(s) migrated, 0 already current, 1 failed, 49 not attempted") {
		t.Errorf("canary summary:\n%s", r.stdout)
	}
	for i := range urls {
		if i != broken && migrated(i) {
			t.Errorf("shard %d was touched although the canary failed", i)
		}
	}

	r = pwb(t, cfg, "db", "migrate")
	wantRefused(t, r, "1 of 50 shards failed to migrate")
	if !strings.Contains(r.stdout, "[50/50]") || !strings.Contains(r.stdout, "49 shard(s) migrated, 0 already current, 1 failed, 0 not attempted") {
		t.Errorf("summary:\n%s", r.stdout)
	}
	summary := r.stdout[strings.Index(r.stdout, "SHARD"):]
	for i, s := range shards {
		name := s.Key
		if name == "primary" {
			name = "default"
		}
		want := `(?m)^` + name + `\s+\S+\s+migrated (global \d+, )?tenant \d+`
		if i == broken {
			want = `(?m)^` + name + `\s+\S+\s+FAILED: .*relation "properties" already exists`
		}
		if !regexp.MustCompile(want).MatchString(summary) {
			t.Errorf("summary lacks %s:\n%s", want, summary)
		}
		if i != broken && !migrated(i) {
			t.Errorf("%s was not migrated", name)
		}
	}

	// A healthy canary goes first, then the rest.
	pgtest.Exec(t, urls[broken], "DROP TABLE properties")
	out := mustPWB(t, cfg, "db", "migrate", "--canary", "shard_17")
	if !strings.HasPrefix(out, "[ 1/50] shard_17 ") || !strings.Contains(out, "1 shard(s) migrated, 49 already current, 0 failed") {
		t.Errorf("healthy canary:\n%s", out)
	}
	for _, args := range [][]string{
		{"db", "migrate", "--canary", "shard_99"},
		{"db", "migrate", "--canary", "shard_1", "--shard", "shard_2"},
	} {
		if r := pwb(t, cfg, args...); r.code != ExitUsage {
			t.Errorf("pwb %s: exit %d, want %d\n%s", strings.Join(args, " "), r.code, ExitUsage, r.stderr)
		}
	}
}
