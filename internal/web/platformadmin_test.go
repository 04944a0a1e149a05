package web

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/ops"
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
	// The tenant's page links to its site and site admin, on the admin's
	// own host.
	page := p.get("localhost:3000", "/admin/tenants/"+strconv.FormatInt(acme.ID, 10), cookie)
	for _, link := range []string{`href="http://acme.localhost:3000/" data-site-link`, `href="http://acme.localhost:3000/site_admin/login" data-site-admin-link`} {
		if !strings.Contains(page.Body, link) {
			t.Errorf("tenant page lacks %s", link)
		}
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
	if !prog.Done || prog.Mode != journal.ModeOnline || prog.Took == "" || prog.Blocked == "" {
		t.Fatalf("move ended as %+v; want done online, with its times\nlog:\n%s", prog, p.log.String())
	}
	page := p.get("localhost", "/admin/moves/"+moveID, cookie)
	if !strings.Contains(page.Body, "(online mode)") || !strings.Contains(page.Body, "<b>"+prog.Took+"</b>") ||
		!strings.Contains(page.Body, "<dt>Writes held</dt>") || !strings.Contains(page.Body, "<b>"+prog.Blocked+"</b> <span class=\"small muted\">at the cut-over") {
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

// setOwnHealth gives s poller as its own health poller, started on the
// first platform admin request like the one New makes. Call it before any.
func (s *Server) setOwnHealth(poller *ops.Poller) { s.setHealth(poller, true) }

// setHealth gives s poller as its health poller; one it does not own it
// never starts.
func (s *Server) setHealth(poller *ops.Poller, own bool) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.health, s.ownHealth, s.healthStarted = poller, own, false
}

// fastHealth gives p's server a health poller that checks every shard
// every 200 ms and gathers the figures every second, instead of every 5 and
// 60 seconds, so tests wait for it briefly. Call it before any platform
// admin request.
func (p *platform) fastHealth() {
	p.server.setOwnHealth(ops.NewPoller(p.set, p.primary, ops.PollerOptions{
		Interval: 200 * time.Millisecond, FiguresInterval: time.Second, Timeout: time.Second}))
}

// healthRound starts the server's health poller if it is not running and
// waits until it has finished a health round begun after the call, and,
// with figures, a figures round too: what the admin shows of the shards is
// then at least as new as the call.
func (p *platform) healthRound(t testing.TB, figures bool) ops.Snapshot {
	t.Helper()
	poller := p.server.poller()
	then := poller.Snapshot()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := poller.Wait(ctx, func(s ops.Snapshot) bool {
		// The round running now may have begun before the call: the one
		// after it has not.
		return s.Round >= then.Round+2 && (!figures || s.FiguresRound >= then.FiguresRound+2)
	})
	if err != nil {
		t.Fatalf("waiting for the health poller: %v (it is at %+v)", err, poller.Snapshot())
	}
	return poller.Snapshot()
}

// The dashboard's filters, summary and pages, drawn from a snapshot of 100
// shards in every state: worst first, then by name with numbers in order;
// filters and pages kept in the refresh address; nonsense in the query
// dropped with a notice.
func TestOps_DashboardOverview(t *testing.T) {
	now := time.Now()
	snap := ops.Snapshot{At: now, FiguresAt: now.Add(-40 * time.Second)}
	states := map[int]string{3: ops.Red, 50: ops.Red, 7: ops.Amber, 10: ops.Checking, 11: ops.Checking}
	for i := 1; i <= 100; i++ {
		c := ops.Card{Name: fmt.Sprintf("shard_%d", i), Configured: true, Health: ops.Green, CheckedAt: now.Add(-3 * time.Second)}
		if st, ok := states[i]; ok {
			c.Health = st
		}
		if c.Health == ops.Checking {
			c.CheckedAt = time.Time{}
		}
		snap.Shards = append(snap.Shards, c)
	}
	snap.Shards = append(snap.Shards, ops.Card{Name: "shard_900", Health: ops.Red, Error: "not in the configuration"})
	names := func(o opsOverview) []string {
		var out []string
		for _, c := range o.Cards {
			out = append(out, c.Name)
		}
		return out
	}
	q := func(raw string) url.Values {
		v, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	o := overview(url.Values{}, snap)
	if got := names(o)[:7]; !slices.Equal(got, []string{"shard_3", "shard_50", "shard_900", "shard_7", "shard_10", "shard_11", "shard_1"}) {
		t.Errorf("first cards %v: want red, not configured, amber, checking, then green by number", got)
	}
	if len(o.Cards) != opsCardsPerPage || o.Page != 1 || o.Pages != 5 || o.Matched != 101 || o.All != 101 || o.Prev != "" ||
		o.Next != "/admin?page=2" || o.Refresh != "/admin/shards" || len(o.Notices) != 0 || o.From != 1 || o.To() != 24 {
		t.Errorf("first page: %d cards, page %d of %d, %d matched, prev %q next %q refresh %q, notices %v, %d–%d",
			len(o.Cards), o.Page, o.Pages, o.Matched, o.Prev, o.Next, o.Refresh, o.Notices, o.From, o.To())
	}
	var summary []string
	for _, c := range o.Summary {
		summary = append(summary, fmt.Sprintf("%s:%d", c.State, c.Count))
	}
	if want := []string{"red:2", "unconfigured:1", "amber:1", "checking:2", "green:95"}; !slices.Equal(summary, want) {
		t.Errorf("summary %v, want %v, worst first", summary, want)
	}
	if c := o.Cards[4]; c.Label != "Checking…" || c.Checked != "not checked yet" || !c.Checking() {
		t.Errorf("a shard not checked yet: %+v", c)
	}
	if c := o.Cards[6]; c.Label != "Healthy" || c.Checked != "checked 3 s ago" {
		t.Errorf("a green shard: label %q, %q", c.Label, c.Checked)
	}
	if c := o.Cards[2]; c.Label != "Not configured" || c.Health != ops.Red {
		t.Errorf("the unconfigured shard: %+v", c)
	}
	if !o.FiguresReady || o.FiguresAge != "40 s ago" {
		t.Errorf("figures ready %v, %q", o.FiguresReady, o.FiguresAge)
	}

	o = overview(q("state=green&q=SHARD_1&page=2"), snap)
	// green shards whose name holds shard_1: 1, 12-19, 100, 10-19 less
	// 10 and 11 (checking): shard_1, shard_12..shard_19, shard_100: 10.
	if o.Matched != 10 || o.Pages != 1 || o.Page != 1 || len(o.Notices) != 1 || !strings.Contains(o.Notices[0], "only 1 page") {
		t.Errorf("green shard_1*, page 2: %d matched, page %d of %d, notices %v; want 10 on the one page, and a notice", o.Matched, o.Page, o.Pages, o.Notices)
	}
	if o.Refresh != "/admin/shards?q=SHARD_1&state=green" || o.State != ops.Green || o.Q != "SHARD_1" {
		t.Errorf("refresh %q, state %q, q %q", o.Refresh, o.State, o.Q)
	}
	if got := names(o); !slices.Equal(got, []string{"shard_1", "shard_12", "shard_13", "shard_14", "shard_15", "shard_16", "shard_17", "shard_18", "shard_19", "shard_100"}) {
		t.Errorf("green shard_1*: %v", got)
	}
	o = overview(q("page=3&state=green"), snap)
	if o.Page != 3 || o.Prev != "/admin?page=2&state=green" || o.Next != "/admin?page=4&state=green" || o.Refresh != "/admin/shards?page=3&state=green" ||
		names(o)[0] != "shard_54" {
		t.Errorf("green, page 3: page %d, prev %q, next %q, refresh %q, first %s", o.Page, o.Prev, o.Next, o.Refresh, names(o)[0])
	}

	for raw, notice := range map[string]string{
		"state=bogus":                   `There is no shard state "bogus"`,
		"state=%3Cscript%3E":            `There is no shard state "<script>"`,
		"page=0":                        `There is no page "0"`,
		"page=-1":                       `There is no page "-1"`,
		"page=abc":                      `There is no page "abc"`,
		"page=99999999999999999999":     `There is no page "99999999999999999999"`,
		"page=1000000":                  "There are only 5 pages of shards, so the last one is shown.",
		"q=" + strings.Repeat("x", 101): "A search is at most 100 characters long",
	} {
		o := overview(q(raw), snap)
		if len(o.Notices) != 1 || !strings.Contains(o.Notices[0], notice) {
			t.Errorf("%s: notices %v, want %q", clip(raw, 30), o.Notices, notice)
		}
		if o.Matched != 101 || len(o.Cards) == 0 {
			t.Errorf("%s: %d matched, %d cards; want every shard", clip(raw, 30), o.Matched, len(o.Cards))
		}
		if strings.Contains(o.Refresh, "bogus") || strings.Contains(o.Refresh, "xxx") || strings.Contains(o.Refresh, "page=0") {
			t.Errorf("%s: refresh %q keeps what was dropped", clip(raw, 30), o.Refresh)
		}
	}
	if o := overview(q("page=1000000"), snap); o.Page != 5 || o.Refresh != "/admin/shards?page=5" || len(o.Cards) != 5 {
		t.Errorf("page 1000000: page %d, refresh %q, %d cards; want the last page", o.Page, o.Refresh, len(o.Cards))
	}
	if o := overview(q("q="+strings.Repeat("é", 100)), snap); len(o.Notices) != 0 || o.Matched != 0 {
		t.Errorf("a search of 100 characters (200 bytes): notices %v, %d matched", o.Notices, o.Matched)
	}
	// Before the first rounds.
	o = overview(url.Values{}, ops.Snapshot{At: now, Shards: []ops.Card{{Name: "default", Configured: true, Health: ops.Checking}}})
	if o.FiguresReady || len(o.Cards) != 1 || o.Cards[0].Label != "Checking…" {
		t.Errorf("before any round: figures ready %v, cards %+v", o.FiguresReady, o.Cards)
	}
}

// The dashboard and its refresh fragment, served: a shard not checked yet
// is "Checking…", never down, and is not offered as a move's target; then,
// checked, every shard is green with its figures; filters show on the page
// and in its refresh address; nonsense in the query gives the page with a
// notice.
func TestOps_DashboardServed(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 2, jobs: true})
	acme := p.tenant("acme", shard.Default)
	p.tenant("bravo", "shard_1")
	cookie, _ := p.superAdmin("ops@example.com")

	// A poller that never runs: every shard stays as it was before the
	// first round.
	p.server.setHealth(ops.NewPoller(p.set, p.primary, ops.PollerOptions{}), false)
	dash := p.get("localhost", "/admin", cookie)
	wantStatus(t, dash, http.StatusOK)
	if n := strings.Count(dash.Body, `data-health="checking"`); n != 3 || strings.Contains(dash.Body, `class="health red"`) ||
		!strings.Contains(dash.Body, `<span class="health checking">Checking…</span>`) || !strings.Contains(dash.Body, `data-figures="gathering"`) ||
		!strings.Contains(dash.Body, "gathering…") || !strings.Contains(dash.Body, "not checked yet") {
		t.Errorf("before the first round: %d cards checking, want 3, none down, totals gathering\n%s", n, excerpt(dash.Body))
	}
	form := p.get("localhost", "/admin/tenants/"+strconv.FormatInt(acme.ID, 10)+"/migrate", cookie)
	wantStatus(t, form, http.StatusOK)
	if !strings.Contains(form.Body, `<option value="shard_1" disabled data-tier="premium">shard_1 — checking</option>`) || !strings.Contains(form.Body, "data-checking") {
		t.Errorf("the migrate form does not show a shard not checked yet as checking, or does not say why:\n%s", excerpt(form.Body))
	}

	p.fastHealth()
	p.healthRound(t, true)
	dash = p.get("localhost", "/admin", cookie)
	wantStatus(t, dash, http.StatusOK)
	if n := strings.Count(dash.Body, `data-health="green"`); n != 3 || !strings.Contains(dash.Body, `data-figures="ready"`) ||
		!regexp.MustCompile(`data-state-count="green"[^>]*><b>3</b>`).MatchString(dash.Body) ||
		!regexp.MustCompile(`data-field="checked">checked (just now|\d+ s ago)<`).MatchString(dash.Body) ||
		!regexp.MustCompile(`data-field="figures-age">as of (just now|\d+ s ago)<`).MatchString(dash.Body) {
		t.Errorf("checked: %d green cards, want 3, with their freshness and the totals' age\n%s", n, excerpt(dash.Body))
	}
	// Each card's tenant count leads to the tenant list of that shard.
	if !strings.Contains(dash.Body, `<a href="/admin/tenants?shard=shard_1" data-tenants-link>1 (0 standard, 1 premium)</a>`) {
		t.Errorf("shard_1's card does not link its tenants to the list filtered to it\n%s", excerpt(dash.Body))
	}
	form = p.get("localhost", "/admin/tenants/"+strconv.FormatInt(acme.ID, 10)+"/migrate", cookie)
	if !strings.Contains(form.Body, `<option value="shard_1" data-tier="premium">shard_1</option>`) ||
		!strings.Contains(form.Body, `<option value="shard_2" data-tier="premium">shard_2</option>`) || strings.Contains(form.Body, "data-checking") {
		t.Errorf("the migrate form once every shard is checked:\n%s", excerpt(form.Body))
	}

	filtered := p.get("localhost", "/admin?state=green&q=shard_", cookie)
	wantStatus(t, filtered, http.StatusOK)
	if !strings.Contains(filtered.Body, `data-refresh="/admin/shards?q=shard_&amp;state=green"`) || strings.Contains(filtered.Body, `data-shard="default"`) ||
		!strings.Contains(filtered.Body, `data-shard="shard_1"`) || !strings.Contains(filtered.Body, `<option value="green" selected>`) ||
		!strings.Contains(filtered.Body, `value="shard_"`) {
		t.Errorf("filtered to green shard_*: the page or its refresh address lacks the filters\n%s", excerpt(filtered.Body))
	}
	fragment := p.get("localhost", "/admin/shards?state=green&q=shard_", cookie)
	wantStatus(t, fragment, http.StatusOK)
	if strings.Contains(fragment.Body, "<html") || strings.Contains(fragment.Body, `data-shard="default"`) || strings.Count(fragment.Body, `data-health="green"`) != 2 {
		t.Errorf("the refresh fragment, filtered: want shard_1 and shard_2 alone, without the layout\n%s", excerpt(fragment.Body))
	}
	for _, c := range []struct{ query, notice string }{
		{"state=down", `There is no shard state &#34;down&#34;`},
		{"page=0", `There is no page &#34;0&#34;`},
		{"page=-1", `There is no page &#34;-1&#34;`},
		{"page=99999999999999999999", `There is no page`},
		{"page=7", "There is only 1 page of shards, so the last one is shown."},
		{"q=" + strings.Repeat("a", 101), "A search is at most 100 characters long"},
		{"state=%3Cscript%3Ealert(1)%3C/script%3E", `There is no shard state &#34;&lt;script&gt;alert(1)&lt;/script&gt;&#34;`},
	} {
		for _, path := range []string{"/admin?", "/admin/shards?"} {
			r := p.get("localhost", path+c.query, cookie)
			if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, c.notice) || strings.Count(r.Body, "data-health=") != 3 || strings.Contains(r.Body, "<script>alert") {
				t.Errorf("%s%s: status %d; want the page with every shard and the notice %q\n%s", path, clip(c.query, 40), r.StatusCode, c.notice, excerpt(r.Body))
			}
		}
	}
}

// The tenant list pages the registry on primary: each page reads the
// property counts of its own tenants, live; sorted by properties it uses
// the health poller's background counts instead and says how old they
// are, or, before they are gathered, sorts by name and says why.
func TestOps_TenantList(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 2})
	ctx := context.Background()
	props := map[string]int{}
	var names []string
	for i := range 30 {
		sub := fmt.Sprintf("t%02d", i)
		sh := []string{shard.Default, "shard_1", "shard_2"}[i%3]
		tier := registry.TierPremium
		if sh == shard.Default {
			tier = registry.TierStandard
		}
		// Names in another order than the subdomains, in both cases.
		name := fmt.Sprintf("%c%s Homes", "abcdefghijklmnopqrstuvwxyzABCD"[(i*7)%30], sub)
		nw := registry.New{Subdomain: sub, Name: name, Tier: tier, ShardName: sh}
		if i == 5 {
			nw.CustomDomain = "www.five-estates.example"
		}
		w, err := registry.Create(ctx, p.primary, nw)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		if n := (i * 5) % 17; n > 0 {
			pool, err := p.set.Pool(sh)
			if err != nil {
				t.Fatal(err)
			}
			if err := movertest.Fill(ctx, pool, w.ID, movertest.Options{Properties: n}); err != nil {
				t.Fatal(err)
			}
			props[sub] = n
		}
	}
	cookie, _ := p.superAdmin("ops@example.com")
	// A poller that has not gathered anything yet.
	p.server.setHealth(ops.NewPoller(p.set, p.primary, ops.PollerOptions{}), false)
	rowRE := regexp.MustCompile(`(?s)<tr data-tenant="([^"]+)">.*?<td data-field="properties"[^>]*>([^<]*)<`)
	list := func(path string) (subs []string, counts map[string]string, body string) {
		t.Helper()
		r := p.get("localhost", path, cookie)
		wantStatus(t, r, http.StatusOK)
		counts = map[string]string{}
		for _, m := range rowRE.FindAllStringSubmatch(r.Body, -1) {
			subs = append(subs, m[1])
			counts[m[1]] = m[2]
		}
		return subs, counts, r.Body
	}
	bySub := func(subs []string) []string {
		out := slices.Clone(subs)
		slices.Sort(out)
		return out
	}

	// By name (case does not matter), 25 a page, each with its count read
	// live.
	first, counts, body := list("/admin/tenants")
	second, _, _ := list("/admin/tenants?page=2")
	all := append(first, second...)
	sorted := slices.Clone(names)
	slices.SortFunc(sorted, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	var wantOrder []string
	for _, n := range sorted {
		wantOrder = append(wantOrder, strings.Fields(n)[0][1:])
	}
	if len(first) != opsPerPage || len(second) != 5 || !slices.Equal(all, wantOrder) || !strings.Contains(body, "30 shown") {
		t.Errorf("by name: %v then %v; want %v, 25 a page, 30 shown", first, second, wantOrder)
	}
	for _, sub := range first {
		if want := strconv.Itoa(props[sub]); counts[sub] != want {
			t.Errorf("%s: %q properties, want %s", sub, counts[sub], want)
		}
	}
	if subs, _, _ := list("/admin/tenants?sort=subdomain&dir=desc"); subs[0] != "t29" || subs[24] != "t05" {
		t.Errorf("by subdomain, descending: %v", subs)
	}
	if subs, _, _ := list("/admin/tenants?sort=shard&page=2"); !slices.Equal(subs, []string{"t17", "t20", "t23", "t26", "t29"}) {
		t.Errorf("by shard, page 2: %v; want the last five of shard_2, by id", subs)
	}
	if subs, _, _ := list("/admin/tenants?premium=1&shard=shard_1&sort=id"); !slices.Equal(subs, []string{"t01", "t04", "t07", "t10", "t13", "t16", "t19", "t22", "t25", "t28"}) {
		t.Errorf("premium on shard_1 by id: %v", subs)
	}
	for q, want := range map[string][]string{"T1": {"t10", "t11", "t12", "t13", "t14", "t15", "t16", "t17", "t18", "t19"}, "five-est": {"t05"}, "Homes": first, "nobody": nil} {
		if subs, _, _ := list("/admin/tenants?q=" + url.QueryEscape(q)); !slices.Equal(bySub(subs), bySub(want)) {
			t.Errorf("search %q: %v, want %v", q, subs, want)
		}
	}
	if _, _, body := list("/admin/tenants?q=" + strings.Repeat("x", 101)); !strings.Contains(body, "A search is at most 100 characters long") || !strings.Contains(body, "30 shown") {
		t.Errorf("an over-long search: want every tenant and a notice\n%s", excerpt(body))
	}

	// By properties, before any figures: by name, with a notice.
	subs, _, body := list("/admin/tenants?sort=properties&dir=desc")
	if !slices.Equal(subs, first) || !strings.Contains(body, "still being gathered") || strings.Contains(body, `data-field="counts-age"`) {
		t.Errorf("by properties before the figures: %v; want by name, with a notice\n%s", subs, excerpt(body))
	}
	// Once gathered: by the background counts, most first, ties by id
	// (descending too), with their age.
	p.fastHealth()
	p.healthRound(t, true)
	subs, counts, body = list("/admin/tenants?sort=properties&dir=desc")
	type row struct {
		sub string
		n   int
	}
	var rows []row
	for i := range 30 {
		sub := fmt.Sprintf("t%02d", i)
		rows = append(rows, row{sub, props[sub]})
	}
	slices.SortStableFunc(rows, func(a, b row) int { return -cmp.Or(cmp.Compare(a.n, b.n), strings.Compare(a.sub, b.sub)) })
	var want []string
	for _, r := range rows[:opsPerPage] {
		want = append(want, r.sub)
	}
	if !slices.Equal(subs, want) || !strings.Contains(body, `data-field="counts-age"`) || strings.Contains(body, "still being gathered") {
		t.Errorf("by properties: %v, want %v, with the counts' age\n%s", subs, want, excerpt(body))
	}
	for _, sub := range subs {
		if want := strconv.Itoa(props[sub]); counts[sub] != want {
			t.Errorf("by properties, %s: %q, want %s", sub, counts[sub], want)
		}
	}
}

// spoilShards leaves shard_2 with a tenant migration pending and shard_3's
// server stopped, and waits until the health poller has seen both: two
// shards that cannot take a move.
func (p *platform) spoilShards(t *testing.T) {
	t.Helper()
	pgtest.Exec(t, p.cluster.URL["shard_2"], "UPDATE pwb_tenant_schema_version SET is_applied = false WHERE version_id = $1",
		migrations.Tenant.Latest())
	// A fast shutdown: test servers do not sync commits.
	if err := p.cluster.Servers[3].Stop(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := p.server.poller().Wait(ctx, func(s ops.Snapshot) bool {
		two, _ := s.Card("shard_2")
		three, _ := s.Card("shard_3")
		// The round that meets the server going down may see its
		// connection killed rather than refused.
		return two.Pending == 1 && three.Health == ops.Red && three.Why == "unreachable"
	})
	if err != nil {
		t.Fatalf("the health poller does not see shard_2's pending migration and shard_3 down: %v", err)
	}
}

// waitForMove waits up to a minute for move id to end, and returns it.
func (p *platform) waitForMove(t *testing.T, id int64) journal.Move {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := journal.Get(context.Background(), p.primary, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Finished() || m.State == journal.StateFailed || time.Now().After(deadline) {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The migrate form lists every shard, and says why each that cannot take
// the move cannot; posting one of those anyway is refused and changes
// nothing, and so is a tier box that is not the one the target calls for.
// Ticked, the tier changes with the move's start, in the same step, and
// the audit log says so; unticked, the tier stays.
func TestOps_MigrateChoicesAndTier(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 3, jobs: true})
	p.fastHealth()
	ctx := context.Background()
	prestige := p.tenant("prestige", "shard_1") // premium
	acme := p.tenant("acme", shard.Default)     // standard
	bravo := p.tenant("bravo", shard.Default)   // standard
	odd, err := registry.Create(ctx, p.primary, registry.New{Subdomain: "odd", Name: "Odd Homes", Tier: registry.TierPremium, ShardName: shard.Default})
	if err != nil {
		t.Fatal(err)
	}
	shard1, err := p.set.Pool("shard_1")
	if err != nil {
		t.Fatal(err)
	}
	if err := movertest.Fill(ctx, shard1, prestige.ID, movertest.Options{Properties: 30, Photos: 1}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []registry.Website{acme, bravo} {
		if err := movertest.Fill(ctx, p.primary, w.ID, movertest.Options{Properties: 20, Photos: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// Rows of acme where no move put them: its pre-flight onto shard_1
	// refuses.
	if err := movertest.Fill(ctx, shard1, acme.ID, movertest.Options{Properties: 1, Photos: 1}); err != nil {
		t.Fatal(err)
	}
	cookie, csrf := p.superAdmin("ops@example.com")
	p.spoilShards(t)
	id := func(w registry.Website) string { return strconv.FormatInt(w.ID, 10) }

	// Every shard is listed; those that cannot take the move are disabled
	// with why. For a premium tenant, default calls for the standard tier.
	form := p.get("localhost", "/admin/tenants/"+id(prestige)+"/migrate", cookie)
	paWantStatus(t, "prestige's form", form, http.StatusOK,
		`<option value="default" data-tier="standard">default</option>`,
		`<option value="shard_1" disabled>shard_1 — current shard</option>`,
		`<option value="shard_2" disabled>shard_2 — 1 migration pending</option>`,
		`<option value="shard_3" disabled>shard_3 — unreachable: `,
		`data-tier-warning`, `<input type="checkbox" name="tier" value="standard" data-tier-box>`,
		"Left unticked, the tenant moves and stays premium.")
	// A standard tenant is warned about every dedicated shard.
	form = p.get("localhost", "/admin/tenants/"+id(bravo)+"/migrate", cookie)
	paWantStatus(t, "bravo's form", form, http.StatusOK, `<option value="shard_1" data-tier="premium">shard_1</option>`,
		`<option value="default" disabled>default — current shard</option>`, `name="tier" value="premium"`)
	// A premium tenant on default may go to any dedicated shard as it is.
	form = p.get("localhost", "/admin/tenants/"+id(odd)+"/migrate", cookie)
	paWantStatus(t, "odd's form", form, http.StatusOK, `<option value="shard_1">shard_1</option>`)
	if strings.Contains(form.Body, "data-tier-warning") {
		t.Errorf("the form warns a premium tenant moving to a dedicated shard:\n%s", excerpt(form.Body))
	}

	// A refusal in the current state is a 409, like every refusal; a tier
	// that cannot be is bad input, a 422.
	const refused, invalid = http.StatusConflict, http.StatusUnprocessableEntity
	for _, c := range []struct {
		name   string
		w      registry.Website
		form   url.Values
		status int
		text   []string
	}{
		{"a shard with a migration pending", prestige, url.Values{"target": {"shard_2"}}, refused,
			[]string{"The move was refused, and nothing was changed: shard \"shard_2\" cannot take it (1 migration pending)."}},
		{"a shard that is down", prestige, url.Values{"target": {"shard_3"}}, refused,
			[]string{"The move was refused, and nothing was changed: shard \"shard_3\" cannot take it (unreachable: "}},
		{"its own shard, with the tier box", prestige, url.Values{"target": {"shard_1"}, "tier": {"standard"}}, refused,
			[]string{`shard "shard_1" cannot take it (current shard)`}},
		{"a tier that does not exist", prestige, url.Values{"target": {"default"}, "tier": {"gold"}}, invalid,
			[]string{`There is no tier "gold": a tenant is standard or premium. Nothing was changed.`}},
		{"a tier of nonsense", prestige, url.Values{"target": {"default"}, "tier": {"<script>" + strings.Repeat("x", 100)}}, invalid,
			[]string{`There is no tier "<script>xxxx`, "Nothing was changed."}},
		{"the tier it has", prestige, url.Values{"target": {"default"}, "tier": {"premium"}}, invalid,
			[]string{"Prestige Homes is premium already, so there is no tier to change. Nothing was changed."}},
		{"a tier the target does not call for", odd, url.Values{"target": {"shard_1"}, "tier": {"standard"}}, invalid,
			[]string{"Odd Homes stays premium on shard_1: its tier changes to standard only with a move onto default, the shared shard.", "Nothing was changed."}},
		{"the tier box, with a move the pre-flight refuses", acme, url.Values{"target": {"shard_1"}, "tier": {"premium"}}, refused,
			[]string{"The move was refused, and nothing was changed", `already holds rows of tenant ` + id(acme)}},
	} {
		before := paSnapshot(t, p)
		c.form.Set(opsCSRFField, csrf)
		r := p.postForm("localhost", "/admin/tenants/"+id(c.w)+"/migrate", c.form, cookie)
		paWantStatus(t, c.name, r, c.status, c.text...)
		if strings.Contains(r.Body, "<script>x") {
			t.Errorf("%s: the refusal shows what was posted unescaped", c.name)
		}
		paWantUnchanged(t, p, c.name, before)
	}
	// The refused form keeps the choice and the ticked box.
	r := p.postForm("localhost", "/admin/tenants/"+id(prestige)+"/migrate", url.Values{opsCSRFField: {csrf}, "target": {"default"}, "tier": {"gold"}}, cookie)
	paWantStatus(t, "the refused form", r, http.StatusUnprocessableEntity, `<option value="default" selected data-tier="standard">`,
		`name="tier" value="standard" data-tier-box checked>`)
	// The shards refused by the form are in the audit log, with why.
	if n := pgtest.QueryValue[int64](t, p.cluster.URL[shard.Default], `SELECT count(*) FROM audit_log WHERE action = 'move'
		AND outcome = 'refused' AND website_id = $1 AND (detail LIKE '%(1 migration pending)%' OR detail LIKE '%(unreachable: %')`, prestige.ID); n != 2 {
		t.Errorf("audit lines of the moves refused for shard_2 and shard_3: %d, want 2", n)
	}

	// Ticked: the tier changes as the move is queued, before it runs.
	r = p.postForm("localhost", "/admin/tenants/"+id(prestige)+"/migrate",
		url.Values{opsCSRFField: {csrf}, "target": {"default"}, "tier": {"standard"}}, cookie)
	m := paMoveLocation.FindStringSubmatch(r.Header.Get("Location"))
	if r.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("moving prestige to default with its tier: status %d to %q\n%s", r.StatusCode, r.Header.Get("Location"), excerpt(r.Body))
	}
	moved, _ := strconv.ParseInt(m[1], 10, 64)
	if w, err := registry.Get(ctx, p.primary, prestige.ID); err != nil || w.Tier != registry.TierStandard {
		t.Errorf("prestige once its move is queued: %+v, %v; want standard", w, err)
	}
	if n := pgtest.QueryValue[int64](t, p.cluster.URL[shard.Default], `SELECT count(*) FROM audit_log WHERE action = 'move'
		AND outcome = 'queued' AND move_id = $1 AND actor = 'admin:ops@example.com'
		AND detail = 'tier changed from premium to standard as the move was queued'`, moved); n != 1 {
		t.Errorf("audit lines of the queued move with its tier change: %d, want 1", n)
	}
	audit := p.get("localhost", "/admin/tenants/"+id(prestige), cookie)
	paWantStatus(t, "prestige's audit trail", audit, http.StatusOK, "tier changed from premium to standard as the move was queued")
	if mv := p.waitForMove(t, moved); mv.State != journal.StateDone {
		t.Fatalf("prestige's move ended %s (%s)\nlog:\n%s", mv.State, mv.Error, p.log.String())
	}
	if w, _ := registry.Get(ctx, p.primary, prestige.ID); w.ShardName != shard.Default || w.Tier != registry.TierStandard || w.Status != registry.StatusActive {
		t.Errorf("prestige after its move: %+v; want active and standard on default", w)
	}

	// Unticked: the warning is advice, and the tier stays.
	r = p.postForm("localhost", "/admin/tenants/"+id(bravo)+"/migrate", url.Values{opsCSRFField: {csrf}, "target": {"shard_1"}}, cookie)
	if m = paMoveLocation.FindStringSubmatch(r.Header.Get("Location")); r.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("moving bravo to shard_1: status %d\n%s", r.StatusCode, excerpt(r.Body))
	}
	moved, _ = strconv.ParseInt(m[1], 10, 64)
	if mv := p.waitForMove(t, moved); mv.State != journal.StateDone {
		t.Fatalf("bravo's move ended %s (%s)", mv.State, mv.Error)
	}
	if w, _ := registry.Get(ctx, p.primary, bravo.ID); w.ShardName != "shard_1" || w.Tier != registry.TierStandard {
		t.Errorf("bravo after its move: %+v; want standard on shard_1", w)
	}
	if n := pgtest.QueryValue[int64](t, p.cluster.URL[shard.Default], `SELECT count(*) FROM audit_log WHERE move_id = $1 AND detail LIKE '%tier%'`, moved); n != 0 {
		t.Errorf("bravo's move records %d tier changes, want none", n)
	}
}

// A move's end figures: its whole time, and how long writes were blocked,
// for each way a move ends; none while it runs.
func TestOps_MoveEnd(t *testing.T) {
	start := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := start.Add(d); return &t }
	us := func(d time.Duration) *int64 { n := d.Microseconds(); return &n }
	for _, c := range []struct {
		name string
		m    journal.Move
		want *moveEnd
	}{
		{"running", journal.Move{State: journal.StateCopying, StartedAt: start, FrozenAt: at(time.Second)}, nil},
		{"queued", journal.Move{State: journal.StatePlanned, StartedAt: start}, nil},
		{"done, freeze", journal.Move{State: journal.StateDone, Mode: journal.ModeFreeze, StartedAt: start, FrozenAt: at(200 * time.Millisecond),
			SwitchedAt: at(2450 * time.Millisecond), FinishedAt: at(12340 * time.Millisecond)},
			&moveEnd{Outcome: "done", Took: "12.34s", From: "4 Mar 2026 10:00:00", To: "4 Mar 2026 10:00:12", Blocked: "2.25s"}},
		{"done, online", journal.Move{State: journal.StateDone, Mode: journal.ModeOnline, StartedAt: start, SwitchedAt: at(5 * time.Second),
			FinishedAt: at(61 * time.Second), BlockedUS: us(7300 * time.Microsecond)},
			&moveEnd{Outcome: "done", Took: "1m1s", From: "4 Mar 2026 10:00:00", To: "4 Mar 2026 10:01:01", Blocked: "7ms", Online: true}},
		{"aborted after the freeze", journal.Move{State: journal.StateAborted, Mode: journal.ModeFreeze, StartedAt: start, FrozenAt: at(time.Second),
			FinishedAt: at(4 * time.Second)},
			&moveEnd{Outcome: "aborted", Took: "4s", From: "4 Mar 2026 10:00:00", To: "4 Mar 2026 10:00:04", Blocked: "3s"}},
		{"aborted before the freeze", journal.Move{State: journal.StateAborted, Mode: journal.ModeFreeze, StartedAt: start, FinishedAt: at(900 * time.Millisecond)},
			&moveEnd{Outcome: "aborted", Took: "900ms", From: "4 Mar 2026 10:00:00", To: "4 Mar 2026 10:00:00"}},
		{"failed while frozen", journal.Move{State: journal.StateFailed, FailedState: journal.StateCopying, Mode: journal.ModeFreeze, StartedAt: start,
			FrozenAt: at(time.Second), UpdatedAt: start.Add(3 * time.Second)},
			&moveEnd{Outcome: "failed", Took: "3s", From: "4 Mar 2026 10:00:00", To: "4 Mar 2026 10:00:03", FrozenSince: "4 Mar 2026 10:00:01"}},
		{"failed in its clean-up", journal.Move{State: journal.StateFailed, FailedState: journal.StateSwitched, Mode: journal.ModeFreeze, StartedAt: start,
			FrozenAt: at(time.Second), SwitchedAt: at(1500 * time.Millisecond), UpdatedAt: start.Add(3 * time.Second)},
			&moveEnd{Outcome: "failed", Took: "3s", From: "4 Mar 2026 10:00:00", To: "4 Mar 2026 10:00:03", Blocked: "500ms"}},
	} {
		d := opsMoveData{Move: c.m, Progress: progressOf(c.m, time.Now())}
		got := d.End()
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%s: end %+v, want %+v", c.name, got, c.want)
		}
	}
}
