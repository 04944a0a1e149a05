package migrations

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// The background job queue (River) keeps its tables on primary beside the
// global set. Its migrations ship with the library; they run right after the
// global set's, under an advisory lock of their own, and count as pending
// global migrations until they have.
const riverLockKey int32 = 3

// RiverUp applies River's pending migrations to primary and returns how many
// it applied.
func RiverUp(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return 0, fmt.Errorf("loading job queue migrations: %w", err)
	}
	// One transaction per version: a version that adds an enum value must
	// commit before the next uses it. Each holds a transaction lock, which
	// also works through a transaction pooler.
	applied := 0
	for {
		n := 0
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, $2)", lockClass, riverLockKey); err != nil {
				return err
			}
			// MigrateTx is deprecated because several versions in one
			// transaction can fail; here each transaction holds one.
			//lint:ignore SA1019 one version per transaction, under our lock
			res, err := m.MigrateTx(ctx, tx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{MaxSteps: 1})
			if err != nil {
				return err
			}
			n = len(res.Versions)
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("job queue migrations: %w", err)
		}
		if n == 0 {
			return applied, nil
		}
		applied += n
	}
}

// RiverStatus reads where primary stands against River's migrations,
// changing nothing.
func RiverStatus(ctx context.Context, pool *pgxpool.Pool) (State, error) {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return State{}, fmt.Errorf("loading job queue migrations: %w", err)
	}
	all := m.AllVersions()
	st := State{Latest: int64(all[len(all)-1].Version)}
	existing, err := m.ExistingVersions(ctx)
	if err != nil {
		return st, fmt.Errorf("reading job queue schema version: %w", err)
	}
	applied := map[int]bool{}
	for _, v := range existing {
		applied[v.Version] = true
		st.Current = max(st.Current, int64(v.Version))
	}
	for _, v := range all {
		if !applied[v.Version] {
			st.Pending++
		}
	}
	return st, nil
}
