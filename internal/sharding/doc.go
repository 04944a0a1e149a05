// Package sharding holds the operator's shard tasks of the Rails design's
// `pwb:sharding` namespace: listing shards with their tenants, and provisioning
// a new, empty tenant onto a shard. Each task checks everything it can before
// it changes anything, and refuses with a one-line reason.
package sharding
