-- Index the two foreign keys of messages. Without them, deleting a contact
-- or a property (the site admin, a move's clean-up or abort) scans all of
-- the tenant's messages for every row deleted, which made cleaning up a
-- tenant of 20,000 properties take minutes instead of seconds.

-- +goose Up
-- +goose StatementBegin
CREATE INDEX messages_contact_idx ON messages (website_id, contact_id);
CREATE INDEX messages_property_idx ON messages (website_id, property_id) WHERE property_id IS NOT NULL;
-- +goose StatementEnd

-- +goose Down
DROP INDEX messages_property_idx;
DROP INDEX messages_contact_idx;
