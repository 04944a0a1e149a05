package migrations_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

func pool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// tenantShard is a fresh database with the tenant set applied.
func tenantShard(t *testing.T) *pgxpool.Pool {
	t.Helper()
	srv := pgtest.Start(t, 1)[0]
	db := pool(t, pgtest.CreateDatabase(t, srv, "shard"))
	if _, err := migrations.Up(context.Background(), db, migrations.Tenant); err != nil {
		t.Fatal(err)
	}
	return db
}

// tenant.Tables is the only source of table names for generated SQL, so it
// must list exactly the tables that carry website_id, parents before children.
func TestTenantTablesMatchTheSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := tenantShard(t)
	rows, _ := db.Query(ctx, `SELECT table_name::text FROM information_schema.columns
		WHERE table_schema = 'public' AND column_name = 'website_id' ORDER BY 1`)
	withWebsiteID, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values(tenant.Tables)); !slices.Equal(withWebsiteID, want) {
		t.Errorf("tables with website_id %v, tenant.Tables %v", withWebsiteID, want)
	}

	rows, _ = db.Query(ctx, `SELECT conrelid::regclass::text, confrelid::regclass::text,
			(SELECT array_agg(attname::text) FROM pg_attribute WHERE attrelid = conrelid AND attnum = ANY (conkey))
		FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace`)
	type fk struct {
		child, parent string
		cols          []string
	}
	fks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fk, error) {
		var f fk
		return f, r.Scan(&f.child, &f.parent, &f.cols)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(fks) == 0 {
		t.Fatal("no foreign keys found")
	}
	for _, f := range fks {
		if slices.Index(tenant.Tables, f.parent) > slices.Index(tenant.Tables, f.child) {
			t.Errorf("%s references %s but comes before it in tenant.Tables", f.child, f.parent)
		}
		if !slices.Contains(f.cols, "website_id") {
			t.Errorf("foreign key %s -> %s does not include website_id: %v", f.child, f.parent, f.cols)
		}
	}
}

// A child row can never point at another tenant's parent row.
func TestTenantForeignKeysStayInsideTheTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := tenantShard(t)
	const prop = "0190d5a4-0000-7000-8000-000000000001"
	if _, err := db.Exec(ctx, "INSERT INTO properties (id, website_id, slug, title) VALUES ($1, 1, 'house', 'House')", prop); err != nil {
		t.Fatal(err)
	}
	_, err := db.Exec(ctx, "INSERT INTO property_features (id, website_id, property_id, name) VALUES (gen_random_uuid(), 2, $1, 'Pool')", prop)
	if err == nil {
		t.Error("tenant 2 attached a feature to tenant 1's property")
	}
}

func TestStatus_ReadsWithoutChanging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := pgtest.Start(t, 1)[0]
	db := pool(t, pgtest.CreateDatabase(t, srv, "fresh"))
	st, err := migrations.Status(ctx, db, migrations.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != 0 || st.Pending != len(migrations.Tenant.Versions()) || st.Latest != migrations.Tenant.Latest() {
		t.Errorf("fresh database: %+v", st)
	}
	var exists bool
	db.QueryRow(ctx, "SELECT to_regclass('pwb_tenant_schema_version') IS NOT NULL").Scan(&exists)
	if exists {
		t.Error("Status created the version table")
	}
	n, err := migrations.Up(ctx, db, migrations.Tenant)
	if err != nil || n != len(migrations.Tenant.Versions()) {
		t.Fatalf("Up = %d, %v", n, err)
	}
	st, _ = migrations.Status(ctx, db, migrations.Tenant)
	if st.Current != migrations.Tenant.Latest() || st.Pending != 0 {
		t.Errorf("after Up: %+v", st)
	}
	if n, err := migrations.Up(ctx, db, migrations.Tenant); err != nil || n != 0 {
		t.Errorf("second Up = %d, %v; want a no-op", n, err)
	}
}

// manyShards creates primary plus n tenant shard databases on srv and
// returns their config.
func manyShards(t testing.TB, srv *pglocal.Server, n int) *config.Config {
	t.Helper()
	pgtest.CreateDatabase(t, srv, "primary")
	for i := 1; i <= n; i++ {
		pgtest.CreateDatabase(t, srv, fmt.Sprintf("shard_%d", i))
	}
	return shardsConfig(t, srv, n, 0)
}

// shardsConfig is the config of manyShards' databases, reached through port
// when it is not 0.
func shardsConfig(t testing.TB, srv *pglocal.Server, n, port int) *config.Config {
	t.Helper()
	shards := []pgtest.Shard{{Key: "primary", Server: srv, DB: "primary", Port: port}}
	for i := 1; i <= n; i++ {
		db := fmt.Sprintf("shard_%d", i)
		shards = append(shards, pgtest.Shard{Key: db, Server: srv, DB: db, Port: port})
	}
	cfg, err := config.Load(pgtest.WriteConfig(t, shards...), "test")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMigrateShards_BoundedParallelAndEveryResult(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := pgtest.Start(t, 1)[0]
	cfg := manyShards(t, srv, 12)
	set := shard.NewSet(cfg)
	defer set.Close()
	// shard_7 cannot be migrated: a table is in the way.
	pgtest.Exec(t, srv.URL("shard_7"), "CREATE TABLE messages (x int)")

	var reported []string
	results := migrations.MigrateShards(ctx, set, migrations.Options{Parallel: 3}, func(k int, r migrations.Result) {
		if k != len(reported)+1 {
			t.Errorf("result %d counted as %d", len(reported)+1, k)
		}
		reported = append(reported, r.Shard)
	})
	if len(results) != 13 || len(reported) != 13 {
		t.Fatalf("%d results, %d reported; want 13 each", len(results), len(reported))
	}
	for i, r := range results {
		if r.Shard != cfg.Shards[i].Name {
			t.Errorf("result %d is %s, want config order (%s)", i, r.Shard, cfg.Shards[i].Name)
		}
		if (r.Err != nil) != (r.Shard == "shard_7") {
			t.Errorf("%s: err %v", r.Shard, r.Err)
		}
	}
	if results[0].GlobalApplied == 0 || results[1].GlobalApplied != 0 {
		t.Error("the global set belongs on primary only")
	}
}
