// Package tenant is how code reaches one tenant's data. A Scope is a value
// (website id plus its shard's pool) resolved once from the registry; every
// query through it is meant to filter by website_id, and every write goes
// through Write, which takes the tenant's write fence first. Resolution fails
// closed: a tenant whose shard is not configured gets an error, never
// another shard's pool.
package tenant
