package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// typedEnquiry is what a visitor typed, with characters that must come back
// escaped.
func typedEnquiry(name string) url.Values {
	return url.Values{"name": {name}, "email": {"ann@example.com"}, "phone": {"+351 21 000"},
		"message": {"Is it still free? I'd visit on Saturday <3"}}
}

// wantKeptEnquiry checks r is the enquiry form drawn again in the site's
// layout with what typedEnquiry(name) typed, the notice why (with when to
// send it again) just above the form, and status and Retry-After kept.
func wantKeptEnquiry(t *testing.T, r response, status int, siteName, name, why, retryIn string) {
	t.Helper()
	wantStatus(t, r, status)
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	wantSiteChrome(t, r, siteName)
	bodyHas(t, r, why, "Your text is kept below: please send it again in "+retryIn,
		`value="`+strings.ReplaceAll(name, "'", "&#39;")+`"`, `value="ann@example.com"`, `value="&#43;351 21 000"`,
		`>Is it still free? I&#39;d visit on Saturday &lt;3</textarea>`)
	section, notice, form := strings.Index(r.Body, `<section id="enquiry"`), strings.Index(r.Body, `<p class="notice error" role="alert">`+why), strings.Index(r.Body, `<form method="post"`)
	if section < 0 || notice < section || form < notice || strings.Count(r.Body, `class="notice error"`) != 1 {
		t.Errorf("the notice is not just above the form, in its section (at %d, %d, %d):\n%s", section, notice, form, excerpt(r.Body[max(section, 0):]))
	}
	if !strings.Contains(r.Body, `#enquiry" class="stacked">`) {
		t.Errorf("the form does not post back to its section")
	}
}

// An enquiry refused for now, because the website's changes are paused or
// the visitor sent too many, is answered 503 or 429 with the site's
// navigation and the form filled with what was typed, the reason above it:
// the same path for both. Nothing is saved.
func TestEnquiries_PausedOrLimitedKeepTheTextInTheSite(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1, enquiries: throttle.Rule{Limit: 1, Window: time.Hour}})
	ctx := context.Background()
	const paused = "This website is being maintained and cannot take changes right now, so your message has not been sent yet."
	const limited = "You have sent several messages in a short time, so this one has not been sent yet."
	shardURL := p.cluster.URL["shard_1"]

	t.Run("too many", func(t *testing.T) {
		w := p.tenant("busy", "shard_1")
		flat := listing(t, p.scope(w), "Garden flat", nil)
		r := p.postForm("busy.localhost", "/contact", typedEnquiry("Ann"))
		wantStatus(t, r, http.StatusSeeOther)
		if got := r.Header.Get("Location"); got != "/contact?sent=1#enquiry" {
			t.Errorf("after the contact form: Location %q", got)
		}
		for _, path := range []string{"/contact", "/properties/" + flat.Slug + "/enquiry"} {
			r := p.postForm("busy.localhost", path, typedEnquiry("Ann O'Neil"))
			wantKeptEnquiry(t, r, http.StatusTooManyRequests, "Busy Homes", "Ann O'Neil", limited, "60 minutes")
		}
		if n := count(t, shardURL, "messages", w.ID); n != 1 {
			t.Errorf("%d messages saved, want 1", n)
		}
	})

	t.Run("paused", func(t *testing.T) {
		w := p.tenant("calm", "shard_1")
		flat := listing(t, p.scope(w), "Garden flat", nil)
		if err := registry.SetStatus(ctx, p.primary, w.ID, registry.StatusReadOnly); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			got, err := p.cache.BySubdomain(ctx, "calm")
			return err == nil && got.Status == registry.StatusReadOnly
		})
		// Again and again: a paused enquiry is not counted against the
		// limit of one.
		for _, path := range []string{"/contact", "/properties/" + flat.Slug + "/enquiry", "/contact"} {
			r := p.postForm("calm.localhost", path, typedEnquiry("Ann O'Neil"))
			wantKeptEnquiry(t, r, http.StatusServiceUnavailable, "Calm Homes", "Ann O'Neil", paused, "30 seconds")
			if got := r.Header.Get("Retry-After"); got != "30" {
				t.Errorf("Retry-After %q, want 30", got)
			}
		}
		// The answer never asks the shard (a move may be copying from it):
		// the form posts back where it came from and links to the property.
		log := logStatements(t, p)
		log.mark()
		r := p.postForm("calm.localhost", "/properties/"+flat.Slug+"/enquiry", typedEnquiry("Ann"))
		bodyHas(t, r, `action="/properties/`+flat.Slug+`/enquiry#enquiry"`, `<a href="/properties/`+flat.Slug+`">Back to the property</a>`)
		if ran := log.since()["shard_1"]; len(ran) != 0 {
			t.Errorf("a paused enquiry ran %d statements on the shard, want none:\n%s", len(ran), strings.Join(ran, "\n"))
		}
		log.mark() // the property's page itself does read the shard, and the log shows it
		wantStatus(t, p.get("calm.localhost", "/properties/"+flat.Slug), http.StatusOK)
		if len(log.since()["shard_1"]) == 0 {
			t.Fatal("no statement of the property's page logged on shard_1; is statement logging working?")
		}
		if n := count(t, shardURL, "messages", w.ID); n != 0 {
			t.Errorf("%d messages saved while paused", n)
		}
		// Site-admin changes are still refused before they reach a handler.
		wantStatus(t, p.postForm("calm.localhost", "/site_admin/agency", url.Values{"name": {"X"}}), http.StatusServiceUnavailable)

		if err := registry.SetStatus(ctx, p.primary, w.ID, registry.StatusActive); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			got, err := p.cache.BySubdomain(ctx, "calm")
			return err == nil && got.Status == registry.StatusActive
		})
		wantStatus(t, p.postForm("calm.localhost", "/contact", typedEnquiry("Ann")), http.StatusSeeOther)
	})

	t.Run("paused while on its way", func(t *testing.T) {
		// The cache still says active; the write fence refuses the write.
		w := p.tenant("late", "shard_1")
		flat := listing(t, p.scope(w), "Garden flat", nil)
		wantStatus(t, p.get("late.localhost", "/"), http.StatusOK)
		r := mvCutOver(t, p, w, mvForm("/properties/"+flat.Slug+"/enquiry", typedEnquiry("Ann O'Neil"), nil),
			mvSetStatus(t, p, w, registry.StatusReadOnly))
		wantKeptEnquiry(t, r, http.StatusServiceUnavailable, "Late Homes", "Ann O'Neil", paused, "30 seconds")
		if n := count(t, shardURL, "messages", w.ID); n != 0 {
			t.Errorf("%d messages saved while paused", n)
		}
	})
}

// In a real browser without JavaScript: after sending an enquiry from far
// down a property's page, or from the contact page on a phone, the
// thank-you is on the screen, in place of the form; a refused enquiry's
// reason is on the screen too, above the text kept.
func TestBrowser_EnquiryAnswerIsWhereTheVisitorLooks(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	p := newPlatform(t, platformOptions{enquiries: throttle.Rule{Limit: 2, Window: time.Hour}})
	sc := p.scope(p.tenant("acme", shard.Default))
	var features []string
	for i := range 40 {
		features = append(features, fmt.Sprintf("Feature number %02d", i))
	}
	flat := listing(t, sc, "Long listing", func(in *content.PropertyInput) {
		in.Description = strings.Repeat("A line about the flat.\n", 40)
		in.Features = features
	})
	u, _ := url.Parse(p.http.URL)
	b := opsPage{t: t, ctx: ctx, base: "http://acme.localhost:" + u.Port()}
	screenshotOnFailure(t, ctx)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	// inView is true when the element sel is wholly on the screen.
	inView := func(sel string) string {
		return fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false;
			const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; })()`, sel)
	}
	send := func(what, page, name string) {
		t.Helper()
		b.do(what,
			chromedp.Navigate(b.base+page),
			chromedp.ScrollIntoView(chromedp.CSS(`#enquiry button[type="submit"]`)),
			chromedp.SendKeys(chromedp.CSS(`#enquiry input[name="name"]`), name),
			chromedp.SendKeys(chromedp.CSS(`#enquiry input[name="email"]`), "ann@example.com"),
			chromedp.SendKeys(chromedp.CSS(`#enquiry textarea[name="message"]`), "Can I visit on Saturday?"),
			chromedp.Click(chromedp.CSS(`#enquiry button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#enquiry .notice`)),
		)
		b.waitFor("the page to load", `document.readyState === "complete"`, 10*time.Second)
	}

	property := "/properties/" + flat.Slug
	send("send an enquiry from the property page", property, "Ann")
	if !b.is(`document.documentElement.scrollHeight > window.innerHeight + 1000`) {
		t.Fatal("the property page is not much taller than the screen: the test proves nothing")
	}
	if !b.is(inView(`#enquiry .notice.ok`)) {
		t.Errorf("after sending, the thank-you is off the screen (scrolled by %.0f px)",
			opsRun(b, "reading scrollY", chromedp.Evaluate[float64](`window.scrollY`)))
	}
	if got := b.text(`#enquiry .notice.ok`); !strings.Contains(got, "Your enquiry has been sent") {
		t.Errorf("the thank-you says %q", got)
	}
	if b.is(`document.querySelector("#enquiry form")`) || b.is(`document.scripts.length > 0`) {
		t.Errorf("the form is still there after the thank-you, or the page has scripts")
	}

	b.do("narrow the page to a phone's screen", chromedp.EmulateViewport(360, 560, chromedp.EmulateMobile))
	send("send a message from the contact page", "/contact", "Ann")
	if !b.is(inView(`#enquiry .notice.ok`)) {
		t.Errorf("after sending from the contact page, the thank-you is off the screen")
	}

	// The third is over the limit: the reason is on the screen, above the
	// form that still holds the text.
	send("send one enquiry too many", property, "Ann Again")
	if !b.is(inView(`#enquiry .notice.error`)) {
		t.Errorf("the refused enquiry's reason is off the screen")
	}
	if !b.is(`document.querySelector('#enquiry textarea[name="message"]').value === "Can I visit on Saturday?"`) ||
		!b.is(`document.querySelector('#enquiry input[name="name"]').value === "Ann Again"`) {
		t.Errorf("the refused enquiry's text is not kept in the form")
	}
}
