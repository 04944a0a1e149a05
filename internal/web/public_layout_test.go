package web

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/propertywebbuilder/pwb/internal/content"
)

// The public site's layout in a browser at a phone's, a tablet's and a
// desktop's widths: card grids fill their rows, the footer stays at the
// bottom of a short page, and a CMS page is marked in the menu.
func TestBrowser_PublicLayout(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	p := newPlatform(t, platformOptions{shards: 1})
	sc := p.scope(p.tenant("casa", "shard_1"))
	for i := range 14 {
		listing(t, sc, fmt.Sprintf("Home %02d", i), func(in *content.PropertyInput) {
			in.Highlighted = i < 6
			if i%2 == 0 {
				in.ForRent, in.RentPriceCentsMonthly, in.RentCurrency = true, cents(1_100_00), "EUR"
			}
		})
	}
	for _, in := range []content.PageInput{
		{Slug: "about", Title: "About us", Body: "A small agency.", Visible: true, NavOrder: 1},
		{Slug: "terms", Title: "Terms", Body: "Be kind.", Visible: true, NavOrder: 2},
	} {
		if _, err := content.CreatePage(t.Context(), sc, in); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := url.Parse(p.http.URL)
	b := opsPage{t: t, ctx: ctx, base: "http://casa.localhost:" + u.Port()}
	screenshotOnFailure(t, ctx)

	// Each grid's cards, and how many share the first card's row.
	const grids = `[...document.querySelectorAll('.grid')].map(g => {
		const cards = [...g.children], top = cards[0].offsetTop;
		return [cards.length, cards.filter(c => c.offsetTop === top).length];
	})`
	for _, width := range []int64{1200, 1000, 800, 600, 390} {
		b.do(fmt.Sprintf("set the window %d px wide", width), chromedp.EmulateViewport(width, 900))
		for _, path := range []string{"/", "/buy"} {
			b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(`.grid .card`)))
			got := opsRun(b, "measuring the grids", chromedp.Evaluate[[][2]int](grids))
			want := map[string][]int{"/": {6, 6, 6}, "/buy": {12}}[path]
			if len(got) != len(want) {
				t.Fatalf("%d px %s: grids %v, want %d of them", width, path, got, len(want))
			}
			for i, g := range got {
				cards, columns := g[0], g[1]
				wantColumns := map[bool]int{true: 1, false: 2}[width < 500]
				if width >= 800 {
					wantColumns = 3
				}
				if cards != want[i] || columns != wantColumns || cards%columns != 0 {
					t.Errorf("%d px %s: grid %d has %d cards in rows of %d, want %d in full rows of %d",
						width, path, i+1, cards, columns, want[i], wantColumns)
				}
			}
			if b.is(`document.documentElement.scrollWidth > window.innerWidth`) {
				t.Errorf("%d px %s is wider than the window", width, path)
			}
		}
	}

	b.do("open a short CMS page on a tall window",
		chromedp.EmulateViewport(1200, 1000),
		chromedp.Navigate(b.base+"/p/about"),
		chromedp.WaitVisible(chromedp.CSS(`.cms`)),
	)
	if !b.is(`Math.abs(document.querySelector('.site-footer').getBoundingClientRect().bottom - window.innerHeight) < 1`) {
		t.Errorf("the footer of a short page is not at the bottom of the window: it ends at %s px of %s",
			opsRun(b, "footer", chromedp.Evaluate[string](`String(document.querySelector('.site-footer').getBoundingClientRect().bottom)`)),
			opsRun(b, "window", chromedp.Evaluate[string](`String(window.innerHeight)`)))
	}
	if got := b.attr(`.menu a[href="/p/about"]`, "aria-current"); got != "page" {
		t.Errorf("the menu's About us has aria-current %q, want page", got)
	}
	if got := b.attr(`.menu a[href="/p/terms"]`, "aria-current"); got != "" {
		t.Errorf("the menu's Terms has aria-current %q on About us", got)
	}
	if !b.is(`getComputedStyle(document.querySelector('.menu a[href="/p/about"]')).fontWeight === "600" &&
		getComputedStyle(document.querySelector('.menu a[href="/p/terms"]')).fontWeight === "400"`) {
		t.Error("the current page's menu item does not look different")
	}
	if !b.is(`document.querySelector('.site-footer').getBoundingClientRect().top - document.querySelector('.cms').getBoundingClientRect().bottom >= 32`) {
		t.Error("less than 32 px between the page's text and the footer")
	}
}
