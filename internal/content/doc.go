// Package content is the data layer of a tenant's website: properties with
// their features and photos, enquiries (contacts and messages), pages and the
// agency's details. Every function takes a tenant.Scope and nothing else to
// reach the database, so there is no way to hand it a pool: every read
// filters by website_id = scope.WebsiteID, child tables included, and every
// write runs inside scope.Write, which takes the tenant's write fence and
// re-checks the registry, so a frozen or moved tenant's writes fail with
// tenant.ErrWritesPaused and change nothing. A row of another website is
// reported as ErrNotFound, never revealed. Row ids are UUIDv7 made here.
// Input is validated into *InvalidError (errors.Is ErrInvalid) before any
// write; text is stored verbatim, because escaping is the web layer's job.
//
// A tenant that is still active but has moved to another shard is refused
// with tenant.ErrMoved, one kind of ErrWritesPaused. Each write function
// makes one write transaction (a lost slug race is rolled back before it is
// tried again), and the refusal comes before any of its statements ran. So a
// caller may call the same function again with a scope resolved afresh from
// primary, and the write is made once, on the new shard. The web site does
// that, once per write (web's tenantWrite); a second refusal is an error.
package content
