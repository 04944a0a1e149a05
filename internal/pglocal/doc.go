// Package pglocal runs real PostgreSQL servers from the machine's own server
// binaries (initdb, pg_ctl) for the local platform (`pwb dev`) and for every
// test. pwb never mocks the database, so this is the one place that knows how
// to find the binaries, lay out a data folder, pick a loopback port, and run the
// server as the `postgres` system user when the process is root (PostgreSQL
// refuses to run as root).
//
// Every server it starts, for `pwb dev` and for tests alike, runs with
// wal_level = logical: online tenant moves read a shard's changes through
// logical decoding, so the local platform must be able to do what
// production shards are required to. Options.WalLevel lets a test start a
// server without it.
package pglocal
