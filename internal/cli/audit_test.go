package cli

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// auditLine is an expected line of the audit log. Its Detail must contain
// detail, or be empty when detail is.
type auditLine struct {
	audit.Entry
	detail string
}

// wantAudit checks the whole audit log of c's primary, oldest first: every
// line by this user's CLI, with the fields of want.
func wantAudit(t *testing.T, c *pgtest.Cluster, want ...auditLine) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, c.URL[shard.Default])
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	got, total, err := audit.List(ctx, pool, audit.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(got)
	var wantEntries []audit.Entry
	for _, w := range want {
		wantEntries = append(wantEntries, w.Entry)
	}
	if diff := cmp.Diff(wantEntries, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(audit.Entry{}, "ID", "At", "Actor", "Detail")); diff != "" || total != len(want) {
		t.Fatalf("audit log has %d lines, want %d (-want +got):\n%s", total, len(want), diff)
	}
	for i, e := range got {
		if !strings.HasPrefix(e.Actor, "cli:") || e.Actor != actor() {
			t.Errorf("line %d: actor %q; want %q", i+1, e.Actor, actor())
		}
		if d := want[i].detail; d == "" && e.Detail != "" || !strings.Contains(e.Detail, d) {
			t.Errorf("line %d (%s %s): detail %q; want it to say %q", i+1, e.Action, e.Outcome, e.Detail, d)
		}
		// The CLI's hints on how to go on would be stale in the log.
		if strings.Contains(e.Detail, "finish it with") {
			t.Errorf("line %d: detail %q has the command line's hint", i+1, e.Detail)
		}
	}
}

// cancelOnRead is a stdin whose first read cancels the command's context,
// as Ctrl-C does, and ends the input.
type cancelOnRead context.CancelFunc

func (c cancelOnRead) Read([]byte) (int, error) {
	c()
	return 0, io.EOF
}

// pwbInterrupted runs pwb in-process and interrupts it at the mover's pause
// point: the pause reads stdin, which cancels the command's context.
func pwbInterrupted(t *testing.T, cfgPath, point string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": cfgPath, pauseEnv: point}
	var out, errb bytes.Buffer
	code := run(ctx, args, cancelOnRead(cancel), &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

// wantInterrupted checks a command stopped by pwbInterrupted: exit 1, the
// test hook's notice, then one line that says each of want.
func wantInterrupted(t *testing.T, r result, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	ok := r.code == ExitFailed && len(lines) == 2 && strings.HasPrefix(lines[0], "pwb: test pause at ") && strings.HasPrefix(last, "pwb: ")
	for _, w := range want {
		ok = ok && strings.Contains(last, w)
	}
	if !ok {
		t.Errorf("interrupted command: exit %d, stderr %q; want exit 1, the pause notice, then a line saying %q", r.code, r.stderr, want)
	}
}

func TestAudit_Provision(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	cfg := c.ConfigPath
	mustPWB(t, cfg, "tenants", "create", "--subdomain", "newco", "--name", "New Co")

	mustPWB(t, cfg, "sharding", "provision", "newco", "shard_1")
	wantRefused(t, pwb(t, cfg, "sharding", "provision", "nobody", "shard_1"), "no such tenant")
	wantRefused(t, pwb(t, cfg, "sharding", "provision", "1", "shard_1"), "already on shard")
	wantRefused(t, pwb(t, cfg, "sharding", "provision", "newco", "shard_9"), "not configured")
	if r := pwb(t, cfg, "sharding", "provision", "newco"); r.code != ExitUsage {
		t.Errorf("provision with one argument: exit %d, want usage", r.code)
	}
	lines := []auditLine{
		{audit.Entry{Action: audit.Provision, WebsiteID: 1, Tenant: "newco", Source: "default", Target: "shard_1", Outcome: audit.Done}, ""},
		{audit.Entry{Action: audit.Provision, Tenant: "nobody", Target: "shard_1", Outcome: audit.Refused}, `tenant "nobody": no such tenant`},
		{audit.Entry{Action: audit.Provision, WebsiteID: 1, Tenant: "newco", Source: "shard_1", Target: "shard_1", Outcome: audit.Refused}, `already on shard "shard_1"`},
		{audit.Entry{Action: audit.Provision, WebsiteID: 1, Tenant: "newco", Source: "shard_1", Target: "shard_9", Outcome: audit.Refused}, `shard "shard_9" is not configured`},
	}
	wantAudit(t, c, lines...)

	// A log that cannot be written does not undo or fail the operation: it
	// warns after a success, and says so on the one line of a refusal.
	pgtest.Exec(t, c.URL[shard.Default], "ALTER TABLE audit_log RENAME TO audit_log_away")
	r := pwb(t, cfg, "sharding", "provision", "newco", "default", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "now on shard default") ||
		!strings.HasPrefix(r.stderr, "pwb: warning: this provision is missing from the audit log: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("provision with the audit log gone: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = pwb(t, cfg, "sharding", "provision", "nobody", "default")
	wantRefused(t, r, "no such tenant")
	wantRefused(t, r, "(and it is missing from the audit log: ")
	pgtest.Exec(t, c.URL[shard.Default], "ALTER TABLE audit_log_away RENAME TO audit_log")
	wantAudit(t, c, lines...)
}

func TestAudit_Migrate(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	cfg := c.ConfigPath
	id := mvTenant(t, c, "audit-co", shard.Default, movertest.Options{Properties: 20, Photos: 2})
	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": cfg}

	// Not operations: a dry run, a declined confirmation, wrong usage.
	mustPWB(t, cfg, "sharding", "migrate", "--mode", "freeze", "audit-co", "shard_1", "--dry-run")
	if r := pwbInput(env, "no\n", "sharding", "migrate", "--mode", "freeze", "audit-co", "shard_1"); r.code != ExitFailed {
		t.Errorf("declined migrate: %+v", r)
	}
	if r := pwb(t, cfg, "sharding", "migrate", "--mode", "freeze", "audit-co"); r.code != ExitUsage {
		t.Errorf("migrate with one argument: exit %d, want usage", r.code)
	}
	if r := pwb(t, cfg, "sharding", "migrate", "--mode", "freeze", "audit-co", "shard_1", "--yes", "--cleanup-delay", "-1s"); r.code != ExitUsage {
		t.Errorf("migrate with a negative --cleanup-delay: exit %d, want usage", r.code)
	}
	wantAudit(t, c)

	// Refused by the pre-flight, with the shards as far as known.
	wantRefused(t, pwb(t, cfg, "sharding", "migrate", "--mode", "freeze", "nobody", "shard_1", "--yes"), "no such tenant")
	wantRefused(t, pwb(t, cfg, "sharding", "migrate", "--mode", "freeze", "audit-co", "default", "--yes"), "already on shard")
	wantRefused(t, pwb(t, cfg, "sharding", "migrate", "--mode", "freeze", "audit-co", "shard_7", "--yes"), "not configured")
	// Done.
	mustPWB(t, cfg, "sharding", "migrate", "--mode", "freeze", "audit-co", "shard_1", "--yes", "--cleanup-delay", "0s")
	// Interrupted by Ctrl-C while copying: failed, with the move's id.
	wantInterrupted(t, pwbInterrupted(t, cfg, "copying", "sharding", "migrate", "--mode", "freeze", "audit-co", "default", "--yes", "--cleanup-delay", "0s"),
		"move 2 failed while copying: interrupted", "finish it with `pwb sharding resume 2`")
	if got := mvWhere(t, c, id); got != "shard_1 read_only" {
		t.Errorf("after the interrupted move the tenant is %q, want read_only on shard_1", got)
	}

	wantAudit(t, c,
		auditLine{audit.Entry{Action: audit.Move, Tenant: "nobody", Target: "shard_1", Outcome: audit.Refused}, `tenant "nobody": no such tenant`},
		auditLine{audit.Entry{Action: audit.Move, WebsiteID: id, Tenant: "audit-co", Source: "default", Target: "default", Outcome: audit.Refused}, `already on shard "default"`},
		auditLine{audit.Entry{Action: audit.Move, WebsiteID: id, Tenant: "audit-co", Source: "default", Target: "shard_7", Outcome: audit.Refused}, `target shard "shard_7" is not configured`},
		auditLine{audit.Entry{Action: audit.Move, WebsiteID: id, Tenant: "audit-co", Source: "default", Target: "shard_1", MoveID: 1, Outcome: audit.Done}, ""},
		auditLine{audit.Entry{Action: audit.Move, WebsiteID: id, Tenant: "audit-co", Source: "shard_1", Target: "default", MoveID: 2, Outcome: audit.Failed}, "move 2 failed while copying: interrupted while copying"},
	)
}

func TestAudit_ResumeAndAbort(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 1)
	cfg := c.ConfigPath
	id := mvTenant(t, c, "resume-co", shard.Default, movertest.Options{Properties: 20, Photos: 2})
	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": cfg}

	// Move 1 stops after freezing and is resumed; move 2 stops after its
	// copy and is aborted.
	wantInterrupted(t, pwbInterrupted(t, cfg, "frozen", "sharding", "migrate", "--mode", "freeze", "resume-co", "shard_1", "--yes"), "move 1 failed")
	mustPWB(t, cfg, "sharding", "resume", "1", "--cleanup-delay", "0s")
	wantRefused(t, pwb(t, cfg, "sharding", "resume", "1"), "already done")
	wantInterrupted(t, pwbInterrupted(t, cfg, "copied", "sharding", "migrate", "--mode", "freeze", "resume-co", "default", "--yes"), "move 2 failed")
	if r := pwbInput(env, "no\n", "sharding", "abort", "2"); r.code != ExitFailed || !strings.Contains(r.stderr, "not confirmed") {
		t.Errorf("declined abort: %+v", r)
	}
	mustPWB(t, cfg, "sharding", "abort", "2", "--yes")
	wantRefused(t, pwb(t, cfg, "sharding", "abort", "2", "--yes"), "already aborted")
	wantRefused(t, pwb(t, cfg, "sharding", "resume", "2"), "already aborted")
	// Moves that do not exist, with and without the confirmation's lookup.
	wantRefused(t, pwb(t, cfg, "sharding", "resume", "77"), "no such move")
	wantRefused(t, pwb(t, cfg, "sharding", "abort", "77", "--yes"), "no such move")
	wantRefused(t, pwb(t, cfg, "sharding", "abort", "78"), "no such move")
	for _, args := range [][]string{{"sharding", "resume", "abc"}, {"sharding", "abort", "-3", "--yes"}, {"sharding", "resume", "1", "--cleanup-delay", "-1s"}} {
		if r := pwb(t, cfg, args...); r.code != ExitUsage {
			t.Errorf("pwb %v: exit %d, want usage", args, r.code)
		}
	}
	if got := mvWhere(t, c, id); got != "shard_1 active" {
		t.Errorf("after the abort the tenant is %q, want active on shard_1", got)
	}

	there := audit.Entry{WebsiteID: id, Tenant: "resume-co", Source: "default", Target: "shard_1", MoveID: 1}
	back := audit.Entry{WebsiteID: id, Tenant: "resume-co", Source: "shard_1", Target: "default", MoveID: 2}
	line := func(e audit.Entry, action, outcome, detail string) auditLine {
		e.Action, e.Outcome = action, outcome
		return auditLine{e, detail}
	}
	wantAudit(t, c,
		line(there, audit.Move, audit.Failed, "move 1 failed while frozen: interrupted"),
		line(there, audit.Resume, audit.Done, ""),
		line(there, audit.Resume, audit.Refused, "move 1 of tenant "),
		line(back, audit.Move, audit.Failed, "move 2 failed while copied: interrupted"),
		line(back, audit.Abort, audit.Done, ""),
		line(back, audit.Abort, audit.Refused, "is already aborted"),
		line(back, audit.Resume, audit.Refused, "is already aborted"),
		line(audit.Entry{Tenant: "move 77", MoveID: 77}, audit.Resume, audit.Refused, "no such move"),
		line(audit.Entry{Tenant: "move 77", MoveID: 77}, audit.Abort, audit.Refused, "no such move"),
		line(audit.Entry{Tenant: "move 78", MoveID: 78}, audit.Abort, audit.Refused, "no such move"),
	)
}
