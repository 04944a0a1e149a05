package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/propertywebbuilder/pwb/internal/content"
	"github.com/propertywebbuilder/pwb/internal/fault"
	"github.com/propertywebbuilder/pwb/internal/tenant"
)

// retryAfter is what a 503 tells clients to wait: long enough for a freeze
// or a restarted shard, short enough that a browser retry finds the site
// back.
const retryAfter = 30 * time.Second

// httpError is an error that knows how it should look to the visitor.
type httpError struct {
	status  int
	title   string
	message string
	link    *pageLink // where the visitor may go instead, if anywhere
	err     error     // the cause, for the log only
}

// pageLink is a link an error page offers.
type pageLink struct{ Href, Text string }

func (e *httpError) Error() string {
	if e.err != nil {
		return e.title + ": " + e.err.Error()
	}
	return e.title + ": " + e.message
}

func (e *httpError) Unwrap() error { return e.err }

// because returns a copy of a stock error page that logs err as its cause.
func (e *httpError) because(err error) *httpError {
	c := *e
	c.err = err
	return &c
}

func errorPage(status int, title, message string) error {
	return &httpError{status: status, title: title, message: message}
}

// errorPageLinking is errorPage with a link to where the visitor may go
// instead.
func errorPageLinking(status int, title, message string, link pageLink) error {
	return &httpError{status: status, title: title, message: message, link: &link}
}

var (
	errUnavailable = &httpError{status: http.StatusServiceUnavailable, title: "Temporarily unavailable",
		message: "This website cannot be reached right now."}
	errWritesPaused = &httpError{status: http.StatusServiceUnavailable, title: "Changes are paused",
		message: "This website is being maintained and cannot take changes right now. Reading still works."}
)

// classify maps an error to what the visitor sees. It is the one place where
// error kinds (package fault) become status codes: not found 404, invalid
// input 422, conflict and refused 409, unavailable 503; a body over the
// route's limit 413, and a database that cannot be reached 503. Refused is
// a 409 rather than a 403 because every refusal is of an operation in the
// current state (a move's pre-flight, a resume of a finished move): asking
// again once the state has changed can work, which is what 409 Conflict
// says. Permission refusals are answered where they arise (sign-in pages).
func classify(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &httpError{status: http.StatusRequestEntityTooLarge, title: "Too large",
			message: "What you sent is larger than this form accepts. Nothing was saved.", err: err}
	}
	switch fault.KindOf(err) {
	case fault.Invalid:
		message := "Something in what you sent cannot be used. Nothing was saved."
		var invalid *content.InvalidError
		if errors.As(err, &invalid) {
			message = invalid.Error()
		}
		return &httpError{status: http.StatusUnprocessableEntity, title: "Please check the form", message: message, err: err}
	case fault.NotFound:
		return &httpError{status: http.StatusNotFound, title: "Not found",
			message: "There is nothing at this address.", err: err}
	case fault.Conflict:
		return &httpError{status: http.StatusConflict, title: "Conflict",
			message: "This clashes with something that already exists or is under way. Nothing was saved.", err: err}
	case fault.Refused:
		return &httpError{status: http.StatusConflict, title: "Refused",
			message: "This cannot be done now, and nothing was changed: " + err.Error(), err: err}
	case fault.Unavailable:
		if errors.Is(err, tenant.ErrWritesPaused) {
			return errWritesPaused.because(err)
		}
		return errUnavailable.because(err)
	}
	if unreachable(err) {
		return errUnavailable.because(err)
	}
	return &httpError{status: http.StatusInternalServerError, title: "Something went wrong",
		message: "The page could not be shown. The problem has been logged.", err: err}
}

// unreachable reports whether err means the database could not be reached or
// went away, as opposed to a mistake in what was asked of it.
func unreachable(err error) bool {
	var connErr *pgconn.ConnectError
	var netErr net.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr), pgconn.Timeout(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return true
	case errors.As(err, &pgErr):
		// Class 08 is connection exceptions; 57P01-57P03 are a server
		// shutting down or starting up.
		return len(pgErr.Code) == 5 && pgErr.Code[:2] == "08" ||
			pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	return false
}

// fail writes err's error page and logs server-side failures with their whole
// chain.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	he := classify(err)
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away; nobody to answer
	}
	if he.status >= 500 {
		ri := requestFrom(r.Context())
		level, msg := slog.LevelError, "request failed"
		if errors.Is(err, tenant.ErrWritesPaused) {
			// A move's freeze or an operator's maintenance: expected, and
			// the visitor is told when to try again.
			level, msg = slog.LevelInfo, "write refused: the tenant's writes are paused"
		}
		s.log.LogAttrs(r.Context(), level, msg,
			slog.String("request_id", ri.ID), slog.String("tenant", ri.Tenant), slog.String("shard", ri.Shard),
			slog.Int("status", he.status), slog.Any("error", err))
	}
	if he.status == http.StatusServiceUnavailable {
		setRetryAfter(w, retryAfter)
	}
	s.renderError(w, r, he)
}
