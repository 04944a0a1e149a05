-- Online moves: a move copies while the tenant keeps taking writes, streams
-- the changes made meanwhile from a logical replication slot on the source,
-- and blocks writes only for its short cut-over. The journal records the
-- mode, why it was chosen, the names of the slot and publication on the
-- source (recorded before either is created, so resume, abort and the sweep
-- can always find and drop what a killed process left), the stream's
-- catch-up, and how long writes were blocked.

-- +goose Up
ALTER TABLE moves
    ADD COLUMN mode             text NOT NULL DEFAULT 'freeze' CHECK (mode IN ('freeze', 'online')),
    ADD COLUMN mode_reason      text,
    ADD COLUMN slot_name        text,
    ADD COLUMN publication_name text,
    -- How many times the copy started: an online copy starts again when
    -- its snapshot or its slot is lost.
    ADD COLUMN copy_attempts    integer NOT NULL DEFAULT 0,
    ADD COLUMN changes_applied  bigint NOT NULL DEFAULT 0,
    ADD COLUMN lag_bytes        bigint,
    ADD COLUMN lag_seconds      double precision,
    ADD COLUMN streamed_at      timestamptz,
    ADD COLUMN cutover_attempts integer NOT NULL DEFAULT 0,
    -- Writes blocked, in microseconds: the cut-over that switched (online),
    -- or from the freeze to the switch (freeze).
    ADD COLUMN blocked_us       bigint,
    -- The slot and publication are gone (dropped after the switch, by an
    -- abort or by the sweep).
    ADD COLUMN artifacts_dropped boolean NOT NULL DEFAULT false;

ALTER TABLE moves DROP CONSTRAINT moves_state_check;
ALTER TABLE moves ADD CONSTRAINT moves_state_check CHECK (state IN
    ('planned', 'prepared', 'frozen', 'copying', 'copied', 'verified', 'switched',
     'cleaned', 'done', 'failed', 'aborted'));
ALTER TABLE moves DROP CONSTRAINT moves_failed_state_check;
ALTER TABLE moves ADD CONSTRAINT moves_failed_state_check CHECK (failed_state IN
    ('planned', 'prepared', 'frozen', 'copying', 'copied', 'verified', 'switched', 'cleaned'));

-- +goose Down
ALTER TABLE moves DROP CONSTRAINT moves_failed_state_check;
ALTER TABLE moves ADD CONSTRAINT moves_failed_state_check CHECK (failed_state IN
    ('planned', 'frozen', 'copying', 'copied', 'verified', 'switched', 'cleaned'));
ALTER TABLE moves DROP CONSTRAINT moves_state_check;
ALTER TABLE moves ADD CONSTRAINT moves_state_check CHECK (state IN
    ('planned', 'frozen', 'copying', 'copied', 'verified', 'switched',
     'cleaned', 'done', 'failed', 'aborted'));
ALTER TABLE moves
    DROP COLUMN mode, DROP COLUMN mode_reason, DROP COLUMN slot_name, DROP COLUMN publication_name,
    DROP COLUMN copy_attempts, DROP COLUMN changes_applied, DROP COLUMN lag_bytes, DROP COLUMN lag_seconds,
    DROP COLUMN streamed_at, DROP COLUMN cutover_attempts, DROP COLUMN blocked_us, DROP COLUMN artifacts_dropped;
