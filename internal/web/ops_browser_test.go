package web

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// The platform admin in a real browser. With PWB_SCREENSHOTS set to a
// folder, these tests also save the screenshots the README shows (`make
// screenshots`).

// opsAcmeProperties sizes the tenant the browser moves: about 33,000 rows,
// enough for the move to take a few seconds, so the progress bar is seen
// between its ends.
const opsAcmeProperties = 6000

// The super-admin the browser tests sign in as.
const (
	opsEmail    = "ops@example.com"
	opsPassword = "correct horse battery"
)

// opsSizeRE is how the dashboard writes a database's size.
var opsSizeRE = regexp.MustCompile(`^\d+(\.\d)? (B|KiB|MiB|GiB|TiB)$`)

// opsPage drives the browser through the platform admin; every call fails
// the test on an error.
type opsPage struct {
	t    *testing.T
	ctx  context.Context
	base string // http://localhost:PORT
	port string // the server's, for the tenants' hosts
}

// opsAdmin creates the super-admin opsEmail on p and returns a page of the
// browser ctx on p's platform host, which saves a screenshot should the
// test fail.
func opsAdmin(t *testing.T, p *platform, ctx context.Context) opsPage {
	t.Helper()
	if _, err := account.CreateSuperAdmin(context.Background(), p.primary, opsEmail, opsPassword); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(p.http.URL)
	if err != nil {
		t.Fatal(err)
	}
	screenshotOnFailure(t, ctx)
	return opsPage{t: t, ctx: ctx, base: "http://localhost:" + u.Port(), port: u.Port()}
}

// do runs actions within 30 seconds.
func (b opsPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b opsPage) text(sel string) string {
	b.t.Helper()
	return opsRun(b, "reading "+sel, chromedp.Text(chromedp.CSS(sel)))
}

func (b opsPage) attr(sel, name string) string {
	b.t.Helper()
	return opsRun(b, "reading "+sel+"'s "+name, chromedp.Evaluate[string](
		fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? (e.getAttribute(%q) ?? "") : "(no element)"; })()`, sel, name)))
}

// waitFor waits up to within for the JavaScript expression to be truthy,
// across page loads: while the page is being drawn again the expression
// cannot run, and that counts as false.
func (b opsPage) waitFor(what, expr string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for !b.is(expr) {
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting %v for %s: %s is still false", within, what, expr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// is evaluates the JavaScript expression once; an error, such as the page
// being drawn again, is false.
func (b opsPage) is(expr string) bool {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
	return err == nil && ok
}

// dashboard loads the dashboard until every card shows the health in want
// and the totals have been gathered, for at most 15 seconds: the health
// poller checks the shards in the background, and gathers the figures
// after its first round; and a card turns amber when a ping takes over
// 100 ms, which a busy test machine sometimes makes it.
func (b opsPage) dashboard(want map[string]string) {
	b.t.Helper()
	cond := []string{`document.querySelector('[data-figures="ready"]')`}
	for name, health := range want {
		cond = append(cond, fmt.Sprintf(`document.querySelector('[data-shard="%s"]')?.dataset.health === %q`, name, health))
	}
	slices.Sort(cond)
	expr := strings.Join(cond, " && ")
	deadline := time.Now().Add(15 * time.Second)
	for tries := 1; ; tries++ {
		b.do("load the dashboard",
			chromedp.Navigate(b.base+"/admin"),
			chromedp.WaitVisible(chromedp.CSS(`#shard-overview [data-shard]`)),
		)
		if b.is(expr) {
			if tries > 1 {
				b.t.Logf("the dashboard showed the expected health on load %d", tries)
			}
			return
		}
		if time.Now().After(deadline) {
			b.t.Errorf("after %d loads the dashboard does not show the health %v; it says:\n%s", tries, want, b.text(`#shard-overview`))
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func opsRun[T any](b opsPage, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// signIn signs in through the platform admin's login form and waits for
// the dashboard.
func (b opsPage) signIn(email, password string) {
	b.t.Helper()
	b.do("sign in to the platform admin",
		chromedp.Navigate(b.base+"/admin"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`#shard-overview [data-shard]`)),
	)
	if got := b.text("main"); !strings.Contains(got, "Signed in as "+email) {
		b.t.Fatalf("after signing in the page says:\n%s", got)
	}
}

// shot saves a PNG of the whole page as PWB_SCREENSHOTS/name, when that
// is set.
func (b opsPage) shot(name string) { b.t.Helper(); b.save(name, chromedp.FullScreenshot(100)) }

// shotWindow saves a PNG of the window alone, which shows a modal dialog's
// backdrop over all of it.
func (b opsPage) shotWindow(name string) { b.t.Helper(); b.save(name, chromedp.CaptureScreenshot()) }

func (b opsPage) save(name string, capture chromedp.Action[[]byte]) {
	b.t.Helper()
	dir := os.Getenv("PWB_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	png := opsRun(b, "screenshot "+name, capture)
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", filepath.Join(dir, name))
}

// checkCard checks a shard's card on the dashboard: its health and that its
// tenant count is the registry's.
func (b opsPage) checkCard(name, health string, want registry.ShardCount) {
	b.t.Helper()
	card := `[data-shard="` + name + `"]`
	if got := b.attr(card, "data-health"); got != health {
		b.t.Errorf("%s's card: health %q, want %q; it says:\n%s", name, got, health, b.text(card))
	}
	wantTenants := fmt.Sprintf("%d (%d standard, %d premium)", want.Tenants, want.Tenants-want.Premium, want.Premium)
	if got := b.text(card + ` [data-field="tenants"]`); got != wantTenants {
		b.t.Errorf("%s's card: tenants %q, want %q", name, got, wantTenants)
	}
	size := b.text(card + ` [data-field="size"]`)
	switch {
	case health != "red" && !opsSizeRE.MatchString(size):
		b.t.Errorf("%s's card: size %q, want a size such as 8.1 MiB", name, size)
	case health == "red" && size != "unavailable":
		b.t.Errorf("%s's card: size %q, want unavailable", name, size)
	}
}

// opsDigest reads the digest of websiteID's rows on the database at dbURL.
func opsDigest(t *testing.T, dbURL string, websiteID int64) movertest.Digest {
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

// A super-admin signs in through the form, checks the shard cards, filters
// the tenant list to premium tenants, and moves a standard tenant of some
// 33,000 rows from primary to shard_2 with the "Migrate Database" dialog,
// watching the progress bar climb to 100. Afterwards every row is
// byte-identical on shard_2 and gone from primary, the registry says
// shard_2, and the tenant's site serves the same pages as before.
func TestBrowser_OpsMigrateTenant(t *testing.T) {
	t.Parallel()
	started := time.Now()
	p := newPlatform(t, platformOptions{shards: 2, jobs: true})
	p.fastHealth()
	ctx := browser(t)
	bg := context.Background()
	acme := p.tenant("acme", shard.Default)
	prestige := p.tenant("prestige", "shard_1")
	summit := p.tenant("summit", "shard_2")
	if err := movertest.Fill(bg, p.primary, acme.ID, movertest.Options{Properties: opsAcmeProperties, Photos: 2}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []registry.Website{prestige, summit} {
		pool, err := p.set.Pool(w.ShardName)
		if err != nil {
			t.Fatal(err)
		}
		if err := movertest.Fill(bg, pool, w.ID, movertest.Options{Properties: 40, Photos: 1}); err != nil {
			t.Fatal(err)
		}
	}
	b := opsAdmin(t, p, ctx)
	site := "http://acme.localhost:" + b.port

	// What the tenant's site serves before the move, to the HTTP client and
	// to the browser.
	const propertyPath = "/properties/property-1" // with both photos
	homeBefore := p.get("acme.localhost", "/")
	wantStatus(t, homeBefore, http.StatusOK)
	propertyBefore := p.get("acme.localhost", propertyPath)
	wantStatus(t, propertyBefore, http.StatusOK)
	b.do("open acme's home page", chromedp.Navigate(site+"/"), chromedp.WaitVisible(chromedp.CSS(`main .grid .card`)))
	mainBefore := opsRun(b, "reading acme's home page", chromedp.OuterHTML(chromedp.CSS(`main`)))
	before := opsDigest(t, p.cluster.URL[shard.Default], acme.ID)
	if before.Empty() || !strings.HasPrefix(before["properties"], fmt.Sprintf("%d rows", opsAcmeProperties)) {
		t.Fatalf("acme's rows on primary before the move: %v", before)
	}

	b.signIn(opsEmail, opsPassword)

	// The dashboard: a green card per shard with the registry's counts.
	b.dashboard(map[string]string{shard.Default: "green", "shard_1": "green", "shard_2": "green"})
	counts, err := registry.CountByShard(bg, p.primary)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{shard.Default, "shard_1", "shard_2"} {
		b.checkCard(name, "green", counts[name])
	}
	if got := b.text(`[data-total="tenants"]`); !strings.HasPrefix(got, "3") {
		t.Errorf("tenants total %q, want 3", got)
	}
	if got := b.text(`[data-total="properties"]`); !strings.HasPrefix(got, "6,080") {
		t.Errorf("properties total %q, want 6,080", got)
	}
	b.shot("dashboard.png")

	// On a phone the dashboard, the tenant list and a tenant's page fit
	// the screen's width.
	b.do("narrow the page to a phone's screen",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	for _, path := range []string{"/admin", "/admin/tenants", fmt.Sprintf("/admin/tenants/%d", acme.ID)} {
		b.do("open "+path+" on a phone", chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		if b.is(`document.documentElement.scrollWidth > window.innerWidth`) {
			t.Errorf("at 390 px %s is wider than the screen", path)
		}
		if path == "/admin" {
			b.shot("dashboard-phone.png")
		}
	}
	if _, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	b.do("go back to the dashboard", chromedp.Navigate(b.base+"/admin"), chromedp.WaitVisible(chromedp.CSS(`main h1`)))

	// The tenant list, then only its premium tenants.
	b.do("open the tenant list",
		chromedp.Click(chromedp.CSS(`nav a[href="/admin/tenants"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.tenants tr[data-tenant]`)),
	)
	rows := func() []string {
		return opsRun(b, "listing tenants", chromedp.Evaluate[[]string](`[...document.querySelectorAll("tr[data-tenant]")].map(r => r.dataset.tenant)`))
	}
	if got := rows(); !slices.Equal(got, []string{"acme", "prestige", "summit"}) {
		t.Errorf("tenant list: %v, want acme, prestige, summit", got)
	}
	if got := b.text(`tr[data-tenant="acme"] [data-field="properties"]`); got != "6,000" {
		t.Errorf("acme's properties in the list: %q, want 6,000", got)
	}
	b.shot("tenants.png")
	b.do("show only premium tenants",
		chromedp.Click(chromedp.CSS(`#premium`)),
		chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)),
	)
	b.waitFor("the premium filter's page", `location.search.includes("premium=1") && document.readyState === "complete" && document.querySelector("#premium").checked`, 10*time.Second)
	if got := rows(); !slices.Equal(got, []string{"prestige", "summit"}) {
		t.Errorf("premium tenants: %v, want prestige, summit", got)
	}
	for _, sub := range []string{"prestige", "summit"} {
		if got := b.text(`tr[data-tenant="` + sub + `"] .tag.premium`); !strings.EqualFold(got, "premium") {
			t.Errorf("%s's tier: %q", sub, got)
		}
	}

	// acme's page, and its "Migrate Database" dialog.
	b.do("open acme's details",
		chromedp.Navigate(b.base+"/admin/tenants"),
		chromedp.Click(chromedp.CSS(`tr[data-tenant="acme"] td a`)),
		chromedp.WaitVisible(chromedp.CSS(`a[data-open-dialog="migrate-dialog"]`)),
	)
	if got := b.text(`[data-field="shard"]`); got != shard.Default {
		t.Errorf("acme's shard on its page: %q", got)
	}
	b.do("open the migrate dialog",
		chromedp.Click(chromedp.CSS(`a[data-open-dialog="migrate-dialog"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#migrate-dialog select[name="target"]`)),
	)
	if open := opsRun(b, "reading the dialog", chromedp.Evaluate[bool](`document.getElementById("migrate-dialog").open`)); !open {
		t.Fatal("the migrate dialog is not open")
	}
	if loc := opsRun(b, "location", chromedp.Location()); strings.HasSuffix(loc, "/migrate") {
		t.Errorf("Migrate Database went to %s instead of opening the dialog", loc)
	}
	// Every shard is listed, its own disabled; a standard tenant is warned
	// off a dedicated shard, and left standard unless the box is ticked.
	if got := opsRun(b, "listing the shards", chromedp.Evaluate[[]string](opsOptions)); !slices.Equal(got, []string{
		"default|true|default — current shard", "shard_1|false|shard_1", "shard_2|false|shard_2"}) {
		t.Errorf("the dialog lists %q; want default (current) disabled, shard_1 and shard_2 to choose", got)
	}
	b.choose("shard_2")
	if got := b.text(`#migrate-dialog [data-tier-warning]`); !strings.Contains(got, "Acme Homes is a standard tenant, and shard_2 is a dedicated shard") {
		t.Errorf("the tier warning for shard_2 says %q", got)
	}
	b.shotWindow("migrate-modal.png")

	// Confirm: the browser lands on the move's page and follows its bar.
	b.do("confirm the move", chromedp.Click(chromedp.CSS(`#migrate-dialog button[type="submit"]`)))
	b.waitFor("the move's page", `/^\/admin\/moves\/\d+$/.test(location.pathname) && document.querySelector('progress[data-bind="bar"]')`, 10*time.Second)
	// The notice that the move is queued shows only while the journal says
	// so: the job may have taken the move already.
	if notice := opsRun(b, "reading the notice", chromedp.Evaluate[string](`document.querySelector(".notice.ok")?.textContent ?? ""`)); notice != "" &&
		(!strings.Contains(notice, "The move is queued") || b.attr(`[data-while-state]`, "data-while-state") != "planned") {
		t.Errorf("the move's page says %q", notice)
	}
	endedAtFirst := b.attr(`[data-events]`, "data-ended") == "true"
	opsRun(b, "marking the page", chromedp.Evaluate[chromedp.Void](`window.pwbFirstDrawing = true`))
	moveStarted := time.Now()
	if os.Getenv("PWB_SCREENSHOTS") != "" {
		// A screenshot is taken at once, before the bar's .4 s transition
		// would draw the value it shows. (Through the CSSOM: the page's
		// Content-Security-Policy refuses a <style> element.)
		opsRun(b, "stopping the bar's transition", chromedp.Evaluate[chromedp.Void](
			`(s => s.insertRule(".move-bar::-webkit-progress-value { transition: none !important; }", s.cssRules.length))(document.styleSheets[0])`))
	}

	const barValue = `(() => { const b = document.querySelector('progress[data-bind="bar"]'); return b ? b.value : -1; })()`
	// The table of tables follows the bar: the same event updates both.
	const liveTable = `(() => { const b = document.querySelector('progress[data-bind="bar"]');
		return window.pwbFirstDrawing === true && b ? [String(b.value)].concat([...document.querySelectorAll('tr[data-move-table] [data-col="copied"]')].map(c => c.textContent)) : []; })()`
	var liveCopying, liveDone []string // the table seen part-way through the copy, and at 100
	var seen []int                     // each value the bar showed, in order
	midShot := -1                      // the bar's value in move-progress.png
	deadline := time.Now().Add(90 * time.Second)
	for {
		ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := chromedp.Run(ectx, chromedp.Evaluate[float64](barValue))
		cancel()
		// An error or -1 is the page being drawn again when the move ends.
		if n := int(v); err == nil && v >= 0 {
			if len(seen) == 0 || seen[len(seen)-1] != n {
				seen = append(seen, n)
			}
			// Keep a picture of the bar part-way, best in the middle of the
			// copy.
			if mid := func(v int) bool { return v >= 10 && v < 90 }; n > 0 && n < 100 && (midShot < 0 || !mid(midShot) && mid(n)) {
				b.shot("move-progress.png")
				midShot = n
			}
			if (n > 2 && n < 90 && liveCopying == nil) || (n == 100 && liveDone == nil) {
				ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
				cells, err := chromedp.Run(ectx, chromedp.Evaluate[[]string](liveTable))
				cancel()
				switch {
				case err != nil || len(cells) == 0: // drawn again already
				case cells[0] == "100":
					liveDone = cells[1:]
				case cells[0] != "2" && cells[0] != "90":
					liveCopying = cells[1:]
				}
			}
			if n == 100 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bar did not reach 100 within 90 s; it showed %v; phase %q\nlog:\n%s", seen, b.text(`[data-bind="phase"]`), p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the move took about %v; the bar showed %v", time.Since(moveStarted).Round(100*time.Millisecond), seen)
	if !slices.IsSorted(seen) {
		t.Errorf("the bar went backwards: %v", seen)
	}
	if !slices.ContainsFunc(seen, func(v int) bool { return v > 0 && v < 100 }) {
		t.Errorf("the bar showed no value between 0 and 100: %v", seen)
	}
	if midShot < 0 {
		b.shot("move-progress.png")
	}
	t.Logf("the table of tables showed %v during the copy and %v at 100", liveCopying, liveDone)
	if liveCopying != nil && slices.Equal(liveCopying, slices.Repeat([]string{"0"}, len(tenant.Tables))) {
		t.Errorf("during the copy the table of tables shows nothing copied: %v", liveCopying)
	}
	for _, c := range liveDone {
		if !strings.HasSuffix(c, " ✓") {
			t.Errorf("at 100%% the table of tables shows a table not copied: %v", liveDone)
			break
		}
	}

	// ops.js draws the page again once the move is done.
	if !endedAtFirst {
		b.waitFor("the move's page drawn again", `window.pwbFirstDrawing === undefined && document.readyState === "complete" && document.querySelector('[data-bind="phase"]')`, 15*time.Second)
	}
	b.checkMoveEnd(p, acme, "acme.localhost:"+b.port)
	if got := b.text(`[data-bind="phase"]`); got != "Done" {
		t.Errorf("phase %q, want Done", got)
	}
	if got := b.attr(`progress[data-bind="bar"]`, "value"); got != "100" {
		t.Errorf("bar value %q after the page was drawn again, want 100", got)
	}
	if got := b.attr(`progress[data-bind="bar"]`, "class"); !strings.Contains(got, "done") {
		t.Errorf("bar class %q, want done", got)
	}
	verified := opsRun(b, "reading the tables", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("main table tbody tr")].map(r => r.cells[0].textContent + ": " + r.cells[3].textContent)`))
	if len(verified) != len(tenant.Tables) {
		t.Errorf("the move's page lists %d tables, want %d: %v", len(verified), len(tenant.Tables), verified)
	}
	for _, v := range verified {
		if !strings.HasSuffix(v, "✓ checksums match") {
			t.Errorf("table not verified: %s", v)
		}
	}
	b.shot("move-done.png")

	// In the databases: every row on shard_2, byte for byte; none left on
	// primary or on shard_1.
	w, err := registry.Get(bg, p.primary, acme.ID)
	if err != nil || w.ShardName != "shard_2" || w.Status != registry.StatusActive {
		t.Fatalf("after the move the registry has %+v, %v; want active on shard_2", w, err)
	}
	if after := opsDigest(t, p.cluster.URL["shard_2"], acme.ID); !maps.Equal(before, after) {
		t.Errorf("acme's rows on shard_2 differ from those on primary before the move:\nbefore %v\nafter  %v", before, after)
	}
	if left := opsDigest(t, p.cluster.URL[shard.Default], acme.ID); !left.Empty() {
		t.Errorf("acme's rows left on primary: %v", left)
	}
	if stray := opsDigest(t, p.cluster.URL["shard_1"], acme.ID); !stray.Empty() {
		t.Errorf("acme's rows on shard_1: %v", stray)
	}

	// The site serves the same pages, now from shard_2.
	if got := p.get("acme.localhost", "/"); got.StatusCode != http.StatusOK || got.Body != homeBefore.Body {
		t.Errorf("acme's home page changed with the move: status %d\n%s", got.StatusCode, excerpt(got.Body))
	}
	if got := p.get("acme.localhost", propertyPath); got.StatusCode != http.StatusOK || got.Body != propertyBefore.Body {
		t.Errorf("acme's %s changed with the move: status %d\n%s", propertyPath, got.StatusCode, excerpt(got.Body))
	}
	b.do("open acme's home page again", chromedp.Navigate(site+"/"), chromedp.WaitVisible(chromedp.CSS(`main .grid .card`)))
	if mainAfter := opsRun(b, "reading acme's home page", chromedp.OuterHTML(chromedp.CSS(`main`))); mainAfter != mainBefore {
		t.Errorf("the browser shows a different home page after the move:\nbefore %s\nafter  %s", excerpt(mainBefore), excerpt(mainAfter))
	}
	b.do("open acme's property page", chromedp.Navigate(site+propertyPath), chromedp.WaitVisible(chromedp.CSS(`.gallery img`)))
	photos := opsRun(b, "checking the photos", chromedp.Poll[int](
		`(() => { const i = [...document.querySelectorAll(".gallery img")]; return i.every(x => x.complete) && i.filter(x => x.naturalWidth === 320).length; })()`,
		chromedp.WithPollingTimeout(10*time.Second)))
	if photos != 2 {
		t.Errorf("the property page shows %d of its 2 photos", photos)
	}

	// The admin says shard_2 too.
	b.do("open acme's details again",
		chromedp.Navigate(fmt.Sprintf("%s/admin/tenants/%d", b.base, acme.ID)),
		chromedp.WaitVisible(chromedp.CSS(`[data-field="shard"]`)),
	)
	if got := b.text(`[data-field="shard"]`); got != "shard_2" {
		t.Errorf("acme's page names shard %q after the move", got)
	}
	t.Logf("whole test: %v", time.Since(started).Round(100*time.Millisecond))
}

// With shard_2's server stopped, its card on the dashboard turns red, both
// through the page's own refresh and on a fresh load, and the totals name it
// as left out, while the other shards' cards stay green.
func TestBrowser_OpsShardDown(t *testing.T) {
	t.Parallel()
	started := time.Now()
	p := newPlatform(t, platformOptions{shards: 2})
	p.fastHealth()
	ctx := browser(t)
	bg := context.Background()
	for sub, sh := range map[string]string{"acme": shard.Default, "prestige": "shard_1", "summit": "shard_2"} {
		w := p.tenant(sub, sh)
		pool, err := p.set.Pool(sh)
		if err != nil {
			t.Fatal(err)
		}
		if err := movertest.Fill(bg, pool, w.ID, movertest.Options{Properties: 30, Photos: 1}); err != nil {
			t.Fatal(err)
		}
	}
	b := opsAdmin(t, p, ctx)

	b.signIn(opsEmail, opsPassword)
	b.dashboard(map[string]string{shard.Default: "green", "shard_1": "green", "shard_2": "green"})
	counts, err := registry.CountByShard(bg, p.primary)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{shard.Default, "shard_1", "shard_2"} {
		b.checkCard(name, "green", counts[name])
	}
	if n := opsRun(b, "looking for the notice", chromedp.Evaluate[int](`document.querySelectorAll("[data-unavailable]").length`)); n != 0 {
		t.Errorf("with every shard up the dashboard says some are unavailable: %s", b.text(`[data-unavailable]`))
	}
	opsRun(b, "marking the page", chromedp.Evaluate[chromedp.Void](`window.pwbFirstDrawing = true`))

	// A fast shutdown: test servers do not sync commits, so an immediate one
	// could lose the schema.
	stopped := time.Now()
	if err := p.cluster.Servers[2].Stop(bg, false); err != nil {
		t.Fatal(err)
	}

	check := func(how string) {
		t.Helper()
		b.checkCard("shard_2", "red", counts["shard_2"])
		for _, name := range []string{shard.Default, "shard_1"} {
			b.checkCard(name, "green", counts[name])
		}
		if got := b.text(`[data-shard="shard_2"] .health`); got != "Down" {
			t.Errorf("%s: shard_2's badge says %q, want Down", how, got)
		}
		if got := b.text(`[data-unavailable]`); !strings.Contains(got, "shard_2") || strings.Contains(got, "shard_1") {
			t.Errorf("%s: the totals' notice says %q; want it to name shard_2 alone", how, got)
		}
		// Tenants come from the registry on primary, so all 3 count.
		if got := b.text(`[data-total="tenants"]`); !strings.HasPrefix(got, "3") {
			t.Errorf("%s: tenants total %q, want 3", how, got)
		}
	}

	// Without a reload: the page refreshes its cards every 5 seconds.
	b.waitFor("shard_2's card to turn red through the page's refresh",
		`document.querySelector('[data-shard="shard_2"]').dataset.health === "red"`, 15*time.Second)
	t.Logf("the card turned red %v after the server stopped", time.Since(stopped).Round(100*time.Millisecond))
	// The other cards are green, on this refresh or, if a busy machine made
	// a ping slow, on a later one.
	b.waitFor("the other cards to be green through the page's refresh",
		`document.querySelector('[data-shard="default"]').dataset.health === "green" && `+
			`document.querySelector('[data-shard="shard_1"]').dataset.health === "green" && `+
			`document.querySelector('[data-shard="shard_2"]').dataset.health === "red"`, 20*time.Second)
	if !b.is(`window.pwbFirstDrawing === true && document.getElementById("shard-overview").dataset.refreshed`) {
		t.Error("the card turned red without the page's own refresh")
	}
	// The totals come from the figures, gathered on a slower cadence than
	// the health: they say shard_2 is left out on a later refresh.
	b.waitFor("the totals to leave shard_2 out through the page's refresh",
		`document.querySelector('[data-unavailable]')?.textContent.includes("shard_2")`, 15*time.Second)
	check("refreshed")

	// A fresh load.
	b.dashboard(map[string]string{shard.Default: "green", "shard_1": "green", "shard_2": "red"})
	if b.is(`window.pwbFirstDrawing`) {
		t.Fatalf("the dashboard was not loaded afresh")
	}
	check("fresh load")
	b.shot("shard-down.png")
	t.Logf("whole test: %v", time.Since(started).Round(100*time.Millisecond))
}

// opsOptions lists the migrate dialog's shards as "name|disabled|label".
const opsOptions = `[...document.querySelectorAll('#migrate-dialog select[name="target"] option')].filter(o => o.value).map(o => o.value + "|" + o.disabled + "|" + o.textContent)`

// opsChoose picks shard name in the migrate dialog as a person does, so
// the page hears of the change.
func (b opsPage) choose(name string) {
	b.t.Helper()
	opsRun(b, "choosing "+name, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(s => { s.value = %q; s.dispatchEvent(new Event("change", {bubbles: true})); })(document.querySelector('#migrate-dialog select[name="target"]'))`, name)))
}

// opsShown is true when the element of sel is drawn.
func opsShown(sel string) string {
	return fmt.Sprintf(`(e => !!e && e.getClientRects().length > 0)(document.querySelector(%q))`, sel)
}

// opsDurationRE is how a move's measured times are written.
var opsDurationRE = regexp.MustCompile(`^\d+(\.\d+)?(ms|s|m\d+(\.\d+)?s)$`)

// The Migrate Database dialog of a premium tenant lists every shard: its
// own, one with a migration pending and one that is down are there,
// disabled, with why. Choosing default warns that it is the standard
// tenants' shard and offers the tier change, which follows the choice;
// ticked, the move is queued with the tier changed in the same step, and
// the audit log says so. The move runs to its end, and its page shows the
// whole time, the time writes were blocked and a link to the site.
func TestBrowser_OpsMigrateChoices(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 3, jobs: true})
	p.fastHealth()
	ctx := browser(t)
	bg := context.Background()
	prestige := p.tenant("prestige", "shard_1") // premium
	pool, err := p.set.Pool("shard_1")
	if err != nil {
		t.Fatal(err)
	}
	if err := movertest.Fill(bg, pool, prestige.ID, movertest.Options{Properties: 30, Photos: 1}); err != nil {
		t.Fatal(err)
	}
	b := opsAdmin(t, p, ctx)
	p.spoilShards(t)
	b.signIn(opsEmail, opsPassword)

	b.do("open prestige's migrate dialog",
		chromedp.Navigate(fmt.Sprintf("%s/admin/tenants/%d", b.base, prestige.ID)),
		chromedp.WaitVisible(chromedp.CSS(`a[data-open-dialog="migrate-dialog"]`)),
		chromedp.Click(chromedp.CSS(`a[data-open-dialog="migrate-dialog"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#migrate-dialog select[name="target"]`)),
	)
	options := opsRun(b, "listing the shards", chromedp.Evaluate[[]string](opsOptions))
	if len(options) != 4 || options[0] != "default|false|default" || options[1] != "shard_1|true|shard_1 — current shard" ||
		options[2] != "shard_2|true|shard_2 — 1 migration pending" || !strings.HasPrefix(options[3], "shard_3|true|shard_3 — unreachable: ") {
		t.Errorf("the dialog lists %q; want default to choose, and shard_1 (current), shard_2 (a migration pending) and shard_3 (unreachable) disabled with why", options)
	}

	// The tier warning follows the choice.
	const warning, box = `#migrate-dialog [data-tier-warning]`, `#migrate-dialog [data-tier-box]`
	boxUsable := fmt.Sprintf(`!document.querySelector(%q).disabled`, box)
	if b.is(opsShown(warning)) || b.is(boxUsable) {
		t.Error("with no shard chosen, the dialog shows the tier warning or its box is usable")
	}
	b.choose("default")
	if !b.is(opsShown(warning)) || !b.is(boxUsable) {
		t.Fatal("with default chosen, the dialog shows no tier warning")
	}
	if got := b.text(warning); !strings.Contains(got, "Prestige Homes is a premium tenant, and default is the shard the standard tenants share") ||
		!strings.Contains(got, "Also change the tier to standard") {
		t.Errorf("the tier warning says %q", got)
	}
	b.do("tick the tier box", chromedp.Click(chromedp.CSS(box)))
	b.choose("")
	if b.is(opsShown(warning)) || b.is(boxUsable) || b.is(fmt.Sprintf(`document.querySelector(%q).checked`, box)) {
		t.Error("with the choice undone, the tier warning stays, or its box stays usable or ticked")
	}
	b.choose("default")
	b.do("tick the tier box again", chromedp.Click(chromedp.CSS(box)))

	b.do("confirm the move", chromedp.Click(chromedp.CSS(`#migrate-dialog button[type="submit"]`)))
	b.waitFor("the move's page", `/^\/admin\/moves\/\d+$/.test(location.pathname) && document.querySelector('progress[data-bind="bar"]')`, 10*time.Second)
	// The tier changed with the move's start, before it runs to its end.
	if w, err := registry.Get(bg, p.primary, prestige.ID); err != nil || w.Tier != registry.TierStandard {
		t.Errorf("prestige once its move is queued: %+v, %v; want standard", w, err)
	}
	b.waitFor("the move's end", `document.querySelector('[data-move-end="done"]')`, 60*time.Second)
	b.checkMoveEnd(p, prestige, "prestige.localhost:"+b.port)
	if w, err := registry.Get(bg, p.primary, prestige.ID); err != nil || w.Tier != registry.TierStandard || w.ShardName != shard.Default {
		t.Errorf("prestige after its move: %+v, %v; want standard on default", w, err)
	}

	// The audit log's line of the queued move says the tier changed.
	b.do("open the audit log", chromedp.Navigate(b.base+"/admin/audit"), chromedp.WaitVisible(chromedp.CSS(`table.audit`)))
	if got := b.text(`tr[data-action="move"][data-outcome="queued"]`); !strings.Contains(got, "tier changed from premium to standard as the move was queued") ||
		!strings.Contains(got, "admin:"+opsEmail) {
		t.Errorf("the audit log's queued move says %q", got)
	}
}

// checkMoveEnd checks the move page of w's finished move: its notice of
// queued work is gone, and its end shows the whole time and the blocked
// time, as the journal measured them, and links to the site at host.
func (b opsPage) checkMoveEnd(p *platform, w registry.Website, host string) {
	b.t.Helper()
	if b.is(`document.querySelector("[data-while-state], .notice.ok")`) {
		b.t.Errorf("the finished move's page still says %q", b.text(`main`))
	}
	id := opsRun(b, "reading the move's id", chromedp.Evaluate[string](`location.pathname.split("/").pop()`))
	moves, err := journal.List(context.Background(), p.primary, w.ID)
	if err != nil {
		b.t.Fatal(err)
	}
	var m journal.Move
	for _, mv := range moves {
		if fmt.Sprint(mv.ID) == id {
			m = mv
		}
	}
	took, ok := m.Took()
	blocked, blockedOK := m.Blocked()
	if !ok || !blockedOK {
		b.t.Fatalf("move %s in the journal: %+v; want done, with its times", id, m)
	}
	if got, want := b.text(`[data-field="took"] b`), journal.Measured(took); got != want || !opsDurationRE.MatchString(got) {
		b.t.Errorf("the move page says the move took %q, want %q", got, want)
	}
	if got, want := b.text(`[data-field="blocked"] b`), journal.Measured(blocked); got != want {
		b.t.Errorf("the move page says writes were blocked for %q, want %q", got, want)
	}
	label := "Read-only"
	if m.Online() {
		label = "Writes held"
	}
	if got := b.text(`[data-move-end] dt:nth-of-type(2)`); got != label {
		b.t.Errorf("the blocked time is called %q, want %q", got, label)
	}
	if got, want := b.attr(`[data-move-end] a[data-site-link]`, "href"), "http://"+host+"/"; got != want {
		b.t.Errorf("the move page links to the site at %q, want %q", got, want)
	}
}

// The move page's notice that the move is queued holds while the journal
// says so, and goes, without a reload, once the move runs; the page then
// follows the move to its end and shows its whole time, the time the site
// was read-only (at least the time the test held the move frozen), and a
// link to the site. A reload with the old address shows no notice either.
func TestBrowser_OpsMovePage(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1})
	ctx := browser(t)
	bg := context.Background()
	acme := p.tenant("acme", shard.Default)
	if err := movertest.Fill(bg, p.primary, acme.ID, movertest.Options{Properties: 20, Photos: 1}); err != nil {
		t.Fatal(err)
	}
	id := p.plannedMove(t, "acme", "shard_1") // freeze mode
	b := opsAdmin(t, p, ctx)
	b.signIn(opsEmail, opsPassword)

	page := fmt.Sprintf("%s/admin/moves/%d", b.base, id)
	b.do("open the queued move's page", chromedp.Navigate(page+"?done=queued"), chromedp.WaitVisible(chromedp.CSS(`progress[data-bind="bar"]`)))
	if got := b.text(`[data-while-state]`); !strings.Contains(got, "The move is queued") {
		t.Errorf("the queued move's page says %q", got)
	}
	if b.is(`document.querySelector("[data-move-end]")`) {
		t.Error("the queued move's page shows how it ended")
	}
	opsRun(b, "marking the page", chromedp.Evaluate[chromedp.Void](`window.pwbFirstDrawing = true`))

	// The move runs, held once it has frozen the site and recorded its
	// copy, until the page has dropped the notice.
	const hold = time.Second
	frozen, release := make(chan struct{}), make(chan struct{})
	mv, err := mover.New(p.set, mover.Options{CleanupDelay: mover.NoCleanupDelay, Pause: func(point string) {
		if point == string(journal.StateCopying) {
			close(frozen)
			<-release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { _, err := mv.Run(bg, id); ran <- err }()
	select {
	case <-frozen:
	case err := <-ran:
		t.Fatalf("the move ended before its copy: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the move did not reach its copy")
	}
	heldAt := time.Now()
	b.waitFor("the notice to go while the move runs", `window.pwbFirstDrawing === true && !document.querySelector("[data-while-state]") && `+
		`document.querySelector('[data-bind="phase"]').textContent === "Copying rows"`, 10*time.Second)
	time.Sleep(hold - time.Since(heldAt))
	close(release)
	if err := <-ran; err != nil {
		t.Fatalf("the move: %v", err)
	}

	// ops.js draws the page again once the move is done.
	b.waitFor("the move's end", `window.pwbFirstDrawing === undefined && document.querySelector('[data-move-end="done"]')`, 15*time.Second)
	b.checkMoveEnd(p, acme, "acme.localhost:"+b.port)
	m, err := journal.Get(bg, p.primary, id)
	if err != nil {
		t.Fatal(err)
	}
	if blocked, _ := m.Blocked(); blocked < hold {
		t.Errorf("the site was read-only for %s by the journal, less than the %s the test held the move frozen", blocked, hold)
	}
	b.do("open the old address again", chromedp.Navigate(page+"?done=queued"), chromedp.WaitVisible(chromedp.CSS(`[data-move-end]`)))
	if b.is(`document.querySelector("[data-while-state], .notice.ok")`) {
		t.Errorf("the done move's page at its queued address says %q", b.text(`main`))
	}
}

// opsCellsClipped lists the table cells of the page that are not drawn or
// do not fit the screen's width or their table's box, which would cut them
// off; and "(wider)" if the page or a table's box scrolls sideways.
const opsCellsClipped = `(() => {
	const out = [], w = window.innerWidth;
	if (document.documentElement.scrollWidth > w) { out.push("(wider) page " + document.documentElement.scrollWidth); }
	document.querySelectorAll("main table").forEach(t => {
		const wrap = t.closest(".table-wrap") || t.parentElement, box = wrap.getBoundingClientRect();
		if (wrap.scrollWidth > wrap.clientWidth + 1) { out.push("(wider) table " + wrap.scrollWidth + " in " + wrap.clientWidth); }
		t.querySelectorAll("td").forEach(c => {
			// An empty cell may be left out; one with something in it not.
			if (c.getClientRects().length === 0 && c.textContent.trim() === "") { return; }
			const r = c.getBoundingClientRect();
			if (r.width <= 0 || r.left < -0.5 || r.right > w + 0.5 || r.left < box.left - 0.5 || r.right > box.right + 0.5) {
				out.push((c.dataset.label || "?") + ": " + c.textContent.trim().slice(0, 40) + " [" + Math.round(r.left) + ", " + Math.round(r.right) + "]");
			}
		});
	});
	return out;
})()`

// On a phone (375 by 812 px), every table of the platform admin and of the
// site admin shows each row as labelled lines within the screen: no cell
// is cut off, and no page or table scrolls sideways. On a wide screen the
// same tables are tables.
func TestBrowser_OpsPhoneTables(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1,
		signIn: throttle.Rule{Limit: 2, Window: time.Hour, Lock: time.Hour, MaxLock: time.Hour}})
	ctx := browser(t)
	bg := context.Background()
	acme := p.tenant("acme", shard.Default)
	bravo := p.tenant("bravo-with-a-rather-long-subdomain", shard.Default)
	for _, w := range []registry.Website{acme, bravo} {
		if err := movertest.Fill(bg, p.primary, w.ID, movertest.Options{Properties: 12, Photos: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// bravo has moved to shard_1; acme's move is planned, and unfinished.
	mv, err := mover.New(p.set, mover.Options{CleanupDelay: mover.NoCleanupDelay})
	if err != nil {
		t.Fatal(err)
	}
	moved := p.plannedMove(t, bravo.Subdomain, "shard_1")
	if _, err := mv.Run(bg, moved); err != nil {
		t.Fatal(err)
	}
	planned := p.plannedMove(t, "acme", "shard_1")
	// Lines of the audit log, one of them long.
	for _, e := range []audit.Entry{
		{Actor: "admin:someone.with.a.long.address@operations.example.com", Action: audit.Move, Outcome: audit.Queued, MoveID: moved,
			Source: shard.Default, Target: "shard_1", Detail: strings.Repeat("a detail long enough to wrap several times ", 5)},
		{Actor: "cli", Action: audit.Move, Outcome: audit.Done, MoveID: moved, Source: shard.Default, Target: "shard_1"},
	} {
		if err := audit.Record(bg, p.primary, e.ForWebsite(bravo)); err != nil {
			t.Fatal(err)
		}
	}
	// A locked account, for the sign-in locks.
	for range 3 {
		p.postForm("localhost", "/admin/login", url.Values{"email": {"guessed.account.with.a.long.name@example.com"}, "password": {"wrong"}})
	}
	b := opsAdmin(t, p, ctx)
	ownerEmail, ownerPassword := p.member(acme, "owner@acme.example")
	site := "http://acme.localhost:" + b.port
	b.signIn(opsEmail, opsPassword)
	b.do("sign in to acme's site admin",
		chromedp.Navigate(site+"/site_admin"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), ownerEmail),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), ownerPassword),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/site_admin/properties"]`)),
	)

	pages := []struct {
		url  string
		rows int // at least, in stacked tables
	}{
		{b.base + "/admin", 1},
		{b.base + "/admin/tenants", 2},
		{fmt.Sprintf("%s/admin/tenants/%d", b.base, bravo.ID), 3}, // its move, and two audit lines
		{fmt.Sprintf("%s/admin/tenants/%d", b.base, acme.ID), 1},
		{b.base + "/admin/audit", 3},
		{b.base + "/admin/sign-in-locks", 1},
		{fmt.Sprintf("%s/admin/moves/%d", b.base, moved), len(tenant.Tables)},
		{fmt.Sprintf("%s/admin/moves/%d", b.base, planned), len(tenant.Tables)},
		{site + "/site_admin", 1},
		{site + "/site_admin/messages", 6},
		{site + "/site_admin/pages", 3},
		{site + "/site_admin/properties", 3},
	}
	stacked := `[...document.querySelectorAll("main table.stack tbody tr")].filter(r => r.querySelector("td[data-label]")).length`
	b.do("narrow the page to a phone's screen",
		chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	for _, pg := range pages {
		b.do("open "+pg.url+" on a phone", chromedp.Navigate(pg.url), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		if n := opsRun(b, "counting rows", chromedp.Evaluate[int](stacked)); n < pg.rows {
			t.Errorf("at 375 px %s shows %d rows of labelled cells, want at least %d", pg.url, n, pg.rows)
		}
		if clipped := opsRun(b, "looking for clipped cells", chromedp.Evaluate[[]string](opsCellsClipped)); len(clipped) > 0 {
			t.Errorf("at 375 px %s cuts off: %q", pg.url, clipped)
		}
		// Each cell says what it is: its label is drawn beside it.
		label := `(c => c ? getComputedStyle(c, "::before").content : "")(document.querySelector("main table.stack td[data-label]"))`
		if got := opsRun(b, "reading a label", chromedp.Evaluate[string](label)); got == "" || got == "none" {
			t.Errorf("at 375 px %s draws no label beside its cells: %q", pg.url, got)
		}
	}
	if _, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/admin/tenants", "/admin/audit"} {
		b.do("open "+path+" on a wide screen", chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		if got := opsRun(b, "reading the layout", chromedp.Evaluate[string](
			`getComputedStyle(document.querySelector("main table.stack td")).display + " " + getComputedStyle(document.querySelector("main table.stack thead")).display`)); got != "table-cell table-header-group" {
			t.Errorf("on a wide screen %s's table is drawn as %q, want a table", path, got)
		}
	}
}
