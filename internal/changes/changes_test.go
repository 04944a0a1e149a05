package changes

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

func TestNames(t *testing.T) {
	t.Parallel()
	if got := PublicationName(42); got != "pwb_move_42" {
		t.Errorf("PublicationName = %q", got)
	}
	if got := SlotName(42); got != "pwb_move_42" {
		t.Errorf("SlotName = %q", got)
	}
	if got := MarkerPrefix(42); got != "pwb_move_42" {
		t.Errorf("MarkerPrefix = %q", got)
	}
	for name, want := range map[string]int64{"pwb_move_42": 42, "pwb_move_1": 1, "pwb_move_9223372036854775807": 1<<63 - 1} {
		if id, ok := MoveOf(name); !ok || id != want {
			t.Errorf("MoveOf(%q) = %d, %v", name, id, ok)
		}
	}
	for _, name := range []string{"pwb_move_", "pwb_move_0", "pwb_move_042", "pwb_move_-1", "pwb_move_4x", "pwb_move_42_verify", "other_42", "pwb_move_99999999999999999999"} {
		if id, ok := MoveOf(name); ok {
			t.Errorf("MoveOf(%q) = %d, true; want false", name, id)
		}
	}
}

// A move's publication filters rows by website_id; PostgreSQL then checks
// every UPDATE and DELETE on the published tables, whatever the tenant,
// against the replica identity. Migration 00004 is what keeps the shard's
// other tenants writable.
func TestPublication_OtherTenantsKeepWriting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, db := migratedDB(t, pgtest.Start(t, 1)[0], "shard")
	seed(t, db, moving, 3)
	seed(t, db, neighbour, 3)

	pub := PublicationName(7)
	for range 2 { // the second is a no-op
		if err := CreatePublication(ctx, db, pub, tenant.Tables, moving); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Publications(ctx, db); err != nil || !slices.Equal(got, []string{pub}) {
		t.Fatalf("Publications = %v, %v", got, err)
	}
	if got := queryValue[string](t, db, "SELECT pubactions::text FROM (SELECT pubinsert::text || pubupdate::text || pubdelete::text || pubtruncate::text AS pubactions FROM pg_publication WHERE pubname = $1) p", pub); got != "truetruetruefalse" {
		t.Errorf("publication publishes insert/update/delete/truncate = %s", got)
	}
	if n := queryValue[int64](t, db, "SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND rowfilter IS NOT NULL", pub); n != int64(len(tenant.Tables)) {
		t.Errorf("%d tables published with a row filter, want %d", n, len(tenant.Tables))
	}

	for _, table := range tenant.Tables {
		ct, err := db.Exec(ctx, "UPDATE "+table+" SET website_id = website_id WHERE website_id = $1", neighbour)
		if err != nil || ct.RowsAffected() == 0 {
			t.Errorf("neighbour's UPDATE of %s while a move is published: %d rows, %v", table, ct.RowsAffected(), err)
		}
	}
	for _, table := range slices.Backward(tenant.Tables) {
		ct, err := db.Exec(ctx, "DELETE FROM "+table+" WHERE website_id = $1", neighbour)
		if err != nil || ct.RowsAffected() == 0 {
			t.Errorf("neighbour's DELETE from %s while a move is published: %d rows, %v", table, ct.RowsAffected(), err)
		}
	}

	// Without the migration, the replica identity is the primary key alone,
	// which does not hold website_id: every tenant's updates fail.
	mustExec(t, db, "ALTER TABLE pages REPLICA IDENTITY DEFAULT")
	seed(t, db, neighbour, 1)
	for _, stmt := range []string{"UPDATE pages SET title = 'x' WHERE website_id = $1", "DELETE FROM pages WHERE website_id = $1"} {
		_, err := db.Exec(ctx, stmt, neighbour)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || !strings.Contains(pgErr.Detail, "not part of the replica identity") {
			t.Errorf("%s with the primary key as replica identity: %v; want it refused", stmt, err)
		}
	}
	mustExec(t, db, "ALTER TABLE pages REPLICA IDENTITY USING INDEX pages_website_id_id_key")

	for range 2 {
		if err := DropPublication(ctx, db, pub); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Publications(ctx, db); err != nil || len(got) != 0 {
		t.Errorf("after drop, Publications = %v, %v", got, err)
	}
}

// The exported snapshot and the slot split the tenant's history exactly:
// every transaction is either visible in the snapshot (and copied) or
// streamed, never both, never neither, while writers run throughout.
func TestSnapshotThenStream_NoGapNoOverlap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sh := newShards(t)
	seed(t, sh.src, moving, 10)
	seed(t, sh.src, neighbour, 5)
	const move = 1
	if err := CreatePublication(ctx, sh.src, PublicationName(move), tenant.Tables, moving); err != nil {
		t.Fatal(err)
	}
	w := startWriters(t, sh.src, 1)
	time.Sleep(300 * time.Millisecond)

	snap, err := CreateSlot(ctx, sh.srcURL, SlotName(move), false)
	if err != nil {
		t.Fatal(err)
	}
	// Keep a transaction at the snapshot open past the slot's connection:
	// it is how we ask, at the end, which transactions the snapshot sees.
	conn, err := pgx.Connect(ctx, sh.srcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	atSnap, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer atSnap.Rollback(ctx)
	mustExec(t, atSnap, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snap.Name))
	sh.copyAt(t, snap.Name, moving)
	if err := snap.Close(ctx); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	streamed := map[uint32]LSN{}
	o := sh.options(move)
	o.hooks = &hooks{afterCommit: func(ti txnInfo) error {
		mu.Lock()
		defer mu.Unlock()
		if _, again := streamed[ti.xid]; again {
			return fmt.Errorf("transaction %d applied twice", ti.xid)
		}
		streamed[ti.xid] = ti.commit
		return nil
	}}
	s := sh.start(t, o)
	time.Sleep(700 * time.Millisecond)
	// The big photo's image stays out of this change.
	var xid int64
	if err := sh.src.QueryRow(ctx, `WITH u AS (UPDATE property_photos SET sort_order = sort_order + 1
		WHERE website_id = $1 AND octet_length(image) > 1000000 RETURNING 1) SELECT txid_current() FROM u LIMIT 1`, moving).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.xids = append(w.xids, xid)
	w.mu.Unlock()
	time.Sleep(700 * time.Millisecond)
	w.stop()
	w.check(t, 100)
	sh.catchUp(t, s, "writers stopped")
	sh.sameRows(t)

	// Which of the writers' transactions does the snapshot see?
	rows, err := atSnap.Query(ctx, "SELECT x FROM unnest($1::bigint[]) x WHERE pg_visible_in_snapshot(x::text::xid8, pg_current_snapshot())", w.xids)
	if err != nil {
		t.Fatal(err)
	}
	visible, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for _, x := range visible {
		seen[uint32(x)] = true
	}
	mu.Lock()
	defer mu.Unlock()
	var before, after int
	for _, x := range w.xids {
		xid := uint32(x)
		commit, wasStreamed := streamed[xid]
		switch {
		case seen[xid] && wasStreamed:
			t.Errorf("transaction %d is in the snapshot and was streamed too (commit %s, consistent point %s)", xid, commit, snap.Consistent)
		case !seen[xid] && !wasStreamed:
			t.Errorf("transaction %d is neither in the snapshot nor streamed", xid)
		case wasStreamed && commit < snap.Consistent:
			t.Errorf("transaction %d streamed with commit %s before the consistent point %s", xid, commit, snap.Consistent)
		case seen[xid]:
			before++
		default:
			after++
		}
		delete(streamed, xid)
	}
	for xid := range streamed {
		t.Errorf("transaction %d streamed but not written by the moving tenant's writers", xid)
	}
	if before == 0 || after == 0 {
		t.Errorf("%d transactions before the slot and %d after: the writers should straddle it", before, after)
	}
	st := s.Stats()
	if st.Transactions != int64(after) || st.Changes < st.Transactions || st.AppliedLSN <= snap.Consistent || st.LastError != nil {
		t.Errorf("stats %+v, want %d transactions", st, after)
	}
	if s.unchangedToast.Load() == 0 {
		t.Error("no update left an unchanged large value out: the test does not exercise it")
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.LagBytes > 1<<20 || st.LagSeconds != 0 {
		t.Errorf("after catching up, lag %d bytes, %.1fs", st.LagBytes, st.LagSeconds)
	}
	t.Logf("%d transactions copied, %d streamed (%d changes)", before, after, st.Changes)
}

var errKilled = errors.New("killed by the test")

// A stream killed anywhere (mid-transaction, before or after the target
// commit, before the position is confirmed, by the source, by a forced
// stop) and started again neither loses nor repeats a change; the source
// is never told a position the target has not committed.
func TestRestart_NeitherLosesNorRepeats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sh := newShards(t)
	seed(t, sh.src, moving, 10)
	seed(t, sh.src, neighbour, 5)
	w := startWriters(t, sh.src, 2)
	const move = 2
	sh.prepareMove(t, move)

	// Watch the invariant all along: what the slot has confirmed is
	// committed on the target.
	checkCtx, stopCheck := context.WithCancel(ctx)
	var checks sync.WaitGroup
	checks.Go(func() {
		for checkCtx.Err() == nil {
			sh.checkConfirmed(t, move)
			time.Sleep(20 * time.Millisecond)
		}
	})

	kills := []struct {
		name string
		set  func(o *StreamOptions)
		kill func(s *Stream)
	}{
		{"stop", nil, func(s *Stream) { time.Sleep(300 * time.Millisecond); s.Stop(ctx) }},
		{"connection closed mid-transaction", func(o *StreamOptions) {
			o.hooks = &hooks{received: func(n int) error {
				if n >= 40 {
					return errKilled
				}
				return nil
			}}
		}, nil},
		{"before target commit", func(o *StreamOptions) {
			var n int
			o.hooks = &hooks{beforeCommit: func(txnInfo) error {
				if n++; n == 5 {
					return errKilled
				}
				return nil
			}}
		}, nil},
		{"between target commit and confirmation", func(o *StreamOptions) {
			var n int
			o.hooks = &hooks{afterCommit: func(ti txnInfo) error {
				if n++; n < 5 {
					return nil
				}
				// Committed on the target, not yet confirmed to the source.
				if pos := sh.targetPosition(t, move); pos != ti.end {
					t.Errorf("target position %s after committing a transaction ending at %s", pos, ti.end)
				}
				if c := sh.confirmedFlush(t, move); c >= ti.end {
					t.Errorf("slot confirmed %s before the stream let it (transaction ends at %s)", c, ti.end)
				}
				return errKilled
			}}
		}, nil},
		{"walsender terminated on the source", nil, func(s *Stream) {
			time.Sleep(300 * time.Millisecond)
			mustExec(t, sh.src, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1", SlotName(move))
		}},
		{"forced stop", nil, func(s *Stream) {
			time.Sleep(300 * time.Millisecond)
			done, cancel := context.WithCancel(ctx)
			cancel()
			s.Stop(done)
		}},
	}
	for round := range 2 {
		for _, k := range kills {
			o := sh.options(move)
			if k.set != nil {
				k.set(&o)
			}
			before := sh.targetPosition(t, move)
			s := sh.start(t, o)
			if k.kill != nil {
				k.kill(s)
			}
			select {
			case <-s.Done():
			case <-time.After(15 * time.Second):
				t.Fatalf("round %d, %s: the stream did not end (stats %+v)", round, k.name, s.Stats())
			}
			err := s.Err()
			switch k.name {
			case "stop", "forced stop":
				if err != nil {
					t.Errorf("round %d, %s: %v", round, k.name, err)
				}
			case "walsender terminated on the source":
				if err == nil || errors.Is(err, ErrSlotLost) {
					t.Errorf("round %d, %s: err = %v, want the connection's", round, k.name, err)
				}
			default:
				if !errors.Is(err, errKilled) {
					t.Errorf("round %d, %s: err = %v, want the test's kill", round, k.name, err)
				}
			}
			after := sh.targetPosition(t, move)
			sh.checkConfirmed(t, move)
			t.Logf("round %d, %s: position %s -> %s, %d transactions (%v)", round, k.name, before, after, s.Stats().Transactions, err)
		}
	}
	stopCheck()
	checks.Wait()

	s := sh.start(t, sh.options(move))
	w.stop()
	w.check(t, 100)
	sh.catchUp(t, s, "the end")
	sh.sameRows(t)
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	sh.checkConfirmed(t, move)
	if c, p := sh.confirmedFlush(t, move), sh.targetPosition(t, move); c != p {
		t.Errorf("after a clean stop the slot confirmed %s, the target holds %s: the last position should be reported", c, p)
	}
}

// targetPosition is the move's applied position on the target (0: none).
func (sh *shards) targetPosition(t testing.TB, move int64) LSN {
	t.Helper()
	pos, err := appliedPosition(context.Background(), sh.dst, move)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func (sh *shards) confirmedFlush(t testing.TB, move int64) LSN {
	t.Helper()
	lsn, err := ParseLSN(queryValue[string](t, sh.src, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", SlotName(move)))
	if err != nil {
		t.Fatal(err)
	}
	return lsn
}

// checkConfirmed fails the test if the slot confirmed a position the target
// does not hold. The slot is read first: the target's position only grows.
func (sh *shards) checkConfirmed(t testing.TB, move int64) {
	t.Helper()
	c := sh.confirmedFlush(t, move)
	if p := sh.targetPosition(t, move); p != 0 && c > p {
		t.Errorf("slot confirmed %s, but the target holds only %s", c, p)
	}
}

// The verify of a move: hold, take a consistent point with a temporary
// slot, pause there, and compare the source at that snapshot with the
// target, while the writers keep writing.
func TestPauseAt_ConsistentVerifyUnderWrites(t *testing.T) {
	t.Parallel()
	// A temporary slot waits for the writers' transactions in flight: on a
	// loaded machine a verify takes seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sh := newShards(t)
	seed(t, sh.src, moving, 10)
	seed(t, sh.src, neighbour, 5)
	w := startWriters(t, sh.src, 3)
	const move = 3
	main := sh.prepareMove(t, move)
	s := sh.start(t, sh.options(move))

	// Too late for a point the stream has passed.
	sh.catchUp(t, s, "warm")
	if err := s.PauseAt(ctx, main.Consistent); !errors.Is(err, ErrPassed) {
		t.Errorf("PauseAt an applied position: %v, want ErrPassed", err)
	}

	var digests []string
	const verifies = 6
	for i := range verifies {
		time.Sleep(100 * time.Millisecond)
		if err := s.Hold(ctx); err != nil {
			t.Fatal(err)
		}
		tmp, err := CreateSlot(ctx, sh.srcURL, VerifySlotName(move), true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := EmitMarker(ctx, sh.src, MarkerPrefix(move), fmt.Sprint("verify ", i)); err != nil {
			t.Fatal(err)
		}
		if err := s.PauseAt(ctx, tmp.Consistent); err != nil {
			t.Fatal(err)
		}
		var src string
		atSnapshot(t, sh.srcURL, tmp.Name, func(tx pgx.Tx) { src = mustDigest(t, tx, moving) })
		dst := mustDigest(t, sh.dst, moving)
		if src != dst {
			t.Errorf("verify %d at %s: source at the snapshot and paused target differ:\nsource %s\ntarget %s", i, tmp.Consistent, src, dst)
		}
		if st := s.Stats(); st.AppliedLSN >= tmp.Consistent {
			t.Errorf("verify %d: paused at %s with %s applied", i, tmp.Consistent, st.AppliedLSN)
		}
		digests = append(digests, dst)
		s.Resume()
		if err := tmp.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(slices.Compact(slices.Clone(digests))); n < verifies/2 {
		t.Errorf("the tenant hardly changed between verifies: %d distinct states of %d", n, verifies)
	}
	// A temporary slot goes once the server has seen its connection close.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		slots, err := Slots(ctx, sh.src)
		if err != nil {
			t.Fatal(err)
		}
		if len(slots) == 1 && slots[0].Name == SlotName(move) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after closing the verify slots: %+v; want the move's slot only", slots)
			break
		}
	}
	w.stop()
	w.check(t, 100)
	sh.catchUp(t, s, "done")
	sh.sameRows(t)
}

// Deleting a parent cascades on the target already; the source's own
// cascaded deletes that follow find nothing there, which is accepted for
// them only. An update that leaves a large photo alone leaves it alone on
// the target too.
func TestApply_CascadesAndUnchangedLargeValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sh := newShards(t)
	seed(t, sh.src, moving, 3)
	const move = 4
	sh.prepareMove(t, move)
	s := sh.start(t, sh.options(move))

	image := bigImage(rand.New(rand.NewPCG(4, 4)))
	tx, err := sh.src.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var prop, contact string
	if err := tx.QueryRow(ctx, `INSERT INTO properties (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, 'castle', 'Castle') RETURNING id::text`, moving).Scan(&prop); err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO property_features (id, website_id, property_id, name) VALUES (gen_random_uuid(), $1, $2, 'Moat'), (gen_random_uuid(), $1, $2, 'Tower')`, moving, prop)
	mustExec(t, tx, `INSERT INTO property_photos (id, website_id, property_id, content_type, image) VALUES (gen_random_uuid(), $1, $2, 'image/jpeg', $3)`, moving, prop, image)
	if err := tx.QueryRow(ctx, `INSERT INTO contacts (id, website_id, email) VALUES (gen_random_uuid(), $1, 'knight@example.com') RETURNING id::text`, moving).Scan(&contact); err != nil {
		t.Fatal(err)
	}
	mustExec(t, tx, `INSERT INTO messages (id, website_id, contact_id, property_id, body) VALUES (gen_random_uuid(), $1, $2, $3, 'Drawbridge?'), (gen_random_uuid(), $1, $2, NULL, 'Dragons?')`, moving, contact, prop)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	sh.catchUp(t, s, "inserted")
	sh.sameRows(t)

	mustExec(t, sh.src, `UPDATE property_photos SET sort_order = 5 WHERE website_id = $1 AND property_id = $2`, moving, prop)
	sh.catchUp(t, s, "reordered")
	if s.unchangedToast.Load() == 0 {
		t.Error("the photo update carried the image: the test does not exercise an unchanged large value")
	}
	if got := queryValue[string](t, sh.dst, `SELECT md5(image) || ' ' || sort_order FROM property_photos WHERE website_id = $1 AND property_id = $2`, moving, prop); got != md5hex(t, sh.src, image)+" 5" {
		t.Errorf("target photo after the reorder: %s", got)
	}

	// The property's features and photo cascade; its message keeps going
	// without it. Then the contact, whose messages cascade.
	mustExec(t, sh.src, `DELETE FROM properties WHERE website_id = $1 AND id = $2`, moving, prop)
	mustExec(t, sh.src, `DELETE FROM contacts WHERE website_id = $1 AND id = $2`, moving, contact)
	// Children first, then the parent, in one transaction: nothing cascades.
	mustExec(t, sh.src, `WITH f AS (DELETE FROM property_features WHERE website_id = $1), p AS (DELETE FROM property_photos WHERE website_id = $1)
		DELETE FROM properties WHERE website_id = $1 AND slug = 'seed-1'`, moving)
	sh.catchUp(t, s, "deleted")
	sh.sameRows(t)
	if n := queryValue[int64](t, sh.dst, "SELECT count(*) FROM property_photos WHERE website_id = $1", moving); n != 0 {
		t.Errorf("%d photos left on the target", n)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

func md5hex(t testing.TB, q dbq.Querier, b []byte) string {
	return queryValue[string](t, q, "SELECT md5($1::bytea)", b)
}

// A target that no longer holds a row the source changes fails the stream,
// saying which row, where; once repaired, the stream resumes.
func TestApply_MissingRowFailsTheStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sh := newShards(t)
	seed(t, sh.src, moving, 3)
	const move = 5
	sh.prepareMove(t, move)
	s := sh.start(t, sh.options(move))
	sh.catchUp(t, s, "started")

	id := queryValue[string](t, sh.src, "SELECT id::text FROM pages WHERE website_id = $1 ORDER BY slug LIMIT 1", moving)
	saved := queryValue[string](t, sh.dst, "SELECT row_to_json(p)::text FROM pages p WHERE id = $1", id)
	mustExec(t, sh.dst, "DELETE FROM pages WHERE id = $1", id)
	mustExec(t, sh.src, "UPDATE pages SET title = 'Renamed' WHERE website_id = $1 AND id = $2", moving, id)
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not fail")
	}
	err := s.Err()
	for _, want := range []string{"UPDATE of public.pages", fmt.Sprintf("(id, website_id) = (%s, %d)", id, moving), "matched 0 rows", " at 0/"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v; want it to say %q", err, want)
		}
	}
	if errors.Is(err, ErrSlotLost) {
		t.Errorf("a target error reported as a lost slot: %v", err)
	}
	if st := s.Stats(); st.LastError == nil {
		t.Errorf("stats without the error: %+v", st)
	}
	if err := s.WaitMarker(ctx, "never"); err == nil {
		t.Error("WaitMarker on a failed stream returned nil")
	}

	// Put the row back as it was: the update applies on the next start.
	mustExec(t, sh.dst, "INSERT INTO pages SELECT * FROM json_populate_record(NULL::pages, $1::json)", saved)
	s = sh.start(t, sh.options(move))
	sh.catchUp(t, s, "repaired")
	sh.sameRows(t)

	// A DELETE that finds nothing fails too when no parent delete explains it.
	feature := queryValue[string](t, sh.src, "SELECT id::text FROM property_features WHERE website_id = $1 LIMIT 1", moving)
	mustExec(t, sh.dst, "DELETE FROM property_features WHERE id = $1", feature)
	mustExec(t, sh.src, "DELETE FROM property_features WHERE id = $1", feature)
	<-s.Done()
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "DELETE from public.property_features") {
		t.Errorf("a DELETE of a missing row: %v", err)
	}

	if err := ForgetPosition(ctx, sh.dst, move); err != nil {
		t.Fatal(err)
	}
	if pos := sh.targetPosition(t, move); pos != 0 {
		t.Errorf("position %s after ForgetPosition", pos)
	}
}

// DropSlot ends whatever holds the slot, a live stream or one whose mover
// died without the server noticing; Slots reports the WAL a slot keeps.
func TestSlots_RetainedWALAndDropActive(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	srv := pgtest.Start(t, 1)[0]
	url, db := migratedDB(t, srv, "source")
	_, target := migratedDB(t, srv, "target")
	seed(t, db, moving, 2)
	for _, move := range []int64{8, 9} {
		if err := CreatePublication(ctx, db, PublicationName(move), tenant.Tables, moving); err != nil {
			t.Fatal(err)
		}
		snap, err := CreateSlot(ctx, url, SlotName(move), false)
		if err != nil {
			t.Fatal(err)
		}
		snap.Close(ctx)
	}
	slots, err := Slots(ctx, db)
	if err != nil || len(slots) != 2 {
		t.Fatalf("Slots = %+v, %v", slots, err)
	}
	first := slots[0]
	if first.Name != SlotName(8) || first.Database != "source" || first.Active || first.Temporary || first.WALStatus != "reserved" || first.ConfirmedFlush == 0 {
		t.Errorf("slot %+v", first)
	}
	mustExec(t, db, "INSERT INTO pages (id, website_id, slug, title, body) SELECT gen_random_uuid(), $1, 'bulk-' || i, 'Bulk', repeat('x', 1000) FROM generate_series(1, 2000) i", neighbour)
	slots, _ = Slots(ctx, db)
	if slots[0].RetainedBytes < first.RetainedBytes+1_000_000 {
		t.Errorf("retained WAL %d -> %d bytes after writing about 2 MB", first.RetainedBytes, slots[0].RetainedBytes)
	}

	// A stream whose network went silent: the server still thinks it is
	// there, and the slot stays active.
	proxy := pgtest.NewStallProxy(t, fmt.Sprintf("127.0.0.1:%d", srv.Port()))
	o := StreamOptions{
		ReplConnString: strings.Replace(url, fmt.Sprintf(":%d/", srv.Port()), fmt.Sprintf(":%d/", proxy.Port()), 1),
		Slot:           SlotName(8), Publication: PublicationName(8), MoveID: 8, WebsiteID: moving, Target: target,
		StatusInterval: 300 * time.Millisecond,
	}
	stalled, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Stop(ctx)
	proxy.Stall()
	// A live one.
	o = StreamOptions{ReplConnString: url, Slot: SlotName(9), Publication: PublicationName(9), MoveID: 9, WebsiteID: moving, Target: target}
	live, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Stop(ctx)
	slots, _ = Slots(ctx, db)
	for _, s := range slots {
		if !s.Active || s.ActivePID == 0 {
			t.Errorf("slot %s not active while streamed: %+v", s.Name, s)
		}
	}
	for _, move := range []int64{8, 9} {
		if err := DropSlot(ctx, db, SlotName(move)); err != nil {
			t.Fatalf("dropping an active slot: %v", err)
		}
	}
	if slots, err := Slots(ctx, db); err != nil || len(slots) != 0 {
		t.Errorf("after DropSlot: %+v, %v", slots, err)
	}
	select {
	case <-live.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the live stream did not notice its slot was dropped")
	}
	if err := live.Err(); err == nil || !strings.Contains(err.Error(), "replication connection") {
		t.Errorf("stream whose slot was dropped: %v", err)
	}
	if err := DropSlot(ctx, db, SlotName(9)); err != nil {
		t.Errorf("dropping a missing slot: %v", err)
	}
	// The stalled stream gave up on its own: the source stopped answering.
	select {
	case <-stalled.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled stream did not notice the source went silent")
	}
	if err := stalled.Err(); err == nil || !strings.Contains(err.Error(), "has not answered") {
		t.Errorf("stalled stream: %v", err)
	}
}

// A slot that fell further behind than max_slot_wal_keep_size is
// invalidated; starting it says so recognisably.
func TestStart_LostSlot(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	srv := pgtest.Start(t, 1)[0]
	url, db := migratedDB(t, srv, "source")
	_, target := migratedDB(t, srv, "target")
	mustExec(t, db, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
	mustExec(t, db, "SELECT pg_reload_conf()")
	const move = 10
	if err := CreatePublication(ctx, db, PublicationName(move), tenant.Tables, moving); err != nil {
		t.Fatal(err)
	}
	snap, err := CreateSlot(ctx, url, SlotName(move), false)
	if err != nil {
		t.Fatal(err)
	}
	snap.Close(ctx)
	for deadline := time.Now().Add(20 * time.Second); ; {
		for range 3 {
			mustExec(t, db, "INSERT INTO pages (id, website_id, slug, title) VALUES (gen_random_uuid(), $1, md5(random()::text), 'x')", neighbour)
			mustExec(t, db, "SELECT pg_switch_wal()")
		}
		mustExec(t, db, "CHECKPOINT")
		slots, err := Slots(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(slots) == 1 && slots[0].WALStatus == "lost" {
			if slots[0].RetainedBytes != 0 {
				t.Errorf("lost slot retains %d bytes", slots[0].RetainedBytes)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not invalidated: %+v", slots)
		}
	}
	_, err = Start(ctx, StreamOptions{ReplConnString: url, Slot: SlotName(move), Publication: PublicationName(move), MoveID: move, WebsiteID: moving, Target: target})
	if !errors.Is(err, ErrSlotLost) {
		t.Fatalf("starting a lost slot: %v, want ErrSlotLost", err)
	}
	t.Log(err)
}

func TestSupported(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var logical, replica []string
	var wg sync.WaitGroup
	wg.Go(func() {
		srv := pgtest.Start(t, 1)[0]
		logical = []string{pgtest.CreateDatabase(t, srv, "shard"), fmt.Sprint(srv.Port())}
	})
	wg.Go(func() {
		srv := pgtest.Start(t, 1, pgtest.Options{WalLevel: "replica"})[0]
		replica = []string{pgtest.CreateDatabase(t, srv, "shard")}
	})
	wg.Wait()
	url := logical[0]
	db := newPool(t, url)
	if got := queryValue[string](t, db, "SHOW wal_level"); got != "logical" {
		t.Errorf("a pglocal server runs with wal_level %s, want logical by default", got)
	}
	check := func(name string, q dbq.Querier, repl string, want string) {
		t.Helper()
		ok, reason, err := Supported(ctx, q, repl, "s1")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if want == "" {
			if !ok || reason != "" {
				t.Errorf("%s: not supported: %s", name, reason)
			}
			return
		}
		if ok || !strings.Contains(reason, want) || strings.Contains(reason, "\n") {
			t.Errorf("%s: ok %v, reason %q; want a line with %q", name, ok, reason, want)
		}
		t.Logf("%s: %s", name, reason)
	}
	check("logical", db, url, "")
	check("replica", newPool(t, replica[0]), replica[0], `wal_level is replica on shard "s1"; set wal_level = logical and restart it`)

	mustExec(t, db, "CREATE ROLE plain LOGIN")
	plainURL := strings.Replace(url, "//pwb@", "//plain@", 1)
	check("role without REPLICATION", newPool(t, plainURL), plainURL, `role "plain" on shard "s1" has neither REPLICATION nor superuser; run ALTER ROLE "plain" REPLICATION`)
	check("replication connection refused", db, plainURL, `cannot open a replication connection to shard "s1"`)
	port, err := pglocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	check("nothing listening", db, strings.Replace(url, ":"+logical[1]+"/", fmt.Sprintf(":%d/", port), 1), `cannot open a replication connection to shard "s1"`)

	mustExec(t, db, "SELECT pg_create_physical_replication_slot('fill_' || i) FROM generate_series(1, 9) i")
	check("slots", db, url, `9 of 10 replication slots are in use on shard "s1" and an online move needs 2 free`)
	mustExec(t, db, "SELECT pg_drop_replication_slot('fill_' || i) FROM generate_series(1, 9) i")

	for range 9 {
		conn, err := replConnect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer closeConn(conn)
	}
	check("wal senders", db, url, `9 of 10 WAL senders are in use on shard "s1"`)
}

// A marker reaches the stream as soon as it is written: the source sends
// only flushed WAL, and PostgreSQL 15 leaves a logical message to the WAL
// writer. Inside a transaction that holds the tenant's lock, as at a
// cut-over, FlushWAL from another connection does it.
func TestMarkers_FlushedAtOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sh := newShards(t)
	seed(t, sh.src, moving, 2)
	const move = 6
	sh.prepareMove(t, move)
	s := sh.start(t, sh.options(move))
	flushed := func() LSN {
		lsn, err := ParseLSN(queryValue[string](t, sh.src, "SELECT pg_current_wal_flush_lsn()::text"))
		if err != nil {
			t.Fatal(err)
		}
		return lsn
	}

	for i := range 3 {
		lsn, err := EmitMarker(ctx, sh.src, MarkerPrefix(move), fmt.Sprint("pooled ", i))
		if err != nil {
			t.Fatal(err)
		}
		if f := flushed(); f < lsn {
			t.Errorf("marker at %s, WAL flushed to %s only", lsn, f)
		}
		if err := s.WaitMarker(ctx, fmt.Sprint("pooled ", i)); err != nil {
			t.Fatal(err)
		}
	}

	tx, err := sh.src.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	mustExec(t, tx, "SELECT id FROM agencies WHERE website_id = $1 FOR UPDATE", moving)
	lsn, err := EmitMarker(ctx, tx, MarkerPrefix(move), "in a transaction")
	if err != nil {
		t.Fatal(err)
	}
	if err := FlushWAL(ctx, sh.src); err != nil {
		t.Fatal(err)
	}
	if f := flushed(); f < lsn {
		t.Errorf("marker at %s, WAL flushed to %s only after FlushWAL", lsn, f)
	}
	if err := s.WaitMarker(ctx, "in a transaction"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// Without FlushWAL the marker waits for something else to flush the
	// WAL, which may take seconds; a stream given the source's pool flushes
	// while WaitMarker waits.
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	o := sh.options(move)
	o.Source = sh.src
	s = sh.start(t, o)
	tx, err = sh.src.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	mustExec(t, tx, "SELECT id FROM agencies WHERE website_id = $1 FOR UPDATE", moving)
	if _, err := EmitMarker(ctx, tx, MarkerPrefix(move), "flushed by the stream"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	defer wcancel()
	if err := s.WaitMarker(wctx, "flushed by the stream"); err != nil {
		t.Fatalf("a marker emitted in a transaction, with the stream's Source set: %v", err)
	}
	tx.Rollback(ctx)
	// Other prefixes (FlushWAL's own message, other moves) are not markers.
	if _, err := EmitMarker(ctx, sh.src, MarkerPrefix(move+1), "someone else's"); err != nil {
		t.Fatal(err)
	}
	sh.catchUp(t, s, "last")
	wctx, wcancel = context.WithTimeout(ctx, 300*time.Millisecond)
	defer wcancel()
	if err := s.WaitMarker(wctx, "someone else's"); err == nil {
		t.Error("a marker of another move reached this stream")
	}
}

// Publications come and go while the shard's other tenants write to the
// tables they publish: no write fails. (A tenant write once failed with
// "cache lookup failed for publication" while a move's publication was
// dropped; this test has not caught that race with a plain DROP, but it
// guards the drop that takes the tables away first.)
func TestPublication_CreatedAndDroppedUnderWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, db := migratedDB(t, pgtest.Start(t, 1)[0], "shard")
	seed(t, db, moving, 3)
	seed(t, db, neighbour, 20)
	stop := make(chan struct{})
	var failures []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A row of its own each, so writers never wait on each other.
				_, err := db.Exec(ctx, `UPDATE properties SET title = title || '' WHERE website_id = $1
					AND id = (SELECT id FROM properties WHERE website_id = $1 ORDER BY id OFFSET $2 LIMIT 1)`, neighbour, i)
				if err == nil {
					_, err = db.Exec(ctx, `DELETE FROM property_features WHERE website_id = $1
						AND id = (SELECT id FROM property_features WHERE website_id = $1 ORDER BY id OFFSET $2 LIMIT 1)`, neighbour, i)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range 40 {
		pub := PublicationName(int64(100 + i))
		if err := CreatePublication(ctx, db, pub, tenant.Tables, moving); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if err := DropPublication(ctx, db, pub); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d write(s) of another tenant failed while publications came and went, the first: %v", len(failures), failures[0])
	}
}
