package web

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/account"
	"github.com/propertywebbuilder/pwb/internal/changes"
	"github.com/propertywebbuilder/pwb/internal/config"
	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/fault"
	"github.com/propertywebbuilder/pwb/internal/journal"
	"github.com/propertywebbuilder/pwb/internal/mover"
	"github.com/propertywebbuilder/pwb/internal/mover/movertest"
	"github.com/propertywebbuilder/pwb/internal/moves"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
	"github.com/propertywebbuilder/pwb/internal/sharding"
	"github.com/propertywebbuilder/pwb/internal/tenant"
	"github.com/propertywebbuilder/pwb/internal/throttle"
)

// kindStatus is the status classify gives each error kind; an error of no
// kind is a 500.
var kindStatus = map[error]int{
	fault.NotFound:    http.StatusNotFound,
	fault.Conflict:    http.StatusConflict,
	fault.Invalid:     http.StatusUnprocessableEntity,
	fault.Refused:     http.StatusConflict,
	fault.Unavailable: http.StatusServiceUnavailable,
	nil:               http.StatusInternalServerError,
}

// sentinels is every exported sentinel error under internal, with its kind.
// TestClassify_EverySentinelByItsKind fails on a sentinel missing here, so
// a new one is given a kind, or a reason to have none, when it is added.
var sentinels = []struct {
	name string
	err  error
	kind error
}{
	// No kind: the sign-in pages answer these themselves (401, a redirect
	// to sign in, 403).
	{"account.ErrBadCredentials", account.ErrBadCredentials, nil},
	{"account.ErrNoSession", account.ErrNoSession, nil},
	{"account.ErrNotSuperAdmin", account.ErrNotSuperAdmin, nil},
	{"account.ErrInvalid", account.ErrInvalid, fault.Invalid},
	{"account.ErrConflict", account.ErrConflict, fault.Conflict},
	{"account.ErrNotFound", account.ErrNotFound, fault.NotFound},
	// No kind: failures inside a move, for the mover and its operator.
	{"changes.ErrSlotLost", changes.ErrSlotLost, nil},
	{"changes.ErrPassed", changes.ErrPassed, nil},
	// No kind: a broken configuration stops a command before it serves.
	{"config.ErrConfig", config.ErrConfig, nil},
	{"content.ErrNotFound", content.ErrNotFound, fault.NotFound},
	{"content.ErrConflict", content.ErrConflict, fault.Conflict},
	{"content.ErrInvalid", content.ErrInvalid, fault.Invalid},
	{"journal.ErrNotFound", journal.ErrNotFound, fault.NotFound},
	{"journal.ErrRefused", journal.ErrRefused, fault.Refused},
	{"journal.ErrMoveInProgress", journal.ErrMoveInProgress, fault.Conflict},
	{"journal.ErrUnfinishedNow", journal.ErrUnfinishedNow, fault.Conflict},
	{"mover.ErrBusy", mover.ErrBusy, fault.Conflict},
	{"moves.ErrNoQueue", moves.ErrNoQueue, fault.Unavailable},
	// No kind: the local platform's set-up, never met while serving.
	{"pglocal.ErrNoBinaries", pglocal.ErrNoBinaries, nil},
	{"registry.ErrNotFound", registry.ErrNotFound, fault.NotFound},
	{"registry.ErrConflict", registry.ErrConflict, fault.Conflict},
	{"registry.ErrInvalid", registry.ErrInvalid, fault.Invalid},
	{"shard.ErrNotConfigured", shard.ErrNotConfigured, fault.NotFound},
	{"shard.ErrClosed", shard.ErrClosed, fault.Unavailable},
	{"shard.ErrBusy", shard.ErrBusy, fault.Unavailable},
	{"sharding.ErrRefused", sharding.ErrRefused, fault.Refused},
	{"tenant.ErrShardMissing", tenant.ErrShardMissing, fault.Unavailable},
	{"tenant.ErrWritesPaused", tenant.ErrWritesPaused, fault.Unavailable},
	{"tenant.ErrMoved", tenant.ErrMoved, fault.Unavailable},
	{"throttle.ErrNotFound", throttle.ErrNotFound, fault.NotFound},
}

// exportedSentinels names every exported package-level Err* variable in the
// non-test sources under root, as package.Name.
func exportedSentinels(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					if n.IsExported() && strings.HasPrefix(n.Name, "Err") {
						names = append(names, f.Name.Name+"."+n.Name)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Every sentinel is of the kind the table says, and classify gives it, bare
// or wrapped, the status of that kind: one switch decides for all packages.
func TestClassify_EverySentinelByItsKind(t *testing.T) {
	var listed []string
	for _, s := range sentinels {
		listed = append(listed, s.name)
		if got := fault.KindOf(s.err); got != s.kind {
			t.Errorf("%s is of kind %v, want %v", s.name, got, s.kind)
		}
		for _, err := range []error{s.err, fmt.Errorf("doing something: %w", s.err)} {
			if got := classify(err).status; got != kindStatus[s.kind] {
				t.Errorf("classify(%q) = %d, want %d (%s is of kind %v)", err, got, kindStatus[s.kind], s.name, s.kind)
			}
		}
	}
	found := exportedSentinels(t, "..")
	for _, name := range found {
		if !slices.Contains(listed, name) {
			t.Errorf("%s is not in sentinels: give it a fault kind (fault.New) and a line there", name)
		}
	}
	for _, name := range listed {
		if !slices.Contains(found, name) {
			t.Errorf("sentinels lists %s, which no longer exists", name)
		}
	}
}

// The kinds' special pages keep what they showed before there were kinds.
func TestClassify_KeepsTheSpecialPages(t *testing.T) {
	invalid := &content.InvalidError{Fields: map[string]string{"title": "Title is required."}}
	if he := classify(fmt.Errorf("saving: %w", invalid)); he.status != http.StatusUnprocessableEntity || !strings.Contains(he.message, "Title is required.") {
		t.Errorf("invalid fields: %d %q, want 422 naming the field", he.status, he.message)
	}
	moved := &tenant.MovedError{WebsiteID: 1, From: "default", To: "shard_1"}
	if he := classify(moved); he.status != http.StatusServiceUnavailable || he.title != errWritesPaused.title {
		t.Errorf("writes paused: %d %q, want 503 %q", he.status, he.title, errWritesPaused.title)
	}
	if he := classify(fmt.Errorf("shard %q: %w", "shard_1", shard.ErrBusy)); he.title != errUnavailable.title {
		t.Errorf("no connection free: %q, want %q", he.title, errUnavailable.title)
	}
	tooBig := &http.MaxBytesError{Limit: 16}
	if he := classify(fmt.Errorf("reading the form: %w", tooBig)); he.status != http.StatusRequestEntityTooLarge {
		t.Errorf("body too large: %d, want 413", he.status)
	}
	if he := classify(fmt.Errorf("reading: %w", context.DeadlineExceeded)); he.status != http.StatusServiceUnavailable {
		t.Errorf("a database that does not answer: %d, want 503", he.status)
	}
	// A refusal says why: its reasons are written for the operator.
	refused := journal.Refusal(journal.UnfinishedError(journal.Move{ID: 7, WebsiteID: 3, Subdomain: "acme"}))
	if he := classify(refused); he.status != http.StatusConflict || !strings.Contains(he.message, "move 7 of tenant 3 (acme)") {
		t.Errorf("a refusal: %d %q, want 409 with its reason", he.status, he.message)
	}
	if he := classify(errors.New("disk full")); he.status != http.StatusInternalServerError || strings.Contains(he.message, "disk full") {
		t.Errorf("an error of no kind: %d %q, want 500 that hides the cause", he.status, he.message)
	}
}

// A conflict from each package that the web can meet is a 409 page, and
// changes nothing: a page slug and a property reference already taken
// (content), a tenant with an unfinished move (journal), and a move that
// another process is running. The registry's and accounts' conflicts have
// no form on the web; TestClassify_EverySentinelByItsKind covers them.
func TestConflicts_AreA409PageFromEveryPackage(t *testing.T) {
	t.Parallel()
	p := newPlatform(t, platformOptions{shards: 1, jobs: true})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", p.log.String())
		}
	})
	ctx := context.Background()
	acme, bravo, charlie := p.tenant("acme", shard.Default), p.tenant("bravo", shard.Default), p.tenant("charlie", shard.Default)
	for _, w := range []registry.Website{bravo, charlie} {
		if err := movertest.Fill(ctx, p.primary, w.ID, movertest.Options{Properties: 4, Photos: 1}); err != nil {
			t.Fatal(err)
		}
	}
	want409 := func(what string, r response, text ...string) {
		t.Helper()
		paWantStatus(t, what, r, http.StatusConflict, text...)
		if !strings.Contains(r.Body, "</html>") {
			t.Errorf("%s: the 409 is not a page:\n%s", what, excerpt(r.Body))
		}
	}

	t.Run("content: a page address and a property reference taken", func(t *testing.T) {
		const host = "acme.localhost"
		sc := p.scope(acme)
		if _, err := content.CreatePage(ctx, sc, content.PageInput{Title: "About us", Slug: "about-us"}); err != nil {
			t.Fatal(err)
		}
		if _, err := content.CreateProperty(ctx, sc, content.PropertyInput{Reference: "REF-1", Title: "Harbour loft"}); err != nil {
			t.Fatal(err)
		}
		email, password := p.member(acme, "owner@acme.example")
		cookie := saSignIn(t, p, host, email, password)
		db := p.cluster.URL[shard.Default]
		before := saCount(t, db, acme.ID)

		want409("page slug", p.postForm(host, "/site_admin/pages", url.Values{"title": {"Another"}, "slug": {"about-us"}}, cookie),
			"That address is already used by another page.")
		fields := saPropertyFields("Sea view")
		fields.Set("reference", "REF-1")
		want409("property reference", saPostMultipart(t, p, host, "/site_admin/properties", cookie, fields),
			"That reference is already used by another property.")
		saWantSameCounts(t, "conflicts", before, saCount(t, db, acme.ID))
	})

	cookie, csrf := p.superAdmin("ops@example.com")
	post := func(path string, form url.Values) response {
		form.Set(opsCSRFField, csrf)
		return p.postForm("localhost", path, form, cookie)
	}

	t.Run("journal: a tenant with an unfinished move", func(t *testing.T) {
		mv, err := mover.New(p.set, mover.Options{})
		if err != nil {
			t.Fatal(err)
		}
		planned := paPlanMove(t, mv, bravo, "shard_1")
		before := paSnapshot(t, p)
		want409("second move", post("/admin/tenants/"+strconv.FormatInt(bravo.ID, 10)+"/migrate", url.Values{"target": {"shard_1"}}),
			"The move was refused, and nothing was changed", "tenant already has an unfinished move", fmt.Sprintf("move %d of tenant %d", planned, bravo.ID))
		paWantUnchanged(t, p, "second move", before)
	})

	t.Run("a move another process is running", func(t *testing.T) {
		reached, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		runner, err := mover.New(p.set, mover.Options{CleanupDelay: mover.NoCleanupDelay, Pause: func(point string) {
			if point != string(journal.StatePlanned) { // Start's pause; Run's first one holds the move
				once.Do(func() { close(reached); <-release })
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		plan, err := runner.Plan(ctx, "charlie", "shard_1", journal.ModeFreeze)
		if err != nil {
			t.Fatal(err)
		}
		id, err := runner.Start(ctx, plan, "test")
		if err != nil {
			t.Fatal(err)
		}
		var runErr error
		ran := make(chan struct{})
		go func() {
			_, runErr = runner.Run(ctx, id)
			close(ran)
		}()
		defer func() {
			// However the test ends, the move finishes before the platform
			// stops.
			close(release)
			<-ran
			if runErr != nil {
				t.Errorf("the move held for the test: %v", runErr)
			}
		}()
		select {
		case <-reached:
		case <-ran:
			t.Fatalf("the move ended before it could be held: %v", runErr)
		case <-time.After(30 * time.Second):
			t.Fatal("the move did not reach its first step in 30s")
		}
		before := paSnapshot(t, p)
		want409("resume of a running move", post("/admin/moves/"+strconv.FormatInt(id, 10)+"/resume", url.Values{}),
			"Refused, and nothing was changed", fmt.Sprintf("move %d is running", id))
		paWantUnchanged(t, p, "resume of a running move", before)
	})
}
