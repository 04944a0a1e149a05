// Package shard owns the connection pools to every configured shard. It is the
// only place that opens pools: each shard's pool is opened lazily on first use
// and kept for the life of the Set, so a process that never touches a shard
// never connects to it. Asking for a shard that is not configured is an error,
// never a fallback to primary: pwb fails closed.
package shard
