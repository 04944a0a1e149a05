package changes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// relation is what a pgoutput Relation message says about a table.
type relation struct {
	name string // schema.table, quoted for SQL
	key  string // schema.table, as the catalog query of cascades writes it
	cols []column
}

type column struct {
	name  string // quoted for SQL
	plain string
	key   bool // part of the replica identity
}

// txn is one source transaction being received.
type txn struct {
	begin   *pglogrepl.BeginMessage
	changes []change
}

type change struct {
	lsn LSN
	msg pglogrepl.Message
}

// apply is the applier: it takes the receiver's items in order, buffers
// each source transaction and applies it in one target transaction.
func (s *Stream) apply() error {
	relations := map[uint32]*relation{}
	var cur *txn
	for {
		if s.ctx.Err() != nil {
			return nil // failed elsewhere, or stopped by force
		}
		if cur == nil {
			if err := s.holdIdle(); err != nil {
				return ignoreStopping(err)
			}
		}
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		var it item
		select {
		case it = <-s.items:
		case <-changed:
			continue
		case <-s.stopCh:
			return nil
		case <-s.ctx.Done():
			return nil
		}
		switch {
		case it.marker != nil:
			if err := s.gateAt(it.marker.lsn, true); err != nil {
				return ignoreStopping(err)
			}
			s.mu.Lock()
			if len(s.markers) > 10000 {
				clear(s.markers)
			}
			s.markers[it.marker.content] = true
			s.processed = max(s.processed, it.marker.lsn)
			s.broadcastLocked()
			s.mu.Unlock()
		case it.msg == nil:
			if err := s.gateAt(it.idle, false); err != nil {
				return ignoreStopping(err)
			}
			if err := s.idle(it.idle); err != nil {
				return err
			}
		default:
			switch m := it.msg.(type) {
			case *pglogrepl.BeginMessage:
				if err := s.gateAt(m.FinalLSN, true); err != nil {
					return ignoreStopping(err)
				}
				cur = &txn{begin: m}
			case *pglogrepl.RelationMessage:
				relations[m.RelationID] = newRelation(m)
			case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage:
				if cur == nil {
					return fmt.Errorf("the source sent a change outside a transaction at %s", it.lsn)
				}
				cur.changes = append(cur.changes, change{lsn: it.lsn, msg: m})
			case *pglogrepl.CommitMessage:
				if cur == nil {
					return fmt.Errorf("the source sent a commit without a transaction at %s", it.lsn)
				}
				if err := s.applyTxn(relations, cur, m); err != nil {
					return err
				}
				cur = nil
			case *pglogrepl.TruncateMessage:
				return fmt.Errorf("the source truncated a published table at %s, which a move cannot apply to one tenant", it.lsn)
			}
		}
	}
}

func ignoreStopping(err error) error {
	if errors.Is(err, errStopping) {
		return nil
	}
	return err
}

// holdIdle waits, between transactions, while the stream is held.
func (s *Stream) holdIdle() error {
	for {
		s.mu.Lock()
		if !s.hold {
			if s.paused && !s.pausedHasPos {
				s.paused = false
				s.broadcastLocked()
			}
			s.mu.Unlock()
			return nil
		}
		if !s.paused {
			s.paused, s.pausedHasPos = true, false
			s.broadcastLocked()
		}
		ch := s.changed
		s.mu.Unlock()
		if err := s.waitChange(ch); err != nil {
			return err
		}
	}
}

// gateAt waits while the stream is held, or paused at or before pos, the
// position of the next transaction, marker or idle report. counts says the
// item is a transaction or marker: a later PauseAt before it is too late.
func (s *Stream) gateAt(pos LSN, counts bool) error {
	for {
		s.mu.Lock()
		if !s.hold && !(s.gateOn && pos >= s.gate) {
			if s.paused {
				s.paused = false
				s.broadcastLocked()
			}
			if counts {
				s.passed = max(s.passed, pos)
			}
			s.mu.Unlock()
			return nil
		}
		if !s.paused || !s.pausedHasPos {
			s.paused, s.pausedHasPos, s.pausedPos = true, true, pos
			s.broadcastLocked()
		}
		ch := s.changed
		s.mu.Unlock()
		if err := s.waitChange(ch); err != nil {
			return err
		}
	}
}

func (s *Stream) waitChange(ch chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-s.stopCh:
		return errStopping
	case <-s.ctx.Done():
		return errStopping
	}
}

// idle handles the source's report that everything before pos has been
// sent, with nothing of this tenant left to apply: pos is recorded as the
// applied position (at the status interval's pace), so the slot can release
// the WAL before it even while the tenant does not write.
func (s *Stream) idle(pos LSN) error {
	s.mu.Lock()
	s.processed = max(s.processed, pos)
	applied := s.stats.AppliedLSN
	s.mu.Unlock()
	if pos <= applied || time.Since(s.lastWrite()) < s.opts.StatusInterval {
		return nil
	}
	if s.ctx.Err() != nil {
		return nil
	}
	// Like a commit, this write is waited for even when the stream stops.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), commitTimeout)
	defer cancel()
	if _, err := s.opts.Target.Exec(ctx, positionSQL, s.opts.MoveID, pos.String()); err != nil {
		return fmt.Errorf("recording position %s on the target: %w", pos, err)
	}
	s.committed(pos, 0, 0)
	s.confirm(pos)
	return nil
}

// positionSQL records a move's applied position on the target; it never
// goes back.
const positionSQL = `INSERT INTO move_positions AS p (move_id, lsn) VALUES ($1::bigint, $2::text::pg_lsn)
	ON CONFLICT (move_id) DO UPDATE SET lsn = greatest(p.lsn, excluded.lsn), updated_at = now()`

func (s *Stream) lastWrite() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastWriteAt
}

// committed notes a position committed on the target: it may now be
// confirmed to the source.
func (s *Stream) committed(end LSN, txns, changes int64) {
	s.mu.Lock()
	s.stats.AppliedLSN = max(s.stats.AppliedLSN, end)
	s.stats.Transactions += txns
	s.stats.Changes += changes
	s.processed = max(s.processed, end)
	s.lastWriteAt = time.Now()
	s.mu.Unlock()
}

func (s *Stream) confirm(end LSN) {
	for {
		old := s.confirmable.Load()
		if uint64(end) <= old || s.confirmable.CompareAndSwap(old, uint64(end)) {
			break
		}
	}
	s.wake()
}

// statement is one change as SQL for the target.
type statement struct {
	sql       string
	args      [][]byte
	what      string // for errors: "UPDATE of public.pages (website_id, id) = (1, '...') at 0/16B3748"
	want      int64  // rows it must affect
	allowNone bool   // a DELETE a cascade on the target may have done already
}

// commitTimeout bounds the wait for the target's answer to a COMMIT (or to
// the write of an idle position), which is waited for even when the stream
// is stopped by force.
const commitTimeout = 30 * time.Second

// maxBatch is how many statements go to the target in one round trip.
const maxBatch = 500

// applyTxn applies one source transaction in one target transaction, with
// the move's position, and only then lets the position be confirmed.
func (s *Stream) applyTxn(relations map[uint32]*relation, t *txn, commit *pglogrepl.CommitMessage) error {
	stmts, err := s.statements(relations, t, commit)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.ApplyTimeout)
	defer cancel()
	end := commit.TransactionEndLSN
	fail := func(err error) error {
		if s.ctx.Err() != nil {
			return nil // stopped by force or failed elsewhere: rolled back
		}
		if ctx.Err() != nil {
			return fmt.Errorf("the target did not apply the source transaction committed at %s within %s: %w", commit.CommitLSN, s.opts.ApplyTimeout, err)
		}
		return err
	}
	conn, err := s.opts.Target.Acquire(ctx)
	if err != nil {
		return fail(fmt.Errorf("connecting to the target: %w", err))
	}
	// A connection left in a transaction is closed, not reused, on release.
	defer conn.Release()
	pg := conn.Conn().PgConn()
	rollback := func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pg.Exec(rctx, "ROLLBACK").ReadAll()
	}
	// One round trip for the transaction's changes and position (in chunks
	// for a large one), then the commit once every count is right.
	ops := make([]statement, 0, len(stmts)+2)
	ops = append(ops, statement{sql: "BEGIN", want: -1, what: "BEGIN"})
	ops = append(ops, stmts...)
	ops = append(ops, statement{
		sql:  positionSQL,
		args: [][]byte{[]byte(strconv.FormatInt(s.opts.MoveID, 10)), []byte(end.String())},
		want: 1,
		what: "the move's position " + end.String(),
	})
	for len(ops) > 0 {
		chunk := ops[:min(len(ops), maxBatch)]
		ops = ops[len(chunk):]
		b := &pgconn.Batch{}
		for _, st := range chunk {
			b.ExecParams(st.sql, st.args, nil, nil, nil)
		}
		results, err := pg.ExecBatch(ctx, b).ReadAll()
		for i, r := range results {
			st := chunk[i]
			if r.Err != nil {
				rollback()
				return fail(fmt.Errorf("applying %s on the target: %w", st.what, r.Err))
			}
			n := r.CommandTag.RowsAffected()
			if st.want >= 0 && n != st.want && !(st.allowNone && n == 0) {
				rollback()
				return fail(fmt.Errorf("applying %s: it matched %d rows on the target, not %d: the target no longer holds the source's rows", st.what, n, st.want))
			}
		}
		if err != nil {
			rollback()
			return fail(fmt.Errorf("applying the source transaction committed at %s on the target: %w", commit.CommitLSN, err))
		}
	}
	info := txnInfo{xid: t.begin.Xid, commit: commit.CommitLSN, end: end}
	if h := s.opts.hooks; h != nil && h.beforeCommit != nil {
		if err := h.beforeCommit(info); err != nil {
			rollback()
			return err
		}
	}
	// Once COMMIT is sent the target may commit whatever happens here: wait
	// for its answer even when the stream is stopping, so a stream that has
	// ended never has a commit in flight that a restart could miss.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer ccancel()
	res, err := pg.Exec(cctx, "COMMIT").ReadAll()
	if err != nil {
		return fmt.Errorf("committing the source transaction committed at %s on the target: the outcome is unknown: %w", commit.CommitLSN, err)
	}
	if len(res) != 1 || res[0].CommandTag.String() != "COMMIT" {
		return fail(fmt.Errorf("committing the source transaction committed at %s on the target: the target rolled it back", commit.CommitLSN))
	}
	s.committed(end, 1, int64(len(t.changes)))
	s.mu.Lock()
	for len(s.pending) > 0 && s.pending[0].lsn <= commit.CommitLSN {
		s.pending = s.pending[1:]
	}
	s.mu.Unlock()
	if s.opts.OnCommit != nil {
		s.opts.OnCommit()
	}
	if h := s.opts.hooks; h != nil && h.afterCommit != nil {
		if err := h.afterCommit(info); err != nil {
			return err
		}
	}
	s.confirm(end)
	return nil
}

func newRelation(m *pglogrepl.RelationMessage) *relation {
	r := &relation{
		name: pgx.Identifier{m.Namespace, m.RelationName}.Sanitize(),
		key:  m.Namespace + "." + m.RelationName,
	}
	for _, c := range m.Columns {
		r.cols = append(r.cols, column{name: pgx.Identifier{c.Name}.Sanitize(), plain: c.Name, key: c.Flags&1 != 0})
	}
	return r
}

// statements turns a source transaction into SQL for the target. Values go
// as text with no type given, so the server reads each exactly as the
// source printed it, into the column's type.
func (s *Stream) statements(relations map[uint32]*relation, t *txn, commit *pglogrepl.CommitMessage) ([]statement, error) {
	deleted := map[string]bool{} // tables this transaction deleted from
	out := make([]statement, 0, len(t.changes))
	for _, c := range t.changes {
		var relID uint32
		switch m := c.msg.(type) {
		case *pglogrepl.InsertMessage:
			relID = m.RelationID
		case *pglogrepl.UpdateMessage:
			relID = m.RelationID
		case *pglogrepl.DeleteMessage:
			relID = m.RelationID
		}
		rel := relations[relID]
		if rel == nil {
			return nil, fmt.Errorf("the source sent a change of relation %d at %s before describing it", relID, c.lsn)
		}
		var st statement
		var err error
		switch m := c.msg.(type) {
		case *pglogrepl.InsertMessage:
			st, err = s.insert(rel, m.Tuple, c.lsn)
		case *pglogrepl.UpdateMessage:
			keyTuple := m.NewTuple
			if m.OldTuple != nil {
				keyTuple = m.OldTuple
			}
			st, err = s.update(rel, keyTuple, m.NewTuple, c.lsn)
		case *pglogrepl.DeleteMessage:
			st, err = s.delete(rel, m.OldTuple, c.lsn)
			for _, parent := range s.cascade[rel.key] {
				if deleted[parent] {
					st.allowNone = true
				}
			}
			deleted[rel.key] = true
		}
		if err != nil {
			return nil, err
		}
		st.what += fmt.Sprintf(" (source transaction committed at %s)", commit.CommitLSN)
		out = append(out, st)
	}
	return out, nil
}

// value is a column's value as a parameter: nil for NULL.
func value(c *pglogrepl.TupleDataColumn) []byte {
	if c.DataType == pglogrepl.TupleDataTypeNull {
		return nil
	}
	if c.Data == nil {
		return []byte{}
	}
	return c.Data
}

func tupleCols(rel *relation, tup *pglogrepl.TupleData, lsn LSN) error {
	if tup == nil || len(tup.Columns) != len(rel.cols) {
		n := 0
		if tup != nil {
			n = len(tup.Columns)
		}
		return fmt.Errorf("the source sent %d values for the %d columns of %s at %s", n, len(rel.cols), rel.key, lsn)
	}
	for _, c := range tup.Columns {
		if c.DataType == pglogrepl.TupleDataTypeBinary {
			return fmt.Errorf("the source sent a binary value for %s at %s, which a move does not ask for", rel.key, lsn)
		}
	}
	return nil
}

// checkWebsite fails a change of another tenant than the stream's.
func (s *Stream) checkWebsite(rel *relation, tup *pglogrepl.TupleData, lsn LSN) error {
	want := strconv.FormatInt(s.opts.WebsiteID, 10)
	for i, c := range rel.cols {
		if c.plain == "website_id" && tup.Columns[i].DataType == pglogrepl.TupleDataTypeText && string(tup.Columns[i].Data) != want {
			return fmt.Errorf("the source sent a change of website %s to %s at %s on the stream of website %s: check the publication's row filter",
				tup.Columns[i].Data, rel.key, lsn, want)
		}
	}
	return nil
}

func (s *Stream) insert(rel *relation, tup *pglogrepl.TupleData, lsn LSN) (statement, error) {
	if err := tupleCols(rel, tup, lsn); err != nil {
		return statement{}, err
	}
	if err := s.checkWebsite(rel, tup, lsn); err != nil {
		return statement{}, err
	}
	var names, params []string
	var args [][]byte
	for i, c := range rel.cols {
		v := tup.Columns[i]
		if v.DataType == pglogrepl.TupleDataTypeToast {
			continue
		}
		names = append(names, c.name)
		args = append(args, value(v))
		params = append(params, "$"+strconv.Itoa(len(args)))
	}
	return statement{
		sql:  "INSERT INTO " + rel.name + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")",
		args: args,
		what: fmt.Sprintf("INSERT into %s%s at %s", rel.key, keyText(rel, tup), lsn),
		want: 1,
	}, nil
}

func (s *Stream) update(rel *relation, keyTup, newTup *pglogrepl.TupleData, lsn LSN) (statement, error) {
	if err := tupleCols(rel, newTup, lsn); err != nil {
		return statement{}, err
	}
	if err := tupleCols(rel, keyTup, lsn); err != nil {
		return statement{}, err
	}
	if err := s.checkWebsite(rel, newTup, lsn); err != nil {
		return statement{}, err
	}
	var sets []string
	var args [][]byte
	for i, c := range rel.cols {
		v := newTup.Columns[i]
		if v.DataType == pglogrepl.TupleDataTypeToast {
			s.unchangedToast.Add(1)
			continue // unchanged large value, not sent: leave it as it is
		}
		args = append(args, value(v))
		sets = append(sets, c.name+" = $"+strconv.Itoa(len(args)))
	}
	where, args, err := s.where(rel, keyTup, args, lsn)
	if err != nil {
		return statement{}, err
	}
	return statement{
		sql:  "UPDATE " + rel.name + " SET " + strings.Join(sets, ", ") + " WHERE " + where,
		args: args,
		what: fmt.Sprintf("UPDATE of %s%s at %s", rel.key, keyText(rel, keyTup), lsn),
		want: 1,
	}, nil
}

func (s *Stream) delete(rel *relation, keyTup *pglogrepl.TupleData, lsn LSN) (statement, error) {
	if err := tupleCols(rel, keyTup, lsn); err != nil {
		return statement{}, err
	}
	where, args, err := s.where(rel, keyTup, nil, lsn)
	if err != nil {
		return statement{}, err
	}
	return statement{
		sql:  "DELETE FROM " + rel.name + " WHERE " + where,
		args: args,
		what: fmt.Sprintf("DELETE from %s%s at %s", rel.key, keyText(rel, keyTup), lsn),
		want: 1,
	}, nil
}

// where finds the row by its replica identity (the table's (website_id, id)
// index), always within the stream's website.
func (s *Stream) where(rel *relation, keyTup *pglogrepl.TupleData, args [][]byte, lsn LSN) (string, [][]byte, error) {
	if err := s.checkWebsite(rel, keyTup, lsn); err != nil {
		return "", nil, err
	}
	var conds []string
	website := false
	for i, c := range rel.cols {
		if !c.key {
			continue
		}
		v := keyTup.Columns[i]
		switch v.DataType {
		case pglogrepl.TupleDataTypeToast:
			return "", nil, fmt.Errorf("the source sent no value for key column %s of %s at %s", c.plain, rel.key, lsn)
		case pglogrepl.TupleDataTypeNull:
			conds = append(conds, c.name+" IS NULL")
		default:
			args = append(args, value(v))
			conds = append(conds, c.name+" = $"+strconv.Itoa(len(args)))
		}
		website = website || c.plain == "website_id"
	}
	if len(conds) == 0 {
		return "", nil, fmt.Errorf("%s has no replica identity to find rows by (migration 00004 gives every tenant table one)", rel.key)
	}
	if !website {
		args = append(args, []byte(strconv.FormatInt(s.opts.WebsiteID, 10)))
		conds = append(conds, `"website_id" = $`+strconv.Itoa(len(args)))
	}
	return strings.Join(conds, " AND "), args, nil
}

// keyText writes a row's key for an error, such as
// " (website_id, id) = (5, 0190d5a4-...)".
func keyText(rel *relation, tup *pglogrepl.TupleData) string {
	var names, vals []string
	for i, c := range rel.cols {
		if !c.key || i >= len(tup.Columns) {
			continue
		}
		names = append(names, c.plain)
		switch v := tup.Columns[i]; v.DataType {
		case pglogrepl.TupleDataTypeText:
			vals = append(vals, string(v.Data))
		case pglogrepl.TupleDataTypeNull:
			vals = append(vals, "NULL")
		default:
			vals = append(vals, "?")
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ") = (" + strings.Join(vals, ", ") + ")"
}
