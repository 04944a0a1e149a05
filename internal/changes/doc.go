// Package changes streams one tenant's changes from its source shard to its
// target shard during an online move, while the tenant's site keeps writing.
//
// A move first publishes the tenant's rows on the source (CreatePublication:
// every tenant table, row filter website_id = N) and creates a logical
// replication slot with an exported snapshot (CreateSlot). The mover copies
// the tenant's rows as of that snapshot; the slot then yields exactly the
// changes committed after it, which a Stream applies to the target: one target
// transaction per source transaction, in source commit order, with the source
// position it reached recorded in the same target transaction (the
// move_positions table of the tenant migration set). Only once that
// transaction has committed is the position confirmed to the source, so a
// stream that is stopped, cut or crashes anywhere, and is started again,
// neither loses nor repeats a change: it resumes from the position the target
// holds, and the slot keeps everything after it.
//
// Applying is strict: every UPDATE and DELETE must find its row, so a target
// that has drifted from the source fails the move instead of being silently
// patched. Logical messages carrying the move's prefix (EmitMarker) let the
// mover know when everything written before a point has reached the target
// (WaitMarker); the source sends only WAL that is flushed to disk, so a
// marker is flushed as it is written (EmitMarker, FlushWAL). PauseAt stops
// the applier exactly at a source position so source and target can be
// compared at one consistent point while the site keeps writing.
//
// Everything here needs PostgreSQL 15 or later (publication row filters) with
// wal_level = logical on the source; Supported checks a shard before a move
// starts.
package changes
