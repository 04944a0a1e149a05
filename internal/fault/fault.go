// Package fault names the five kinds of failure that callers treat alike
// whichever package reports them: not found, conflict, invalid input,
// refused and unavailable. A package's sentinel error that is one of these
// is declared with New, so the web turns its kind into an HTTP status and
// the command line into an exit code, each in one place, without knowing
// every package's errors. (Sentinels of no kind, such as a wrong password,
// are answered where they arise.)
package fault

//lint:file-ignore ST1012 the kinds are named for what they are, as they read at use: errors.Is(err, fault.Conflict), fault.New(fault.NotFound, ...)

import "errors"

// The kinds. Test for one with errors.Is(err, fault.Conflict); ask which
// one decides with KindOf.
var (
	// NotFound: what was named does not exist (or is not the caller's to
	// see).
	NotFound = errors.New("not found")
	// Conflict: the request clashes with what exists or is under way, such
	// as a name already taken or a move already running.
	Conflict = errors.New("conflict")
	// Invalid: the input is malformed or out of range; the message says
	// what to change.
	Invalid = errors.New("invalid")
	// Refused: the operation was refused in the current state before it
	// changed anything (a move's pre-flight, a resume of a finished move).
	Refused = errors.New("refused")
	// Unavailable: something needed cannot be used right now (a shard not
	// configured or out of connections, a tenant's writes paused); trying
	// again later may work.
	Unavailable = errors.New("unavailable")
)

// kinds are the kinds KindOf looks for.
var kinds = [...]error{NotFound, Conflict, Invalid, Refused, Unavailable}

// specific is a package's own error of a kind.
type specific struct {
	kind error
	msg  string
}

func (e *specific) Error() string { return e.msg }

// Unwrap makes errors.Is(err, kind) true.
func (e *specific) Unwrap() error { return e.kind }

// New returns a distinct error with message msg that is also of kind:
// errors.Is matches both the error itself and kind. It panics when kind is
// not one of this package's kinds, which is a mistake in a declaration.
func New(kind error, msg string) error {
	if !isKind(kind) {
		panic("fault.New: not a kind: " + kind.Error())
	}
	return &specific{kind: kind, msg: msg}
}

func isKind(err error) bool {
	for _, k := range kinds {
		if err == k {
			return true
		}
	}
	return false
}

// KindOf returns err's kind, or nil when it has none. When err's chain holds
// several kinds, the first met reading it from the outside in decides, the
// order errors.Is reads it in: the package that wrapped a cause in a kind
// of its own (a refusal because a tenant was not found) has the last word.
func KindOf(err error) error {
	if err == nil {
		return nil
	}
	if isKind(err) {
		return err
	}
	if x, ok := err.(interface{ Is(error) bool }); ok {
		for _, k := range kinds {
			if x.Is(k) {
				return k
			}
		}
	}
	switch x := err.(type) {
	case interface{ Unwrap() error }:
		return KindOf(x.Unwrap())
	case interface{ Unwrap() []error }:
		for _, inner := range x.Unwrap() {
			if k := KindOf(inner); k != nil {
				return k
			}
		}
	}
	return nil
}
