// Package throttle counts attempts (sign-ins, enquiries) in PostgreSQL on
// primary, so that every pwb serve process of the platform shares one count
// and two processes allow no more than one.
//
// An attempt is counted before the work it guards (a password check, a
// saved enquiry) is done: Take locks the counted rows, refuses when a limit
// is reached, and commits the new count before the caller goes on. However
// many attempts arrive at once, no more than the limit get through. A limit
// passed either refuses until the window ends or, with a Rule's Lock, locks
// the subject for a short time that doubles with each further lock, so a
// stranger cannot lock a real owner out for long with a few requests.
package throttle

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/fault"
)

// Kinds of count.
const (
	SignInAccount = "sign_in_account" // failed sign-ins of one account (normalised email)
	SignInAddress = "sign_in_address" // failed sign-ins from one client address
	Enquiry       = "enquiry"         // enquiries from one client address to one website
)

// Rule is how much of one kind is allowed.
type Rule struct {
	// Limit is how many attempts a window allows.
	Limit int
	// Window is how long a count lasts from its first attempt.
	Window time.Duration
	// Lock, if set, locks the subject for this long when an attempt passes
	// the limit; the count then starts over. Each further lock of the same
	// subject lasts twice as long as the one before, up to MaxLock. Without
	// Lock, attempts past the limit are refused until the window ends.
	Lock    time.Duration
	MaxLock time.Duration
}

// Validate checks that r can count anything.
func (r Rule) Validate() error {
	switch {
	case r.Limit < 1:
		return fmt.Errorf("limit %d: must be at least 1", r.Limit)
	case r.Window <= 0:
		return fmt.Errorf("window %s: must be positive", r.Window)
	case r.Lock < 0 || r.MaxLock < 0:
		return errors.New("lock times must not be negative")
	case r.Lock > 0 && r.MaxLock < r.Lock:
		return fmt.Errorf("max lock %s: must be at least the lock %s", r.MaxLock, r.Lock)
	}
	return nil
}

// Key names one count: a kind, the website it is about (0 when it spans
// websites) and what is counted (an email, an address).
type Key struct {
	Kind      string
	WebsiteID int64
	Subject   string
}

// Counted is one key of an attempt with its rule.
type Counted struct {
	Key
	Rule Rule
}

// Decision is Take's answer.
type Decision struct {
	// Allowed says the attempt may go on; it has been counted.
	Allowed bool
	// RetryAfter is how long until the refusing key allows an attempt.
	RetryAfter time.Duration
	// By is the key that refused.
	By Key
	// Locked lists the keys this attempt locked, with when each lock ends,
	// for the audit log.
	Locked []Lock
}

// Lock is a subject that may not try again until Until.
type Lock struct {
	Key
	Count int // attempts counted in the window that led to the lock
	Locks int // how many times it has been locked since its count was new
	Until time.Time
}

// Take decides in the database, in one statement, so that a key's row is
// locked only while the server works on it and never across a round trip
// to a client that may be slow to be scheduled: a flood of attempts at one
// account queues on that one row, and each holds it for microseconds.
const (
	// The rows must exist before they can be locked. An insert of a new key
	// that another attempt is inserting at the same moment waits for that
	// one statement, no longer.
	ensureRows = `INSERT INTO throttles (kind, website_id, subject, expires_at)
		SELECT kind, website_id, subject, now() FROM unnest($1::text[], $2::bigint[], $3::text[]) AS k (kind, website_id, subject)
		ON CONFLICT DO NOTHING`
	// takeRows counts one attempt as Take's comment says. The ORDER BY
	// under FOR UPDATE locks the rows in key order, so two attempts that
	// share keys never wait for each other in a circle; a row updated
	// meanwhile is read as it is once locked. "waits" means a key is
	// locked or at a plain limit: nothing changes. "locks_now" marks a key
	// that this attempt takes past its locking limit. "counted" means the
	// attempt is allowed and counted on every key.
	takeRows = `WITH k AS (
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::integer[], $5::bigint[], $6::bigint[], $7::bigint[])
				AS k (kind, website_id, subject, lim, win_us, lock_us, max_lock_us)
		), cur AS (
			SELECT t.kind, t.website_id, t.subject, t.count, t.window_start, t.locks, t.locked_until, t.expires_at, k.lim,
				k.win_us * interval '1 microsecond' AS win, k.lock_us * interval '1 microsecond' AS lck,
				k.max_lock_us * interval '1 microsecond' AS max_lck
			FROM throttles t JOIN k USING (kind, website_id, subject)
			ORDER BY t.kind, t.website_id, t.subject
			FOR UPDATE OF t
		), timed AS (
			SELECT cur.*, clock_timestamp() AS now FROM cur
		), norm AS (
			-- A row quiet past its expiry starts afresh; a window that has
			-- passed starts a new count.
			SELECT kind, website_id, subject, lim, win, lck, max_lck, now,
				CASE WHEN now >= expires_at OR now >= window_start + win THEN 0 ELSE count END AS count,
				CASE WHEN now >= expires_at OR now >= window_start + win THEN now ELSE window_start END AS window_start,
				CASE WHEN now >= expires_at THEN 0 ELSE locks END AS locks,
				CASE WHEN now >= expires_at THEN NULL ELSE locked_until END AS locked_until
			FROM timed
		), verdict AS (
			SELECT bool_or(COALESCE(locked_until > now, false) OR (count >= lim AND lck = interval '0')) AS waits,
				bool_or(count >= lim) AS any_full
			FROM norm
		), nxt AS (
			SELECT n.*, v.waits, NOT v.waits AND n.count >= n.lim AS locks_now, NOT v.waits AND NOT v.any_full AS counted
			FROM norm n CROSS JOIN verdict v
		), saved AS (
			SELECT kind, website_id, subject, win, now, waits, locks_now, counted, count AS before,
				CASE WHEN locks_now THEN 0 WHEN counted THEN count + 1 ELSE count END AS count,
				CASE WHEN locks_now THEN now ELSE window_start END AS window_start,
				CASE WHEN locks_now THEN locks + 1 ELSE locks END AS locks,
				CASE WHEN locks_now THEN now + least(lck * power(2, least(locks, 30)), max_lck) ELSE locked_until END AS locked_until
			FROM nxt
		)
		UPDATE throttles t SET count = x.count, window_start = x.window_start, locks = x.locks, locked_until = x.locked_until,
			expires_at = greatest(x.window_start + x.win, x.locked_until + x.win)
		FROM saved x
		WHERE t.kind = x.kind AND t.website_id = x.website_id AND t.subject = x.subject
		RETURNING t.kind, t.website_id, t.subject, x.waits, x.locks_now, x.counted, x.before,
			t.count, t.window_start, t.locks, t.locked_until, x.now`
)

// Take counts one attempt against every key before the caller does what
// they guard. When any key is locked, or at a limit without a lock, nothing
// is counted and the attempt is refused; a key that the attempt takes past
// a locking limit is locked (a Rule's Lock, doubling each time) and the
// attempt is refused; otherwise it is counted on every key and allowed. The
// decision is made with every key's row locked, so however many attempts
// arrive at once, no more than the limit are allowed.
func Take(ctx context.Context, db dbq.Querier, keys ...Counted) (Decision, error) {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b Counted) int { return compareKeys(a.Key, b.Key) })
	keys = slices.CompactFunc(keys, func(a, b Counted) bool { return a.Key == b.Key })
	n := len(keys)
	lims, wins, lcks, maxLcks := make([]int32, n), make([]int64, n), make([]int64, n), make([]int64, n)
	rules := map[Key]Rule{}
	plain := make([]Key, n)
	for i, k := range keys {
		plain[i] = k.Key
		lims[i], wins[i] = int32(k.Rule.Limit), k.Rule.Window.Microseconds()
		lcks[i], maxLcks[i] = k.Rule.Lock.Microseconds(), k.Rule.MaxLock.Microseconds()
		rules[k.Key] = k.Rule
	}
	kinds, ids, subjects := keyArrays(plain)
	if _, err := db.Exec(ctx, ensureRows, kinds, ids, subjects); err != nil {
		return Decision{}, fmt.Errorf("counting an attempt: %w", err)
	}
	rows, err := db.Query(ctx, takeRows, kinds, ids, subjects, lims, wins, lcks, maxLcks)
	if err != nil {
		return Decision{}, fmt.Errorf("counting an attempt: %w", err)
	}
	d := Decision{Allowed: true}
	seen := 0
	for rows.Next() {
		var k Key
		var waits, locksNow, counted bool
		var before, count, locks int
		var windowStart, now time.Time
		var lockedUntil *time.Time
		if err := rows.Scan(&k.Kind, &k.WebsiteID, &k.Subject, &waits, &locksNow, &counted, &before,
			&count, &windowStart, &locks, &lockedUntil, &now); err != nil {
			rows.Close()
			return Decision{}, fmt.Errorf("counting an attempt: %w", err)
		}
		seen++
		r := rules[k]
		switch {
		case locksNow:
			d.Locked = append(d.Locked, Lock{Key: k, Count: before + 1, Locks: locks, Until: *lockedUntil})
			d.refuse(k, lockedUntil.Sub(now))
		case waits && lockedUntil != nil && now.Before(*lockedUntil):
			d.refuse(k, lockedUntil.Sub(now))
		case waits && count >= r.Limit && r.Lock == 0:
			d.refuse(k, windowStart.Add(r.Window).Sub(now))
		case !counted:
			d.Allowed = false // refused by another key, which says why
		}
	}
	if err := rows.Err(); err != nil {
		return Decision{}, fmt.Errorf("counting an attempt: %w", err)
	}
	if seen != n {
		return Decision{}, fmt.Errorf("counting an attempt: %d of %d counts found", seen, n)
	}
	return d, nil
}

// refuse marks d refused by k for wait, keeping the longest wait.
func (d *Decision) refuse(k Key, wait time.Duration) {
	if d.Allowed || wait > d.RetryAfter {
		d.By, d.RetryAfter = k, max(wait, time.Second)
	}
	d.Allowed = false
}

func compareKeys(a, b Key) int {
	switch {
	case a.Kind != b.Kind:
		return cmpString(a.Kind, b.Kind)
	case a.WebsiteID != b.WebsiteID:
		if a.WebsiteID < b.WebsiteID {
			return -1
		}
		return 1
	}
	return cmpString(a.Subject, b.Subject)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Refund takes back one counted attempt of each key: a sign-in that
// succeeded gives back its own attempt and nothing else, so it never clears
// what other attempts (another account's, a guesser's) have counted.
func Refund(ctx context.Context, q dbq.Querier, keys ...Key) error {
	kinds, ids, subjects := keyArrays(keys)
	if _, err := q.Exec(ctx, `UPDATE throttles t SET count = greatest(t.count - 1, 0)
		FROM unnest($1::text[], $2::bigint[], $3::text[]) AS k (kind, website_id, subject)
		WHERE t.kind = k.kind AND t.website_id = k.website_id AND t.subject = k.subject`, kinds, ids, subjects); err != nil {
		return fmt.Errorf("refunding an attempt: %w", err)
	}
	return nil
}

// keyArrays spreads keys over three arrays, the form the statements take
// them in.
func keyArrays(keys []Key) (kinds []string, ids []int64, subjects []string) {
	for _, k := range keys {
		kinds, ids, subjects = append(kinds, k.Kind), append(ids, k.WebsiteID), append(subjects, k.Subject)
	}
	return kinds, ids, subjects
}

// Locks lists the subjects of kinds that are locked now, the longest lock
// first.
func Locks(ctx context.Context, q dbq.Querier, kinds ...string) ([]Lock, error) {
	rows, err := q.Query(ctx, `SELECT kind, website_id, subject, count, locks, locked_until FROM throttles
		WHERE kind = ANY($1) AND locked_until > now() ORDER BY locked_until DESC, kind, subject`, kinds)
	if err != nil {
		return nil, fmt.Errorf("listing locks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Lock, error) {
		var l Lock
		err := r.Scan(&l.Kind, &l.WebsiteID, &l.Subject, &l.Count, &l.Locks, &l.Until)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing locks: %w", err)
	}
	return out, nil
}

// ErrNotFound means there is no count to clear.
var ErrNotFound = fault.New(fault.NotFound, "no such count")

// Clear forgets k's count and lock at once, and returns them as they were.
// An operator uses it to let a locked-out owner back in.
func Clear(ctx context.Context, q dbq.Querier, k Key) (Lock, error) {
	l := Lock{Key: k}
	var until *time.Time
	err := q.QueryRow(ctx, `DELETE FROM throttles WHERE kind = $1 AND website_id = $2 AND subject = $3
		RETURNING count, locks, locked_until`, k.Kind, k.WebsiteID, k.Subject).Scan(&l.Count, &l.Locks, &until)
	if errors.Is(err, pgx.ErrNoRows) {
		return Lock{}, fmt.Errorf("%s %s: %w", k.Kind, k.Subject, ErrNotFound)
	}
	if err != nil {
		return Lock{}, fmt.Errorf("clearing %s %s: %w", k.Kind, k.Subject, err)
	}
	if until != nil {
		l.Until = *until
	}
	return l, nil
}

// DeleteExpired removes counts that have run out, and returns how many.
// Expired counts are already ignored; this keeps the table small.
func DeleteExpired(ctx context.Context, q dbq.Querier) (int64, error) {
	tag, err := q.Exec(ctx, "DELETE FROM throttles WHERE expires_at <= now()")
	if err != nil {
		return 0, fmt.Errorf("deleting expired counts: %w", err)
	}
	return tag.RowsAffected(), nil
}

// AddressSubject is what a client address is counted by: the address
// itself for IPv4, and its /64 network for IPv6, since one IPv6 client
// commonly holds a whole /64.
func AddressSubject(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
