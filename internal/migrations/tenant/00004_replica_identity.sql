-- Online tenant moves stream a tenant's changes out of its source shard with
-- logical decoding (internal/changes). Each move publishes the tenant tables
-- with a row filter, WHERE (website_id = N), so only the moving tenant's rows
-- are decoded. PostgreSQL then refuses every UPDATE and DELETE on a published
-- table, for every tenant on the shard, unless each column of the filter is
-- part of the table's replica identity: with the default identity (the
-- primary key, id alone) the site of every other tenant on the source shard
-- would fail to save while a move runs. So every tenant table gets a unique
-- index on (website_id, id) (properties and contacts already have one, as the
-- target of foreign keys) and uses it as its replica identity. Both columns
-- are NOT NULL and id alone is unique, so the index costs no new constraint
-- on the data; the old key the stream receives for an UPDATE or DELETE is
-- exactly the (website_id, id) it needs to find the row on the target.
--
-- move_positions is the other half of a move's stream, on the target shard:
-- the source position (the end of the last source transaction applied here)
-- of each move, written in the same transaction as the changes it covers, so
-- a restarted stream resumes exactly after what the target already holds. It
-- is not a tenant table: it has no website_id, no tenant owns its rows, and a
-- move must never copy, count or delete it, so it stays out of
-- tenant.Tables.

-- +goose Up
-- +goose StatementBegin
ALTER TABLE agencies ADD CONSTRAINT agencies_website_id_id_key UNIQUE (website_id, id);
ALTER TABLE pages ADD CONSTRAINT pages_website_id_id_key UNIQUE (website_id, id);
ALTER TABLE property_features ADD CONSTRAINT property_features_website_id_id_key UNIQUE (website_id, id);
ALTER TABLE property_photos ADD CONSTRAINT property_photos_website_id_id_key UNIQUE (website_id, id);
ALTER TABLE messages ADD CONSTRAINT messages_website_id_id_key UNIQUE (website_id, id);

ALTER TABLE agencies REPLICA IDENTITY USING INDEX agencies_website_id_id_key;
ALTER TABLE pages REPLICA IDENTITY USING INDEX pages_website_id_id_key;
ALTER TABLE properties REPLICA IDENTITY USING INDEX properties_website_id_id_key;
ALTER TABLE property_features REPLICA IDENTITY USING INDEX property_features_website_id_id_key;
ALTER TABLE property_photos REPLICA IDENTITY USING INDEX property_photos_website_id_id_key;
ALTER TABLE contacts REPLICA IDENTITY USING INDEX contacts_website_id_id_key;
ALTER TABLE messages REPLICA IDENTITY USING INDEX messages_website_id_id_key;

CREATE TABLE move_positions (
    move_id     bigint PRIMARY KEY,
    lsn         pg_lsn NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DROP TABLE move_positions;

ALTER TABLE messages REPLICA IDENTITY DEFAULT;
ALTER TABLE contacts REPLICA IDENTITY DEFAULT;
ALTER TABLE property_photos REPLICA IDENTITY DEFAULT;
ALTER TABLE property_features REPLICA IDENTITY DEFAULT;
ALTER TABLE properties REPLICA IDENTITY DEFAULT;
ALTER TABLE pages REPLICA IDENTITY DEFAULT;
ALTER TABLE agencies REPLICA IDENTITY DEFAULT;

ALTER TABLE messages DROP CONSTRAINT messages_website_id_id_key;
ALTER TABLE property_photos DROP CONSTRAINT property_photos_website_id_id_key;
ALTER TABLE property_features DROP CONSTRAINT property_features_website_id_id_key;
ALTER TABLE pages DROP CONSTRAINT pages_website_id_id_key;
ALTER TABLE agencies DROP CONSTRAINT agencies_website_id_id_key;
-- +goose StatementEnd
