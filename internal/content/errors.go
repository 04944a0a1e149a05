package content

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/fault"
)

// Sentinel errors callers branch on, each of its fault kind.
var (
	// ErrNotFound means no such row in this website. Rows of another
	// website are reported the same way, so their existence never leaks.
	ErrNotFound = fault.New(fault.NotFound, "not found")
	// ErrConflict means a unique value is taken, such as a page slug or a
	// property reference.
	ErrConflict = fault.New(fault.Conflict, "already exists")
	// ErrInvalid is what every *InvalidError is.
	ErrInvalid = fault.New(fault.Invalid, "invalid input")
)

// InvalidError lists the problems with input, by field, as messages fit to
// show the person who typed it.
type InvalidError struct {
	Fields map[string]string // field name -> message, e.g. "title": "Title is required."
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	for i, k := range slices.Sorted(maps.Keys(e.Fields)) {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", k, e.Fields[k])
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) and errors.Is(err, fault.Invalid)
// true.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// ParseID parses an id from a URL or form. Anything that is not a UUID is
// ErrNotFound, because to a visitor a malformed id names nothing.
func ParseID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(strings.TrimSpace(s))
	if err != nil {
		return uuid.Nil, fmt.Errorf("id %q: %w", s, ErrNotFound)
	}
	return id, nil
}

// problems collects field messages; the first problem of a field wins.
type problems map[string]string

func (p problems) add(field, msg string) {
	if _, ok := p[field]; !ok {
		p[field] = msg
	}
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &InvalidError{Fields: p}
}

// text trims *s and checks its length in characters and that PostgreSQL can
// store it (valid UTF-8, no NUL bytes).
func (p problems) text(field, label string, s *string, max int, required bool) {
	*s = strings.TrimSpace(*s)
	switch {
	case *s == "" && required:
		p.add(field, label+" is required.")
	case !utf8.ValidString(*s) || strings.ContainsRune(*s, 0):
		p.add(field, label+" contains characters that cannot be saved.")
	case utf8.RuneCountInString(*s) > max:
		p.add(field, fmt.Sprintf("%s must be at most %d characters.", label, max))
	}
}

// pgError returns the PostgreSQL error code and constraint behind err, if any.
func pgError(err error) (code, constraint string) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code, pgErr.ConstraintName
	}
	return "", ""
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func newID() (uuid.UUID, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, fmt.Errorf("generating id: %w", err)
	}
	return id, nil
}

// pageBounds normalises a 1-based page and a page size.
func pageBounds(page, perPage, defaultPer int) (int, int, int) {
	if perPage <= 0 {
		perPage = defaultPer
	}
	perPage = min(perPage, MaxPerPage)
	page = min(max(page, 1), maxPage)
	return page, perPage, (page - 1) * perPage
}

// MaxPerPage is the largest page size of any list.
const MaxPerPage = 100

// maxPage keeps offsets far from overflow whatever a URL asks for.
const maxPage = 1_000_000
