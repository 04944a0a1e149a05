// Package journal is the move journal on primary: the moves table, one row
// per tenant move between shards, and move_tables, one row per tenant table
// of a move. It owns every statement on those tables, the typed states and
// phases a move passes through, and the rules of what may be resumed or
// aborted, so the mover, the CLI, the job queue and the platform admin read
// one definition instead of each matching strings of its own.
package journal
