package httpapi

import (
	"io"
	"net/http"
	"time"
)

// Metrics is what the API needs of a metrics registry: it serves the
// exposition on GET /metrics (behind the viewer role, like every read)
// and is told of every request the API answered.
type Metrics interface {
	http.Handler
	// ObserveRequest records one answered request: its method, the
	// route pattern that matched it ("GET /tasks/{id}"; "" when none
	// did), the status sent and how long it took. Never the raw path:
	// the patterns are a fixed set.
	ObserveRequest(method, pattern string, status int, elapsed time.Duration)
}

// WithMetrics serves m on GET /metrics and tells it of every request.
// Without it GET /metrics answers 404.
func WithMetrics(m Metrics) Option {
	return func(a *api) { a.metrics = m }
}

// serveMetrics is GET /metrics.
func (a *api) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if a.metrics == nil {
		writeError(w, http.StatusNotFound, "this server serves no metrics")
		return
	}
	a.metrics.ServeHTTP(w, r)
}

// observe serves r through next and tells the metrics how it went.
func (a *api) observe(w http.ResponseWriter, r *http.Request, pattern string, next func(http.ResponseWriter, *http.Request)) {
	if a.metrics == nil {
		next(w, r)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	start := time.Now()
	defer func() { a.metrics.ObserveRequest(r.Method, pattern, rec.Status(), time.Since(start)) }()
	next(rec, r)
}

// statusRecorder keeps the status a handler sends. Unwrap lets
// http.ResponseController reach the connection's writer (flushes of
// GET /events, write deadlines of long waits).
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 { // 1xx are informational; the final status follows
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// ReadFrom keeps io.Copy to the response (a module download) on the
// connection's own ReadFrom, as it is without the recorder.
func (s *statusRecorder) ReadFrom(r io.Reader) (int64, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return io.Copy(s.ResponseWriter, r)
}

// Unwrap is for http.ResponseController.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Status is the status sent: 200 when the handler wrote nothing.
func (s *statusRecorder) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
