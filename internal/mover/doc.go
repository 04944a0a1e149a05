// Package mover moves one tenant's rows from its shard to another, the way
// DESIGN 2.8 to 2.10 describe: freeze writes, stream every tenant table with
// COPY, verify counts and checksums, switch the registry, clean the source.
//
// Every step is recorded in the journal on primary (the moves and move_tables
// tables) before the next one starts, and every step can be run again, so a
// move interrupted anywhere, by a crash, a kill or a shard going away, is
// finished by Resume or rolled back by Abort (before the switch), never by
// hand. The CLI and the web admin both drive moves through this package.
package mover
