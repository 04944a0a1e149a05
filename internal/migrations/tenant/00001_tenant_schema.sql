-- The tenant schema, identical on every shard (primary included).
-- Every table carries website_id, and every foreign key between tenant tables
-- includes it, so a child can never point at another tenant's row and a
-- tenant's rows can be found, copied, counted and deleted table by table.
-- Primary keys are application-generated UUIDv7, so rows never collide
-- across shards.

-- The Up section is one statement block so the schema reaches a remote shard
-- in one round trip instead of one per statement.

-- +goose Up
-- +goose StatementBegin
CREATE TABLE agencies (
    id          uuid PRIMARY KEY,
    website_id  bigint NOT NULL UNIQUE,
    name        text NOT NULL DEFAULT '',
    email       text NOT NULL DEFAULT '',
    phone       text NOT NULL DEFAULT '',
    address     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pages (
    id          uuid PRIMARY KEY,
    website_id  bigint NOT NULL,
    slug        text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    title       text NOT NULL,
    body        text NOT NULL DEFAULT '',
    visible     boolean NOT NULL DEFAULT true,
    nav_order   integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (website_id, slug)
);

CREATE TABLE properties (
    id                  uuid PRIMARY KEY,
    website_id          bigint NOT NULL,
    reference           text,
    slug                text NOT NULL,
    title               text NOT NULL,
    description         text NOT NULL DEFAULT '',
    address             text NOT NULL DEFAULT '',
    city                text NOT NULL DEFAULT '',
    region              text NOT NULL DEFAULT '',
    postal_code         text NOT NULL DEFAULT '',
    country             text NOT NULL DEFAULT '',
    latitude            double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude           double precision CHECK (longitude BETWEEN -180 AND 180),
    bedrooms            integer NOT NULL DEFAULT 0 CHECK (bedrooms >= 0),
    bathrooms           integer NOT NULL DEFAULT 0 CHECK (bathrooms >= 0),
    garages             integer NOT NULL DEFAULT 0 CHECK (garages >= 0),
    floor_area_sqm      numeric(10, 2) CHECK (floor_area_sqm >= 0),
    year_built          integer CHECK (year_built BETWEEN 1000 AND 3000),
    property_type       text NOT NULL DEFAULT '',
    for_sale            boolean NOT NULL DEFAULT false,
    sale_price_cents    bigint CHECK (sale_price_cents >= 0),
    sale_currency       char(3),
    for_rent            boolean NOT NULL DEFAULT false,
    rent_price_cents_monthly bigint CHECK (rent_price_cents_monthly >= 0),
    rent_currency       char(3),
    visible             boolean NOT NULL DEFAULT true,
    highlighted         boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (website_id, id),
    UNIQUE (website_id, slug)
);
CREATE UNIQUE INDEX properties_reference_key ON properties (website_id, reference)
    WHERE reference IS NOT NULL;
CREATE INDEX properties_listing_idx ON properties (website_id, visible, created_at DESC);

CREATE TABLE property_features (
    id          uuid PRIMARY KEY,
    website_id  bigint NOT NULL,
    property_id uuid NOT NULL,
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    UNIQUE (website_id, property_id, name),
    FOREIGN KEY (website_id, property_id) REFERENCES properties (website_id, id) ON DELETE CASCADE
);

CREATE TABLE property_photos (
    id           uuid PRIMARY KEY,
    website_id   bigint NOT NULL,
    property_id  uuid NOT NULL,
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/gif', 'image/webp')),
    image        bytea NOT NULL CHECK (octet_length(image) BETWEEN 1 AND 5242880),
    sort_order   integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (website_id, property_id) REFERENCES properties (website_id, id) ON DELETE CASCADE
);
CREATE INDEX property_photos_property_idx ON property_photos (website_id, property_id, sort_order);

CREATE TABLE contacts (
    id          uuid PRIMARY KEY,
    website_id  bigint NOT NULL,
    email       text NOT NULL,
    name        text NOT NULL DEFAULT '',
    phone       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (website_id, id)
);
CREATE UNIQUE INDEX contacts_email_key ON contacts (website_id, lower(email));

CREATE TABLE messages (
    id          uuid PRIMARY KEY,
    website_id  bigint NOT NULL,
    contact_id  uuid NOT NULL,
    property_id uuid,
    body        text NOT NULL,
    read_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (website_id, contact_id) REFERENCES contacts (website_id, id) ON DELETE CASCADE,
    -- Deleting a property keeps the enquiry; only property_id is cleared,
    -- never website_id.
    FOREIGN KEY (website_id, property_id) REFERENCES properties (website_id, id)
        ON DELETE SET NULL (property_id)
);
CREATE INDEX messages_inbox_idx ON messages (website_id, created_at DESC);
-- +goose StatementEnd

-- +goose Down
DROP TABLE messages;
DROP TABLE contacts;
DROP TABLE property_photos;
DROP TABLE property_features;
DROP TABLE properties;
DROP TABLE pages;
DROP TABLE agencies;
