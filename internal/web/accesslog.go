package web

import (
	"log/slog"

	"net/http"
	"time"

	"github.com/propertywebbuilder/pwb/internal/metrics"
)

// statusRecorder remembers the status a handler wrote, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog writes one structured line per request with its id, tenant and
// shard, status and duration, and counts it in m if set.
func accessLog(log *slog.Logger, m *metrics.Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			ri := requestFrom(r.Context())
			if m != nil {
				route := ri.Route
				if route == "" { // served by the outer mux, which set it on r
					route = r.Pattern
				}
				m.ObserveRequest(ri.Shard, route, rec.status, time.Since(start))
			}
			attrs := []slog.Attr{
				slog.String("request_id", ri.ID),
				slog.String("method", r.Method),
				slog.String("host", r.Host),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Int("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)),
			}
			if ri.Tenant != "" {
				attrs = append(attrs, slog.Int64("website_id", ri.Website), slog.String("tenant", ri.Tenant), slog.String("shard", ri.Shard))
			}
			log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
		})
	}
}
