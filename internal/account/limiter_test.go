package account_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/account"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func allowed(t *testing.T, l *account.Limiter, key string, now time.Time) bool {
	t.Helper()
	ok, retry := l.Allowed(key, now)
	if ok != (retry == 0) {
		t.Errorf("Allowed(%q) = %v, retry after %v", key, ok, retry)
	}
	return ok
}

func TestLimiter_BlocksAfterMaxFailuresUntilTheWindowEnds(t *testing.T) {
	t.Parallel()
	l := account.NewLimiter(3, time.Minute)
	const key = "1|192.0.2.1"
	for i := range 3 {
		now := t0.Add(time.Duration(i) * time.Second)
		if !allowed(t, l, key, now) {
			t.Fatalf("blocked after %d failures; want 3 allowed", i)
		}
		l.Failed(key, now)
	}
	ok, retry := l.Allowed(key, t0.Add(3*time.Second))
	if ok || retry != 57*time.Second {
		t.Errorf("after 3 failures: allowed %v, retry after %v; want blocked for 57s", ok, retry)
	}
	if !allowed(t, l, "1|192.0.2.2", t0.Add(3*time.Second)) || !allowed(t, l, "2|192.0.2.1", t0.Add(3*time.Second)) {
		t.Error("other keys are blocked too")
	}
	if allowed(t, l, key, t0.Add(time.Minute-time.Nanosecond)) {
		t.Error("allowed before the window ended")
	}
	if !allowed(t, l, key, t0.Add(time.Minute)) {
		t.Error("still blocked once the window ended")
	}
	// A new window starts with the next failure and counts from one.
	l.Failed(key, t0.Add(2*time.Minute))
	l.Failed(key, t0.Add(2*time.Minute))
	if !allowed(t, l, key, t0.Add(2*time.Minute)) {
		t.Error("2 failures in a new window blocked")
	}
	l.Failed(key, t0.Add(2*time.Minute))
	if allowed(t, l, key, t0.Add(2*time.Minute)) {
		t.Error("3 failures in a new window allowed")
	}
}

func TestLimiter_SuccessResets(t *testing.T) {
	t.Parallel()
	l := account.NewLimiter(2, time.Minute)
	l.Failed("k", t0)
	l.Failed("k", t0)
	if allowed(t, l, "k", t0) {
		t.Fatal("not blocked")
	}
	l.Succeeded("k")
	if !allowed(t, l, "k", t0) || l.Len() != 0 {
		t.Errorf("after success: blocked or still tracked (%d keys)", l.Len())
	}
	l.Failed("k", t0)
	if !allowed(t, l, "k", t0) {
		t.Error("one failure after a success blocked")
	}
}

func TestLimiter_PrunesOldKeys(t *testing.T) {
	t.Parallel()
	l := account.NewLimiter(5, time.Minute)
	for i := range 10_000 {
		l.Failed(fmt.Sprintf("1|10.0.%d.%d", i/256, i%256), t0)
	}
	if n := l.Len(); n != 10_000 {
		t.Fatalf("%d keys; want 10000", n)
	}
	l.Failed("1|192.0.2.1", t0.Add(30*time.Second))
	l.Failed("1|192.0.2.2", t0.Add(time.Minute+time.Second))
	if n := l.Len(); n != 2 {
		t.Errorf("%d keys after a window; want only the 2 recent ones", n)
	}
	// Keys whose window ended are forgotten when they are looked at, too.
	l.Allowed("1|192.0.2.1", t0.Add(2*time.Minute))
	if n := l.Len(); n != 1 {
		t.Errorf("%d keys; want 1", n)
	}
}

func TestLimiter_ConcurrentUse(t *testing.T) {
	t.Parallel()
	l := account.NewLimiter(100, time.Minute)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				key := fmt.Sprint(i % 10)
				l.Allowed(key, t0)
				l.Failed(key, t0)
				if g == 0 && i%7 == 0 {
					l.Succeeded(key)
				}
			}
		})
	}
	wg.Wait()
	if l.Len() > 10 {
		t.Errorf("%d keys; want at most 10", l.Len())
	}
}

func TestNewLimiter_RefusesNonsense(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		max    int
		window time.Duration
	}{{0, time.Minute}, {5, 0}, {-1, -time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewLimiter(%d, %v) did not panic", c.max, c.window)
				}
			}()
			account.NewLimiter(c.max, c.window)
		}()
	}
}
