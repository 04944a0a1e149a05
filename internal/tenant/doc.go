// Package tenant is how code reaches one tenant's data. A Scope is a value
// (website id plus its shard's pool) resolved once from the registry; every
// query through it is meant to filter by website_id, and every write goes
// through Write, which takes the tenant's write fence first and then checks
// the registry on primary. Resolution fails closed: a tenant whose shard is
// not configured gets an error, never another shard's pool.
//
// A write the registry refuses returns ErrWritesPaused and changes nothing.
// One such refusal can be put right at once: a tenant that is still active
// but now lives on another shard (a move cut over while the write waited on
// the fence, or the scope was resolved from a stale cache) gets ErrMoved,
// which is also ErrWritesPaused. Nothing of that write ran, so the caller
// may resolve the tenant again from primary and repeat the write on the new
// shard. The web site does that once per write; a tenant that is read_only
// or in maintenance is not retried.
package tenant
