package content

import (
	"context"
	"strings"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

// On a shard of twenty tenants with two thousand properties each, a search
// by city reads the tenant's rows through the website's index and folds
// only those: the fold needs no index of its own.
func TestSearch_CityReadsThroughTheWebsitesIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, set := pgtest.MigratedCluster(t, 0)
	db, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO properties (id, website_id, slug, title, city, for_sale, created_at)
		SELECT gen_random_uuid(), w, 'home-' || n, 'Home ' || n,
			(ARRAY['Lisboa', 'São Paulo', 'Málaga', 'Porto'])[1 + n % 4], n % 3 = 0, now() - n * interval '1 minute'
		FROM generate_series(1, 20) w, generate_series(1, 2000) n`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "ANALYZE properties"); err != nil {
		t.Fatal(err)
	}
	f := Filter{Listing: ListingSale, City: "sao p"}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	query, args := searchStatement(7, []Filter{f})
	rows, err := db.Query(ctx, "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the plan:\n%s", plan.String())
	if p := plan.String(); strings.Contains(p, "Seq Scan on properties") || !strings.Contains(p, "properties_listing_idx") {
		t.Errorf("the search does not read through properties_listing_idx:\n%s", p)
	}

	var total int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM ("+query+") q", args...).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != DefaultPerPage {
		t.Errorf("a page of %d, want %d", total, DefaultPerPage)
	}
}
