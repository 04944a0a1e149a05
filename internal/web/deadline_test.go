package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// deadlineServer is a Server that never reaches a database, for the
// deadline middleware alone.
func deadlineServer(t *testing.T, timeout time.Duration) *Server {
	t.Helper()
	cfg, err := config.Parse([]byte("test:\n  primary:\n    database: p\n"), "database.yml", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	set := shard.NewSet(cfg)
	t.Cleanup(set.Close)
	primary, err := set.Primary()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Shards: set, Registry: registry.NewCache(primary, registry.CacheOptions{}), RequestTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWithDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	s := deadlineServer(t, timeout)
	var left time.Duration
	var bounded, streamBounded bool
	h := s.withDeadline(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		var dl time.Time
		dl, bounded = r.Context().Deadline()
		left = time.Until(dl)
		_, streamBounded = streamContext(r).Deadline()
	}))
	for _, c := range []struct{ method, host, path string }{
		{"GET", "acme.localhost", "/"},
		{"POST", "acme.localhost", "/contact"},
		{"GET", "localhost", "/admin"},
		{"GET", "localhost", "/readyz"},
		// The move's progress stream too, until it has checked who asks.
		{"GET", "localhost", "/admin/moves/7/events"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, "http://"+c.host+c.path, nil))
		if !bounded || left <= 0 || left > timeout {
			t.Errorf("%s %s%s: deadline %v, %s left; want one within %s", c.method, c.host, c.path, bounded, left, timeout)
		}
		if streamBounded {
			t.Errorf("%s %s%s: streamContext has a deadline", c.method, c.host, c.path)
		}
	}
}

// After a slow body, bodyRead gives the request its whole time again,
// keeps its values, and still ends when the client goes away.
func TestBodyRead_FreshDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	s := deadlineServer(t, timeout)
	type key struct{}
	client, goAway := context.WithCancel(context.WithValue(context.Background(), key{}, "kept"))
	defer goAway()
	var fresh, gone context.Context
	h := s.withDeadline(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		time.Sleep(timeout + 50*time.Millisecond) // the body arriving slowly
		if r.Context().Err() == nil {
			t.Error("the arrival deadline did not pass")
		}
		r = s.bodyRead(r)
		fresh = r.Context()
		if err := fresh.Err(); err != nil {
			t.Errorf("after bodyRead: %v", err)
		}
		if dl, ok := fresh.Deadline(); !ok || time.Until(dl) < timeout/2 {
			t.Errorf("after bodyRead: deadline %v in %s; want about %s from now", ok, time.Until(dl), timeout)
		}
		if fresh.Value(key{}) != "kept" {
			t.Error("bodyRead lost the request's values")
		}
		r = s.bodyRead(r)
		gone = r.Context()
		goAway()
		select {
		case <-gone.Done():
			if gone.Err() != context.Canceled {
				t.Errorf("client gone: %v, want canceled", gone.Err())
			}
		case <-time.After(timeout / 2):
			t.Error("bodyRead's context did not end when the client went away")
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "http://acme.localhost/site_admin/properties", nil).WithContext(client))
	if fresh.Err() == nil {
		t.Error("bodyRead's context outlived its request")
	}
}
