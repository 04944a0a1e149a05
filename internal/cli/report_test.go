package cli

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/report"
)

func TestReportTotals(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 2)
	cfg := c.ConfigPath
	mvTenant(t, c, "big-co", "shard_1", movertest.Options{Properties: 12, Photos: 1})
	mvTenant(t, c, "small-co", "default", movertest.Options{Properties: 4, Photos: 1})

	out := mustPWB(t, cfg, "report", "totals")
	for _, want := range []string{"SHARD", "TENANTS", "PROPERTIES", "MESSAGES", "SIZE", "shard_1", "total"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// Sizes in the binary units the platform admin shows them in.
	if !regexp.MustCompile(`(?m)^\s*total\s.*\s\d+\.\d (KiB|MiB|GiB|TiB)\s`).MatchString(out) {
		t.Errorf("the total's size is not in KiB, MiB or GiB:\n%s", out)
	}
	var got report.Totals
	if err := json.Unmarshal([]byte(mustPWB(t, cfg, "report", "totals", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Total.Tenants != 2 || got.Total.Properties != 16 || got.Total.Messages != 2*(6+2) || len(got.Shards) != 3 {
		t.Errorf("totals: %+v", got.Total)
	}

	if err := c.Servers[2].Stop(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	r := pwb(t, cfg, "report", "totals", "--timeout", "2s")
	wantRefused(t, r, "1 of 3 shards did not answer (shard_2): the totals leave them out")
	if !strings.Contains(r.stdout, "UNREACHABLE") || !strings.Contains(r.stdout, "shard_1") || !strings.Contains(r.stdout, "12") {
		t.Errorf("the report should still show the other shards:\n%s", r.stdout)
	}
	if r := pwb(t, cfg, "report", "totals", "--timeout", "0s"); r.code != ExitUsage {
		t.Errorf("--timeout 0s: exit %d, want %d", r.code, ExitUsage)
	}
}
