-- The platform admin at /admin: super-admin accounts, their sign-in
-- sessions (not bound to any website), and the audit log of shard
-- operations. Lives on primary only.

-- +goose Up
-- A user with platform_role 'super_admin' may open /admin. Site-admin
-- memberships never grant it.
ALTER TABLE users ADD COLUMN platform_role text CHECK (platform_role IN ('super_admin'));

-- Only the SHA-256 of a platform session token is kept, as for sessions.
CREATE TABLE platform_sessions (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX platform_sessions_user_id_idx ON platform_sessions (user_id);
CREATE INDEX platform_sessions_expires_at_idx ON platform_sessions (expires_at);

-- One line per provision, move, resume and abort, from the CLI or the admin.
-- It outlives the tenant it names, so it keeps the subdomain as it was and
-- has no foreign keys.
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL CHECK (actor <> ''),
    action       text NOT NULL CHECK (action IN ('provision', 'move', 'resume', 'abort')),
    website_id   bigint,
    tenant       text NOT NULL,
    source_shard text,
    target_shard text,
    move_id      bigint,
    outcome      text NOT NULL CHECK (outcome IN ('queued', 'done', 'failed', 'refused')),
    detail       text NOT NULL DEFAULT ''
);

CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_website_id_idx ON audit_log (website_id, at DESC);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE platform_sessions;
ALTER TABLE users DROP COLUMN platform_role;
