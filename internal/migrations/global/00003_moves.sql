-- The move journal: one row per tenant move between shards, with one row per
-- tenant table for its progress. Lives on primary only. Each step of a move is
-- recorded here before the next starts, so a move interrupted at any point is
-- finished (resume) or rolled back (abort) from what the journal says.

-- +goose Up
CREATE TABLE moves (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    website_id     bigint NOT NULL REFERENCES websites (id),
    source_shard   text NOT NULL,
    target_shard   text NOT NULL CHECK (target_shard <> source_shard),
    state          text NOT NULL DEFAULT 'planned' CHECK (state IN
                   ('planned', 'frozen', 'copying', 'copied', 'verified', 'switched',
                    'cleaned', 'done', 'failed', 'aborted')),
    -- The step a failed move stopped in; resume continues from it.
    failed_state   text CHECK (failed_state IN
                   ('planned', 'frozen', 'copying', 'copied', 'verified', 'switched', 'cleaned')),
    error          text,
    started_by     text NOT NULL CHECK (length(btrim(started_by)) > 0),
    started_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    frozen_at      timestamptz,
    switched_at    timestamptz,
    finished_at    timestamptz,
    -- False while an aborted move may still have rows on the target (the
    -- target was unreachable); aborting again removes them.
    target_cleared boolean NOT NULL DEFAULT false,
    CHECK ((state = 'failed') = (failed_state IS NOT NULL))
);

-- At most one unfinished move per tenant.
CREATE UNIQUE INDEX moves_one_unfinished_per_tenant ON moves (website_id)
    WHERE state NOT IN ('done', 'aborted');
CREATE INDEX moves_website_idx ON moves (website_id, id DESC);

CREATE TABLE move_tables (
    move_id         bigint NOT NULL REFERENCES moves (id) ON DELETE CASCADE,
    position        integer NOT NULL,
    table_name      text NOT NULL,
    rows_total      bigint NOT NULL DEFAULT 0,
    bytes_total     bigint NOT NULL DEFAULT 0,
    rows_copied     bigint NOT NULL DEFAULT 0,
    bytes_copied    bigint NOT NULL DEFAULT 0,
    copied          boolean NOT NULL DEFAULT false,
    source_checksum text,
    target_checksum text,
    rows_deleted    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (move_id, table_name),
    UNIQUE (move_id, position)
);

-- +goose Down
DROP TABLE move_tables;
DROP TABLE moves;
