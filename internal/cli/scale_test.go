package cli

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/report"
	"github.com/propertywebbuilder/pwb/internal/sharding"
)

// A thousand shard databases over two servers under a cap of 40
// connections: every command that visits all shards reaches every healthy
// one (none is called unreachable for having waited its turn), names
// exactly the ones that refuse connections, and exits.
func TestThousandShards_EveryCommandReachesEveryHealthyShard(t *testing.T) {
	t.Parallel()
	const existing, fresh = 950, 50
	many := pgtest.StartManyShards(t, existing, 2)
	shards := slices.Clone(many.Shards)
	for i := existing + 1; i <= existing+fresh; i++ {
		shards = append(shards, pgtest.Shard{Key: fmt.Sprintf("shard_%d", i), Server: many.Servers[i%2], DB: fmt.Sprintf("pwb_test_shard_%d", i)})
	}
	cfg := pgtest.WriteConfigWith(t, pgtest.ConfigOptions{Env: map[string]string{"max_connections_total": "40"}}, shards...)
	total := len(shards) // primary and 1,000 shards

	out := mustPWB(t, cfg, "db", "create")
	wantLines(t, "db create", out, total)
	if n := strings.Count(out, ": created\n"); n != fresh {
		t.Errorf("db create created %d databases; want %d", n, fresh)
	}
	if n := strings.Count(out, ": already exists\n"); n != total-fresh {
		t.Errorf("db create found %d existing databases; want %d", n, total-fresh)
	}

	out = mustPWB(t, cfg, "db", "migrate")
	wantLines(t, "db migrate", out, total)
	if !strings.Contains(out, fmt.Sprintf("%d shard(s) migrated, %d already current, 0 failed", fresh, total-fresh)) {
		t.Errorf("db migrate summary:\n%s", lastLines(out, 3))
	}

	check := func(t *testing.T, down []string) {
		t.Helper()
		wantCode := 0
		if len(down) > 0 {
			wantCode = ExitFailed
		}

		r := pwb(t, cfg, "db", "status", "--json")
		var st []migrations.ShardStatus
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != wantCode {
			t.Fatalf("db status: exit %d, %v\n%s", r.code, err, r.stderr)
		}
		var unreachable []string
		for _, s := range st {
			if !s.Reachable || s.Error != "" {
				unreachable = append(unreachable, s.Shard)
			} else if s.Pending != 0 {
				t.Errorf("db status: %s has %d pending migrations", s.Shard, s.Pending)
			}
		}
		sameShards(t, "db status", unreachable, down, len(st), total)

		r = pwb(t, cfg, "sharding", "list", "--json")
		var infos []sharding.ShardInfo
		if err := json.Unmarshal([]byte(r.stdout), &infos); err != nil || r.code != wantCode {
			t.Fatalf("sharding list: exit %d, %v\n%s", r.code, err, r.stderr)
		}
		unreachable = nil
		for _, s := range infos {
			if !s.Reachable {
				unreachable = append(unreachable, s.Name)
			}
		}
		sameShards(t, "sharding list", unreachable, down, len(infos), total)

		r = pwb(t, cfg, "report", "totals", "--json")
		var tot report.Totals
		if err := json.Unmarshal([]byte(r.stdout), &tot); err != nil || r.code != wantCode {
			t.Fatalf("report totals: exit %d, %v\n%s", r.code, err, r.stderr)
		}
		sameShards(t, "report totals", tot.Unreachable(), down, len(tot.Shards), total)
	}
	t.Run("all healthy", func(t *testing.T) { check(t, nil) })

	var down []string
	for _, i := range []int{3, 250, 499, 777, 998} {
		name := fmt.Sprintf("shard_%d", i)
		pgtest.Exec(t, shards[i].Server.URL("postgres"), "ALTER DATABASE "+shards[i].DB+" ALLOW_CONNECTIONS false")
		down = append(down, name)
	}
	t.Run("five refusing connections", func(t *testing.T) {
		check(t, down)
		// The text table clips each refusal, which PostgreSQL words at
		// length, so the columns stay on a screen.
		r := pwb(t, cfg, "db", "status")
		for _, line := range strings.Split(r.stdout, "\n") {
			if n := len([]rune(line)); n > 160 {
				t.Errorf("db status line of %d characters:\n%s", n, line)
			}
			if strings.HasPrefix(line, "shard_3 ") && !strings.HasSuffix(strings.TrimRight(line, " -0123456789/"), "…") {
				t.Errorf("the refusal is not clipped: %s", line)
			}
		}
	})
}

// wantLines checks that a command printed one "[k/N]" line per shard, k
// counting up from 1.
func wantLines(t *testing.T, what, out string, n int) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\[ *(\d+)/(\d+)\] `)
	got := re.FindAllStringSubmatch(out, -1)
	if len(got) != n {
		t.Fatalf("%s printed %d [k/N] lines; want %d:\n%s", what, len(got), n, lastLines(out, 5))
	}
	for i, m := range got {
		if m[1] != fmt.Sprint(i+1) || m[2] != fmt.Sprint(n) {
			t.Fatalf("%s line %d counts [%s/%s]; want [%d/%d]", what, i+1, m[1], m[2], i+1, n)
		}
	}
}

func sameShards(t *testing.T, what string, got, want []string, listed, total int) {
	t.Helper()
	if listed != total {
		t.Errorf("%s listed %d shards; want %d", what, listed, total)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		if len(got) > 12 {
			got = append(got[:12], fmt.Sprintf("... %d in all", len(got)))
		}
		t.Errorf("%s called %v unreachable; want exactly %v", what, got, want)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
