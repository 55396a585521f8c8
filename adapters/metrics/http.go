package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RouteUnmatched is the route label of a request no route matched: one
// series for every probe of a path the API does not have.
const RouteUnmatched = "unmatched"

// MethodOther is the method label of a method HTTP does not define.
const MethodOther = "OTHER"

// requests counts the HTTP API's requests. Its labels are bounded by the
// route table: the route is the pattern that matched (never the path),
// the method one HTTP defines.
type requests struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRequests() *requests {
	return &requests{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP API requests answered, by method, route pattern (\"/tasks/{id}\"; \"unmatched\" when none matched) and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to answer an HTTP API request, by method and route pattern (a followed stream or a long wait counts its whole length).",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
}

func (q *requests) Describe(ch chan<- *prometheus.Desc) {
	q.total.Describe(ch)
	q.duration.Describe(ch)
}

func (q *requests) Collect(ch chan<- prometheus.Metric) {
	q.total.Collect(ch)
	q.duration.Collect(ch)
}

// ObserveRequest implements the HTTP API's Metrics port: it counts one
// answered request under the route pattern that matched it ("GET
// /tasks/{id}" is method GET, route /tasks/{id}).
func (r *Registry) ObserveRequest(method, pattern string, status int, elapsed time.Duration) {
	m, route := labels(method, pattern)
	r.http.total.WithLabelValues(m, route, strconv.Itoa(status)).Inc()
	r.http.duration.WithLabelValues(m, route).Observe(elapsed.Seconds())
}

// labels are the method and route labels of a request: the route is the
// pattern's path, the method one HTTP defines or MethodOther.
func labels(method, pattern string) (string, string) {
	route := RouteUnmatched
	if pattern != "" {
		route = pattern
		if _, path, ok := strings.Cut(pattern, " "); ok {
			route = path
		}
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method, route
	}
	return MethodOther, route
}
