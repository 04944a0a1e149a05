package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/propertywebbuilder/pwb/internal/dbq"
)

//go:embed global/*.sql tenant/*.sql
var files embed.FS

// Set is one migration set.
type Set struct {
	Name string // "global" or "tenant"
	// Table keeps the set's applied versions.
	Table string
	// lockKey is the second half of the set's advisory lock key.
	lockKey int32
	fsys    fs.FS
}

// Global is the set that runs on primary only.
var Global = mustSet("global", "pwb_global_schema_version", 1)

// Tenant is the set that runs on every shard.
var Tenant = mustSet("tenant", "pwb_tenant_schema_version", 2)

// lockClass is the first half of every migration advisory lock key. The
// two-integer key space never overlaps the single-bigint keys the write fence
// uses for website ids.
const lockClass int32 = 0x707762 // "pwb"

func mustSet(name, table string, lockKey int32) Set {
	sub, err := fs.Sub(files, name)
	if err != nil {
		panic(err)
	}
	return Set{Name: name, Table: table, lockKey: lockKey, fsys: sub}
}

// Versions lists the versions the set ships, ascending.
func (s Set) Versions() []int64 {
	entries, err := fs.ReadDir(s.fsys, ".")
	if err != nil {
		panic(err)
	}
	var vs []int64
	for _, e := range entries {
		n, _, ok := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseInt(n, 10, 64); ok && err == nil && strings.HasSuffix(e.Name(), ".sql") {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs
}

// Latest is the highest version the set ships.
func (s Set) Latest() int64 {
	vs := s.Versions()
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1]
}

// Up applies every pending migration of the set to the database behind pool
// and returns how many it applied. Concurrent callers on the same database
// queue on an advisory lock; the later ones find nothing to do.
func Up(ctx context.Context, pool *pgxpool.Pool, set Set) (int, error) {
	return up(ctx, pool, set, goose.WithSessionLocker(blockingLocker{class: lockClass, key: set.lockKey}))
}

// UpThroughPooler is Up for a database reached through a transaction
// pooler such as PgBouncer, where a session advisory lock would stay on
// whichever server connection took it. Migrators queue on a row of a lock
// table instead, which they keep alive while they run; a migrator that dies
// loses it after 30 seconds.
func UpThroughPooler(ctx context.Context, pool *pgxpool.Pool, set Set) (int, error) {
	locker, err := lock.NewPostgresTableLocker(
		lock.WithTableName(set.Table+"_lock"),
		lock.WithTableLockTimeout(200*time.Millisecond, 1500), // 5 minutes
	)
	if err != nil {
		return 0, fmt.Errorf("%s migrations: %w", set.Name, err)
	}
	return up(ctx, pool, set, goose.WithLocker(locker))
}

func up(ctx context.Context, pool *pgxpool.Pool, set Set, locker goose.ProviderOption) (int, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, set.fsys,
		goose.WithTableName(set.Table),
		locker,
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return 0, fmt.Errorf("loading %s migrations: %w", set.Name, err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		var perr *goose.PartialError
		if errors.As(err, &perr) && perr.Failed != nil {
			return len(perr.Applied), fmt.Errorf("%s migration %s: %w", set.Name, perr.Failed.Source.Path, perr.Err)
		}
		return len(results), fmt.Errorf("%s migrations: %w", set.Name, err)
	}
	return len(results), nil
}

// State is where a database stands against a set.
type State struct {
	Current int64 // highest applied version; 0 when none
	Latest  int64 // highest shipped version
	Pending int   // shipped versions not applied
}

// Status reads the set's version table without creating or changing anything.
func Status(ctx context.Context, q dbq.Reader, set Set) (State, error) {
	st := State{Latest: set.Latest()}
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", set.Table).Scan(&exists); err != nil {
		return st, fmt.Errorf("reading %s schema version: %w", set.Name, err)
	}
	applied := map[int64]bool{}
	if exists {
		rows, err := q.Query(ctx, "SELECT version_id FROM "+pgx.Identifier{set.Table}.Sanitize()+" WHERE is_applied AND version_id > 0")
		if err != nil {
			return st, fmt.Errorf("reading %s schema version: %w", set.Name, err)
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return st, fmt.Errorf("reading %s schema version: %w", set.Name, err)
		}
		for _, v := range versions {
			applied[v] = true
			st.Current = max(st.Current, v)
		}
	}
	for _, v := range set.Versions() {
		if !applied[v] {
			st.Pending++
		}
	}
	return st, nil
}

// blockingLocker serialises migrators on one database with a session-level
// advisory lock. It blocks in the server instead of polling, so a second
// `migrate` continues the moment the first finishes.
type blockingLocker struct {
	class, key int32
}

func (l blockingLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1, $2)", l.class, l.key); err != nil {
		return fmt.Errorf("waiting for the migration lock: %w", err)
	}
	return nil
}

func (l blockingLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1, $2)", l.class, l.key); err != nil {
		return fmt.Errorf("releasing the migration lock: %w", err)
	}
	return nil
}
