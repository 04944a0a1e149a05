package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propertywebbuilder/pwb/internal/jobs"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/registry"
	"github.com/propertywebbuilder/pwb/internal/shard"
)

// purgeRows puts sessions of both kinds and throttle counts on primary,
// some expired an hour ago and some expiring in an hour.
type purgeRows struct {
	e              *env
	userID, siteID int64
	n              int
}

func newPurgeRows(e *env) *purgeRows {
	e.t.Helper()
	ctx := context.Background()
	w, err := registry.Create(ctx, e.primary, registry.New{Subdomain: "purge", Name: "Purge", ShardName: shard.Default})
	if err != nil {
		e.t.Fatal(err)
	}
	url := e.cluster.URL[shard.Default]
	r := &purgeRows{e: e, siteID: w.ID}
	r.userID = pgtest.QueryValue[int64](e.t, url, "INSERT INTO users (email, password_hash) VALUES ('owner@purge.example', 'x') RETURNING id")
	pgtest.Exec(e.t, url, "INSERT INTO memberships (user_id, website_id, role) VALUES ($1, $2, 'owner')", r.userID, r.siteID)
	return r
}

// add inserts, in each of the three tables, the given number of expired
// rows and of live rows.
func (r *purgeRows) add(sessions, platformSessions, throttles [2]int) {
	r.e.t.Helper()
	url := r.e.cluster.URL[shard.Default]
	insert := func(n int, live bool, sql string, args ...any) {
		for range n {
			r.n++
			seconds := -3600
			if live {
				seconds = 3600
			}
			pgtest.Exec(r.e.t, url, sql, append([]any{fmt.Sprintf("row-%d", r.n), seconds}, args...)...)
		}
	}
	const (
		session = `INSERT INTO sessions (token_hash, user_id, website_id, expires_at)
			VALUES (sha256(convert_to($1, 'UTF8')), $3, $4, now() + $2 * interval '1 second')`
		platformSession = `INSERT INTO platform_sessions (token_hash, user_id, expires_at)
			VALUES (sha256(convert_to($1, 'UTF8')), $3, now() + $2 * interval '1 second')`
		count = `INSERT INTO throttles (kind, website_id, subject, count, expires_at)
			VALUES ('enquiry', $3, $1, 1, now() + $2 * interval '1 second')`
	)
	for i, live := range []bool{false, true} {
		insert(sessions[i], live, session, r.userID, r.siteID)
		insert(platformSessions[i], live, platformSession, r.userID)
		insert(throttles[i], live, count, r.siteID)
	}
}

// counts is, per table, how many rows are expired and how many live.
type purgeCounts struct{ Sessions, PlatformSessions, Throttles [2]int }

func (r *purgeRows) counts() purgeCounts {
	r.e.t.Helper()
	url := r.e.cluster.URL[shard.Default]
	of := func(table string) [2]int {
		return [2]int{
			pgtest.QueryValue[int](r.e.t, url, "SELECT count(*)::int FROM "+table+" WHERE expires_at <= now()"),
			pgtest.QueryValue[int](r.e.t, url, "SELECT count(*)::int FROM "+table+" WHERE expires_at > now()"),
		}
	}
	return purgeCounts{of("sessions"), of("platform_sessions"), of("throttles")}
}

// syncBuffer is a log the queue writes from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.b.Reset()
	return s.b.String()
}

// PurgeExpired deletes the expired sessions of both kinds and the expired
// throttle counts, and nothing else; it says so at info level, and at debug
// level only when there was nothing to delete.
func TestPurgeExpired_DeletesOnlyExpiredRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rows := newPurgeRows(e)
	rows.add([2]int{2, 3}, [2]int{1, 2}, [2]int{3, 1})
	var logs syncBuffer
	q := e.queue(queueOptions{Options: jobs.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
	logs.take()

	got, err := q.PurgeExpired(ctx)
	if want := (jobs.Purged{Sessions: 2, PlatformSessions: 1, Throttles: 3}); err != nil || got != want {
		t.Errorf("PurgeExpired = %+v, %v; want %+v", got, err, want)
	}
	if want := (purgeCounts{[2]int{0, 3}, [2]int{0, 2}, [2]int{0, 1}}); rows.counts() != want {
		t.Errorf("rows (expired, live) after the purge: %+v, want %+v", rows.counts(), want)
	}
	if l := logs.take(); !strings.Contains(l, `level=INFO msg="purged expired rows" sessions=2 platform_sessions=1 throttles=3`) {
		t.Errorf("log of a purge that deleted rows:\n%s", l)
	}

	if got, err := q.PurgeExpired(ctx); err != nil || got != (jobs.Purged{}) {
		t.Errorf("PurgeExpired with nothing expired = %+v, %v", got, err)
	}
	if l := logs.take(); !strings.Contains(l, `level=DEBUG msg="purged expired rows"`) || strings.Contains(l, "level=INFO") {
		t.Errorf("log of a purge that deleted nothing:\n%s", l)
	}
}

// A queue that works jobs purges on start, and again every PurgeEvery.
func TestPurgeExpired_RunsPeriodically(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rows := newPurgeRows(e)
	rows.add([2]int{2, 1}, [2]int{2, 1}, [2]int{2, 1})
	var logs syncBuffer
	started := time.Now()
	e.queue(queueOptions{Options: jobs.Options{Work: true, PurgeEvery: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}})

	waitPurged := func(what string, want purgeCounts) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for rows.counts() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: rows (expired, live) %+v, want %+v", what, rows.counts(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitPurged("on start", purgeCounts{[2]int{0, 1}, [2]int{0, 1}, [2]int{0, 1}})
	// Rows that expire later go at a later run, not only at start.
	rows.add([2]int{1, 1}, [2]int{1, 1}, [2]int{1, 1})
	waitPurged("at a later run", purgeCounts{[2]int{0, 2}, [2]int{0, 2}, [2]int{0, 2}})
	// River records a job's completion shortly after it has run.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := pgtest.QueryValue[int](t, e.cluster.URL[shard.Default],
			"SELECT count(*)::int FROM river_job WHERE kind = 'purge_expired' AND state = 'completed'")
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d completed purge jobs, want at least 2", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// River reports its job counts every 5 s while they change, as they do
	// here: once that time has passed, its report would be in the log.
	time.Sleep(time.Until(started.Add(6 * time.Second)))
	l := logs.take()
	if !strings.Contains(l, `level=INFO msg="purged expired rows"`) || !strings.Contains(l, `msg="River client started"`) {
		t.Errorf("the purges and River's start should be in the log:\n%s", l)
	}
	if strings.Contains(l, "Producer job counts") {
		t.Errorf("the job queue's routine report reached the log:\n%s", l)
	}
}
