package web

import (
	"context"
	"net/http"
	"sync"
)

// withDeadline gives every request a deadline of s.requestTimeout from its
// arrival, so that a shard or primary that stops answering costs a request a
// 503 page (classify maps the deadline to it) rather than a wait without
// end, and pgx closes the connection it was stuck on instead of giving it
// back to the pool. A long-lived answer (a move's progress stream) is bound
// by it too until it has checked who is asking; then it leaves it with
// streamContext and bounds each read of its own.
func (s *Server) withDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.requestTimeout <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		st := &deadlineState{beforeDeadline: r.Context()}
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), deadlineKey{}, st), s.requestTimeout)
		defer st.end()
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// streamContext is r's context without the request deadline: it ends only
// when the client goes away or the server shuts down. A stream uses it once
// it is set up, and bounds each database read itself.
func streamContext(r *http.Request) context.Context {
	if st, ok := r.Context().Value(deadlineKey{}).(*deadlineState); ok {
		return st.beforeDeadline
	}
	return r.Context()
}

type deadlineKey struct{}

// deadlineState is what withDeadline keeps of a request for bodyRead.
type deadlineState struct {
	// beforeDeadline is the request's context as it arrived: it ends when
	// the client goes away or the server shuts down, but has no deadline.
	beforeDeadline context.Context

	mu    sync.Mutex
	stops []func()
}

// end releases the timers of the deadlines bodyRead gave, once the request
// is answered.
func (st *deadlineState) end() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, stop := range st.stops {
		stop()
	}
	st.stops = nil
}

// bodyRead gives r, whose body has now been read, a deadline of the request
// timeout from now instead of from its arrival: an upload on a slow link
// may take longer to arrive than the whole timeout, and its database work
// should not fail for that. The new context keeps r's values and still ends
// when the client goes away. A request withDeadline did not bound is
// returned as it is.
func (s *Server) bodyRead(r *http.Request) *http.Request {
	st, ok := r.Context().Value(deadlineKey{}).(*deadlineState)
	if !ok {
		return r
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.requestTimeout)
	stop := context.AfterFunc(st.beforeDeadline, cancel)
	st.mu.Lock()
	st.stops = append(st.stops, func() { stop(); cancel() })
	st.mu.Unlock()
	return r.WithContext(ctx)
}
