package mover

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgconn"
)

// pipe streams `COPY (...) TO STDOUT` on src into `COPY ... FROM STDIN` on
// dst, concurrently, and returns the rows dst took. Both statements must use
// the binary format: every byte passes through w, which counts tuples as
// they go by for progress. On an error the source connection is closed,
// since a half-read COPY leaves it unusable.
func pipe(ctx context.Context, src, dst *pgconn.PgConn, copyTo, copyFrom string, w *tupleCounter) (int64, error) {
	pr, pw := io.Pipe()
	// The source sends one message per row; the buffer hands the target
	// 64 KiB at a time instead of one small write per row.
	w.out = bufio.NewWriterSize(pw, 64<<10)
	sent := make(chan error, 1)
	go func() {
		_, err := src.CopyTo(ctx, w, copyTo)
		if err == nil {
			err = w.out.Flush()
		}
		if err != nil {
			err = fmt.Errorf("reading from the source: %w", err)
		}
		pw.CloseWithError(err) // nil: dst sees the end of the stream
		sent <- err
	}()
	tag, err := dst.CopyFrom(ctx, pr, copyFrom)
	pr.CloseWithError(errors.New("the target stopped reading")) // unblocks the sender if dst failed
	srcErr := <-sent
	if srcErr != nil {
		src.Close(context.Background())
		return 0, srcErr
	}
	if err != nil {
		return 0, fmt.Errorf("writing to the target: %w", err)
	}
	return tag.RowsAffected(), nil
}

// tupleCounter passes a binary COPY stream on to out while counting its
// tuples and bytes, and calls onRow after each row so progress can be
// reported (and, in tests, paused) as the stream goes by.
//
// The binary format is a 19-byte header (signature, flags, extension length)
// plus the extension, then per tuple a 16-bit field count and per field a
// 32-bit length (-1 for NULL) and that many bytes; a field count of -1 ends
// the stream.
type tupleCounter struct {
	out   *bufio.Writer
	onRow func(rows, bytes int64) error

	rows, bytes int64
	skip        int64  // bytes still to pass before the next length word
	need        int    // size of the next length word: 2 (field count) or 4 (field length)
	partial     []byte // the part of a length word split across writes
	fieldsLeft  int    // fields of the current tuple still to read
	headerDone  bool
}

const copyHeaderLen = 11 + 4 + 4 // signature, flags, extension area length

func (c *tupleCounter) Write(p []byte) (int, error) {
	if err := c.scan(p); err != nil {
		return 0, err
	}
	n, err := c.out.Write(p)
	c.bytes += int64(n)
	if err != nil {
		return n, err
	}
	if c.onRow != nil {
		if err := c.onRow(c.rows, c.bytes); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (c *tupleCounter) scan(p []byte) error {
	for len(p) > 0 {
		if c.skip > 0 {
			n := min(c.skip, int64(len(p)))
			c.skip -= n
			p = p[n:]
			continue
		}
		want := c.need
		if !c.headerDone {
			want = copyHeaderLen
		}
		take := min(want-len(c.partial), len(p))
		c.partial = append(c.partial, p[:take]...)
		p = p[take:]
		if len(c.partial) < want {
			return nil
		}
		word := c.partial
		c.partial = c.partial[:0]
		switch {
		case !c.headerDone:
			c.headerDone = true
			c.skip = int64(binary.BigEndian.Uint32(word[15:19]))
			c.need = 2
		case c.need == 2:
			fields := int16(binary.BigEndian.Uint16(word))
			if fields < 0 { // trailer
				c.skip = 1 << 62
				continue
			}
			c.rows++
			c.fieldsLeft = int(fields)
			if c.fieldsLeft > 0 {
				c.need = 4
			}
		default:
			if l := int32(binary.BigEndian.Uint32(word)); l > 0 {
				c.skip = int64(l)
			}
			c.fieldsLeft--
			if c.fieldsLeft == 0 {
				c.need = 2
			}
		}
	}
	return nil
}
