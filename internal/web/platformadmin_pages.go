package web

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/ops"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/report"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// opsTimeout bounds each shard's answer on the admin pages that ask a few
// shards themselves (a tenant list's property counts, a tenant's rows), so
// a page with a shard down or hung still renders, the shard's figures
// unavailable, within the request's own deadline (see opsWithin).
const opsTimeout = time.Second

// opsMargin is what an admin page keeps of its request's time, after asking
// the shards, for its queries on primary and its rendering.
const opsMargin = 300 * time.Millisecond

// opsWithin is how long each shard may take to answer for a request with
// context ctx: opsTimeout, or less when the request's deadline is nearer
// (a page that asks the shards twice, or a shorter request_timeout).
func opsWithin(ctx context.Context) time.Duration {
	d := opsTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)-opsMargin)
	}
	// Rounded, since pages show it ("no answer within 1s"); never 0, which
	// the ops functions would take as their own default.
	return max(d.Truncate(10*time.Millisecond), 10*time.Millisecond)
}

// ---- dashboard ----

// The dashboard answers from the health poller's snapshot alone: with a
// thousand shards, no view of it and no refresh asks any shard anything,
// and it shows a page of cards, worst first, never all of them.
const (
	opsCardsPerPage = 24
	// opsMaxSearch bounds the shard search, in characters.
	opsMaxSearch = 100
)

// stateLabels name the states on the dashboard.
var stateLabels = map[string]string{
	ops.Red:           "Down",
	ops.NotConfigured: "Not configured",
	ops.Amber:         "Warning",
	ops.Checking:      "Checking…",
	ops.Green:         "Healthy",
}

type opsDashboardData struct {
	Overview opsOverview
	Moving   []journal.Move // unfinished moves
}

// opsOverview is the dashboard's refreshed part: totals, the count of
// shards in each state, and one page of cards.
type opsOverview struct {
	Summary []opsStateCount
	Cards   []opsCard
	All     int // every shard
	Matched int // the shards the filters keep
	From    int // the first card's place among them, from 1
	// State and Q are the filters in force; Page of Pages the page shown.
	State, Q    string
	Page, Pages int
	Prev, Next  string // the neighbouring pages' addresses
	Refresh     string // this fragment's address, with the same filters and page
	Notices     []string
	Totals      report.Totals
	// FiguresReady says the totals have been gathered once; FiguresAge
	// how long ago.
	FiguresReady  bool
	FiguresAge    string
	RegistryError string
}

type opsStateCount struct {
	State, Label string
	Count        int
	URL          string
	Current      bool
}

// opsCard is a shard's card with what the page says of it.
type opsCard struct {
	ops.Card
	Label   string // its state, in words
	Checked string // how fresh its health is
}

// Checking says the shard has not been reached yet.
func (c opsCard) Checking() bool { return c.Configured && c.Health == ops.Checking }

// ago says how long before now t was, in the words a card uses.
func ago(now, t time.Time) string {
	switch d := now.Sub(t); {
	case d < time.Second:
		return "just now"
	case d < 90*time.Second:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < 90*time.Minute:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	default:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
}

// overview draws the snapshot for the filters of the request's query:
// state, q (part of a shard's name) and page. A filter that makes no
// sense is dropped with a notice, never an error page.
func overview(q url.Values, snap ops.Snapshot) opsOverview {
	o := opsOverview{All: len(snap.Shards), Totals: snap.Totals, RegistryError: snap.RegistryError,
		FiguresReady: !snap.FiguresAt.IsZero()}
	if o.FiguresReady {
		o.FiguresAge = ago(snap.At, snap.FiguresAt)
	}
	o.State = q.Get("state")
	if o.State != "" && stateLabels[o.State] == "" {
		o.Notices = append(o.Notices, fmt.Sprintf("There is no shard state %q, so every state is shown.", clip(o.State, 40)))
		o.State = ""
	}
	o.Q = strings.TrimSpace(q.Get("q"))
	if utf8.RuneCountInString(o.Q) > opsMaxSearch {
		o.Notices = append(o.Notices, fmt.Sprintf("A search is at most %d characters long; this one was ignored, so every shard is shown.", opsMaxSearch))
		o.Q = ""
	}
	counts := map[string]int{}
	needle := strings.ToLower(o.Q)
	// The cards kept, as pointers into the snapshot, ordered worst first
	// and by name: with a thousand cards, moving the cards themselves
	// would cost more than all the rest of the page.
	var kept []*ops.Card
	for i := range snap.Shards {
		c := &snap.Shards[i]
		state := c.State()
		counts[state]++
		if (o.State == "" || state == o.State) && (needle == "" || strings.Contains(strings.ToLower(c.Name), needle)) {
			kept = append(kept, c)
		}
	}
	slices.SortFunc(kept, func(a, b *ops.Card) int {
		if c := cmp.Compare(ops.Severity(a.State()), ops.Severity(b.State())); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Order, b.Order); c != 0 {
			return c
		}
		return ops.NaturalCompare(a.Name, b.Name) // shards the configuration lacks
	})
	o.Matched = len(kept)
	o.Pages = max(1, (len(kept)+opsCardsPerPage-1)/opsCardsPerPage)
	o.Page = 1
	if raw := q.Get("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		switch {
		case err != nil || n < 1:
			o.Notices = append(o.Notices, fmt.Sprintf("There is no page %q, so the first page is shown.", clip(raw, 40)))
		case n > o.Pages:
			o.Notices = append(o.Notices, fmt.Sprintf("There %s only %d page%s of shards, so the last one is shown.", isAre(o.Pages), o.Pages, plural(o.Pages)))
			o.Page = o.Pages
		default:
			o.Page = n
		}
	}
	from := (o.Page - 1) * opsCardsPerPage
	o.From = from + 1
	for _, c := range kept[from:min(from+opsCardsPerPage, len(kept))] {
		card := opsCard{Card: *c, Label: stateLabels[c.State()], Checked: "not checked yet"}
		if !c.CheckedAt.IsZero() {
			card.Checked = "checked " + ago(snap.At, c.CheckedAt)
		}
		o.Cards = append(o.Cards, card)
	}
	address := func(path, state string, page int) string {
		v := url.Values{}
		if state != "" {
			v.Set("state", state)
		}
		if o.Q != "" {
			v.Set("q", o.Q)
		}
		if page > 1 {
			v.Set("page", strconv.Itoa(page))
		}
		if len(v) == 0 {
			return path
		}
		return path + "?" + v.Encode()
	}
	for _, st := range ops.States {
		o.Summary = append(o.Summary, opsStateCount{State: st, Label: stateLabels[st], Count: counts[st],
			URL: address(opsPrefix, st, 1), Current: st == o.State})
	}
	if o.Page > 1 {
		o.Prev = address(opsPrefix, o.State, o.Page-1)
	}
	if o.Page < o.Pages {
		o.Next = address(opsPrefix, o.State, o.Page+1)
	}
	o.Refresh = address(opsPrefix+"/shards", o.State, o.Page)
	return o
}

// AllURL is the dashboard with the search kept and every state shown.
func (o opsOverview) AllURL() string {
	if o.Q == "" {
		return opsPrefix
	}
	return opsPrefix + "?" + url.Values{"q": {o.Q}}.Encode()
}

// To is the last card's place among the matched shards.
func (o opsOverview) To() int { return o.From + len(o.Cards) - 1 }

// Unreachable lists the shards the totals leave out.
func (o opsOverview) Unreachable() []string { return o.Totals.Unreachable() }

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// clip shortens what a visitor typed for quoting it back.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func (s *Server) opsDashboard(w http.ResponseWriter, r *http.Request) error {
	d := opsDashboardData{Overview: overview(r.URL.Query(), s.poller().Snapshot())}
	var err error
	if d.Moving, err = journal.ListUnfinished(r.Context(), s.accounts); err != nil {
		return err
	}
	return s.renderOps(w, r, http.StatusOK, "ops/dashboard", "Platform operations", d)
}

// opsShardCards is the dashboard's totals and cards alone, for the same
// filters and page, which the page fetches every few seconds to refresh
// itself.
func (s *Server) opsShardCards(w http.ResponseWriter, r *http.Request) error {
	d := opsDashboardData{Overview: overview(r.URL.Query(), s.poller().Snapshot())}
	return s.pages.renderFragment(w, "ops/dashboard", "shard_overview", d)
}

// ---- tenant distribution ----

type opsTenantRow struct {
	registry.Website
	Properties int64
	Known      bool // the property count could be read
}

type opsTenantsData struct {
	Rows     []opsTenantRow
	Total    int
	Shards   []string // every shard name, for the filter
	Premium  bool
	Shard, Q string
	Sort     string
	Desc     bool
	Failed   map[string]string // shards whose counts are missing
	// CountsAge says how old the counts are when they come from the
	// health poller's figures (sorted by properties); Notice why the
	// list is not sorted as asked.
	CountsAge string
	Notice    string
	Pager     pager
	URL       *url.URL
}

// sortURL is the tenants list address sorted by key: the other direction
// when it is already sorted by key.
func (d opsTenantsData) SortURL(key string) string {
	u := d.URL
	q := u.Query()
	q.Set("sort", key)
	q.Del("page")
	if d.Sort == key && !d.Desc {
		q.Set("dir", "desc")
	} else {
		q.Del("dir")
	}
	return u.Path + "?" + q.Encode()
}

// SortMark is the arrow of the column the list is sorted by.
func (d opsTenantsData) SortMark(key string) string {
	switch {
	case d.Sort != key:
		return ""
	case d.Desc:
		return " ▼"
	}
	return " ▲"
}

// opsTenants lists a page of the registry, filtered, sorted and paged on
// primary, and reads the property counts of that page's tenants alone from
// their shards. Sorted by properties, the order (and the counts shown)
// come from the health poller's last figures round instead, which counted
// every tenant's properties in the background.
func (s *Server) opsTenants(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := opsTenantsData{
		Premium: q.Get("premium") == "1",
		Shard:   q.Get("shard"),
		Q:       strings.TrimSpace(q.Get("q")),
		Sort:    q.Get("sort"),
		Desc:    q.Get("dir") == "desc",
		URL:     r.URL,
	}
	if _, ok := registry.Sorts[d.Sort]; !ok && d.Sort != "properties" {
		d.Sort = "name"
	}
	if utf8.RuneCountInString(d.Q) > opsMaxSearch {
		d.Notice = fmt.Sprintf("A search is at most %d characters long; this one was ignored.", opsMaxSearch)
		d.Q = ""
	}
	health := s.poller()
	for _, c := range health.Snapshot().Shards {
		d.Shards = append(d.Shards, c.Name)
	}
	slices.Sort(d.Shards)
	page := pageParam(r)
	d.Failed = map[string]string{}
	f := registry.Filter{Premium: d.Premium, Shard: d.Shard, Search: d.Q, Sort: d.Sort, Desc: d.Desc}
	if d.Sort == "properties" {
		counts, at, problem := health.TenantProperties()
		if !at.IsZero() {
			return s.opsTenantsByProperties(w, r, d, f, page, counts, at, problem)
		}
		d.Notice = "Property counts are still being gathered in the background, so the list is sorted by name for now."
		d.Sort, f.Sort, d.Desc, f.Desc = "name", "name", false, false
	}
	f.Limit, f.Offset = opsPerPage, (page-1)*opsPerPage
	websites, total, err := registry.Page(r.Context(), s.accounts, f)
	if err != nil {
		return err
	}
	counts, failed := ops.PropertyCounts(r.Context(), s.shards, websites, opsWithin(r.Context()))
	d.Failed = failed
	for _, t := range websites {
		n, ok := counts[t.ID]
		d.Rows = append(d.Rows, opsTenantRow{Website: t, Properties: n, Known: ok})
	}
	d.Total = total
	d.Pager = newPager(r, page, d.Total, opsPerPage)
	return s.renderOps(w, r, http.StatusOK, "ops/tenants", "Tenants", d)
}

// opsTenantsByProperties is the tenant list sorted by the property counts
// of the poller's last figures round, gathered at at; tenants whose shard
// did not answer then come first (last, descending), as unavailable.
func (s *Server) opsTenantsByProperties(w http.ResponseWriter, r *http.Request, d opsTenantsData, f registry.Filter,
	page int, counts map[int64]int64, at time.Time, problem string) error {
	websites, total, err := registry.Page(r.Context(), s.accounts, f)
	if err != nil {
		return err
	}
	rows := make([]opsTenantRow, len(websites))
	for i, t := range websites {
		n, ok := counts[t.ID]
		rows[i] = opsTenantRow{Website: t, Properties: n, Known: ok}
	}
	rank := func(r opsTenantRow) int64 {
		if !r.Known {
			return -1
		}
		return r.Properties
	}
	slices.SortStableFunc(rows, func(a, b opsTenantRow) int {
		c := cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.ID, b.ID))
		if d.Desc {
			return -c
		}
		return c
	})
	d.CountsAge = ago(time.Now(), at)
	if problem != "" {
		d.Notice = "Property counts are unavailable: " + problem
	}
	d.Total = total
	d.Pager = newPager(r, page, d.Total, opsPerPage)
	from := min((page-1)*opsPerPage, len(rows))
	d.Rows = rows[from:min(from+opsPerPage, len(rows))]
	return s.renderOps(w, r, http.StatusOK, "ops/tenants", "Tenants", d)
}

// ---- tenant details ----

type opsTenantData struct {
	Website registry.Website
	// SiteURL is the tenant's site, on its custom domain if it has one,
	// else as a subdomain of the host the admin is served on.
	SiteURL   string
	Tables    []ops.TableCount
	TablesErr string
	Rows      int64
	Estimate  time.Duration // a move's time (freeze: its read-only window), from the row counts
	// Online says a move would keep the site writable; OnlineReason why
	// not, when it would not.
	Online       bool
	OnlineReason string
	Moves        []journal.Move
	Current      *journal.Move // the unfinished move, if any
	Audit        []audit.Entry
	// Destinations are every configured shard, those that cannot take
	// the move with the reason.
	Destinations []opsDestination
	// Checking says some shards have not been checked yet, so they are
	// not offered as targets.
	Checking   bool
	CanMigrate bool
	// NewTier is the tier the form offers to change to along with the
	// move, when some destination calls for it.
	NewTier string
	Target  string // chosen in a refused form
	TierBox bool   // the tier box, ticked in a refused form
}

// opsDestination is a shard in the migrate form. Tier is the tier the
// tenant would be expected to have there, when that is not its own.
type opsDestination struct {
	ops.Destination
	Tier string
}

// Offered reports whether any shard can take the move.
func (d opsTenantData) Offered() bool {
	return slices.ContainsFunc(d.Destinations, func(t opsDestination) bool { return t.Why == "" })
}

// TierWarned reports whether the shard chosen in a refused form calls for
// a tier change, so the form shows its warning before any script runs.
func (d opsTenantData) TierWarned() bool {
	return d.Target != "" && tierOn(d.Website.Tier, d.Target) != ""
}

// tierOn is the tier a tenant of tier would be expected to have on shard
// name, when its own does not fit: a premium tenant has a shard of its
// own, and standard tenants share default.
func tierOn(tier, name string) string {
	switch {
	case tier == registry.TierPremium && name == shard.Default:
		return registry.TierStandard
	case tier == registry.TierStandard && name != shard.Default:
		return registry.TierPremium
	}
	return ""
}

func (s *Server) opsWebsite(r *http.Request) (registry.Website, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return registry.Website{}, notFound(nil, nil)
	}
	return registry.Get(r.Context(), s.accounts, id)
}

// siteURL is the address of w's site for an operator looking at the admin
// through r: its custom domain, else its subdomain of r's host (with r's
// port), over the scheme r came in by.
func siteURL(r *http.Request, w registry.Website) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if w.CustomDomain != "" {
		return scheme + "://" + w.CustomDomain + "/"
	}
	return scheme + "://" + w.Subdomain + "." + r.Host + "/"
}

func (s *Server) tenantData(r *http.Request, w registry.Website) (opsTenantData, error) {
	d := opsTenantData{Website: w, SiteURL: siteURL(r, w)}
	var err error
	if d.Tables, err = ops.TableCounts(r.Context(), s.shards, w, opsWithin(r.Context())); err != nil {
		d.TablesErr = err.Error()
	}
	var bytes int64
	for _, t := range d.Tables {
		d.Rows += t.Rows
		bytes += t.Bytes
	}
	d.Estimate = mover.EstimateReadOnly(d.Rows, bytes)
	if d.Moves, err = journal.List(r.Context(), s.accounts, w.ID); err != nil {
		return d, err
	}
	for i := range d.Moves {
		if !d.Moves[i].Finished() {
			d.Current = &d.Moves[i]
		}
	}
	if d.Audit, _, err = audit.List(r.Context(), s.accounts, audit.Filter{WebsiteID: w.ID, Limit: 10}); err != nil {
		return d, err
	}
	d.CanMigrate = s.moves != nil && d.Current == nil && w.Status == registry.StatusActive
	if d.CanMigrate {
		// The poller's last word on each shard, not a ping of every
		// shard: the move's pre-flight still refuses a target that does
		// not answer.
		snap := s.poller().Snapshot()
		for _, dest := range snap.Destinations(w.ShardName) {
			tier := tierOn(w.Tier, dest.Name)
			if tier != "" && dest.Why == "" {
				d.NewTier = tier
			}
			d.Destinations = append(d.Destinations, opsDestination{Destination: dest, Tier: tier})
		}
		d.Checking = slices.ContainsFunc(snap.Shards, func(c ops.Card) bool { return c.Configured && c.Health == ops.Checking })
		ctx, cancel := context.WithTimeout(r.Context(), opsWithin(r.Context()))
		d.Online, d.OnlineReason = s.moves.Online(ctx, w.ShardName)
		cancel()
		if d.Online {
			d.Estimate = mover.EstimateCopy(d.Rows, bytes) * 3
		}
	}
	return d, nil
}

func (s *Server) opsTenant(w http.ResponseWriter, r *http.Request) error {
	return s.opsTenantPage(w, r, "ops/tenant", "")
}

// opsTenantPage draws page name about the tenant of the request's {id},
// titled by its name after titlePrefix.
func (s *Server) opsTenantPage(w http.ResponseWriter, r *http.Request, name, titlePrefix string) error {
	ws, err := s.opsWebsite(r)
	if err != nil {
		return err
	}
	d, err := s.tenantData(r, ws)
	if err != nil {
		return err
	}
	return s.renderOps(w, r, http.StatusOK, name, titlePrefix+ws.Name, d)
}

// ---- audit log ----

type opsAuditData struct {
	Entries []audit.Entry
	Total   int
	Pager   pager
}

func (s *Server) opsAudit(w http.ResponseWriter, r *http.Request) error {
	page := pageParam(r)
	entries, total, err := audit.List(r.Context(), s.accounts, audit.Filter{Limit: opsPerPage, Offset: (page - 1) * opsPerPage})
	if err != nil {
		return err
	}
	d := opsAuditData{Entries: entries, Total: total, Pager: newPager(r, page, total, opsPerPage)}
	return s.renderOps(w, r, http.StatusOK, "ops/audit", "Audit log", d)
}

// errNoJobs answers a change that needs the job queue in a server built
// without one.
var errNoJobs = &httpError{status: http.StatusServiceUnavailable, title: "Not available here",
	message: "This server runs no job queue, so it cannot start, resume or abort moves. Nothing was changed."}
