package registry

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/fault"
)

// Sentinel errors callers branch on, each of its fault kind.
var (
	ErrNotFound = fault.New(fault.NotFound, "no such tenant")
	ErrConflict = fault.New(fault.Conflict, "already taken")
	ErrInvalid  = fault.New(fault.Invalid, "invalid")
)

// Tiers and statuses.
const (
	TierStandard = "standard"
	TierPremium  = "premium"

	StatusActive      = "active"
	StatusReadOnly    = "read_only"
	StatusMaintenance = "maintenance"
)

// Website is one tenant.
type Website struct {
	ID           int64     `json:"id"`
	Subdomain    string    `json:"subdomain"`
	CustomDomain string    `json:"custom_domain,omitempty"`
	Name         string    `json:"name"`
	Tier         string    `json:"tier"`
	ShardName    string    `json:"shard_name"`
	Status       string    `json:"status"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

const columns = "id, subdomain, COALESCE(custom_domain, ''), name, tier, shard_name, status, created_at, updated_at"

func scan(row pgx.Row) (Website, error) {
	var w Website
	err := row.Scan(&w.ID, &w.Subdomain, &w.CustomDomain, &w.Name, &w.Tier, &w.ShardName, &w.Status, &w.CreatedAt, &w.UpdatedAt)
	return w, err
}

// reserved subdomains belong to the platform itself.
var reserved = map[string]bool{}

func init() {
	for _, s := range strings.Fields(`admin administrator api app apps assets auth billing blog cdn
		dashboard dev docs email ftp help imap img login mail media metrics mx ns ns1 ns2 platform
		pop pop3 portal pwb root secure site-admin smtp sso staging static status support system
		test webmail www www1 www2 autodiscover localhost`) {
		reserved[s] = true
	}
}

var subdomainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// NormalizeSubdomain lower-cases and checks a subdomain: lower-case letters,
// digits and hyphens, 2 to 63 characters, not starting or ending with a hyphen,
// and not reserved for the platform.
func NormalizeSubdomain(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "":
		return "", fmt.Errorf("%w subdomain: must not be empty", ErrInvalid)
	case len(s) < 2 || len(s) > 63:
		return "", fmt.Errorf("%w subdomain %q: must be 2 to 63 characters", ErrInvalid, s)
	case !subdomainRE.MatchString(s):
		return "", fmt.Errorf("%w subdomain %q: use only lower-case letters, digits and hyphens, not starting or ending with a hyphen", ErrInvalid, s)
	case reserved[s]:
		return "", fmt.Errorf("%w subdomain %q: reserved for the platform", ErrInvalid, s)
	}
	return s, nil
}

// New describes a website to create.
type New struct {
	Subdomain    string
	CustomDomain string
	Name         string
	Tier         string // default standard
	ShardName    string // default "default"
}

// Validate normalises and checks n.
func (n *New) Validate() error {
	var err error
	if n.Subdomain, err = NormalizeSubdomain(n.Subdomain); err != nil {
		return err
	}
	n.Name = strings.TrimSpace(n.Name)
	if n.Name == "" {
		return fmt.Errorf("%w name: must not be empty", ErrInvalid)
	}
	if len([]rune(n.Name)) > 200 {
		return fmt.Errorf("%w name: at most 200 characters", ErrInvalid)
	}
	if n.Tier == "" {
		n.Tier = TierStandard
	}
	if !ValidTier(n.Tier) {
		return fmt.Errorf("%w tier %q: must be standard or premium", ErrInvalid, n.Tier)
	}
	if n.ShardName == "" {
		n.ShardName = "default"
	}
	if n.CustomDomain, err = NormalizeDomain(n.CustomDomain); err != nil {
		return err
	}
	return nil
}

var domainLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// NormalizeDomain lower-cases and checks a tenant's own domain name: at
// least two dot-separated labels of letters, digits and hyphens, at most 253
// characters, no scheme, port or path. Empty means none.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if d == "" {
		return "", nil
	}
	labels := strings.Split(d, ".")
	ok := len(d) <= 253 && len(labels) >= 2
	for _, l := range labels {
		ok = ok && domainLabelRE.MatchString(l)
	}
	if !ok {
		return "", fmt.Errorf("%w custom domain %q: give a host name such as www.example.com (no scheme, port or path)", ErrInvalid, d)
	}
	return d, nil
}

// Create inserts a website.
func Create(ctx context.Context, q dbq.Querier, n New) (Website, error) {
	if err := n.Validate(); err != nil {
		return Website{}, err
	}
	var custom any
	if n.CustomDomain != "" {
		custom = n.CustomDomain
	}
	w, err := scan(q.QueryRow(ctx, `INSERT INTO websites (subdomain, custom_domain, name, tier, shard_name)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+columns, n.Subdomain, custom, n.Name, n.Tier, n.ShardName))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		if strings.Contains(pgErr.ConstraintName, "custom_domain") {
			return Website{}, fmt.Errorf("custom domain %q: %w by another tenant", n.CustomDomain, ErrConflict)
		}
		return Website{}, fmt.Errorf("subdomain %q: %w by another tenant", n.Subdomain, ErrConflict)
	}
	if err != nil {
		return Website{}, fmt.Errorf("creating tenant %q: %w", n.Subdomain, err)
	}
	return w, nil
}

// Get returns the website with the given id.
func Get(ctx context.Context, q dbq.Querier, id int64) (Website, error) {
	w, err := scan(q.QueryRow(ctx, "SELECT "+columns+" FROM websites WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Website{}, fmt.Errorf("tenant %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Website{}, fmt.Errorf("reading tenant %d: %w", id, err)
	}
	return w, nil
}

// Find resolves an operator's reference to a tenant: a numeric website id or
// a subdomain.
func Find(ctx context.Context, q dbq.Querier, ref string) (Website, error) {
	ref = strings.TrimSpace(ref)
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		return Get(ctx, q, id)
	}
	w, err := scan(q.QueryRow(ctx, "SELECT "+columns+" FROM websites WHERE lower(subdomain) = lower($1)", ref))
	if errors.Is(err, pgx.ErrNoRows) {
		return Website{}, fmt.Errorf("tenant %q: %w (give a website id or subdomain; see `pwb tenants list`)", ref, ErrNotFound)
	}
	if err != nil {
		return Website{}, fmt.Errorf("reading tenant %q: %w", ref, err)
	}
	return w, nil
}

// FindBySubdomain returns the website with subdomain sub, case-insensitively.
// A string that the websites table could never hold is not found without
// asking the database. The check is the table's own rule rather than
// NormalizeSubdomain, so a tenant created before a name became reserved stays
// reachable.
func FindBySubdomain(ctx context.Context, q dbq.Querier, sub string) (Website, error) {
	sub = strings.ToLower(strings.TrimSpace(sub))
	if len(sub) < 2 || len(sub) > 63 || !subdomainRE.MatchString(sub) {
		return Website{}, fmt.Errorf("subdomain %q: %w", sub, ErrNotFound)
	}
	w, err := scan(q.QueryRow(ctx, "SELECT "+columns+" FROM websites WHERE lower(subdomain) = $1", sub))
	if errors.Is(err, pgx.ErrNoRows) {
		return Website{}, fmt.Errorf("subdomain %q: %w", sub, ErrNotFound)
	}
	if err != nil {
		return Website{}, fmt.Errorf("reading tenant by subdomain %q: %w", sub, err)
	}
	return w, nil
}

// FindByCustomDomain returns the website whose custom domain is host,
// case-insensitively, also trying host with a leading "www." added or removed
// (www.acme.com finds acme.com and the other way round). When both forms
// belong to different tenants, the exact one wins.
func FindByCustomDomain(ctx context.Context, q dbq.Querier, host string) (Website, error) {
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	if len(host) < 3 || len(host) > 253 {
		return Website{}, fmt.Errorf("custom domain %q: %w", host, ErrNotFound)
	}
	other := "www." + host
	if rest, ok := strings.CutPrefix(host, "www."); ok {
		other = rest
	}
	w, err := scan(q.QueryRow(ctx, "SELECT "+columns+` FROM websites
		WHERE custom_domain IS NOT NULL AND lower(custom_domain) IN ($1, $2)
		ORDER BY lower(custom_domain) = $1 DESC LIMIT 1`, host, other))
	if errors.Is(err, pgx.ErrNoRows) {
		return Website{}, fmt.Errorf("custom domain %q: %w", host, ErrNotFound)
	}
	if err != nil {
		return Website{}, fmt.Errorf("reading tenant by custom domain %q: %w", host, err)
	}
	return w, nil
}

// List returns every website ordered by id.
func List(ctx context.Context, q dbq.Querier) ([]Website, error) {
	rows, err := q.Query(ctx, "SELECT "+columns+" FROM websites ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Website, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	return ws, nil
}

// LockForUpdate reads a website inside tx and locks its row until tx ends, so
// concurrent shard changes of one tenant are serialised.
func LockForUpdate(ctx context.Context, tx pgx.Tx, id int64) (Website, error) {
	w, err := scan(tx.QueryRow(ctx, "SELECT "+columns+" FROM websites WHERE id = $1 FOR UPDATE", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Website{}, fmt.Errorf("tenant %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Website{}, fmt.Errorf("locking tenant %d: %w", id, err)
	}
	return w, nil
}

// SetShard points a website at another shard.
func SetShard(ctx context.Context, q dbq.Querier, id int64, shardName string) error {
	tag, err := q.Exec(ctx, "UPDATE websites SET shard_name = $2, updated_at = now() WHERE id = $1", id, shardName)
	if err != nil {
		return fmt.Errorf("setting shard of tenant %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("tenant %d: %w", id, ErrNotFound)
	}
	return nil
}

// ValidStatus reports whether s is one of the statuses a website can have.
func ValidStatus(s string) bool {
	return s == StatusActive || s == StatusReadOnly || s == StatusMaintenance
}

// SetStatus changes a website's status.
func SetStatus(ctx context.Context, q dbq.Querier, id int64, status string) error {
	if !ValidStatus(status) {
		return fmt.Errorf("%w status %q: must be active, read_only or maintenance", ErrInvalid, status)
	}
	tag, err := q.Exec(ctx, "UPDATE websites SET status = $2, updated_at = now() WHERE id = $1", id, status)
	if err != nil {
		return fmt.Errorf("setting status of tenant %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("tenant %d: %w", id, ErrNotFound)
	}
	return nil
}

// ValidTier reports whether t is one of the tiers a website can have.
func ValidTier(t string) bool { return t == TierStandard || t == TierPremium }

// SetTier changes a website's tier.
func SetTier(ctx context.Context, q dbq.Querier, id int64, tier string) error {
	if !ValidTier(tier) {
		return fmt.Errorf("%w tier %q: must be standard or premium", ErrInvalid, tier)
	}
	tag, err := q.Exec(ctx, "UPDATE websites SET tier = $2, updated_at = now() WHERE id = $1", id, tier)
	if err != nil {
		return fmt.Errorf("setting tier of tenant %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("tenant %d: %w", id, ErrNotFound)
	}
	return nil
}

// ShardCount is how many tenants reference a shard.
type ShardCount struct {
	Tenants int
	Premium int
}

// CountByShard counts tenants per referenced shard name.
func CountByShard(ctx context.Context, q dbq.Querier) (map[string]ShardCount, error) {
	rows, err := q.Query(ctx, `SELECT shard_name, count(*), count(*) FILTER (WHERE tier = 'premium')
		FROM websites GROUP BY shard_name`)
	if err != nil {
		return nil, fmt.Errorf("counting tenants per shard: %w", err)
	}
	defer rows.Close()
	out := map[string]ShardCount{}
	for rows.Next() {
		var name string
		var c ShardCount
		if err := rows.Scan(&name, &c.Tenants, &c.Premium); err != nil {
			return nil, err
		}
		out[name] = c
	}
	return out, rows.Err()
}

// Filter picks and orders a page of the registry, so a list of thousands of
// tenants reads only the rows it shows.
type Filter struct {
	Premium bool   // premium tenants only
	Shard   string // tenants on this shard only, when set
	// Search is looked for in the name (in any case), the subdomain and
	// the custom domain.
	Search string
	Sort   string // a key of Sorts; "name" when not one
	Desc   bool
	Limit  int // at most this many; <= 0: every match
	Offset int
}

// Sorts are the orders Page knows, by key. Text is compared byte by byte,
// whatever the database's collation; ties are broken by id, in the same
// direction.
var Sorts = map[string]string{
	"name":      `lower(name) COLLATE "C"`,
	"subdomain": `subdomain COLLATE "C"`,
	"tier":      `tier COLLATE "C"`,
	"shard":     `shard_name COLLATE "C"`,
	"status":    `status COLLATE "C"`,
	"id":        "id",
}

// Page lists the websites f picks, in its order, and counts every match.
func Page(ctx context.Context, q dbq.Querier, f Filter) ([]Website, int, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Premium {
		where = append(where, "tier = "+arg(TierPremium))
	}
	if f.Shard != "" {
		where = append(where, "shard_name = "+arg(f.Shard))
	}
	if s := strings.ToLower(strings.TrimSpace(f.Search)); s != "" {
		n := arg(s)
		where = append(where, "(strpos(lower(name), "+n+") > 0 OR strpos(subdomain, "+n+") > 0 OR strpos(COALESCE(custom_domain, ''), "+n+") > 0)")
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	key, ok := Sorts[f.Sort]
	if !ok {
		key = Sorts["name"]
	}
	dir := " ASC"
	if f.Desc {
		dir = " DESC"
	}
	filterArgs := len(args)
	sql := "SELECT " + columns + ", count(*) OVER () FROM websites" + cond + " ORDER BY " + key + dir + ", id" + dir
	if f.Limit > 0 {
		sql += " LIMIT " + arg(f.Limit)
	}
	if f.Offset > 0 {
		sql += " OFFSET " + arg(f.Offset)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("listing tenants: %w", err)
	}
	total := 0
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Website, error) {
		var w Website
		err := r.Scan(&w.ID, &w.Subdomain, &w.CustomDomain, &w.Name, &w.Tier, &w.ShardName, &w.Status, &w.CreatedAt, &w.UpdatedAt, &total)
		return w, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing tenants: %w", err)
	}
	if len(ws) == 0 && f.Offset > 0 {
		// Past the last page: the window counted nothing.
		if err := q.QueryRow(ctx, "SELECT count(*) FROM websites"+cond, args[:filterArgs]...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("counting tenants: %w", err)
		}
	}
	return ws, total, nil
}
