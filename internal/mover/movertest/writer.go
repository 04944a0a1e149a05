package movertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// Writer keeps writing a tenant's rows while a move runs, the way its site
// would, and remembers what each acknowledged write left, so a test can
// check afterwards that the tenant's shard holds exactly that: every
// acknowledged write once, nothing of a refused one. Its writes insert,
// rename and delete pages, rename properties, and delete contacts, whose
// messages go with them by cascade.
type Writer struct {
	// Write runs fn as one write transaction of the tenant, on whichever
	// shard the tenant is on: it returns nil once the write is committed.
	Write func(ctx context.Context, fn func(tenant.Tx) error) error
	// Pause between two writes. Default 5 ms.
	Pause time.Duration
	// Ambiguous says a refused write may have happened all the same: its
	// server went away while it committed, so its answer was lost. Check
	// then accepts either outcome for refused writes; otherwise a refused
	// write must have left nothing.
	Ambiguous bool

	mu           sync.Mutex
	n            int
	pages        map[string]string // id: title, of the pages the writer made
	gonePages    map[string]bool
	properties   []string
	titles       map[string]string // property id: title last written
	contacts     []string
	goneContacts map[string]bool
	// maybe holds, per page or property id, the titles of refused writes;
	// maybePages counts refused inserts: with Ambiguous, either outcome.
	maybe          map[string][]string
	maybePages     int
	maybeGone      int // refused deletes of the writer's pages
	Acked, Refused int
	// MaxWait is the longest a write took, from asking to its answer.
	MaxWait time.Duration
	// Failures lists the refusals, for the test's report.
	Failures []error
}

// Load reads the tenant's property and contact ids, which the writer edits
// and deletes.
func (w *Writer) Load(ctx context.Context, db dbq.Querier, websiteID int64) error {
	w.pages, w.gonePages, w.titles, w.goneContacts = map[string]string{}, map[string]bool{}, map[string]string{}, map[string]bool{}
	w.maybe = map[string][]string{}
	var err error
	if w.properties, err = ids(ctx, db, "properties", websiteID); err != nil {
		return err
	}
	w.contacts, err = ids(ctx, db, "contacts", websiteID)
	return err
}

func ids(ctx context.Context, db dbq.Querier, table string, websiteID int64) ([]string, error) {
	var out []string
	err := db.QueryRow(ctx, "SELECT COALESCE(array_agg(id::text ORDER BY id), '{}') FROM "+pgx.Identifier{table}.Sanitize()+
		" WHERE website_id = $1", websiteID).Scan(&out)
	if err != nil {
		return nil, fmt.Errorf("reading %s ids: %w", table, err)
	}
	return out, nil
}

// Run writes until ctx ends.
func (w *Writer) Run(ctx context.Context, websiteID int64) {
	pause := w.Pause
	if pause <= 0 {
		pause = 5 * time.Millisecond
	}
	for ctx.Err() == nil {
		w.one(ctx, websiteID)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// one makes the writer's next write. The write itself outlives ctx, which
// only stops the writer between writes: a write cut off as it commits could
// have happened or not, and the test could not tell which.
func (w *Writer) one(stop context.Context, websiteID int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(stop), time.Minute)
	defer cancel()
	w.mu.Lock()
	w.n++
	n := w.n
	var target string
	w.mu.Unlock()
	var fn func(tenant.Tx) error
	var done, refused func()
	switch n % 5 {
	case 0, 1: // a new page
		var id string
		title := fmt.Sprintf("page %d", n)
		fn = func(tx tenant.Tx) error {
			return tx.QueryRow(ctx, `INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, $2, $3)
				RETURNING id::text`, websiteID, fmt.Sprintf("w-%d", n), title).Scan(&id)
		}
		done = func() { w.pages[id] = title }
		refused = func() { w.maybePages++ }
	case 2: // rename or delete one of the writer's pages
		w.mu.Lock()
		for id := range w.pages {
			target = id
			break
		}
		w.mu.Unlock()
		if target == "" {
			return
		}
		if n%2 == 0 {
			fn = func(tx tenant.Tx) error {
				return exactlyOne(tx.Exec(ctx, "DELETE FROM pages WHERE website_id = $1 AND id = $2", websiteID, target))
			}
			done = func() { delete(w.pages, target); w.gonePages[target] = true }
			refused = func() { w.maybeGone++; w.maybe[target] = append(w.maybe[target], "") }
		} else {
			title := fmt.Sprintf("renamed %d", n)
			fn = func(tx tenant.Tx) error {
				return exactlyOne(tx.Exec(ctx, "UPDATE pages SET title = $3 WHERE website_id = $1 AND id = $2", websiteID, target, title))
			}
			done = func() { w.pages[target] = title }
			refused = func() { w.maybe[target] = append(w.maybe[target], title) }
		}
	case 3: // rename a property
		if len(w.properties) == 0 {
			return
		}
		target = w.properties[n%len(w.properties)]
		title := fmt.Sprintf("property title %d", n)
		fn = func(tx tenant.Tx) error {
			return exactlyOne(tx.Exec(ctx, "UPDATE properties SET title = $3, updated_at = now() WHERE website_id = $1 AND id = $2", websiteID, target, title))
		}
		done = func() { w.titles[target] = title }
		refused = func() { w.maybe[target] = append(w.maybe[target], title) }
	case 4: // delete a contact, with its messages
		w.mu.Lock()
		if len(w.contacts) > 0 {
			target, w.contacts = w.contacts[0], w.contacts[1:]
		}
		w.mu.Unlock()
		if target == "" {
			return
		}
		fn = func(tx tenant.Tx) error {
			return exactlyOne(tx.Exec(ctx, "DELETE FROM contacts WHERE website_id = $1 AND id = $2", websiteID, target))
		}
		done = func() { w.goneContacts[target] = true }
	}
	start := time.Now()
	err := w.Write(ctx, fn)
	took := time.Since(start)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.MaxWait = max(w.MaxWait, took)
	if err != nil {
		w.Refused++
		w.Failures = append(w.Failures, err)
		if refused != nil {
			refused()
		}
		return
	}
	w.Acked++
	done()
}

// mayBe reports whether title, found on row id, may be what a refused
// write left.
func (w *Writer) mayBe(id, title string) bool {
	if !w.Ambiguous {
		return false
	}
	for _, t := range w.maybe[id] {
		if t == title {
			return true
		}
	}
	return false
}

func exactlyOne(tag interface{ RowsAffected() int64 }, err error) error {
	if err != nil {
		return err
	}
	if n := tag.RowsAffected(); n != 1 {
		return fmt.Errorf("the write touched %d rows, want 1", n)
	}
	return nil
}

// Check compares the tenant's rows on db with what the acknowledged writes
// left: each page the writer made, with its last title, and no page it
// deleted; each property it renamed with its last title; no contact it
// deleted, nor any of their messages.
func (w *Writer) Check(ctx context.Context, db dbq.Querier, websiteID int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for id, title := range w.pages {
		var got string
		var n int
		if err := db.QueryRow(ctx, "SELECT count(*), COALESCE(max(title), '') FROM pages WHERE website_id = $1 AND id = $2", websiteID, id).Scan(&n, &got); err != nil {
			return err
		}
		if n == 0 && w.mayBe(id, "") {
			continue
		}
		if n != 1 || (got != title && !w.mayBe(id, got)) {
			errs = append(errs, fmt.Errorf("page %s: %d row(s) titled %q, want one titled %q", id, n, got, title))
		}
	}
	var made int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM pages WHERE website_id = $1 AND slug LIKE 'w-%'", websiteID).Scan(&made); err != nil {
		return err
	}
	if extra := made - len(w.pages); extra != 0 && !(w.Ambiguous && extra >= -w.maybeGone && extra <= w.maybePages) {
		errs = append(errs, fmt.Errorf("%d pages of the writer, want %d (its %d acknowledged inserts less its deletes)", made, len(w.pages), len(w.pages)+len(w.gonePages)))
	}
	for id, title := range w.titles {
		var got string
		if err := db.QueryRow(ctx, "SELECT title FROM properties WHERE website_id = $1 AND id = $2", websiteID, id).Scan(&got); err != nil {
			errs = append(errs, fmt.Errorf("property %s: %w", id, err))
		} else if got != title && !w.mayBe(id, got) {
			errs = append(errs, fmt.Errorf("property %s titled %q, want %q", id, got, title))
		}
	}
	for id := range w.goneContacts {
		var n int
		if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM contacts WHERE website_id = $1 AND id = $2) +
			(SELECT count(*) FROM messages WHERE website_id = $1 AND contact_id = $2)`, websiteID, id).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			errs = append(errs, fmt.Errorf("deleted contact %s: %d row(s) of it or its messages remain", id, n))
		}
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more", len(errs)-10))
	}
	return errors.Join(errs...)
}
