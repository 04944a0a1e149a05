package cli

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
)

const (
	// onlLoadProperties sizes the moved tenant (about 55,000 rows) so that
	// its copy, stream and verification take some seconds, in which
	// hundreds of writes land on it.
	onlLoadProperties = 30_000
	// onlLoadPace is how often each writer starts a write, at most: with
	// the writers below, about 150 writes a second in all, which leaves a
	// 2-core machine room for the move.
	onlLoadPace = 50 * time.Millisecond
	// onlMaxWait is the longest a write of the moving tenant may wait for
	// its answer, the cut-over included.
	onlMaxWait = time.Second
	// onlPassword is the site admin's.
	onlPassword = "online move load password"
)

// onlDone is, per kind of write, what the redirect of a write that was done
// says.
var onlDone = map[string]*regexp.Regexp{
	"contact":    regexp.MustCompile(`^/contact\?sent=1#enquiry$`),
	"enquiry":    regexp.MustCompile(`^/properties/property-\d+\?sent=1#enquiry$`),
	"edit":       regexp.MustCompile(`^/site_admin/properties/[0-9a-f-]{36}/edit\?done=saved$`),
	"upload":     regexp.MustCompile(`^/site_admin/properties/[0-9a-f-]{36}/edit\?done=photos$`),
	"unphoto":    regexp.MustCompile(`^/site_admin/properties/[0-9a-f-]{36}/edit\?done=photo_deleted$`),
	"create":     regexp.MustCompile(`^/site_admin/properties/([0-9a-f-]{36})/edit\?done=created$`),
	"unproperty": regexp.MustCompile(`^/site_admin/properties\?done=deleted$`),
	"page":       regexp.MustCompile(`^/site_admin/pages\?done=created$`),
	"unpage":     regexp.MustCompile(`^/site_admin/pages\?done=deleted$`),
}

// onlOK reports whether w was answered as done, with the redirect its kind
// makes.
func onlOK(w onlWrite) bool {
	re := onlDone[w.kind]
	return w.acked() && re != nil && re.MatchString(w.location)
}

// onlSlugs is property-from .. property-to.
func onlSlugs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("property-%d", i))
	}
	return out
}

// onlFill fills a tenant's rows on its shard.
func onlFill(t *testing.T, dbURL string, websiteID int64, o movertest.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := movertest.Fill(ctx, conn, websiteID, o); err != nil {
		t.Fatal(err)
	}
}

// onlDigest is the tenant's rows on a shard, per table.
func onlDigest(t *testing.T, dbURL string, websiteID int64) movertest.Digest {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	d, err := movertest.TakeDigest(ctx, conn, websiteID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var onlMarkerRE = regexp.MustCompile(`\[(?:onl|nbr) [0-9-]+\]`)

// onlMarkers counts the load's markers in the messages of websiteID on dbURL.
func onlMarkers(t *testing.T, dbURL string, websiteID int64) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range onlRows(t, dbURL, `SELECT body FROM messages WHERE website_id = $1 AND body LIKE '%[%'`, websiteID) {
		for _, m := range onlMarkerRE.FindAllString(r[0], -1) {
			out[m]++
		}
	}
	return out
}

// onlCountOf is a tenant's rows in table on dbURL.
func onlCountOf(t *testing.T, dbURL, table string, websiteID int64) int {
	t.Helper()
	return int(pgtest.QueryValue[int64](t, dbURL, "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()+" WHERE website_id = $1", websiteID))
}

// A tenant moved ONLINE while its site takes every kind of write, through
// two `pwb serve` processes, and another tenant of the same shard takes
// enquiries: every write is answered as done (no 503, none waits a second),
// every one is on the new shard exactly once, the new shard's rows are what
// replaying the writes on the old rows gives, the old shard keeps nothing of
// the tenant, and the move leaves no replication slot or publication.
func TestMove_OnlineUnderLoadKeepsEveryWrite(t *testing.T) {
	t.Parallel()
	began := time.Now()
	c := migratedCluster(t, 2) // primary, shard_1 and shard_2: three servers
	cfg := c.ConfigPath
	const sub, name = "online-homes", "Online Homes"
	const nsub, nname = "online-neighbour", "Online Neighbour"
	const source, target = "shard_1", "shard_2"
	mustPWB(t, cfg, "tenants", "create", "--subdomain", sub, "--name", name, "--tier", "premium", "--shard", source)
	mustPWB(t, cfg, "tenants", "create", "--subdomain", nsub, "--name", nname, "--tier", "premium", "--shard", source)
	src, dst := c.URL[source], c.URL[target]
	siteID := pgtest.QueryValue[int64](t, c.URL["default"], "SELECT id FROM websites WHERE subdomain = $1", sub)
	nbID := pgtest.QueryValue[int64](t, c.URL["default"], "SELECT id FROM websites WHERE subdomain = $1", nsub)
	fixture := movertest.Options{Properties: onlLoadProperties, Photos: 12}
	onlFill(t, src, siteID, fixture)
	onlFill(t, src, nbID, movertest.Options{Properties: 30, Photos: 3})

	// Rows the writers delete: 20 photos on each of property-201..250, and
	// 1,000 pages.
	ids := onlMap(t, src, `SELECT slug, id::text FROM properties WHERE website_id = $1`, siteID)
	var owners []string
	var images [][]byte
	var orders []int32
	for i, slug := range onlSlugs(201, 250) {
		for k := range 20 {
			owners, orders = append(owners, ids[slug]), append(orders, int32(k))
			images = append(images, onlPNG(500_000+i*20+k))
		}
	}
	pgtest.Exec(t, src, `INSERT INTO property_photos (id, website_id, property_id, content_type, image, sort_order)
		SELECT gen_random_uuid(), $1, p::uuid, 'image/png', img, k FROM unnest($2::text[], $3::bytea[], $4::int[]) AS u(p, img, k)`,
		siteID, owners, images, orders)
	pgtest.Exec(t, src, `INSERT INTO pages (id, website_id, slug, title, body, visible, nav_order)
		SELECT gen_random_uuid(), $1, 'seeded-' || i, 'Seeded ' || i, '', i % 2 = 0, 0 FROM generate_series(1, 1000) i`, siteID)
	seededPhotos := onlRows(t, src, `SELECT ph.id::text, p.id::text FROM property_photos ph JOIN properties p ON p.id = ph.property_id
		WHERE ph.website_id = $1 AND p.slug LIKE 'property-2__' ORDER BY ph.sort_order, p.slug`, siteID)
	seededPages := onlRows(t, src, `SELECT id::text FROM pages WHERE website_id = $1 AND slug LIKE 'seeded-%' ORDER BY slug`, siteID)

	// What the tenant holds before: replayed with the writes, it must be
	// what the target holds after.
	titlesBefore := onlMap(t, src, `SELECT id::text, title FROM properties WHERE website_id = $1`, siteID)
	photosBefore := onlCounts(t, src, `SELECT md5(image), count(*) FROM property_photos WHERE website_id = $1 GROUP BY 1`, siteID)
	photoMD5 := onlMap(t, src, `SELECT id::text, md5(image) FROM property_photos WHERE website_id = $1`, siteID)
	pagesBefore := onlMap(t, src, `SELECT id::text, slug FROM pages WHERE website_id = $1`, siteID)
	messagesBefore, contactsBefore := onlCountOf(t, src, "messages", siteID), onlCountOf(t, src, "contacts", siteID)
	nbBefore := onlDigest(t, src, nbID)
	nbMessagesBefore, nbContactsBefore := onlCountOf(t, src, "messages", nbID), onlCountOf(t, src, "contacts", nbID)
	t.Logf("tenant %d (%s) filled with %d rows on %s, neighbour %d (%s); set up in %s",
		siteID, sub, fixture.Rows()+1000+1000, source, nbID, nsub, time.Since(began).Round(time.Millisecond))

	env := map[string]string{"PWB_ENV": "test", "PWB_CONFIG": cfg}
	if r := pwbInput(env, onlPassword+"\n", "tenants", "add-member", sub, "--email", "owner@online.example"); r.code != 0 {
		t.Fatalf("add-member: %+v", r)
	}
	// The load comes from one address, far above a visitor's enquiry
	// limit. The request deadline is long so that a request queued on a
	// busy machine is measured rather than answered 503 by the deadline:
	// the waits are what this test asserts.
	serveEnv := []string{"PWB_ENQUIRY_LIMIT=1000000", "PWB_REQUEST_TIMEOUT=60s"}
	procs := []*serveProcess{startServeEnv(t, cfg, serveEnv...), startServeEnv(t, cfg, serveEnv...)}
	admin := onlNewSite(procs, sub+".localhost")
	admin.signIn(t, "owner@online.example", onlPassword)
	visitors := onlNewSite(procs, sub+".localhost")
	neighbours := onlNewSite(procs, nsub+".localhost")
	for _, p := range procs {
		for host, want := range map[string]string{sub + ".localhost": name, nsub + ".localhost": nname} {
			if code, body := p.request(t, "GET", host, "/", nil); code != 200 || !strings.Contains(body, want) {
				t.Fatalf("home page of %s before the move: %d\n%s", host, code, body)
			}
		}
	}

	// The writers. Each owns the rows it changes, so the replay of its
	// writes in its own order is the outcome.
	load := onlNewLoad(t)
	load.visitorWriters(visitors, onlLoadPace, "onl")
	load.editWriter(admin, ids, onlLoadPace)
	uploaded := onlSlugs(101, 200)
	load.writer(onlLoadPace, func(n int) (onlWrite, bool) { // photo uploads, under 50 a property
		id := ids[uploaded[n%len(uploaded)]]
		img := onlPNG(1_000_000 + n)
		w := admin.postPhoto(n+1, "/site_admin/properties/"+id+"/photos", nil, img)
		w.kind, w.key, w.target, w.photo = "upload", onlMD5(img), id, onlMD5(img)
		return w, n < 40*len(uploaded)
	})
	load.writer(onlLoadPace, func(n int) (onlWrite, bool) { // photo deletions
		if n >= len(seededPhotos) {
			return onlWrite{}, false
		}
		photo, property := seededPhotos[n][0], seededPhotos[n][1]
		w := admin.post(n, "/site_admin/photos/"+photo+"/delete", url.Values{"property": {property}})
		w.kind, w.key, w.target = "unphoto", photoMD5[photo], photo
		return w, true
	})
	// Creates, and a delete of every other property created: created holds
	// the ids of the properties created, "" when refused.
	var created []string
	load.writer(onlLoadPace, func(n int) (onlWrite, bool) {
		if n%3 == 2 {
			id := created[len(created)-2]
			if id == "" { // refused: nothing to delete; a create instead
				id = created[len(created)-1]
			}
			if id != "" {
				w := admin.post(n+1, "/site_admin/properties/"+id+"/delete", url.Values{})
				w.kind, w.target = "unproperty", id
				return w, true
			}
		}
		title := fmt.Sprintf("Created %d", n)
		img := onlPNG(2_000_000 + n)
		fields := url.Values{"title": {title}, "for_rent": {"1"}, "rent_price": {"900"}, "rent_currency": {"EUR"},
			"visible": {"1"}, "features": {"Lift"}}
		w := admin.postPhoto(n+1, "/site_admin/properties", fields, img)
		w.kind, w.key, w.photo = "create", title, onlMD5(img)
		id := ""
		if m := onlDone["create"].FindStringSubmatch(w.location); m != nil {
			id = m[1]
		}
		w.target = id
		created = append(created, id)
		return w, true
	})
	deleted := onlSlugs(1001, 3000)
	load.writer(onlLoadPace, func(n int) (onlWrite, bool) { // deletes of existing properties
		if n >= len(deleted) {
			return onlWrite{}, false
		}
		id := ids[deleted[n]]
		w := admin.post(n, "/site_admin/properties/"+id+"/delete", url.Values{})
		w.kind, w.target = "unproperty", id
		return w, true
	})
	load.writer(onlLoadPace, func(n int) (onlWrite, bool) { // page creates and deletes
		if n%2 == 0 {
			slug := fmt.Sprintf("onl-page-%d", n)
			w := admin.post(n+1, "/site_admin/pages", url.Values{"title": {"Page " + slug}, "slug": {slug}, "body": {"Made during the move."},
				"visible": {"1"}, "nav_order": {"5"}})
			w.kind, w.key = "page", slug
			return w, true
		}
		if n/2 >= len(seededPages) {
			return onlWrite{}, false
		}
		id := seededPages[n/2][0]
		w := admin.post(n, "/site_admin/pages/"+id+"/delete", url.Values{})
		w.kind, w.target = "unpage", id
		return w, true
	})
	neighbourFrom := len(load.each)
	load.writer(onlLoadPace, func(n int) (onlWrite, bool) { // the neighbour's visitors
		marker := fmt.Sprintf("[nbr %d]", n)
		w := neighbours.post(n, "/contact", url.Values{"name": {fmt.Sprintf("Neighbour %d", n)},
			"email": {fmt.Sprintf("nbr-%d@example.com", n)}, "message": {"A question. " + marker}})
		w.kind, w.key = "contact", marker
		return w, true
	})

	time.Sleep(1500 * time.Millisecond)
	run := onlMigrate(t, cfg, sub, target, journal.ModeOnline, 0, 5*time.Minute)
	time.Sleep(1500 * time.Millisecond)
	// The neighbour's writes, then the moving tenant's.
	var mine, theirs []onlWrite
	for i, ws := range func() [][]onlWrite { load.end(); return load.each }() {
		if i >= neighbourFrom {
			theirs = append(theirs, ws...)
		} else {
			mine = append(mine, ws...)
		}
	}
	sort.SliceStable(mine, func(i, j int) bool { return mine[i].start.Before(mine[j].start) })

	// ---- the journal and the move's leftovers ----
	moves := onlMoves(t, cfg, sub)
	if len(moves) != 1 {
		t.Fatalf("journal of %s: %d moves, want 1: %+v", sub, len(moves), moves)
	}
	mv := moves[0]
	if mv.ID != run.move.ID || mv.Mode != journal.ModeOnline || mv.State != journal.StateDone || mv.Source != source || mv.Target != target ||
		mv.SwitchedAt == nil || mv.FinishedAt == nil {
		t.Fatalf("journal: move %d mode %s state %s %s -> %s (switched %v, finished %v); want move %d, online, done, %s -> %s",
			mv.ID, mv.Mode, mv.State, mv.Source, mv.Target, mv.SwitchedAt, mv.FinishedAt, run.move.ID, source, target)
	}
	if mv.BlockedUS == nil {
		t.Fatalf("journal: move %d records no blocked time", mv.ID)
	}
	blocked := time.Duration(*mv.BlockedUS) * time.Microsecond
	if blocked >= time.Second {
		t.Errorf("journal: writes were blocked for %s at the cut-over, want under 1s", blocked)
	}
	if mv.ChangesApplied == 0 {
		t.Errorf("journal: no change was streamed, though the tenant took writes throughout the copy")
	}
	if left := onlArtifacts(t, c.URL); len(left) > 0 {
		t.Errorf("the move left replication artifacts: %v", left)
	}
	if s := pgtest.QueryValue[string](t, c.URL["default"], "SELECT shard_name || ' ' || status FROM websites WHERE id = $1", siteID); s != target+" active" {
		t.Errorf("registry after the move: %s, want %s active", s, target)
	}

	// ---- every answer and its wait ----
	switched := *mv.SwitchedAt
	copying, streamed := run.phase(journal.StateCopying.Phase()), run.phase(journal.StateSwitched.Phase())
	if copying.IsZero() || streamed.IsZero() {
		t.Fatalf("the move reported no copying or switched phase: %s", run.timeline)
	}
	type tally struct {
		sent, acked, during int
		answers             map[string]int
		waits               []onlWrite
	}
	kinds := map[string]*tally{}
	var unavailable, cutover []onlWrite
	cutFrom, cutTo := switched.Add(-blocked-200*time.Millisecond), switched.Add(200*time.Millisecond)
	for _, w := range mine {
		k := kinds[w.kind]
		if k == nil {
			k = &tally{answers: map[string]int{}}
			kinds[w.kind] = k
		}
		k.sent++
		k.answers[w.answer()]++
		k.waits = append(k.waits, w)
		if onlOK(w) {
			k.acked++
			// Done while the tenant was being copied and streamed: it
			// stayed writable.
			if w.start.After(copying) && w.end.Before(streamed) {
				k.during++
			}
		} else {
			t.Errorf("a write of the moving tenant was not done: %v", w)
		}
		if w.status == http.StatusServiceUnavailable {
			unavailable = append(unavailable, w)
		}
		if !w.end.Before(cutFrom) && !w.start.After(cutTo) {
			cutover = append(cutover, w)
		}
	}
	if len(unavailable) > 0 {
		t.Errorf("%d writes of the moving tenant were answered 503, want none; the first: %v", len(unavailable), unavailable[0])
	}
	all := onlWaits(mine)
	if all.max >= onlMaxWait {
		var slow []string
		for _, w := range mine {
			if w.took() >= onlMaxWait {
				slow = append(slow, w.String())
			}
		}
		t.Errorf("the moving tenant's longest write wait is %s, want under %s (journal blocked %s, switched at %s); %d writes took %s or more:\n%s",
			all.max.Round(time.Millisecond), onlMaxWait, blocked, switched.Format("15:04:05.000"), len(slow), onlMaxWait,
			strings.Join(slow[:min(len(slow), 15)], "\n"))
	}
	var nbFailed []string
	for _, w := range theirs {
		if !onlOK(w) {
			nbFailed = append(nbFailed, w.String())
		}
	}
	if len(nbFailed) > 0 {
		t.Errorf("%d of the neighbour's %d writes failed:\n%s", len(nbFailed), len(theirs), strings.Join(nbFailed[:min(len(nbFailed), 15)], "\n"))
	}
	for _, kind := range []string{"contact", "enquiry", "edit", "upload", "create"} {
		if k := kinds[kind]; k == nil || k.during == 0 {
			t.Errorf("no %s was done while the tenant was copied and streamed (%s): the move did not overlap the load", kind, run.timeline)
		}
	}

	took := mv.FinishedAt.Sub(mv.StartedAt)
	t.Logf("move %d (online) took %s (process %s), %d changes streamed, %d cut-over attempt(s), writes blocked %s (journal); phases: %s",
		mv.ID, took.Round(time.Millisecond), run.took().Round(time.Millisecond), mv.ChangesApplied, mv.CutoverAttempts, blocked, run.timeline)
	cw := onlWaits(cutover)
	t.Logf("moving tenant: %d writes, longest wait %s (%v), 99th percentile %s; %d writes around the cut-over [%s .. %s], longest %s",
		all.n, all.max.Round(time.Millisecond), all.slowest, all.p99.Round(time.Millisecond), cw.n,
		cutFrom.Format("15:04:05.000"), cutTo.Format("15:04:05.000"), cw.max.Round(time.Millisecond))
	for _, kind := range onlSortedKeys(kinds) {
		k := kinds[kind]
		s := onlWaits(k.waits)
		t.Logf("  %-10s %4d sent, %4d done (%4d while copying and streaming), answers %v, longest wait %s",
			kind, k.sent, k.acked, k.during, k.answers, s.max.Round(time.Millisecond))
	}
	nw := onlWaits(theirs)
	t.Logf("neighbour: %d writes, %d failed, longest wait %s", nw.n, len(nbFailed), nw.max.Round(time.Millisecond))

	// ---- the target holds the replay of every write done ----
	titles := maps.Clone(titlesBefore)
	photos := maps.Clone(photosBefore)
	pages := map[string]bool{}
	for _, slug := range pagesBefore {
		pages[slug] = true
	}
	var enquiries int
	sentMarkers := map[string]bool{}
	refused := map[string]bool{} // keys of writes not done
	createdPhoto := map[string]string{}
	for _, w := range mine { // in the order they started: each writer's own order
		if !onlOK(w) {
			refused[w.key] = true
			continue
		}
		switch w.kind {
		case "contact", "enquiry":
			enquiries++
			sentMarkers[w.key] = true
		case "edit":
			titles[w.target] = w.key
		case "upload":
			photos[w.photo]++
		case "unphoto":
			photos[w.key]--
		case "create":
			titles[w.target] = w.key
			photos[w.photo]++
			createdPhoto[w.target] = w.photo
		case "unproperty":
			delete(titles, w.target)
			if p, ok := createdPhoto[w.target]; ok {
				photos[p]--
			}
		case "page":
			pages[w.key] = true
		case "unpage":
			delete(pages, pagesBefore[w.target])
		}
	}
	for k, n := range photos {
		if n == 0 {
			delete(photos, k)
		}
	}
	// The deleted properties' photos went with them: only created ones
	// and those on property-101..250 were touched, and none of those
	// properties was deleted.
	gotTitles := onlMap(t, dst, `SELECT id::text, title FROM properties WHERE website_id = $1`, siteID)
	if !maps.Equal(gotTitles, titles) {
		t.Errorf("properties on %s: %d, want %d; %s", target, len(gotTitles), len(titles), onlDiff(titles, gotTitles))
	}
	gotPhotos := onlCounts(t, dst, `SELECT md5(image), count(*) FROM property_photos WHERE website_id = $1 GROUP BY 1`, siteID)
	if !maps.Equal(gotPhotos, photos) {
		t.Errorf("photos on %s differ from the replay: %s", target, onlDiff(photos, gotPhotos))
	}
	gotPages := map[string]bool{}
	for _, r := range onlRows(t, dst, `SELECT slug FROM pages WHERE website_id = $1`, siteID) {
		gotPages[r[0]] = true
	}
	if !maps.Equal(gotPages, pages) {
		t.Errorf("pages on %s: %d, want %d; %s", target, len(gotPages), len(pages), onlDiff(pages, gotPages))
	}
	onTarget := onlMarkers(t, dst, siteID)
	for m := range sentMarkers {
		if onTarget[m] != 1 {
			t.Errorf("enquiry %s was done but is on %s %d times", m, target, onTarget[m])
		}
	}
	for m, n := range onTarget {
		if !sentMarkers[m] {
			t.Errorf("enquiry %s is on %s %d times but was not done (refused: %v)", m, target, n, refused[m])
		}
	}
	if n := onlCountOf(t, dst, "messages", siteID); n != messagesBefore+enquiries {
		t.Errorf("messages of the tenant on %s: %d, want %d (%d before and one per enquiry done)", target, n, messagesBefore+enquiries, messagesBefore)
	}
	if n := onlCountOf(t, dst, "contacts", siteID); n != contactsBefore+enquiries {
		t.Errorf("contacts of the tenant on %s: %d, want %d (%d before and one per enquiry done)", target, n, contactsBefore+enquiries, contactsBefore)
	}
	for _, s := range []string{"default", source} {
		if d := onlDigest(t, c.URL[s], siteID); !d.Empty() {
			t.Errorf("rows of the tenant remain on %s: %v", s, d)
		}
	}

	// ---- the neighbour kept its rows and got its enquiries ----
	nbSent := map[string]bool{}
	for _, w := range theirs {
		if onlOK(w) {
			nbSent[w.key] = true
		}
	}
	nbGot := onlMarkers(t, src, nbID)
	if len(nbGot) != len(nbSent) {
		t.Errorf("the neighbour's enquiries on %s: %d, want the %d done", source, len(nbGot), len(nbSent))
	}
	for m := range nbSent {
		if nbGot[m] != 1 {
			t.Errorf("the neighbour's enquiry %s is on %s %d times, want 1", m, source, nbGot[m])
		}
	}
	if n := onlCountOf(t, src, "messages", nbID); n != nbMessagesBefore+len(nbSent) {
		t.Errorf("the neighbour's messages: %d, want %d", n, nbMessagesBefore+len(nbSent))
	}
	if n := onlCountOf(t, src, "contacts", nbID); n != nbContactsBefore+len(nbSent) {
		t.Errorf("the neighbour's contacts: %d, want %d", n, nbContactsBefore+len(nbSent))
	}
	nbAfter := onlDigest(t, src, nbID)
	for _, table := range onlSortedKeys(nbBefore) {
		if table != "messages" && table != "contacts" && nbAfter[table] != nbBefore[table] {
			t.Errorf("the neighbour's %s changed: %s -> %s", table, nbBefore[table], nbAfter[table])
		}
	}
	for _, s := range []string{"default", target} {
		if d := onlDigest(t, c.URL[s], nbID); !d.Empty() {
			t.Errorf("rows of the neighbour appeared on %s: %v", s, d)
		}
	}

	// ---- both processes heard of the switch ----
	for i, p := range procs {
		if !onlMetricsShow(t, p, target) {
			t.Errorf("pwb serve %d never served the tenant from %s after the switch", i, target)
		}
	}
	var retried []int
	for i, p := range procs {
		out, err := p.interrupt()
		if err != nil || !strings.Contains(out, "pwb: stopped") {
			t.Errorf("pwb serve %d after Ctrl-C: %v", i, err)
		}
		retried = append(retried, strings.Count(out, "writing again on its new shard"))
		if t.Failed() {
			var failures []string
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
					failures = append(failures, line)
				}
			}
			t.Logf("pwb serve %d logged %d errors and warnings:\n%s", i, len(failures), strings.Join(failures[:min(len(failures), 20)], "\n"))
		}
	}
	t.Logf("writes that waited at the cut-over and were made again on %s, per process: %v; test took %s",
		target, retried, time.Since(began).Round(time.Millisecond))
}

// onlDiff describes how got differs from want, a few keys of each kind.
func onlDiff[V comparable](want, got map[string]V) string {
	var missing, extra, changed []string
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%s=%v", k, v))
		case g != v:
			changed = append(changed, fmt.Sprintf("%s: %v, want %v", k, g, v))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, fmt.Sprintf("%s=%v", k, v))
		}
	}
	for _, s := range [][]string{missing, extra, changed} {
		slices.Sort(s)
	}
	few := func(s []string) []string { return s[:min(len(s), 10)] }
	return fmt.Sprintf("%d missing %v; %d not expected %v; %d different %v", len(missing), few(missing), len(extra), few(extra), len(changed), few(changed))
}
