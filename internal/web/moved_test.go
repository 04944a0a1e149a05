package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// ---- helpers of the move-following tests (prefixed mv) ----

// mvCopyTenant copies every row of website id from one shard database to
// another, table by table in foreign-key order, as a mover's copy would.
func mvCopyTenant(t *testing.T, fromURL, toURL string, id int64) {
	t.Helper()
	ctx := context.Background()
	from, err := pgx.Connect(ctx, fromURL)
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close(ctx)
	to, err := pgx.Connect(ctx, toURL)
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close(ctx)
	for _, table := range tenant.Tables {
		var b bytes.Buffer
		name := pgx.Identifier{table}.Sanitize()
		if _, err := from.PgConn().CopyTo(ctx, &b, fmt.Sprintf("COPY (SELECT * FROM %s WHERE website_id = %d) TO STDOUT", name, id)); err != nil {
			t.Fatalf("copying %s out: %v", table, err)
		}
		if _, err := to.PgConn().CopyFrom(ctx, &b, "COPY "+name+" FROM STDIN"); err != nil {
			t.Fatalf("copying %s in: %v", table, err)
		}
	}
}

// mvResult is the outcome of a request sent in the background.
type mvResult struct {
	r   response
	err error
}

// mvSend sends req to host in the background: it is meant to wait on the
// write fence while the test plays a mover's cut-over.
func mvSend(p *platform, host string, req *http.Request) <-chan mvResult {
	u, _ := url.Parse(p.http.URL)
	req.URL.Scheme, req.URL.Host = u.Scheme, u.Host
	req.Host = host
	out := make(chan mvResult, 1)
	go func() {
		res, err := p.client.Do(req)
		if err != nil {
			out <- mvResult{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		out <- mvResult{r: response{Response: res, Body: string(b)}, err: err}
	}()
	return out
}

func mvForm(path string, form url.Values, cookie *http.Cookie) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != nil {
		req.AddCookie(cookie)
	}
	return req
}

// mvCutOver plays an online move's cut-over of w from shard_1 to shard_2
// around a request: it takes w's write fence exclusively on shard_1, sends
// the request, waits until the request waits on the fence, calls change (the
// registry change the test makes meanwhile) and lets go of the fence. It
// returns the request's answer.
func mvCutOver(t *testing.T, p *platform, w registry.Website, req *http.Request, change func()) response {
	t.Helper()
	ctx := context.Background()
	pool, err := p.set.Pool("shard_1")
	if err != nil {
		t.Fatal(err)
	}
	fence, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fence.Rollback(ctx)
	if err := tenant.Freeze(ctx, fence, w.ID); err != nil {
		t.Fatal(err)
	}
	answer := mvSend(p, w.Subdomain+".localhost", req)
	waiting := false
	for range 500 { // up to 10 s on a busy machine
		if pgtest.QueryValue[int64](t, p.cluster.URL["shard_1"], `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND objid = $1`, w.ID) > 0 {
			waiting = true
			break
		}
		select {
		case a := <-answer:
			t.Fatalf("the request was answered while the fence was held: %d %v\n%s", a.r.StatusCode, a.err, excerpt(a.r.Body))
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !waiting {
		t.Fatal("the request never waited on the write fence")
	}
	change()
	if err := fence.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-answer:
		if a.err != nil {
			t.Fatal(a.err)
		}
		return a.r
	case <-time.After(15 * time.Second):
		t.Fatal("no answer after the fence was let go")
		return response{}
	}
}

// mvMove copies w's rows to shard_2 and points the registry there: what a
// mover does while it holds the fence.
func mvMove(t *testing.T, p *platform, w registry.Website) func() {
	return func() {
		mvCopyTenant(t, p.cluster.URL["shard_1"], p.cluster.URL["shard_2"], w.ID)
		if err := registry.SetShard(context.Background(), p.primary, w.ID, "shard_2"); err != nil {
			t.Fatal(err)
		}
	}
}

// mvSetStatus sets w's status instead: a freeze, not a move.
func mvSetStatus(t *testing.T, p *platform, w registry.Website, status string) func() {
	return func() {
		if err := registry.SetStatus(context.Background(), p.primary, w.ID, status); err != nil {
			t.Fatal(err)
		}
	}
}

func mvRetries(p *platform) int {
	return strings.Count(p.log.String(), "writing again on its new shard")
}

// ---- tests ----

// Writes that wait on the write fence while an online move cuts the tenant
// over (the fence held exclusively on the source, the rows copied, the
// registry switched to the target, the fence let go) are made once on the
// target, and the visitor gets the usual answer rather than a 503. A tenant
// frozen read_only instead still gets the 503 it always did, and nothing is
// written anywhere.
func TestMove_WritesWaitingAtTheCutOverFollowTheTenant(t *testing.T) {
	t.Parallel()
	// A long request deadline: the test, not the request, sets the pace.
	p := newPlatform(t, platformOptions{shards: 2, requestTimeout: 30 * time.Second})
	ctx := context.Background()
	source, target := p.cluster.URL["shard_1"], p.cluster.URL["shard_2"]
	enquiry := func(body string) url.Values {
		return url.Values{"name": {"Ann"}, "email": {"ann@example.com"}, "message": {body}}
	}
	messages := func(dbURL string, w registry.Website, body string) int64 {
		return pgtest.QueryValue[int64](t, dbURL, "SELECT count(*) FROM messages WHERE website_id = $1 AND body = $2", w.ID, body)
	}
	// site is a tenant on shard_1 with a member signed in and a property,
	// its registry entry in the cache.
	site := func(t *testing.T, sub string) (registry.Website, *http.Cookie, content.Property) {
		t.Helper()
		w := p.tenant(sub, "shard_1")
		email, password := p.member(w, sub+"@example.com")
		prop, err := content.CreateProperty(ctx, p.scope(w), content.PropertyInput{Title: "Old villa", Visible: true, Features: []string{"Moat"}})
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, p.get(sub+".localhost", "/"), http.StatusOK)
		return w, saSignIn(t, p, sub+".localhost", email, password), prop
	}
	property := func(dbURL string, id uuid.UUID) (title string, features string, n int64) {
		n = pgtest.QueryValue[int64](t, dbURL, "SELECT count(*) FROM properties WHERE id = $1", id)
		if n == 0 {
			return "", "", 0
		}
		title = pgtest.QueryValue[string](t, dbURL, "SELECT title FROM properties WHERE id = $1", id)
		features = pgtest.QueryValue[string](t, dbURL,
			"SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM property_features WHERE property_id = $1", id)
		return title, features, n
	}

	t.Run("contact enquiry", func(t *testing.T) {
		w, _, _ := site(t, "hop")
		before := mvRetries(p)
		r := mvCutOver(t, p, w, mvForm("/contact", enquiry("Through the cut-over"), nil), mvMove(t, p, w))
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != "/contact?sent=1#enquiry" {
			t.Errorf("Location %q", got)
		}
		if n1, n2 := messages(source, w, "Through the cut-over"), messages(target, w, "Through the cut-over"); n1 != 0 || n2 != 1 {
			t.Errorf("the enquiry is %d times on the source and %d times on the target; want 0 and 1", n1, n2)
		}
		if n := count(t, target, "contacts", w.ID); n != 1 {
			t.Errorf("%d contacts on the target, want 1", n)
		}
		if got := mvRetries(p) - before; got != 1 {
			t.Errorf("%d writes made again, want 1", got)
		}
		// The next enquiry goes to the target straight away.
		wantStatus(t, p.postForm("hop.localhost", "/contact", enquiry("After the move")), http.StatusSeeOther)
		if n1, n2 := messages(source, w, "After the move"), messages(target, w, "After the move"); n1 != 0 || n2 != 1 {
			t.Errorf("the next enquiry is %d times on the source and %d times on the target", n1, n2)
		}
		if got := mvRetries(p) - before; got != 1 {
			t.Errorf("%d writes made again, want 1: the next request should have gone to the target", got)
		}
	})

	t.Run("property enquiry", func(t *testing.T) {
		w, _, prop := site(t, "ask")
		r := mvCutOver(t, p, w, mvForm("/properties/"+prop.Slug+"/enquiry", enquiry("Is the villa free?"), nil), mvMove(t, p, w))
		wantStatus(t, r, http.StatusSeeOther)
		if n1, n2 := messages(source, w, "Is the villa free?"), messages(target, w, "Is the villa free?"); n1 != 0 || n2 != 1 {
			t.Errorf("the enquiry is %d times on the source and %d times on the target; want 0 and 1", n1, n2)
		}
		if got := pgtest.QueryValue[uuid.UUID](t, target, "SELECT property_id FROM messages WHERE website_id = $1", w.ID); got != prop.ID {
			t.Errorf("the enquiry is about %s, want %s", got, prop.ID)
		}
	})

	t.Run("property edit", func(t *testing.T) {
		w, cookie, prop := site(t, "edit")
		before := mvRetries(p)
		r := mvCutOver(t, p, w, mvForm("/site_admin/properties/"+prop.ID.String(), saPropertyFields("Renamed villa"), cookie), mvMove(t, p, w))
		wantStatus(t, r, http.StatusSeeOther)
		if got, want := r.Header.Get("Location"), "/site_admin/properties/"+prop.ID.String()+"/edit?done=saved"; got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
		if title, features, n := property(target, prop.ID); n != 1 || title != "Renamed villa" || features != "Garden,Pool" {
			t.Errorf("on the target: %d rows, title %q, features %q; want 1, the new title, Garden,Pool", n, title, features)
		}
		if title, features, _ := property(source, prop.ID); title != "Old villa" || features != "Moat" {
			t.Errorf("the edit reached the source: title %q, features %q", title, features)
		}
		if got := mvRetries(p) - before; got != 1 {
			t.Errorf("%d writes made again, want 1", got)
		}
		// The page the editor is sent to shows the edit.
		r = p.get("edit.localhost", r.Header.Get("Location"), cookie)
		wantStatus(t, r, http.StatusOK)
		saWantBody(t, r, "Saved.", "Renamed villa")
	})

	t.Run("photo upload", func(t *testing.T) {
		w, cookie, prop := site(t, "snap")
		photo := saPNG(t, 7)
		body, ct := saMultipart(t, nil, saFile{"snap.png", photo})
		req, _ := http.NewRequest(http.MethodPost, "/site_admin/properties/"+prop.ID.String()+"/photos", body)
		req.Header.Set("Content-Type", ct)
		req.AddCookie(cookie)
		r := mvCutOver(t, p, w, req, mvMove(t, p, w))
		wantStatus(t, r, http.StatusSeeOther)
		if n := count(t, source, "property_photos", w.ID); n != 0 {
			t.Errorf("%d photos on the source", n)
		}
		if n := count(t, target, "property_photos", w.ID); n != 1 {
			t.Fatalf("%d photos on the target, want 1", n)
		}
		if got := pgtest.QueryValue[[]byte](t, target, "SELECT image FROM property_photos WHERE website_id = $1", w.ID); !bytes.Equal(got, photo) {
			t.Errorf("the photo on the target is %d bytes, not the %d uploaded", len(got), len(photo))
		}
	})

	t.Run("read_only", func(t *testing.T) {
		w, cookie, prop := site(t, "frozen")
		before := mvRetries(p)
		r := mvCutOver(t, p, w, mvForm("/contact", enquiry("While frozen"), nil), mvSetStatus(t, p, w, registry.StatusReadOnly))
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "cannot take changes right now") {
			t.Errorf("want the paused-writes page with Retry-After; got %v\n%s", r.Header, excerpt(r.Body))
		}
		if n1, n2 := messages(source, w, "While frozen"), messages(target, w, "While frozen"); n1 != 0 || n2 != 0 {
			t.Errorf("a refused enquiry was written: %d on the source, %d on the target", n1, n2)
		}
		// Thawed, then frozen again around a site-admin edit.
		mvSetStatus(t, p, w, registry.StatusActive)()
		waitFor(t, func() bool { return p.get("frozen.localhost", "/").StatusCode == http.StatusOK })
		r = mvCutOver(t, p, w, mvForm("/site_admin/properties/"+prop.ID.String(), saPropertyFields("Renamed villa"), cookie),
			mvSetStatus(t, p, w, registry.StatusReadOnly))
		wantStatus(t, r, http.StatusServiceUnavailable)
		if title, _, _ := property(source, prop.ID); title != "Old villa" {
			t.Errorf("a refused edit was written: title %q", title)
		}
		if got := mvRetries(p) - before; got != 0 {
			t.Errorf("%d writes of a frozen tenant were made again, want none", got)
		}
		// Expected during every move: the refused edit is logged, but not
		// as an error.
		logs := p.log.String()
		if !strings.Contains(logs, "level=INFO msg=\"write refused: the tenant's writes are paused\"") {
			t.Errorf("a paused write should be logged at INFO:\n%s", logs)
		}
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, "level=ERROR") && strings.Contains(line, "writes are paused") {
				t.Errorf("a paused write logged as an error: %s", line)
			}
		}
	})

	t.Run("read_only and switched", func(t *testing.T) {
		w, _, _ := site(t, "offline")
		r := mvCutOver(t, p, w, mvForm("/contact", enquiry("While moved offline"), nil), func() {
			mvSetStatus(t, p, w, registry.StatusReadOnly)()
			mvMove(t, p, w)()
		})
		wantStatus(t, r, http.StatusServiceUnavailable)
		if n1, n2 := messages(source, w, "While moved offline"), messages(target, w, "While moved offline"); n1 != 0 || n2 != 0 {
			t.Errorf("a refused enquiry was written: %d on the source, %d on the target", n1, n2)
		}
	})
}

// A request whose tenant the registry cache still places on the old shard
// (the cache missed the move) is refused there with ErrMoved and written on
// the new shard, once; the cache then forgets the tenant, so the next
// requests read from and write to the new shard without a detour. A write
// refused again on the new shard, or refused for another reason, is not
// tried a third time.
func TestMove_StaleCacheWriteLandsOnTheNewShard(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 2, staleCache: true})
	ctx := context.Background()
	source, target := p.cluster.URL["shard_1"], p.cluster.URL["shard_2"]
	w := p.tenant("late", "shard_1")
	wantStatus(t, p.get("late.localhost", "/"), http.StatusOK)

	mvMove(t, p, w)()
	if c, err := p.cache.BySubdomain(ctx, "late"); err != nil || c.ShardName != "shard_1" {
		t.Fatalf("the cache should still name shard_1: %+v, %v", c, err)
	}
	// Only on the target: proof of where later reads come from.
	pgtest.Exec(t, target, `INSERT INTO pages (id, website_id, slug, title, body, visible)
		VALUES (gen_random_uuid(), $1, 'moved', 'Only on the target', '', true)`, w.ID)

	r := p.postForm("late.localhost", "/contact", url.Values{"name": {"Ann"}, "email": {"ann@example.com"}, "message": {"Stale"}})
	wantStatus(t, r, http.StatusSeeOther)
	if n1, n2 := count(t, source, "messages", w.ID), count(t, target, "messages", w.ID); n1 != 0 || n2 != 1 {
		t.Errorf("the enquiry is %d times on the source and %d times on the target; want 0 and 1", n1, n2)
	}
	if c, err := p.cache.BySubdomain(ctx, "late"); err != nil || c.ShardName != "shard_2" {
		t.Errorf("after the write the cache says %+v, %v; want shard_2", c, err)
	}
	wantStatus(t, p.get("late.localhost", "/p/moved"), http.StatusOK)
	if !strings.Contains(p.log.String(), "shard=shard_2") {
		t.Errorf("the access log never names shard_2:\n%s", p.log.String())
	}
	if got := mvRetries(p); got != 1 {
		t.Errorf("%d writes made again, want 1", got)
	}

	// The retry itself: once, and only for ErrMoved.
	stale := site{Website: w, Scope: p.scope(w)} // still shard_1
	calls := 0
	movedAgain := func(sc tenant.Scope) error {
		calls++
		return &tenant.MovedError{WebsiteID: w.ID, From: sc.Shard, To: "shard_9"}
	}
	moved, err := p.server.writeFollowingMove(ctx, stale, movedAgain)
	if calls != 2 || !errors.Is(err, tenant.ErrMoved) {
		t.Errorf("a write refused twice as moved: %d calls, error %v; want 2 calls and ErrMoved", calls, err)
	}
	if moved == nil || moved.Scope.Shard != "shard_2" {
		t.Errorf("the second call did not go to shard_2: %+v", moved)
	}
	if he := classify(err); he.status != http.StatusServiceUnavailable {
		t.Errorf("a write refused twice is answered %d, want 503", he.status)
	}
	for _, refusal := range []error{tenant.ErrWritesPaused, content.ErrNotFound, errors.New("boom")} {
		calls = 0
		moved, err := p.server.writeFollowingMove(ctx, stale, func(tenant.Scope) error { calls++; return refusal })
		if calls != 1 || !errors.Is(err, refusal) || moved != nil {
			t.Errorf("a write refused with %v: %d calls, error %v, moved %v; want 1 call and the refusal", refusal, calls, err, moved)
		}
	}
	// A tenant that moved and is no longer active is not written to.
	if err := registry.SetStatus(ctx, p.primary, w.ID, registry.StatusReadOnly); err != nil {
		t.Fatal(err)
	}
	calls = 0
	_, err = p.server.writeFollowingMove(ctx, stale, func(sc tenant.Scope) error {
		calls++
		return &tenant.MovedError{WebsiteID: w.ID, From: sc.Shard, To: "shard_2"}
	})
	if calls != 1 || !errors.Is(err, tenant.ErrWritesPaused) {
		t.Errorf("a moved tenant now read_only: %d calls, error %v; want 1 call and ErrWritesPaused", calls, err)
	}
}
