package web

import (
	"context"
	"image/color"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// browser starts Debian's headless Chromium for the test. Without it the
// test skips, except under CI=true, where it fails: `make test` installs it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; `make test` installs it (apt-get install chromium)")
		}
		t.Skip("chromium is not installed; `make test` installs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// screenshotOnFailure saves what the browser shows if the test failed.
func screenshotOnFailure(t *testing.T, ctx context.Context) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(90))
		if err != nil {
			t.Logf("no screenshot: %v", err)
			return
		}
		dir := os.Getenv("PWB_TEST_ARTIFACTS")
		if dir == "" {
			dir = os.TempDir()
		}
		file := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".png")
		if err := os.WriteFile(file, png, 0o644); err == nil {
			t.Logf("screenshot of the failure: %s", file)
		}
		if loc, err := chromedp.Run(sctx, chromedp.Location()); err == nil {
			t.Logf("browser was at %s", loc)
		}
	})
}

// The tenant middleware, in a real browser: on a premium tenant's own
// address, log in to its site admin, create a property with a photo through
// the form, send an enquiry from the public property page; both land in
// shard_1's database and not in primary's.
func TestBrowser_PremiumTenantAdminAndEnquiryLandOnItsShard(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	p := newPlatform(t, platformOptions{shards: 1})
	w := p.tenant("prestige", "shard_1")
	email, password := p.member(w, "owner@prestige.example")
	u, _ := url.Parse(p.http.URL)
	base := "http://prestige.localhost:" + u.Port()
	photo := filepath.Join(t.TempDir(), "front.png")
	if err := os.WriteFile(photo, pngBytes(t, color.RGBA{30, 120, 200, 255}), 0o644); err != nil {
		t.Fatal(err)
	}
	screenshotOnFailure(t, ctx)
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}

	step("log in",
		chromedp.Navigate(base+"/site_admin"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
		chromedp.Submit(chromedp.CSS(`input[name="password"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/site_admin/properties"]`)),
	)
	if got := text("main"); !strings.Contains(got, "Signed in as "+email) {
		t.Fatalf("after login the page says:\n%s", got)
	}

	step("create a property with a photo",
		chromedp.Navigate(base+"/site_admin/properties/new"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="title"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="title"]`), "Harbour view loft"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name="description"]`), "A loft above the old harbour."),
		chromedp.SendKeys(chromedp.CSS(`input[name="city"]`), "Porto"),
		chromedp.SetValue(chromedp.CSS(`input[name="bedrooms"]`), "2"),
		chromedp.Click(chromedp.CSS(`input[name="for_sale"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="sale_price"]`), "450000"),
		chromedp.SetValue(chromedp.CSS(`input[name="sale_currency"]`), "EUR"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name="features"]`), "Terrace\nLift"),
		chromedp.SetUploadFiles(chromedp.CSS(`input[name="photos"]`), []string{photo}),
		chromedp.Submit(chromedp.CSS(`input[name="title"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice.ok`)),
	)
	shardURL, primaryURL := p.cluster.URL["shard_1"], p.cluster.URL[shard.Default]
	slug := pgtest.QueryValue[string](t, shardURL, "SELECT slug FROM properties WHERE website_id = $1", w.ID)

	step("send an enquiry from the public property page",
		chromedp.Navigate(base+"/properties/"+slug),
		chromedp.WaitVisible(chromedp.CSS(`.gallery img`)),
		chromedp.SendKeys(chromedp.CSS(`#enquiry input[name="name"]`), "Maria Costa"),
		chromedp.SendKeys(chromedp.CSS(`#enquiry input[name="email"]`), "maria@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#enquiry textarea[name="message"]`), "Is the loft still available?"),
		chromedp.Submit(chromedp.CSS(`#enquiry textarea[name="message"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice.ok`)),
	)
	if got := text(".notice.ok"); !strings.Contains(got, "enquiry has been sent") {
		t.Errorf("after the enquiry the page says %q", got)
	}
	// The photo the browser shows is the one uploaded, served from shard_1.
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const i = document.querySelector('.gallery img'); return i.complete && i.naturalWidth === 24; })()`))
	if err != nil || !loaded {
		t.Errorf("the property photo did not load in the browser: %v", err)
	}

	for _, q := range []struct {
		table string
		want  int
	}{{"properties", 1}, {"property_photos", 1}, {"property_features", 2}, {"contacts", 1}, {"messages", 1}} {
		if got := count(t, shardURL, q.table, w.ID); got != q.want {
			t.Errorf("%s on shard_1: %d, want %d", q.table, got, q.want)
		}
		if got := count(t, primaryURL, q.table, w.ID); got != 0 {
			t.Errorf("%s on primary: %d, want 0", q.table, got)
		}
	}
	if got := pgtest.QueryValue[string](t, shardURL,
		"SELECT p.title FROM messages m JOIN properties p ON p.website_id = m.website_id AND p.id = m.property_id WHERE m.website_id = $1", w.ID); got != "Harbour view loft" {
		t.Errorf("the enquiry is about %q", got)
	}
}
