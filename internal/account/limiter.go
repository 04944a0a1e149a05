package account

import (
	"sync"
	"time"
)

// Limiter counts failed sign-ins per key (say, website id and client IP) in
// a fixed window that starts at a key's first failure, and refuses further
// attempts once a key has max failures in its window. It is in memory, per
// process: it slows password guessing down; it is not an account lock-out,
// which would let anyone lock a real admin out.
//
// Its memory is bounded by the keys that failed within the last window:
// expired keys are swept at most once per window, from Failed.
type Limiter struct {
	max    int
	window time.Duration

	mu        sync.Mutex
	keys      map[string]failures
	lastSweep time.Time
}

type failures struct {
	count int
	start time.Time // first failure of the current window
}

// NewLimiter returns a limiter that allows max failures per key per window.
// It panics if max or window is not positive.
func NewLimiter(max int, window time.Duration) *Limiter {
	if max < 1 || window <= 0 {
		panic("account.NewLimiter: max and window must be positive")
	}
	return &Limiter{max: max, window: window, keys: map[string]failures{}}
}

// Allowed reports whether key may try to sign in at now and, if not, how
// long until it may.
func (l *Limiter) Allowed(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, found := l.keys[key]
	if !found {
		return true, 0
	}
	end := f.start.Add(l.window)
	if !now.Before(end) {
		delete(l.keys, key)
		return true, 0
	}
	if f.count < l.max {
		return true, 0
	}
	return false, end.Sub(now)
}

// Failed records a failed sign-in of key at now.
func (l *Limiter) Failed(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	f, found := l.keys[key]
	if !found || !now.Before(f.start.Add(l.window)) {
		f = failures{start: now}
	}
	f.count++
	l.keys[key] = f
}

// Succeeded forgets key's failures after a successful sign-in.
func (l *Limiter) Succeeded(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// Len is how many keys the limiter is tracking, for metrics and tests.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// sweep drops keys whose window has ended, at most once per window so the
// cost per call stays constant on average.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.window {
		return
	}
	l.lastSweep = now
	for k, f := range l.keys {
		if !now.Before(f.start.Add(l.window)) {
			delete(l.keys, k)
		}
	}
}
