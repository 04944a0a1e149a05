package mover_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/web"
)

// site serves the platform's tenants over real HTTP, as pwb serve does.
type site struct {
	srv    *httptest.Server
	client *http.Client
	host   string
}

func (p *platform) serve(t *testing.T) *site {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cache := registry.NewCache(p.primary, registry.CacheOptions{Logger: slog.New(slog.DiscardHandler)})
	if err := cache.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := web.New(web.Options{Shards: p.set, Registry: cache, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{srv: httptest.NewServer(h), host: p.site.Subdomain + ".localhost"}
	s.client = &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(func() {
		s.srv.Close()
		cache.Close()
		cancel()
	})
	return s
}

func (s *site) do(t *testing.T, method, path string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = s.host
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// wantReadable checks the home page and a property page answer 200 with the
// tenant's content.
func (s *site) wantReadable(t *testing.T, when string) {
	t.Helper()
	for _, path := range []string{"/", "/properties/property-1"} {
		code, body := s.do(t, http.MethodGet, path, nil)
		if code != http.StatusOK || !strings.Contains(body, "Zürich") {
			t.Errorf("%s: GET %s = %d, want 200 with the tenant's listing", when, path, code)
		}
	}
}

// enquire submits an enquiry and returns the status.
func (s *site) enquire(t *testing.T, msg string) int {
	t.Helper()
	code, _ := s.do(t, http.MethodPost, "/properties/property-1/enquiry", url.Values{
		"name": {"Test Buyer"}, "email": {"buyer@example.com"}, "message": {msg}})
	return code
}

// stoppedMidCopy starts a move of the site to shard_1 and stops shard_1's
// server when half of property_photos is in the target's open transaction,
// reading the site before and after. The move must fail with a reason that
// names the target; the source stays intact and readable, writes paused.
func stoppedMidCopy(t *testing.T) (*platform, *site, *mover.Mover, journal.Move, map[string]movertest.Digest) {
	p := newPlatform(t, movertest.Options{Properties: 150, Photos: 12})
	s := p.serve(t)
	before := p.digests(t)
	var once sync.Once
	m := p.mover(t, mover.Options{Pause: func(point string) {
		if point == "mid-copy:property_photos" {
			once.Do(func() {
				s.wantReadable(t, "mid-copy")
				p.stop(t, "shard_1")
				s.wantReadable(t, "mid-copy, target stopped")
			})
		}
	}})
	ctx := context.Background()
	plan, err := m.Plan(ctx, p.site.Subdomain, "shard_1", journal.ModeFreeze)
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Start(ctx, plan, "test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Run(ctx, id)
	if err == nil {
		t.Fatal("the move succeeded with its target stopped")
	}
	msg := err.Error()
	if !strings.Contains(msg, "failed while copying") || !strings.Contains(msg, `copying property_photos from "default" to "shard_1"`) || strings.Contains(msg, "\n") {
		t.Errorf("error %q should say, on one line, that copying property_photos to shard_1 failed", msg)
	}
	mv, err := journal.Get(ctx, p.primary, id)
	if err != nil {
		t.Fatal(err)
	}
	if mv.State != journal.StateFailed || mv.FailedState != journal.StateCopying || mv.Error == "" {
		t.Errorf("journal: state %s (%s), error %q; want failed while copying, with the reason", mv.State, mv.FailedState, mv.Error)
	}
	if w := p.website(t); w.Status != registry.StatusReadOnly || w.ShardName != shard.Default {
		t.Errorf("registry after the failure: %s on %s, want read_only on default", w.Status, w.ShardName)
	}
	src := shard.Default + "/" + p.site.Subdomain
	if diff := cmp.Diff(before[src], p.digest(t, shard.Default, p.site.ID)); diff != "" {
		t.Errorf("source rows changed (-before +after):\n%s", diff)
	}
	s.wantReadable(t, "after the failure")
	if code := s.enquire(t, "while frozen"); code != http.StatusServiceUnavailable {
		t.Errorf("enquiry while the move is stopped frozen: %d, want 503", code)
	}
	return p, s, m, mv, before
}

// Abort with the target still down restores full service at once; the
// copied rows left on the target are removed by aborting again once it is
// back, and until then no new move may use that target.
func TestMove_TargetStoppedMidCopy_Abort(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, s, m, mv, before := stoppedMidCopy(t)

	_, err := m.Abort(ctx, mv.ID)
	if err == nil || !strings.Contains(err.Error(), "is active on \"default\" again") || !strings.Contains(err.Error(), "pwb sharding abort") {
		t.Fatalf("abort with the target down: %v; want it to say the tenant is active again and to abort again later", err)
	}
	if w := p.website(t); w.Status != registry.StatusActive || w.ShardName != shard.Default {
		t.Errorf("registry after abort: %s on %s, want active on default", w.Status, w.ShardName)
	}
	s.wantReadable(t, "after abort")
	src := shard.Default + "/" + p.site.Subdomain
	if diff := cmp.Diff(before[src], p.digest(t, shard.Default, p.site.ID)); diff != "" {
		t.Errorf("source rows changed by abort (-before +after):\n%s", diff)
	}

	p.start(t, "shard_1")
	if _, err := m.Plan(ctx, p.site.Subdomain, "shard_1", journal.ModeFreeze); !errors.Is(err, journal.ErrRefused) || !strings.Contains(err.Error(), "run `pwb sharding abort") {
		t.Errorf("a new move onto the target with leftovers: %v, want a refusal pointing at abort", err)
	}
	if p.digest(t, "shard_1", p.site.ID).Empty() {
		t.Error("expected the tables committed before the stop to be left on shard_1 until the second abort")
	}
	done, err := m.Abort(ctx, mv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != journal.StateAborted || !done.TargetCleared {
		t.Errorf("journal after the second abort: %+v", done)
	}
	if diff := cmp.Diff(before, p.digests(t)); diff != "" {
		t.Errorf("rows after abort differ from before the move (-before +after):\n%s", diff)
	}
	if code := s.enquire(t, "after abort"); code != http.StatusSeeOther {
		t.Errorf("enquiry after abort: %d, want 303", code)
	}
}

// Resume once the target is back completes the move as if nothing happened.
func TestMove_TargetStoppedMidCopy_Resume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, s, m, mv, before := stoppedMidCopy(t)
	p.start(t, "shard_1")
	done, err := m.Run(ctx, mv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != journal.StateDone {
		t.Errorf("journal after resume: %s", done.State)
	}
	p.wantMoved(t, before, shard.Default, "shard_1")
	s.wantReadable(t, "after resume")
	if code := s.enquire(t, "after resume"); code != http.StatusSeeOther {
		t.Errorf("enquiry after resume: %d, want 303", code)
	}
}
