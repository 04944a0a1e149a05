-- Counts that limit sign-in guessing and form floods, shared by every pwb
-- serve process of the platform. One row per thing counted: an account
-- (normalised email) or a client address for sign-ins, a client address on
-- one website for enquiries. A row whose expires_at has passed is as good as
-- absent and is deleted by the periodic clean-up job.

-- +goose Up
CREATE TABLE throttles (
    kind         text NOT NULL CHECK (kind IN ('sign_in_account', 'sign_in_address', 'enquiry')),
    website_id   bigint NOT NULL DEFAULT 0, -- 0 for counts that span websites
    subject      text NOT NULL CHECK (length(subject) BETWEEN 1 AND 300),
    count        integer NOT NULL DEFAULT 0 CHECK (count >= 0),
    window_start timestamptz NOT NULL DEFAULT now(),
    -- How many times the subject has been locked since the row was new:
    -- each lock lasts twice as long as the one before, up to a maximum.
    locks        integer NOT NULL DEFAULT 0 CHECK (locks >= 0),
    locked_until timestamptz,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (kind, website_id, subject)
);

CREATE INDEX throttles_expires_at_idx ON throttles (expires_at);
CREATE INDEX throttles_locked_until_idx ON throttles (locked_until) WHERE locked_until IS NOT NULL;

-- The audit log also records sign-in locks, and an operator clearing one.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action IN ('provision', 'move', 'resume', 'abort', 'sign_in_lock', 'sign_in_unlock'));

-- +goose Down
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action IN ('provision', 'move', 'resume', 'abort'));
DROP TABLE throttles;
