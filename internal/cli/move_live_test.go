package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

const (
	// liveProperties sizes the moved tenant (about 22,000 rows) so that its
	// copy and verification, the time it is read-only, last about a second
	// (more on a busy machine) and hundreds of enquiries land in it.
	liveProperties = 4000
	// liveWriters is how many goroutines submit enquiries at the same time.
	liveWriters = 4
	// livePause is how long each goroutine of the load waits between two
	// requests, so the load does not starve the move of CPU on a small
	// machine.
	livePause = 5 * time.Millisecond
	// liveSlack allows for the freeze window's ends being taken from
	// primary's transaction times (a transaction's now() is when it began,
	// not when it committed) and for pwb serve hearing of a registry change
	// by NOTIFY.
	liveSlack = 500 * time.Millisecond
)

// liveRequest is what one request of the load did.
type liveRequest struct {
	read       bool   // a GET of a page; otherwise an enquiry
	marker     string // the enquiry's unique mark in its message
	path       string
	start, end time.Time
	status     int
	location   string // of a redirect
	retryAfter string
	named      bool  // a read's page shows the site's name
	err        error // transport error
}

// overlaps reports whether the request was in flight at some time in
// [from, to].
func (r liveRequest) overlaps(from, to time.Time) bool {
	return !r.end.Before(from) && !r.start.After(to)
}

func (r liveRequest) String() string {
	s := fmt.Sprintf("%s %s [%s .. %s]", r.marker, r.path, r.start.Format("15:04:05.000"), r.end.Format("15:04:05.000"))
	if r.err != nil {
		return s + " error: " + r.err.Error()
	}
	return s + fmt.Sprintf(" status %d location %q retry-after %q", r.status, r.location, r.retryAfter)
}

// liveLoad is the traffic sent to one site while a move runs.
type liveLoad struct {
	client *http.Client
	base   string
	host   string
	name   string // the site's name, which every page shows
	done   chan struct{}
	halt   sync.Once
	wg     sync.WaitGroup
	each   [][]liveRequest // per goroutine
}

// liveStartLoad starts writers goroutines submitting enquiries to host on
// serve, each with a unique marker in its message, and one reading the home
// page and a property page of the site called name, each sending its next
// request as soon as (and livePause after) the last is answered.
func liveStartLoad(t *testing.T, serve *serveProcess, host, name string, writers int) *liveLoad {
	l := &liveLoad{
		client: &http.Client{
			Timeout:       20 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: writers + 2, DisableCompression: true},
		},
		base: serve.base, host: host, name: name, done: make(chan struct{}),
		each: make([][]liveRequest, writers+1),
	}
	t.Cleanup(l.end) // if the test stops early
	for w := range writers {
		l.wg.Go(func() {
			for n := 0; l.running(); n++ {
				marker := fmt.Sprintf("[live %d-%d]", w, n)
				// property-1..property-9 are visible (every tenth is not).
				path := fmt.Sprintf("/properties/property-%d/enquiry", 1+(w+n)%9)
				form := url.Values{
					"name":    {fmt.Sprintf("Visitor %d-%d", w, n)},
					"email":   {fmt.Sprintf("live-%d-%d@example.com", w, n)},
					"message": {"Is it still available? " + marker},
				}
				r := l.do("POST", path, form)
				r.marker = marker
				l.each[w] = append(l.each[w], r)
				time.Sleep(livePause)
			}
		})
	}
	l.wg.Go(func() {
		for n := 0; l.running(); n++ {
			path := "/"
			if n%2 == 1 {
				path = "/properties/property-1"
			}
			r := l.do("GET", path, nil)
			r.read = true
			l.each[writers] = append(l.each[writers], r)
			time.Sleep(livePause)
		}
	})
	return l
}

func (l *liveLoad) running() bool {
	select {
	case <-l.done:
		return false
	default:
		return true
	}
}

// end stops the load and waits for its last requests.
func (l *liveLoad) end() {
	l.halt.Do(func() { close(l.done) })
	l.wg.Wait()
	l.client.CloseIdleConnections()
}

// stop ends the load and returns every request it made.
func (l *liveLoad) stop() []liveRequest {
	l.end()
	var all []liveRequest
	for _, rs := range l.each {
		all = append(all, rs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })
	return all
}

func (l *liveLoad) do(method, path string, form url.Values) liveRequest {
	t := sendTimed(l.client, l.base, l.host, method, path, form)
	r := liveRequest{path: path, start: t.start, end: t.end, err: t.err, status: t.status}
	if t.header != nil {
		r.location, r.retryAfter = t.header.Get("Location"), t.header.Get("Retry-After")
	}
	r.named = bytes.Contains(t.body, []byte(l.name))
	return r
}

// liveSent reports whether an enquiry was answered as sent: a 2xx, or the
// form's redirect back to the property page with sent=1.
func liveSent(r liveRequest) bool {
	if r.err != nil {
		return false
	}
	if r.status >= 200 && r.status < 300 {
		return true
	}
	slug := strings.TrimSuffix(strings.TrimPrefix(r.path, "/properties/"), "/enquiry")
	return r.status == http.StatusSeeOther && r.location == "/properties/"+slug+"?sent=1#enquiry"
}

// liveConnect opens a connection to the database at dbURL for the test.
func liveConnect(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func liveFill(t *testing.T, dbURL string, websiteID int64, o movertest.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := movertest.Fill(ctx, liveConnect(t, dbURL), websiteID, o); err != nil {
		t.Fatal(err)
	}
}

func liveDigest(t *testing.T, dbURL string, websiteID int64) movertest.Digest {
	t.Helper()
	d, err := movertest.TakeDigest(context.Background(), liveConnect(t, dbURL), websiteID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var liveMarkerRE = regexp.MustCompile(`\[live \d+-\d+\]`)

// liveMarkers counts the markers in the messages of websiteID on dbURL.
func liveMarkers(t *testing.T, dbURL string, websiteID int64) map[string]int {
	t.Helper()
	conn := liveConnect(t, dbURL)
	rows, err := conn.Query(context.Background(), `SELECT body FROM messages WHERE website_id = $1 AND body LIKE '%[live %'`, websiteID)
	if err != nil {
		t.Fatal(err)
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, b := range bodies {
		for _, m := range liveMarkerRE.FindAllString(b, -1) {
			out[m]++
		}
	}
	return out
}

// liveMigrate runs `pwb sharding migrate` as its own process and returns
// the move its last JSON line reports done, and when each phase began, as
// its progress lines arrived.
func liveMigrate(t *testing.T, cfg, tenant, target string) (journal.Move, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := pwbProcess(ctx, cfg, "sharding", "migrate", "--mode", "freeze", tenant, target, "--yes", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out, timeline strings.Builder
	var last moveResult
	var phase journal.Phase
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		var line progressLine
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Kind == "progress" && line.Phase != phase {
			phase = line.Phase
			fmt.Fprintf(&timeline, " %s@%.2fs", phase, time.Since(start).Seconds())
		}
		last = moveResult{}
		json.Unmarshal(sc.Bytes(), &last)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pwb sharding migrate: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), stderr.String())
	}
	if last.Event != "done" {
		t.Fatalf("pwb sharding migrate should end with a done line:\n%s", out.String())
	}
	return last.Move, strings.TrimSpace(timeline.String())
}

// liveRegistryState is the tenant's registry row as one poll saw it.
type liveRegistryState struct {
	status, shard string
	updatedAt     time.Time // set by every status or shard change
}

func (s liveRegistryState) String() string {
	return s.status + " on " + s.shard + " since " + s.updatedAt.Format("15:04:05.000")
}

// liveWatchRegistry polls the registry row of websiteID on primary every few
// milliseconds until the returned function is called, which returns each
// distinct state seen, in order.
func liveWatchRegistry(t *testing.T, dbURL string, websiteID int64) func() []liveRegistryState {
	t.Helper()
	conn := liveConnect(t, dbURL)
	done := make(chan struct{})
	var states []liveRegistryState
	var err error
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			var s liveRegistryState
			err = conn.QueryRow(context.Background(), "SELECT status, shard_name, updated_at FROM websites WHERE id = $1", websiteID).
				Scan(&s.status, &s.shard, &s.updatedAt)
			if err != nil {
				return
			}
			if n := len(states); n == 0 || states[n-1].status != s.status || states[n-1].shard != s.shard ||
				!states[n-1].updatedAt.Equal(s.updatedAt) {
				states = append(states, s)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	var once sync.Once
	stop := func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
	t.Cleanup(stop) // before the connection closes, if the test stops early
	return func() []liveRegistryState {
		stop()
		if err != nil {
			t.Fatalf("watching the registry: %v", err)
		}
		return states
	}
}

// Live traffic: a load of enquiry submissions over HTTP runs throughout a
// move. Every submission that got a 2xx (or the form's redirect) is present
// afterwards, exactly once, on the new shard; those during the freeze got 503
// with Retry-After; nothing else failed. Reads of the site keep working for
// the whole move.
func TestMove_LiveTrafficKeepsEveryAcceptedEnquiry(t *testing.T) {
	t.Parallel()
	c := migratedCluster(t, 2)
	cfg := c.ConfigPath
	const sub, name = "live-homes", "Live Homes"
	mustPWB(t, cfg, "tenants", "create", "--subdomain", sub, "--name", name)
	mustPWB(t, cfg, "tenants", "create", "--subdomain", "live-neighbour", "--name", "Live Neighbour")
	siteID := pgtest.QueryValue[int64](t, c.URL["default"], "SELECT id FROM websites WHERE subdomain = $1", sub)
	neighbourID := pgtest.QueryValue[int64](t, c.URL["default"], "SELECT id FROM websites WHERE subdomain = 'live-neighbour'")
	fixture := movertest.Options{Properties: liveProperties}
	liveFill(t, c.URL["default"], siteID, fixture)
	liveFill(t, c.URL["default"], neighbourID, movertest.Options{Properties: 30, Photos: 3})
	neighbourBefore := liveDigest(t, c.URL["default"], neighbourID)

	// The load comes from one address, far above a visitor's enquiry limit.
	serve := startServeEnv(t, cfg, "PWB_ENQUIRY_LIMIT=1000000")
	host := sub + ".localhost"
	if code, body := serve.request(t, "GET", host, "/", nil); code != 200 || !strings.Contains(body, name) {
		t.Fatalf("home page before the move: %d\n%s", code, body)
	}

	registryStates := liveWatchRegistry(t, c.URL["default"], siteID)
	load := liveStartLoad(t, serve, host, name, liveWriters)
	time.Sleep(time.Second)
	migrateStart := time.Now()
	done, timeline := liveMigrate(t, cfg, sub, "shard_1")
	migrateTook := time.Since(migrateStart)
	time.Sleep(time.Second)
	reqs := load.stop()
	states := registryStates()

	// The freeze window, from the journal and the registry.
	var moves []journal.Move
	if err := json.Unmarshal([]byte(mustPWB(t, cfg, "sharding", "moves", sub, "--json")), &moves); err != nil {
		t.Fatal(err)
	}
	if len(moves) != 1 || moves[0].ID != done.ID || moves[0].State != journal.StateDone || moves[0].Target != "shard_1" ||
		moves[0].FrozenAt == nil || moves[0].SwitchedAt == nil || moves[0].FinishedAt == nil {
		t.Fatalf("journal: %+v", moves)
	}
	frozen, switched := *moves[0].FrozenAt, *moves[0].SwitchedAt
	// The registry went from active on default to read_only (the freeze) to
	// active on shard_1 (the switch, recorded in the same transaction as
	// switched_at). The tenant is read_only from the freeze transaction on;
	// the journal's frozen_at comes after the freeze step has also waited
	// for the write fence and counted the rows.
	if len(states) != 3 || states[0].status != "active" || states[0].shard != "default" ||
		states[1].status != "read_only" || states[1].shard != "default" ||
		states[2].status != "active" || states[2].shard != "shard_1" {
		t.Fatalf("registry states during the move: %v, want active on default, read_only on default, active on shard_1", states)
	}
	readOnly := states[1].updatedAt
	if !states[2].updatedAt.Equal(switched) {
		t.Errorf("the registry switched at %v but the journal says %v", states[2].updatedAt, switched)
	}
	if readOnly.After(frozen) || !frozen.Before(switched) {
		t.Fatalf("read_only at %v, frozen_at %v, switched_at %v: out of order", readOnly, frozen, switched)
	}
	if reqs[0].start.After(readOnly) || reqs[len(reqs)-1].end.Before(switched) {
		t.Fatalf("the load [%v .. %v] did not span the freeze [%v .. %v]", reqs[0].start, reqs[len(reqs)-1].end, readOnly, switched)
	}
	if s := pgtest.QueryValue[string](t, c.URL["default"], "SELECT shard_name || ' ' || status FROM websites WHERE id = $1", siteID); s != "shard_1 active" {
		t.Errorf("registry after the move: %s, want shard_1 active", s)
	}

	// Classify every request against the freeze [readOnly, switched].
	at := func(tm time.Time) string { return tm.Format("15:04:05.000") }
	var enquiries, reads, sent, paused, sentBefore, sentAfter, pausedInside int
	var first503, last503 time.Time
	sentMarkers := map[string]bool{}
	pausedMarkers := map[string]bool{}
	for _, r := range reqs {
		if r.read {
			reads++
			if r.err != nil || r.status != 200 || !r.named {
				t.Errorf("read during the move failed: %v", r)
			}
			continue
		}
		enquiries++
		switch {
		case liveSent(r):
			sent++
			sentMarkers[r.marker] = true
			if r.end.Before(readOnly) {
				sentBefore++
			}
			if r.start.After(switched) {
				sentAfter++
			}
			if r.start.After(readOnly.Add(liveSlack)) && r.end.Before(switched.Add(-liveSlack)) {
				t.Errorf("enquiry accepted while the tenant was frozen [%s .. %s]: %v", at(readOnly), at(switched), r)
			}
		case r.err == nil && r.status == http.StatusServiceUnavailable:
			paused++
			pausedMarkers[r.marker] = true
			if first503.IsZero() || r.end.Before(first503) {
				first503 = r.end
			}
			if r.start.After(last503) {
				last503 = r.start
			}
			if !r.overlaps(readOnly.Add(-liveSlack), switched.Add(liveSlack)) {
				t.Errorf("503 outside the freeze [%s .. %s] (frozen_at %s): %v", at(readOnly), at(switched), at(frozen), r)
			}
			if r.overlaps(readOnly, switched) {
				pausedInside++
			}
			if r.retryAfter == "" {
				t.Errorf("503 without Retry-After: %v", r)
			}
		default:
			t.Errorf("enquiry neither sent nor paused: %v", r)
		}
	}
	t.Logf("move %d took %v (process %v); read-only for %v (journal frozen_at to switched_at %v, frozen_at %v after read_only); "+
		"%d enquiries: %d sent (%d before the freeze, %d after the switch), %d answered 503; %d reads",
		done.ID, moves[0].FinishedAt.Sub(moves[0].StartedAt).Round(time.Millisecond), migrateTook.Round(time.Millisecond),
		switched.Sub(readOnly).Round(time.Millisecond), switched.Sub(frozen).Round(time.Millisecond), frozen.Sub(readOnly).Round(time.Millisecond),
		enquiries, sent, sentBefore, sentAfter, paused, reads)
	t.Logf("phases: %s", timeline)
	if paused > 0 {
		t.Logf("first 503 answered %v after read_only, last 503 sent %v after switched_at",
			first503.Sub(readOnly).Round(time.Millisecond), last503.Sub(switched).Round(time.Millisecond))
	}
	if sentBefore == 0 || sentAfter == 0 {
		t.Errorf("want enquiries sent both before the freeze and after the switch: %d before, %d after", sentBefore, sentAfter)
	}
	if pausedInside == 0 {
		t.Errorf("no enquiry was answered 503 during the freeze of %v: make the move longer", switched.Sub(readOnly))
	}
	if reads == 0 {
		t.Error("no reads were made")
	}

	// Every enquiry answered as sent is on shard_1 exactly once, none that
	// was refused is anywhere, and nothing of the tenant is left elsewhere.
	onTarget := liveMarkers(t, c.URL["shard_1"], siteID)
	for m := range sentMarkers {
		if onTarget[m] != 1 {
			t.Errorf("enquiry %s was answered as sent but is on shard_1 %d times", m, onTarget[m])
		}
	}
	for m, n := range onTarget {
		if !sentMarkers[m] {
			t.Errorf("enquiry %s is on shard_1 %d times but was not answered as sent (answered 503: %v)", m, n, pausedMarkers[m])
		}
	}
	wantMessages, wantContacts := 2*(fixture.Properties/2)+sent, fixture.Properties/2+sent
	if n := pgtest.QueryValue[int64](t, c.URL["shard_1"], "SELECT count(*) FROM messages WHERE website_id = $1", siteID); n != int64(wantMessages) {
		t.Errorf("messages of the tenant on shard_1: %d, want %d (the fixture's and one per enquiry sent)", n, wantMessages)
	}
	if n := pgtest.QueryValue[int64](t, c.URL["shard_1"], "SELECT count(*) FROM contacts WHERE website_id = $1", siteID); n != int64(wantContacts) {
		t.Errorf("contacts of the tenant on shard_1: %d, want %d (the fixture's and one per enquiry sent)", n, wantContacts)
	}
	for _, s := range []string{"default", "shard_2"} {
		if d := liveDigest(t, c.URL[s], siteID); !d.Empty() {
			t.Errorf("rows of the tenant remain on %s: %v", s, d)
		}
	}
	if d := liveDigest(t, c.URL["default"], neighbourID); !maps.Equal(d, neighbourBefore) {
		t.Errorf("the neighbour on default changed:\nbefore %v\nafter  %v", neighbourBefore, d)
	}

	out, err := serve.interrupt()
	if err != nil || !strings.Contains(out, "pwb: stopped") {
		t.Errorf("pwb serve after Ctrl-C: %v", err)
	}
	if t.Failed() {
		var failures []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "request failed") && !strings.Contains(line, "status=503") {
				failures = append(failures, line)
			}
		}
		t.Logf("pwb serve logged %d failures other than 503:\n%s", len(failures), strings.Join(failures[:min(len(failures), 20)], "\n"))
	}
}
