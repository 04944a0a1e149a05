// Package audit keeps the platform's record of who changed where a tenant's
// data lives: every provision, move, resume and abort, from the CLI or the
// admin, with its actor, tenant, shards and outcome. It is append-only; a
// line is written when an operation ends (or, for work handed to a
// background job, when it is queued and again when the job ends).
package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/registry"
)

// Actions.
const (
	Provision = "provision"
	Move      = "move"
	Resume    = "resume"
	Abort     = "abort"
	// SignInLock is a sign-in count passing its limit and locking an
	// account or a client address; SignInUnlock an operator clearing it.
	SignInLock   = "sign_in_lock"
	SignInUnlock = "sign_in_unlock"
)

// Outcomes.
const (
	Queued  = "queued"
	Done    = "done"
	Failed  = "failed"
	Refused = "refused"
)

// Entry is one line of the audit log.
type Entry struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	WebsiteID int64     `json:"website_id,omitempty"` // 0 when the tenant was not found
	Tenant    string    `json:"tenant"`
	Source    string    `json:"source_shard,omitempty"`
	Target    string    `json:"target_shard,omitempty"`
	MoveID    int64     `json:"move_id,omitempty"`
	Outcome   string    `json:"outcome"`
	Detail    string    `json:"detail,omitempty"`
}

// OutcomeOf names how an operation that returned err ended: done, refused
// (err is one of the errors the caller lists in refused, such as
// fault.Refused) or failed.
func OutcomeOf(err error, refused ...error) string {
	if err == nil {
		return Done
	}
	for _, r := range refused {
		if errors.Is(err, r) {
			return Refused
		}
	}
	return Failed
}

// Record appends e to the log; At, if zero, is the database's now.
func Record(ctx context.Context, q dbq.Querier, e Entry) error {
	if e.Actor == "" || e.Action == "" || e.Outcome == "" {
		return errors.New("audit: an entry needs an actor, an action and an outcome")
	}
	var at *time.Time
	if !e.At.IsZero() {
		at = &e.At
	}
	_, err := q.Exec(ctx, `INSERT INTO audit_log
		(at, actor, action, website_id, tenant, source_shard, target_shard, move_id, outcome, detail)
		VALUES (COALESCE($1, now()), $2, $3, NULLIF($4, 0), $5, NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, 0), $9, $10)`,
		at, e.Actor, e.Action, e.WebsiteID, e.Tenant, e.Source, e.Target, e.MoveID, e.Outcome, oneLine(e.Detail))
	if err != nil {
		return fmt.Errorf("writing the audit log: %w", err)
	}
	return nil
}

// Filter narrows List. Zero values match everything.
type Filter struct {
	WebsiteID int64
	Limit     int // default 50
	Offset    int
}

// List returns entries newest first and the number that match f.
func List(ctx context.Context, q dbq.Querier, f Filter) ([]Entry, int, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	var total int
	if err := q.QueryRow(ctx, "SELECT count(*) FROM audit_log WHERE $1 = 0 OR website_id = $1", f.WebsiteID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("reading the audit log: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT id, at, actor, action, COALESCE(website_id, 0), tenant,
			COALESCE(source_shard, ''), COALESCE(target_shard, ''), COALESCE(move_id, 0), outcome, detail
		FROM audit_log WHERE $1 = 0 OR website_id = $1
		ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3`, f.WebsiteID, f.Limit, f.Offset)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the audit log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.WebsiteID, &e.Tenant, &e.Source, &e.Target, &e.MoveID, &e.Outcome, &e.Detail)
		return e, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("reading the audit log: %w", err)
	}
	return out, total, nil
}

// ForWebsite fills an entry's tenant fields from a registry row.
func (e Entry) ForWebsite(w registry.Website) Entry {
	e.WebsiteID, e.Tenant = w.ID, w.Subdomain
	return e
}

// ForMove is the entry of action on move id, whose journal row is m, or
// the zero Move when the journal has no such move: the tenant is then named
// by the move.
func ForMove(action string, id int64, m journal.Move) Entry {
	e := Entry{Action: action, WebsiteID: m.WebsiteID, Tenant: m.Subdomain, Source: m.Source, Target: m.Target, MoveID: id}
	if e.Tenant == "" {
		e.Tenant = fmt.Sprintf("move %d", id)
	}
	return e
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
