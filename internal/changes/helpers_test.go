package changes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/propertywebbuilder/pwb/internal/dbq"
	"github.com/propertywebbuilder/pwb/internal/migrations"
	"github.com/propertywebbuilder/pwb/internal/pglocal"
	"github.com/propertywebbuilder/pwb/internal/pglocal/pgtest"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// The tenant that moves, and a neighbour on the same source shard whose
// rows must never reach the target.
const (
	moving    int64 = 101
	neighbour int64 = 202
)

// shards is a source and a target shard, each a migrated tenant database on
// its own server.
type shards struct {
	srcServer      *pglocal.Server
	srcURL, dstURL string
	src, dst       *pgxpool.Pool
}

func newShards(t *testing.T) *shards {
	t.Helper()
	srvs := pgtest.Start(t, 2)
	sh := &shards{srcServer: srvs[0]}
	var wg sync.WaitGroup
	wg.Go(func() { sh.srcURL, sh.src = migratedDB(t, srvs[0], "source") })
	wg.Go(func() { sh.dstURL, sh.dst = migratedDB(t, srvs[1], "target") })
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return sh
}

// migratedDB creates a database with the tenant set on srv. It may run in
// a goroutine of the test: it reports with t.Error.
func migratedDB(t *testing.T, srv *pglocal.Server, name string) (string, *pgxpool.Pool) {
	ctx := context.Background()
	url := pgtest.CreateDatabase(t, srv, name)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Error(err)
		return url, nil
	}
	t.Cleanup(pool.Close)
	if _, err := migrations.Up(ctx, pool, migrations.Tenant); err != nil {
		t.Error(err)
	}
	return url, pool
}

func newPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func mustExec(t testing.TB, q dbq.Querier, sql string, args ...any) {
	t.Helper()
	if _, err := q.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryValue[T any](t testing.TB, q dbq.Querier, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := q.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// bigImage is a photo over 1 MB that does not compress, so PostgreSQL keeps
// it out of line (TOAST) and pgoutput leaves it out of an UPDATE that does
// not change it.
func bigImage(r *rand.Rand) []byte {
	b := make([]byte, 1100<<10)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// seed gives website a few rows in every tenant table, one big photo
// among them.
func seed(t testing.TB, q dbq.Querier, website int64, properties int) {
	t.Helper()
	ctx := context.Background()
	stmts := []string{
		`INSERT INTO agencies (id, website_id, name, email) VALUES (gen_random_uuid(), $1::bigint, 'Agency ' || $1::bigint, 'a@example.com')`,
		`INSERT INTO pages (id, website_id, slug, title, body) SELECT gen_random_uuid(), $1, 'page-' || i, 'Page ' || i, repeat('body ', i) FROM generate_series(1, 3) i`,
		`INSERT INTO properties (id, website_id, slug, title, floor_area_sqm, latitude, longitude, sale_price_cents, sale_currency, for_sale)
			SELECT gen_random_uuid(), $1, 'seed-' || i, 'Seed ' || i, i * 10.25, 51.5 + i / 1000.0, -0.1 - i / 7.0, i * 100000, 'EUR', true
			FROM generate_series(1, ` + fmt.Sprint(properties) + `) i`,
		`INSERT INTO property_features (id, website_id, property_id, name) SELECT gen_random_uuid(), website_id, id, 'Garden' FROM properties WHERE website_id = $1`,
		`INSERT INTO property_photos (id, website_id, property_id, content_type, image)
			SELECT gen_random_uuid(), website_id, id, 'image/png', decode(md5(id::text), 'hex') FROM properties WHERE website_id = $1`,
		`INSERT INTO contacts (id, website_id, email, name) SELECT gen_random_uuid(), $1, 'c' || i || '@example.com', 'Contact ' || i FROM generate_series(1, 3) i`,
		`INSERT INTO messages (id, website_id, contact_id, property_id, body)
			SELECT gen_random_uuid(), c.website_id, c.id, (SELECT id FROM properties WHERE website_id = $1 LIMIT 1), 'Hello from ' || c.name
			FROM contacts c WHERE c.website_id = $1`,
	}
	for _, s := range stmts {
		if _, err := q.Exec(ctx, s, website); err != nil {
			t.Fatalf("seeding website %d: %s: %v", website, s, err)
		}
	}
	r := rand.New(rand.NewPCG(uint64(website), 1))
	if _, err := q.Exec(ctx, `INSERT INTO property_photos (id, website_id, property_id, content_type, image, sort_order)
		SELECT gen_random_uuid(), website_id, id, 'image/jpeg', $2, 9 FROM properties WHERE website_id = $1 LIMIT 1`, website, bigImage(r)); err != nil {
		t.Fatal(err)
	}
}

// digest is a count and checksum of every row of website in every tenant
// table, as q sees them.
func digest(ctx context.Context, q dbq.Querier, website int64) (string, error) {
	var parts []string
	for _, table := range tenant.Tables {
		var n int64
		var h string
		err := q.QueryRow(ctx, `SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY t.id)), '')
			FROM `+pgx.Identifier{table}.Sanitize()+` t WHERE website_id = $1`, website).Scan(&n, &h)
		if err != nil {
			return "", fmt.Errorf("digest of %s: %w", table, err)
		}
		parts = append(parts, fmt.Sprintf("%s=%d/%s", table, n, h[:min(8, len(h))]))
	}
	return strings.Join(parts, " "), nil
}

func mustDigest(t testing.TB, q dbq.Querier, website int64) string {
	t.Helper()
	d, err := digest(context.Background(), q, website)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// atSnapshot runs f in a REPEATABLE READ transaction on url that imported
// snapshot name.
func atSnapshot(t testing.TB, url, name string, f func(tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(name)); err != nil {
		t.Fatalf("importing snapshot %s: %v", name, err)
	}
	f(tx)
}

// copyAt copies website's rows from the source, as of snapshot name, to
// the target: the initial copy of a move.
func (sh *shards) copyAt(t testing.TB, name string, website int64) {
	t.Helper()
	ctx := context.Background()
	atSnapshot(t, sh.srcURL, name, func(src pgx.Tx) {
		dst, err := sh.dst.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Rollback(ctx)
		for _, table := range tenant.Tables {
			var buf bytes.Buffer
			id := pgx.Identifier{table}.Sanitize()
			if _, err := src.Conn().PgConn().CopyTo(ctx, &buf, fmt.Sprintf("COPY (SELECT * FROM %s WHERE website_id = %d) TO STDOUT", id, website)); err != nil {
				t.Fatalf("copying %s out: %v", table, err)
			}
			if _, err := dst.Conn().PgConn().CopyFrom(ctx, &buf, "COPY "+id+" FROM STDIN"); err != nil {
				t.Fatalf("copying %s in: %v", table, err)
			}
		}
		if err := dst.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// prepareMove publishes the moving tenant, creates the move's slot and
// copies the tenant to the target at the slot's snapshot.
func (sh *shards) prepareMove(t testing.TB, moveID int64) *Snapshot {
	t.Helper()
	ctx := context.Background()
	if err := CreatePublication(ctx, sh.src, PublicationName(moveID), tenant.Tables, moving); err != nil {
		t.Fatal(err)
	}
	snap, err := CreateSlot(ctx, sh.srcURL, SlotName(moveID), false)
	if err != nil {
		t.Fatal(err)
	}
	sh.copyAt(t, snap.Name, moving)
	if err := snap.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return snap
}

func (sh *shards) options(moveID int64) StreamOptions {
	return StreamOptions{
		ReplConnString: sh.srcURL,
		Slot:           SlotName(moveID),
		Publication:    PublicationName(moveID),
		MoveID:         moveID,
		WebsiteID:      moving,
		Target:         sh.dst,
		StatusInterval: 300 * time.Millisecond,
	}
}

func (sh *shards) start(t testing.TB, o StreamOptions) *Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

// catchUp emits a marker on the source and waits for the stream to apply
// everything before it.
func (sh *shards) catchUp(t testing.TB, s *Stream, content string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := EmitMarker(ctx, sh.src, s.opts.MarkerPrefix, content); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitMarker(ctx, content); err != nil {
		t.Fatalf("catching up to %s: %v (stats %+v)", content, err, s.Stats())
	}
}

// sameRows fails the test unless the target holds exactly the moving
// tenant's rows of the source, and none of its neighbour's.
func (sh *shards) sameRows(t testing.TB) {
	t.Helper()
	if src, dst := mustDigest(t, sh.src, moving), mustDigest(t, sh.dst, moving); src != dst {
		t.Errorf("target differs from source:\nsource %s\ntarget %s", src, dst)
	}
	for _, table := range tenant.Tables {
		if n := queryValue[int64](t, sh.dst, "SELECT count(*) FROM "+table+" WHERE website_id <> $1", moving); n != 0 {
			t.Errorf("%d rows of another tenant in %s on the target", n, table)
		}
	}
}

// writers write to the source until stop is called: two writers on the
// moving tenant and one on its neighbour, each doing small transactions
// of every kind: inserts, updates (one of a photo's sort order only, which
// leaves a large image out of the change), deletes, and deletes of parents
// that cascade.
type writers struct {
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	committed atomic.Int64
	mu        sync.Mutex
	errs      map[string]int
	// xids of the committed transactions that changed rows of the moving
	// tenant, as txid_current() gives them (with the epoch).
	xids []int64
}

func startWriters(t testing.TB, pool *pgxpool.Pool, seedBase uint64) *writers {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &writers{cancel: cancel, errs: map[string]int{}}
	for i, website := range []int64{moving, moving, neighbour} {
		r := rand.New(rand.NewPCG(seedBase, uint64(i)))
		w.wg.Go(func() { w.run(ctx, pool, website, r) })
	}
	t.Cleanup(w.stop)
	return w
}

// stop stops the writers and waits for them.
func (w *writers) stop() {
	w.cancel()
	w.wg.Wait()
}

func (w *writers) run(stop context.Context, pool *pgxpool.Pool, website int64, r *rand.Rand) {
	// A transaction in flight when the writers stop is finished, so every
	// transaction counted is known to have committed, and no other.
	ctx := context.WithoutCancel(stop)
	for stop.Err() == nil {
		var xid, changed int64
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, "SELECT txid_current()").Scan(&xid); err != nil {
				return err
			}
			for range 1 + r.IntN(3) {
				n, err := writeOne(ctx, tx, website, r)
				if err != nil {
					return err
				}
				changed += n
			}
			return nil
		})
		if err == nil {
			w.committed.Add(1)
			if website == moving && changed > 0 {
				w.mu.Lock()
				w.xids = append(w.xids, xid)
				w.mu.Unlock()
			}
		} else {
			// Two writers of one tenant collide now and then (a photo for a
			// property just deleted); that transaction simply does not happen.
			msg := err.Error()
			w.mu.Lock()
			w.errs[msg[:min(60, len(msg))]]++
			w.mu.Unlock()
		}
		time.Sleep(time.Duration(r.IntN(8000)) * time.Microsecond)
	}
}

// writeOne makes one random change to website and says how many rows it
// changed (cascades not counted).
func writeOne(ctx context.Context, tx pgx.Tx, website int64, r *rand.Rand) (int64, error) {
	randomID := func(table string) (string, bool, error) {
		var id string
		err := tx.QueryRow(ctx, "SELECT id::text FROM "+table+" WHERE website_id = $1 ORDER BY random() LIMIT 1", website).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", false, nil
		}
		return id, err == nil, err
	}
	exec := func(sql string, args ...any) (int64, error) {
		ct, err := tx.Exec(ctx, sql, args...)
		return ct.RowsAffected(), err
	}
	switch op := r.IntN(100); {
	case op < 25: // a new property with features and a photo
		var id string
		if err := tx.QueryRow(ctx, `INSERT INTO properties (id, website_id, slug, title, description, bedrooms, latitude, rent_price_cents_monthly, rent_currency, for_rent)
			VALUES (gen_random_uuid(), $1, 'p-' || md5(random()::text), 'Flat', $2, $3, $4, $5, 'GBP', true) RETURNING id::text`,
			website, strings.Repeat("Lovely. ", r.IntN(50)), r.IntN(6), r.Float64()*80-40, r.Int64N(1e7)).Scan(&id); err != nil {
			return 0, err
		}
		if _, err := exec(`INSERT INTO property_features (id, website_id, property_id, name)
			SELECT gen_random_uuid(), $1, $2, n FROM unnest(ARRAY['Pool', 'Lift', 'Balcony']) n LIMIT $3`, website, id, 1+r.IntN(3)); err != nil {
			return 0, err
		}
		image := []byte(fmt.Sprintf("small photo %d", r.Int()))
		if r.IntN(40) == 0 {
			image = bigImage(r)
		}
		return exec(`INSERT INTO property_photos (id, website_id, property_id, content_type, image, sort_order)
			VALUES (gen_random_uuid(), $1, $2, 'image/webp', $3, $4)`, website, id, image, r.IntN(10))
	case op < 40: // edit a property
		id, ok, err := randomID("properties")
		if !ok {
			return 0, err
		}
		return exec(`UPDATE properties SET title = $3, sale_price_cents = $4, floor_area_sqm = $5, year_built = NULL, updated_at = now()
			WHERE website_id = $1 AND id = $2`, website, id, fmt.Sprintf("Title %d", r.IntN(1000)), r.Int64N(1e9), float64(r.IntN(100000))/100)
	case op < 55: // reorder photos: the image itself is not in the change
		id, ok, err := randomID("property_photos")
		if !ok {
			return 0, err
		}
		return exec(`UPDATE property_photos SET sort_order = sort_order + 1 WHERE website_id = $1 AND id = $2`, website, id)
	case op < 63: // delete a property: features and photos cascade, messages lose it
		id, ok, err := randomID("properties")
		if !ok {
			return 0, err
		}
		return exec(`DELETE FROM properties WHERE website_id = $1 AND id = $2`, website, id)
	case op < 73: // an enquiry: a contact and its message
		var id string
		if err := tx.QueryRow(ctx, `INSERT INTO contacts (id, website_id, email, name, phone)
			VALUES (gen_random_uuid(), $1, md5(random()::text) || '@example.com', 'Jo O''Brien', '') RETURNING id::text`, website).Scan(&id); err != nil {
			return 0, err
		}
		return exec(`INSERT INTO messages (id, website_id, contact_id, property_id, body, sender_name)
			VALUES (gen_random_uuid(), $1, $2, (SELECT id FROM properties WHERE website_id = $1 ORDER BY random() LIMIT 1), $3, 'Jo')`,
			website, id, "Is it still available?\nTabs\tand \\ backslashes, 'quotes' and ünïcödé")
	case op < 78: // delete a contact: its messages cascade
		id, ok, err := randomID("contacts")
		if !ok {
			return 0, err
		}
		return exec(`DELETE FROM contacts WHERE website_id = $1 AND id = $2`, website, id)
	case op < 86: // read a message
		id, ok, err := randomID("messages")
		if !ok {
			return 0, err
		}
		return exec(`UPDATE messages SET read_at = CASE WHEN read_at IS NULL THEN now() END WHERE website_id = $1 AND id = $2`, website, id)
	case op < 93: // edit a page
		return exec(`UPDATE pages SET body = body || $2, updated_at = now()
			WHERE website_id = $1 AND id = (SELECT id FROM pages WHERE website_id = $1 ORDER BY random() LIMIT 1)`, website, fmt.Sprintf(" more %d", r.IntN(100)))
	default: // edit the agency
		return exec(`UPDATE agencies SET phone = $2, updated_at = now() WHERE website_id = $1`, website, fmt.Sprintf("+44 %d", r.Int64N(1e9)))
	}
}

// check fails the test if the writers got nothing done.
func (w *writers) check(t testing.TB, atLeast int64) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.committed.Load(); n < atLeast {
		t.Errorf("writers committed only %d transactions (errors: %v)", n, w.errs)
	}
}
