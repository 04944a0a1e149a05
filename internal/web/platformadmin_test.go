package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// A super-admin sees every page of the platform admin, and moves a
// standard tenant to shard_1 with the "Migrate Database" form: the job
// runs the move to done, and the registry, the journal and the audit log
// say so.
func TestOps_PagesAndAMoveThroughTheForm(t *testing.T) {
	p := newPlatform(t, platformOptions{shards: 1, jobs: true})
	ctx := context.Background()
	acme := p.tenant("acme", shard.Default)
	p.tenant("bravo", "shard_1")
	if err := movertest.Fill(ctx, p.primary, acme.ID, movertest.Options{Properties: 30, Photos: 1}); err != nil {
		t.Fatal(err)
	}
	cookie, csrf := p.superAdmin("ops@example.com")

	for _, path := range []string{"/admin", "/admin/shards", "/admin/tenants", "/admin/tenants?premium=1",
		"/admin/tenants?shard=shard_1&sort=properties&dir=desc", "/admin/tenants?q=acm",
		"/admin/tenants/" + strconv.FormatInt(acme.ID, 10), "/admin/tenants/" + strconv.FormatInt(acme.ID, 10) + "/migrate",
		"/admin/audit"} {
		r := p.get("localhost", path, cookie)
		wantStatus(t, r, http.StatusOK)
	}
	premium := p.get("localhost", "/admin/tenants?premium=1", cookie)
	if strings.Contains(premium.Body, `data-tenant="acme"`) || !strings.Contains(premium.Body, `data-tenant="bravo"`) {
		t.Errorf("premium filter: want bravo only\n%s", excerpt(premium.Body))
	}

	r := p.postForm("localhost", "/admin/tenants/"+strconv.FormatInt(acme.ID, 10)+"/migrate",
		url.Values{"csrf": {csrf}, "target": {"shard_1"}}, cookie)
	wantStatus(t, r, http.StatusSeeOther)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, "/admin/moves/") {
		t.Fatalf("redirected to %q, want the move's page", loc)
	}
	moveID := strings.TrimSuffix(strings.TrimPrefix(loc, "/admin/moves/"), "?done=queued")
	wantStatus(t, p.get("localhost", "/admin/moves/"+moveID, cookie), http.StatusOK)

	deadline := time.Now().Add(60 * time.Second)
	var prog moveProgress
	for time.Now().Before(deadline) {
		r := p.get("localhost", "/admin/moves/"+moveID+"/progress", cookie)
		wantStatus(t, r, http.StatusOK)
		if err := json.Unmarshal([]byte(r.Body), &prog); err != nil {
			t.Fatal(err)
		}
		if prog.Ended() {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !prog.Done || prog.Percent != 100 {
		t.Fatalf("move ended as %+v; want done at 100%%\nlog:\n%s", prog, p.log.String())
	}
	w, err := registry.Get(ctx, p.primary, acme.ID)
	if err != nil || w.ShardName != "shard_1" || w.Status != registry.StatusActive {
		t.Fatalf("after the move: %+v, %v; want active on shard_1", w, err)
	}
	audit := p.get("localhost", "/admin/audit", cookie)
	if !strings.Contains(audit.Body, `data-action="move" data-outcome="done"`) || !strings.Contains(audit.Body, `data-action="move" data-outcome="queued"`) {
		t.Errorf("audit log lacks the move's queued and done lines:\n%s", excerpt(audit.Body))
	}
	wantStatus(t, p.get("localhost", "/admin/tenants/"+strconv.FormatInt(acme.ID, 10), cookie), http.StatusOK)
}

// A move's live progress is a stream that lasts as long as the move; a
// graceful shutdown ends it at once instead of waiting out its grace
// period, and the stream's first event is the move's progress.
func TestOps_EventsStreamEndsOnShutdown(t *testing.T) {
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := context.Background()
	acme := p.tenant("acme", shard.Default)
	id := p.plannedMove(t, "acme", "shard_1")
	cookie, _ := p.superAdmin("ops@example.com")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- Serve(sctx, ln, p.server) }()

	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/admin/moves/"+strconv.FormatInt(id, 10)+"/events", nil)
	req.Host = "localhost"
	req.AddCookie(cookie)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("events: status %d, content type %q", res.StatusCode, ct)
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var prog moveProgress
	if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(line), "data: ")), &prog); err != nil {
		t.Fatalf("first event %q: %v", line, err)
	}
	if prog.ID != id || prog.WebsiteID != acme.ID || prog.State != journal.StatePlanned || prog.Ended() {
		t.Errorf("first event = %+v; want move %d planned", prog, id)
	}

	start := time.Now()
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v; want a clean shutdown", err)
		}
		if took := time.Since(start); took > ShutdownGrace/2 {
			t.Errorf("shutdown took %s with a stream open", took)
		}
	case <-time.After(ShutdownGrace + 5*time.Second):
		t.Fatal("Serve did not return")
	}
}

// When the journal cannot be read, the live progress stream says so and
// keeps showing the move as last read: it never streams an empty move
// (id 0, "problem") in its place, and it picks up again once the journal
// can be read.
func TestOps_EventsStreamKeepsTheMoveWhenAReadFails(t *testing.T) {
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := context.Background()
	p.tenant("acme", shard.Default)
	id := p.plannedMove(t, "acme", "shard_1")
	cookie, _ := p.superAdmin("ops@example.com")
	req, _ := http.NewRequest(http.MethodGet, p.http.URL+"/admin/moves/"+strconv.FormatInt(id, 10)+"/events", nil)
	req.Host = "localhost"
	req.AddCookie(cookie)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(rctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := make(chan string, 64)
	go func() {
		defer close(events)
		r := bufio.NewReader(res.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line = strings.TrimSpace(line); line != "" {
				events <- line
			}
		}
	}()
	next := func(want string) string {
		t.Helper()
		for {
			select {
			case line, ok := <-events:
				if !ok {
					t.Fatalf("the stream ended while waiting for %q", want)
				}
				if strings.HasPrefix(line, "data: {") {
					var prog moveProgress
					if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &prog); err != nil || prog.ID != id {
						t.Fatalf("event %q: %v; want move %d", line, err, id)
					}
				}
				if strings.Contains(line, want) {
					return line
				}
			case <-rctx.Done():
				t.Fatalf("no event containing %q", want)
			}
		}
	}
	next(`"state":"planned"`)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := p.primary.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec("ALTER TABLE move_tables RENAME TO move_tables_away")
	next("event: problem")
	next("The journal could not be read")
	exec("ALTER TABLE move_tables_away RENAME TO move_tables")
	// The stream goes on with the journal's news, for the same move.
	exec("UPDATE move_tables SET rows_copied = 7 WHERE move_id = $1 AND table_name = 'agencies'", id)
	next(`"rows_copied":7`)
}

// The migrate form promises "writes blocked for under a second" only when
// the move will be online, and says why not otherwise; a move started from
// it runs online, and its page then shows the mode, the whole time and the
// blocked time.
func TestOps_OnlineMoveThroughTheForm(t *testing.T) {
	p := newPlatform(t, platformOptions{shards: 1, jobs: true})
	ctx := context.Background()
	acme := p.tenant("acme", shard.Default)
	bravo := p.tenant("bravo", "shard_1")
	if err := movertest.Fill(ctx, p.primary, acme.ID, movertest.Options{Properties: 30, Photos: 1}); err != nil {
		t.Fatal(err)
	}
	// shard_1's server has no replication slot to spare.
	for i := range 9 {
		pgtest.Exec(t, p.cluster.URL["shard_1"], fmt.Sprintf("SELECT pg_create_physical_replication_slot('spare_%d')", i))
	}
	cookie, csrf := p.superAdmin("ops@example.com")
	online := p.get("localhost", "/admin/tenants/"+strconv.FormatInt(acme.ID, 10), cookie)
	if !strings.Contains(online.Body, "writes blocked for under a second") || strings.Contains(online.Body, "will be <b>read-only</b>") {
		t.Errorf("the form for a tenant on default should promise an online move:\n%s", excerpt(online.Body))
	}
	freeze := p.get("localhost", "/admin/tenants/"+strconv.FormatInt(bravo.ID, 10)+"/migrate", cookie)
	if strings.Contains(freeze.Body, "writes blocked for under a second") || !strings.Contains(freeze.Body, "will be <b>read-only</b>") ||
		!strings.Contains(freeze.Body, "Not an online move: 9 of 10 replication slots are in use on shard") {
		t.Errorf("the form for a tenant on a shard without spare slots should say it will be read-only, and why:\n%s", excerpt(freeze.Body))
	}

	r := p.postForm("localhost", "/admin/tenants/"+strconv.FormatInt(acme.ID, 10)+"/migrate",
		url.Values{"csrf": {csrf}, "target": {"shard_1"}}, cookie)
	wantStatus(t, r, http.StatusSeeOther)
	moveID := strings.TrimSuffix(strings.TrimPrefix(r.Header.Get("Location"), "/admin/moves/"), "?done=queued")
	var prog moveProgress
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		res := p.get("localhost", "/admin/moves/"+moveID+"/progress", cookie)
		if err := json.Unmarshal([]byte(res.Body), &prog); err != nil {
			t.Fatal(err)
		}
		if prog.Ended() {
			break
		}
	}
	if !prog.Done || prog.Mode != journal.ModeOnline || !strings.HasPrefix(prog.Detail, "Took ") || !strings.Contains(prog.Detail, "; writes blocked for ") {
		t.Fatalf("move ended as %+v; want done online, with its times\nlog:\n%s", prog, p.log.String())
	}
	page := p.get("localhost", "/admin/moves/"+moveID, cookie)
	if !strings.Contains(page.Body, "(online mode)") || !strings.Contains(page.Body, prog.Detail) {
		t.Errorf("the move page lacks the mode or the times:\n%s", excerpt(page.Body))
	}
}

// plannedMove records a freeze move of tenant sub to target, and runs
// none of it.
func (p *platform) plannedMove(t *testing.T, sub, target string) int64 {
	t.Helper()
	m, err := mover.New(p.set, mover.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := m.Plan(context.Background(), sub, target, journal.ModeFreeze)
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Start(context.Background(), plan, "test")
	if err != nil {
		t.Fatal(err)
	}
	return id
}
