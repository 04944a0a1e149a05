// Package mover carries out one tenant's move from its shard to another, in
// one of two modes. Freeze: the tenant becomes read_only, every tenant table
// is streamed with COPY, counts and checksums are compared, the registry
// switches, the source is cleaned. Online (online.go): the tenant stays
// active; the copy is taken at a replication slot's snapshot, the changes
// made meanwhile are streamed to the target (package changes), the two sides
// are compared at one point of the stream, and a cut-over holds the
// tenant's writes for under a second to switch.
//
// Every step is recorded in the journal on primary (package journal) before
// the next one starts, and every step can be run again, so a move
// interrupted anywhere, by a crash, a kill or a shard going away, is
// finished by Run (resume) or rolled back by Abort (before the switch),
// never by hand. Package moves decides and audits moves for the CLI, the job
// queue and the platform admin, and drives them through this package.
package mover
