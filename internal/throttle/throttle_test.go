package throttle_test

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

var locking = throttle.Rule{Limit: 3, Window: time.Hour, Lock: time.Minute, MaxLock: 4 * time.Minute}

func key(kind, subject string) throttle.Key { return throttle.Key{Kind: kind, Subject: subject} }

func take(t *testing.T, db *pgxpool.Pool, keys ...throttle.Counted) throttle.Decision {
	t.Helper()
	d, err := throttle.Take(context.Background(), db, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// setLockedUntil moves a lock's end, standing in for time passing.
func setLockedUntil(t *testing.T, db *pgxpool.Pool, k throttle.Key, until string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), "UPDATE throttles SET locked_until = now() + $3::interval WHERE kind = $1 AND subject = $2",
		k.Kind, k.Subject, until); err != nil {
		t.Fatal(err)
	}
}

func TestTake_LimitThenALockThatDoublesUpToItsMaximum(t *testing.T) {
	t.Parallel()
	db := pgtest.MigratedPrimary(t)
	acct := throttle.Counted{Key: key(throttle.SignInAccount, "owner@example.com"), Rule: locking}
	for i := range 3 {
		if d := take(t, db, acct); !d.Allowed {
			t.Fatalf("attempt %d refused: %+v", i+1, d)
		}
	}
	// The fourth attempt passes the limit: refused, and it locks.
	wantLocks := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute}
	for round, want := range wantLocks {
		d := take(t, db, acct)
		if d.Allowed || len(d.Locked) != 1 || d.By != acct.Key {
			t.Fatalf("round %d: the attempt past the limit: %+v, want refused with one lock", round, d)
		}
		if d.RetryAfter < want-2*time.Second || d.RetryAfter > want {
			t.Errorf("round %d: lock of %s, want %s", round, d.RetryAfter, want)
		}
		if l := d.Locked[0]; l.Locks != round+1 || l.Count != 4 {
			t.Errorf("round %d: lock %+v, want lock number %d after 4 attempts", round, l, round+1)
		}
		// While locked, even an attempt is refused, and nothing more locks.
		if d := take(t, db, acct); d.Allowed || len(d.Locked) != 0 {
			t.Errorf("round %d: during the lock: %+v", round, d)
		}
		// The lock ends: the count starts over with the full limit.
		setLockedUntil(t, db, acct.Key, "-1 second")
		for i := range 3 {
			if d := take(t, db, acct); !d.Allowed {
				t.Fatalf("round %d: attempt %d after the lock refused: %+v", round, i+1, d)
			}
		}
	}
}

// However many attempts arrive at once, no more than the limit get
// through: each is counted before any goes on.
func TestTake_ParallelAttemptsNeverPassTheLimit(t *testing.T) {
	t.Parallel()
	db := pgtest.MigratedPrimary(t)
	acct := throttle.Counted{Key: key(throttle.SignInAccount, "target@example.com"), Rule: throttle.Rule{Limit: 10, Window: time.Hour, Lock: time.Minute, MaxLock: time.Hour}}
	var allowed, locks atomic.Int64
	var wg sync.WaitGroup
	for i := range 120 {
		addr := throttle.Counted{Key: key(throttle.SignInAddress, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()), Rule: locking}
		wg.Go(func() {
			d, err := throttle.Take(context.Background(), db, addr, acct)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
			locks.Add(int64(len(d.Locked)))
		})
	}
	wg.Wait()
	if allowed.Load() != 10 || locks.Load() != 1 {
		t.Errorf("%d allowed and %d locks of 120 parallel attempts; want exactly 10 and 1", allowed.Load(), locks.Load())
	}
}

// An attempt refused by one key is not counted on the others.
func TestTake_ARefusedAttemptCountsNowhere(t *testing.T) {
	t.Parallel()
	db := pgtest.MigratedPrimary(t)
	addr := throttle.Counted{Key: key(throttle.SignInAddress, "203.0.113.9"), Rule: locking}
	acct := throttle.Counted{Key: key(throttle.SignInAccount, "a@example.com"), Rule: locking}
	other := throttle.Counted{Key: key(throttle.SignInAccount, "b@example.com"), Rule: locking}
	for range 3 {
		take(t, db, addr, acct)
	}
	// Both are full: the next attempt locks both.
	if d := take(t, db, addr, acct); d.Allowed || len(d.Locked) != 2 {
		t.Fatalf("attempt past both limits: %+v", d)
	}
	setLockedUntil(t, db, addr.Key, "-1 second")
	// The address's lock ends, acct's does not: acct's attempt is refused
	// without counting on the address, which then still allows its full
	// limit to another account.
	if d := take(t, db, addr, acct); d.Allowed || d.By != acct.Key || len(d.Locked) != 0 {
		t.Errorf("attempt of the locked account: %+v", d)
	}
	for i := range 3 {
		if d := take(t, db, addr, other); !d.Allowed {
			t.Fatalf("attempt %d of another account refused: %+v", i+1, d)
		}
	}
}

// A plain rule (no lock) refuses until its window ends, then counts afresh.
func TestTake_PlainRuleRefusesUntilTheWindowEnds(t *testing.T) {
	t.Parallel()
	db := pgtest.MigratedPrimary(t)
	plain := throttle.Counted{Key: throttle.Key{Kind: throttle.Enquiry, WebsiteID: 7, Subject: "203.0.113.5"},
		Rule: throttle.Rule{Limit: 2, Window: 400 * time.Millisecond}}
	elsewhere := plain
	elsewhere.WebsiteID = 8
	take(t, db, plain)
	take(t, db, plain)
	d := take(t, db, plain)
	if d.Allowed || len(d.Locked) != 0 || d.RetryAfter != time.Second {
		t.Errorf("third attempt: %+v, want refused for the window's rest (at least a second is said)", d)
	}
	if d := take(t, db, elsewhere); !d.Allowed {
		t.Errorf("the same address on another website refused: %+v", d)
	}
	time.Sleep(600 * time.Millisecond)
	if d := take(t, db, plain); !d.Allowed {
		t.Errorf("after the window: %+v, want allowed", d)
	}
}

// Refund gives back one attempt of its own key and touches no other.
func TestRefund_GivesBackOnlyItsOwnAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MigratedPrimary(t)
	addr := throttle.Counted{Key: key(throttle.SignInAddress, "203.0.113.1"), Rule: locking}
	guessed := throttle.Counted{Key: key(throttle.SignInAccount, "admin@example.com"), Rule: locking}
	own := throttle.Counted{Key: key(throttle.SignInAccount, "me@example.com"), Rule: locking}
	// Two wrong guesses at admin, then a success of one's own account,
	// repeated: the success never clears the guesses.
	take(t, db, addr, guessed)
	take(t, db, addr, guessed)
	take(t, db, addr, own)
	if err := throttle.Refund(ctx, db, addr.Key, own.Key); err != nil {
		t.Fatal(err)
	}
	take(t, db, addr, guessed) // third guess: at the limit
	if d := take(t, db, addr, guessed); d.Allowed || d.By != guessed.Key {
		t.Errorf("fourth guess at admin: %+v, want refused by its account", d)
	}
	var n int
	if err := db.QueryRow(ctx, "SELECT count FROM throttles WHERE subject = 'me@example.com'").Scan(&n); err != nil || n != 0 {
		t.Errorf("own account count %d (%v), want 0 after the refund", n, err)
	}
	// Refunding never goes below zero.
	if err := throttle.Refund(ctx, db, own.Key, own.Key); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, "SELECT count FROM throttles WHERE subject = 'me@example.com'").Scan(&n); err != nil || n != 0 {
		t.Errorf("own account count %d (%v), want still 0", n, err)
	}
}

func TestLocksClearAndDeleteExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.MigratedPrimary(t)
	acct := throttle.Counted{Key: key(throttle.SignInAccount, "locked@example.com"), Rule: locking}
	for range 4 {
		take(t, db, acct)
	}
	take(t, db, throttle.Counted{Key: key(throttle.SignInAccount, "free@example.com"), Rule: locking})
	locks, err := throttle.Locks(ctx, db, throttle.SignInAccount, throttle.SignInAddress)
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 1 || locks[0].Key != acct.Key || locks[0].Locks != 1 || time.Until(locks[0].Until) < 50*time.Second {
		t.Fatalf("locks %+v, want locked@example.com's for a minute", locks)
	}
	if _, err := throttle.Clear(ctx, db, key(throttle.SignInAccount, "nobody@example.com")); err == nil {
		t.Error("clearing a count that does not exist: no error")
	}
	l, err := throttle.Clear(ctx, db, acct.Key)
	if err != nil || time.Until(l.Until) < 50*time.Second {
		t.Fatalf("Clear = %+v, %v", l, err)
	}
	if d := take(t, db, acct); !d.Allowed {
		t.Errorf("after clearing: %+v, want allowed", d)
	}
	// Rows past their expiry go; live ones stay.
	if _, err := db.Exec(ctx, "UPDATE throttles SET expires_at = now() - interval '1 second' WHERE subject = 'free@example.com'"); err != nil {
		t.Fatal(err)
	}
	n, err := throttle.DeleteExpired(ctx, db)
	if err != nil || n != 1 {
		t.Errorf("DeleteExpired = %d, %v; want 1", n, err)
	}
	var left int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM throttles").Scan(&left); err != nil || left != 1 {
		t.Errorf("%d rows left (%v), want 1", left, err)
	}
}

func TestAddressSubject(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"203.0.113.9":                  "203.0.113.9",
		"::ffff:203.0.113.9":           "203.0.113.9",
		"2001:db8:1:2:3:4:5:6":         "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff:0:1":   "2001:db8:1:2::/64",
		"::1":                          "::/64",
		"fe80::1234:5678:9abc:def0%lo": "fe80::/64",
	} {
		if got := throttle.AddressSubject(netip.MustParseAddr(in)); got != want {
			t.Errorf("AddressSubject(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestRule_Validate(t *testing.T) {
	t.Parallel()
	for _, r := range []throttle.Rule{
		{Limit: 0, Window: time.Minute},
		{Limit: 1},
		{Limit: 1, Window: time.Minute, Lock: time.Minute, MaxLock: time.Second},
		{Limit: 1, Window: time.Minute, Lock: -time.Second},
	} {
		if r.Validate() == nil {
			t.Errorf("%+v: valid, want refused", r)
		}
	}
	if err := locking.Validate(); err != nil {
		t.Error(err)
	}
}
