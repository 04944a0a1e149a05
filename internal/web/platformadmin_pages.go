package web

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/propertywebbuilder/pwb/internal/audit"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/ops"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

// opsTimeout bounds each shard's answer on admin pages, so a page with a
// shard down or hung still renders, its card red, within the request's own
// deadline (see opsWithin).
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

type opsDashboardData struct {
	Overview ops.Overview
	Moving   []journal.Move // unfinished moves
}

func (s *Server) opsDashboard(w http.ResponseWriter, r *http.Request) error {
	d := opsDashboardData{Overview: ops.Gather(r.Context(), s.shards, opsWithin(r.Context()))}
	var err error
	if d.Moving, err = journal.ListUnfinished(r.Context(), s.accounts); err != nil {
		return err
	}
	return s.renderOps(w, r, http.StatusOK, "ops/dashboard", "Platform operations", d)
}

// opsShardCards is the dashboard's cards and totals alone, which the page
// fetches every few seconds to refresh itself.
func (s *Server) opsShardCards(w http.ResponseWriter, r *http.Request) error {
	d := opsDashboardData{Overview: ops.Gather(r.Context(), s.shards, opsWithin(r.Context()))}
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
	Pager    pager
	URL      *url.URL
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

var tenantSorts = map[string]func(a, b opsTenantRow) int{
	"name":       func(a, b opsTenantRow) int { return cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) },
	"subdomain":  func(a, b opsTenantRow) int { return cmp.Compare(a.Subdomain, b.Subdomain) },
	"tier":       func(a, b opsTenantRow) int { return cmp.Compare(a.Tier, b.Tier) },
	"shard":      func(a, b opsTenantRow) int { return cmp.Compare(a.ShardName, b.ShardName) },
	"status":     func(a, b opsTenantRow) int { return cmp.Compare(a.Status, b.Status) },
	"properties": func(a, b opsTenantRow) int { return cmp.Compare(a.Properties, b.Properties) },
	"id":         func(a, b opsTenantRow) int { return cmp.Compare(a.ID, b.ID) },
}

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
	if _, ok := tenantSorts[d.Sort]; !ok {
		d.Sort = "name"
	}
	all, err := registry.List(r.Context(), s.accounts)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for _, n := range s.shards.Names() {
		names[n] = true
	}
	needle := strings.ToLower(d.Q)
	var matched []registry.Website
	for _, t := range all {
		names[t.ShardName] = true
		switch {
		case d.Premium && t.Tier != registry.TierPremium,
			d.Shard != "" && t.ShardName != d.Shard,
			needle != "" && !strings.Contains(strings.ToLower(t.Name), needle) &&
				!strings.Contains(t.Subdomain, needle) && !strings.Contains(t.CustomDomain, needle):
			continue
		}
		matched = append(matched, t)
	}
	for n := range names {
		d.Shards = append(d.Shards, n)
	}
	slices.Sort(d.Shards)
	counts, failed := ops.PropertyCounts(r.Context(), s.shards, matched, opsWithin(r.Context()))
	d.Failed = failed
	rows := make([]opsTenantRow, len(matched))
	for i, t := range matched {
		n, ok := counts[t.ID]
		rows[i] = opsTenantRow{Website: t, Properties: n, Known: ok}
	}
	by := tenantSorts[d.Sort]
	slices.SortStableFunc(rows, func(a, b opsTenantRow) int {
		c := by(a, b)
		if c == 0 {
			c = cmp.Compare(a.ID, b.ID)
		}
		if d.Desc {
			return -c
		}
		return c
	})
	d.Total = len(rows)
	page := pageParam(r)
	d.Pager = newPager(r, page, d.Total, opsPerPage)
	from := min((page-1)*opsPerPage, len(rows))
	d.Rows = rows[from:min(from+opsPerPage, len(rows))]
	return s.renderOps(w, r, http.StatusOK, "ops/tenants", "Tenants", d)
}

// ---- tenant details ----

type opsTenantData struct {
	Website   registry.Website
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
	Targets      []string // shards the tenant may move to
	CanMigrate   bool
	Target       string // chosen in a refused form
}

func (s *Server) opsWebsite(r *http.Request) (registry.Website, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return registry.Website{}, notFound(nil, nil)
	}
	return registry.Get(r.Context(), s.accounts, id)
}

func (s *Server) tenantData(r *http.Request, w registry.Website) (opsTenantData, error) {
	d := opsTenantData{Website: w}
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
		d.Targets = ops.ReachableTargets(r.Context(), s.shards, w.ShardName, opsWithin(r.Context()))
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
