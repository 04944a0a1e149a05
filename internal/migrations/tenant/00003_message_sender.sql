-- Each message keeps the name, email and phone it was sent with. The enquiry
-- form is anonymous: anyone can type an existing contact's address, so what a
-- message shows must not depend on the contact's row, which a later enquiry
-- may change. Messages sent before this migration take their contact's values
-- as they are now, the best record left of what was sent. The defaults let
-- code that inserts a message without a sender (test fixtures) keep working.

-- +goose Up
-- +goose StatementBegin
ALTER TABLE messages
    ADD COLUMN sender_name  text NOT NULL DEFAULT '',
    ADD COLUMN sender_email text NOT NULL DEFAULT '',
    ADD COLUMN sender_phone text NOT NULL DEFAULT '';
UPDATE messages m SET sender_name = c.name, sender_email = c.email, sender_phone = c.phone
    FROM contacts c
    WHERE c.website_id = m.website_id AND c.id = m.contact_id;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE messages
    DROP COLUMN sender_phone,
    DROP COLUMN sender_email,
    DROP COLUMN sender_name;
