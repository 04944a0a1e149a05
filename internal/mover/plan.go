package mover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/changes"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Plan is what a move would do, as found by the pre-flight checks.
type Plan struct {
	Website    registry.Website `json:"website"`
	Source     string           `json:"source"`
	Target     string           `json:"target"`
	Tables     []TablePlan      `json:"tables"`
	Collisions int64            `json:"collisions"`
	// Mode is how the move will treat the tenant's writes; ModeReason says
	// why, when it is not the online mode the platform prefers.
	Mode       journal.Mode `json:"mode"`
	ModeReason string       `json:"mode_reason,omitempty"`
	// Estimate is the expected time of the whole move; ReadOnly is the part
	// of it during which the site refuses or holds writes: the copy and
	// verify in freeze mode, at most the cut-over's budget online.
	Estimate time.Duration `json:"estimate_ns"`
	ReadOnly time.Duration `json:"read_only_ns"`
}

// TablePlan is one tenant table in a plan.
type TablePlan struct {
	Name       string `json:"table"`
	Rows       int64  `json:"rows"`
	Bytes      int64  `json:"bytes"`
	Collisions int64  `json:"collisions"`
	columns    []string
}

// newMove is what the journal records of the plan.
func (p Plan) newMove(startedBy string) journal.NewMove {
	n := journal.NewMove{WebsiteID: p.Website.ID, Source: p.Source, Target: p.Target, StartedBy: startedBy,
		Mode: p.Mode, ModeReason: p.ModeReason}
	for _, t := range p.Tables {
		n.Tables = append(n.Tables, journal.NewTable{Name: t.Name, Rows: t.Rows, Bytes: t.Bytes})
	}
	return n
}

// Rows sums the plan's tables.
func (p Plan) Rows() int64 { return journal.Sum(p.Tables, func(t TablePlan) int64 { return t.Rows }) }

// Bytes sums the plan's tables.
func (p Plan) Bytes() int64 { return journal.Sum(p.Tables, func(t TablePlan) int64 { return t.Bytes }) }

// The rates behind a plan's estimates, measured on the reference machine in
// docs/benchmarks.md and rounded down.
const (
	estimateRowsPerSecond  = 50_000
	estimateBytesPerSecond = 40 << 20
	pingTimeout            = 5 * time.Second
)

// EstimateCopy is how long copying rows and bytes should take.
func EstimateCopy(rows, bytes int64) time.Duration {
	byRows := time.Duration(float64(rows) / estimateRowsPerSecond * float64(time.Second))
	byBytes := time.Duration(float64(bytes) / estimateBytesPerSecond * float64(time.Second))
	return max(byRows, byBytes)
}

// EstimateReadOnly is how long a tenant of rows and bytes should stay
// read-only during a move: the copy plus the verify.
func EstimateReadOnly(rows, bytes int64) time.Duration { return EstimateCopy(rows, bytes) * 3 / 2 }

// Plan runs the pre-flight checks of moving tenantRef (id or subdomain) to
// target and returns what the move would copy, and in which mode: mode, or
// when mode is empty the online mode if the source supports it and the
// freeze mode otherwise, with the reason. It changes nothing. A failed check
// returns a journal.ErrRefused error with a one-line reason; so does an
// online mode asked for but not supported.
func (m *Mover) Plan(ctx context.Context, tenantRef, target string, mode journal.Mode) (Plan, error) {
	if mode != "" && mode != journal.ModeOnline && mode != journal.ModeFreeze {
		return Plan{}, journal.Refuse("mode %q: want %s or %s", mode, journal.ModeOnline, journal.ModeFreeze)
	}
	w, err := registry.Find(ctx, m.primary, tenantRef)
	if errors.Is(err, registry.ErrNotFound) {
		return Plan{}, journal.Refusal(err)
	}
	if err != nil {
		return Plan{}, err
	}
	name := fmt.Sprintf("tenant %d (%s)", w.ID, w.Subdomain)
	p := Plan{Website: w, Source: w.ShardName, Target: target}
	// An unfinished move first: it explains a read_only status too.
	if err := journal.RefuseIfMoving(ctx, m.primary, w.ID); err != nil {
		return p, journal.Refusal(err)
	}
	if w.Status != registry.StatusActive {
		return p, journal.Refuse("%s is %s, not active: only an active tenant can be moved", name, w.Status)
	}
	if target == w.ShardName {
		return p, journal.Refuse("%s is already on shard %q", name, target)
	}
	dst, err := m.set.Pool(target)
	if err != nil {
		return p, journal.Refuse("target shard %q is not configured (configured: %s)", target, strings.Join(m.set.Names(), ", "))
	}
	src, err := m.set.Pool(w.ShardName)
	if err != nil {
		return p, journal.Refuse("%s is on shard %q, which is not configured", name, w.ShardName)
	}
	for _, s := range []struct{ role, name string }{{"source", w.ShardName}, {"target", target}} {
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		_, err := m.set.Ping(pctx, s.name)
		cancel()
		if err != nil {
			return p, journal.Refuse("%s shard %q is unreachable: %v", s.role, s.name, shard.Unwrap(err))
		}
	}
	if err := sameSchema(ctx, src, dst, w.ShardName, target); err != nil {
		return p, err
	}
	if has, err := tenant.HasRows(ctx, dst, w.ID); err != nil {
		return p, err
	} else if has {
		return p, m.leftoverRefusal(ctx, w, target)
	}
	for _, t := range tenant.Tables {
		tp := TablePlan{Name: t}
		if tp.columns, err = columns(ctx, src, t); err != nil {
			return p, err
		}
		dstCols, err := columns(ctx, dst, t)
		if err != nil {
			return p, err
		}
		if !slices.Equal(tp.columns, dstCols) {
			return p, journal.Refuse("table %s has columns (%s) on %q but (%s) on %q", t,
				strings.Join(tp.columns, ", "), w.ShardName, strings.Join(dstCols, ", "), target)
		}
		if tp.Rows, tp.Bytes, err = size(ctx, src, t, w.ID); err != nil {
			return p, err
		}
		p.Tables = append(p.Tables, tp)
	}
	for i, t := range p.Tables {
		n, example, err := collisions(ctx, src, dst, t.Name, w.ID)
		if err != nil {
			return p, fmt.Errorf("scanning %s for ID collisions: %w", t.Name, err)
		}
		p.Tables[i].Collisions = n
		p.Collisions += n
		if n > 0 {
			return p, journal.Refuse("%d row(s) of %s in %s have ids already used on shard %q (for example %s): the target is not safe to copy into",
				n, name, t.Name, target, example)
		}
	}
	ok, reason, err := m.OnlineSupported(ctx, w.ShardName)
	if err != nil {
		return p, journal.Refuse("source shard %q: %v", w.ShardName, err)
	}
	switch {
	case mode == journal.ModeOnline && !ok:
		return p, journal.Refuse("an online move of %s is not possible: %s", name, reason)
	case mode == journal.ModeFreeze:
		p.Mode, p.ModeReason = journal.ModeFreeze, "freeze mode was asked for"
	case ok:
		p.Mode = journal.ModeOnline
	default:
		p.Mode, p.ModeReason = journal.ModeFreeze, reason
	}
	p.ReadOnly = EstimateReadOnly(p.Rows(), p.Bytes())
	p.Estimate = p.ReadOnly * 2 // plus clean-up
	if p.Mode == journal.ModeOnline {
		p.ReadOnly = m.opt.CutoverBudget
		p.Estimate += EstimateCopy(p.Rows(), p.Bytes()) / 2 // the catch-up
	}
	return p, nil
}

// OnlineSupported reports whether moves off shard name can run online, and
// if not, why, in one line that says how to fix it.
func (m *Mover) OnlineSupported(ctx context.Context, name string) (bool, string, error) {
	sh, err := m.set.Shard(name)
	if err != nil {
		return false, "", err
	}
	conn, ok := sh.ReplicationConnString()
	if !ok {
		return false, fmt.Sprintf("shard %q is reached through a transaction pooler, which cannot carry the replication connection an online move needs; give it a replication_url with a direct connection", name), nil
	}
	pool, err := m.set.Pool(name)
	if err != nil {
		return false, "", err
	}
	return changes.Supported(ctx, pool, conn, name)
}

func (m *Mover) leftoverRefusal(ctx context.Context, w registry.Website, target string) error {
	id, found, err := journal.LeftByAbort(ctx, m.primary, w.ID, target)
	if err != nil {
		return err
	}
	if found {
		return journal.Refuse("shard %q still holds rows of tenant %d (%s) copied by aborted move %d: run `pwb sharding abort %d` again to remove them",
			target, w.ID, w.Subdomain, id, id)
	}
	return journal.Refuse("shard %q already holds rows of tenant %d (%s) that no move of it left there: check and remove them before moving",
		target, w.ID, w.Subdomain)
}

// sameSchema refuses unless both shards are at the same, current tenant
// schema version.
func sameSchema(ctx context.Context, src, dst *pgxpool.Pool, srcName, dstName string) error {
	a, err := migrations.Status(ctx, src, migrations.Tenant)
	if err != nil {
		return journal.Refuse("source shard %q: %v", srcName, err)
	}
	b, err := migrations.Status(ctx, dst, migrations.Tenant)
	if err != nil {
		return journal.Refuse("target shard %q: %v", dstName, err)
	}
	if a.Current != b.Current || a.Pending != b.Pending {
		return journal.Refuse("tenant schema versions differ: shard %q is at %d, shard %q at %d: run `pwb db migrate` first",
			srcName, a.Current, dstName, b.Current)
	}
	return nil
}

// columns lists a tenant table's columns in their order on one shard.
func columns(ctx context.Context, q *pgxpool.Pool, table string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT attname FROM pg_attribute
		WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, table)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", table, err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", table, err)
	}
	if len(cols) == 0 {
		return nil, journal.Refuse("table %s does not exist: run `pwb db migrate`", table)
	}
	return cols, nil
}

func columnList(cols []string) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	return strings.Join(quoted, ", ")
}

func ident(table string) string { return pgx.Identifier{table}.Sanitize() }

// size counts a tenant's rows in a table and their size on disk. It reads
// every row, as a copy does, so it lifts the statement timeout too.
func size(ctx context.Context, q *pgxpool.Pool, table string, websiteID int64) (rows, bytes int64, err error) {
	err = pgx.BeginTxFunc(ctx, q, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := liftStatementTimeout(ctx, tx); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT count(*), COALESCE(sum(pg_column_size(t.*)), 0)::bigint FROM "+ident(table)+
			" t WHERE website_id = $1", websiteID).Scan(&rows, &bytes)
	})
	if err != nil {
		err = fmt.Errorf("counting rows of %s: %w", table, err)
	}
	return rows, bytes, err
}

// collisions streams the ids of the tenant's rows in table from src into a
// temporary table on dst and counts those dst already has, whoever owns them.
// The temporary table is gone when the transaction rolls back.
func collisions(ctx context.Context, src, dst *pgxpool.Pool, table string, websiteID int64) (int64, string, error) {
	s, err := src.Acquire(ctx)
	if err != nil {
		return 0, "", err
	}
	defer s.Release()
	// The source's COPY gets a read-only transaction only to lift the
	// statement timeout in it.
	stx, err := s.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, "", err
	}
	defer stx.Rollback(context.WithoutCancel(ctx))
	if err := liftStatementTimeout(ctx, stx); err != nil {
		return 0, "", err
	}
	tx, err := dst.Begin(ctx)
	if err != nil {
		return 0, "", err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := liftStatementTimeout(ctx, tx); err != nil {
		return 0, "", err
	}
	if _, err := tx.Exec(ctx, "CREATE TEMPORARY TABLE pwb_move_ids (id uuid) ON COMMIT DROP"); err != nil {
		return 0, "", err
	}
	copyTo := "COPY (SELECT id FROM " + ident(table) + " WHERE website_id = " + strconv.FormatInt(websiteID, 10) + ") TO STDOUT (FORMAT binary)"
	if _, err := pipe(ctx, s.Conn().PgConn(), tx.Conn().PgConn(), copyTo, "COPY pwb_move_ids (id) FROM STDIN (FORMAT binary)", &tupleCounter{}); err != nil {
		return 0, "", err
	}
	var n int64
	var example string
	err = tx.QueryRow(ctx, "SELECT count(*), COALESCE(min(i.id::text), '') FROM pwb_move_ids i JOIN "+ident(table)+" t ON t.id = i.id").Scan(&n, &example)
	return n, example, err
}
