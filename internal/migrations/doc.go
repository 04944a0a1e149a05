// Package migrations holds pwb's two schema migration sets, embedded in the
// binary, and runs them across shards. The global set (registry and platform
// tables) runs on primary only; the tenant set runs on every shard, primary
// included, so a tenant's tables look the same wherever it lives. Each set keeps
// its own version table, and a per-database advisory lock makes two `migrate`
// runs at once safe.
package migrations
