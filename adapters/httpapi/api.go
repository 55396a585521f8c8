// Package httpapi serves jetprop's HTTP API: the subset of Propeller's
// manager API that a drop-in server offers (tasks, proplets, health), plus
// jetprop's own event stream and artifact catalog. Every answer is JSON
// (but module downloads); every error is {"error": "..."} with a 4xx status
// for a client's mistake and 500 only for a fault of the server, which is
// logged.
package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
)

// DefaultVersion is reported by GET /health unless WithVersion is given.
const DefaultVersion = "dev"

// DefaultMaxBody is the request body limit unless WithMaxBody is given: room
// for the largest module the store accepts by default, base64-encoded inline
// in a task's JSON.
var DefaultMaxBody = MaxBodyFor(domain.DefaultMaxModuleSize)

// MaxBodyFor returns a body limit that fits a module of moduleMax bytes sent
// base64-encoded in JSON or as a multipart upload, plus 1 MiB for the rest.
func MaxBodyFor(moduleMax int64) int64 { return (moduleMax+2)/3*4 + 1<<20 }

// Log keys.
const (
	logKeyMethod = "method"
	logKeyPath   = "path"
	logKeyErr    = "err"
)

// Option configures the API.
type Option func(*api)

// WithLogger sets the logger for server faults (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(a *api) {
		if l != nil {
			a.log = l
		}
	}
}

// WithMaxBody limits request bodies to n bytes (default DefaultMaxBody).
func WithMaxBody(n int64) Option {
	return func(a *api) {
		if n > 0 {
			a.maxBody = n
		}
	}
}

// WithVersion sets the version GET /health reports.
func WithVersion(v string) Option {
	return func(a *api) {
		if v != "" {
			a.version = v
		}
	}
}

type api struct {
	svc     *service.Service
	store   events.Store
	log     *slog.Logger
	maxBody int64
	version string
	mux     *http.ServeMux
}

// New returns the API handler over the service's use cases; store feeds
// GET /events.
func New(svc *service.Service, store events.Store, opts ...Option) http.Handler {
	a := &api{
		svc: svc, store: store,
		log:     slog.New(slog.DiscardHandler),
		maxBody: DefaultMaxBody,
		version: DefaultVersion,
		mux:     http.NewServeMux(),
	}
	for _, o := range opts {
		o(a)
	}
	a.routes()
	return a
}

func (a *api) routes() {
	a.mux.HandleFunc("GET /health", a.health)
	a.mux.HandleFunc("POST /tasks", a.createTask)
	a.mux.HandleFunc("GET /tasks", a.listTasks)
	a.mux.HandleFunc("GET /tasks/{id}", a.getTask)
	a.mux.HandleFunc("DELETE /tasks/{id}", a.deleteTask)
	a.mux.HandleFunc("PUT /tasks/{id}/upload", a.uploadModule)
	a.mux.HandleFunc("POST /tasks/{id}/start", a.startTask)
	a.mux.HandleFunc("POST /tasks/{id}/stop", a.stopTask)
	a.mux.HandleFunc("GET /tasks/{id}/results", a.results)
	a.mux.HandleFunc("GET /proplets", a.listProplets)
	a.mux.HandleFunc("GET /proplets/{id}", a.getProplet)
	a.mux.HandleFunc("GET /events", a.events)
	a.mux.HandleFunc("GET /events/quarantine", a.quarantine)
	a.mux.HandleFunc("POST /workflows", a.createWorkflow)
	a.mux.HandleFunc("GET /workflows", a.listWorkflows)
	a.mux.HandleFunc("GET /workflows/{id}", a.getWorkflow)
	a.mux.HandleFunc("POST /workflows/{id}/cancel", a.cancelWorkflow)
	a.mux.HandleFunc("POST /jobs", a.createJob)
	a.mux.HandleFunc("GET /jobs", a.listJobs)
	a.mux.HandleFunc("GET /jobs/{id}", a.getJob)
	a.mux.HandleFunc("POST /jobs/{id}/start", a.startJob)
	a.mux.HandleFunc("POST /jobs/{id}/stop", a.stopJob)
	a.artifactRoutes()
}

// ServeHTTP answers requests no route matches with JSON 404 or 405 (the
// mux's own answers are plain text), and passes the rest to the mux.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern == "" {
		a.noRoute(w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}

func (a *api) noRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range methods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := a.mux.Handler(probe); pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) == 0 {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	for _, m := range allowed {
		w.Header().Add("Allow", m)
	}
	writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
}

// health answers 200 while the server serves, degraded or not: a probe
// that failed would restart a server whose trouble is in its stored data,
// which no restart mends.
func (a *api) health(w http.ResponseWriter, _ *http.Request) {
	h := Health{Status: HealthPass, Service: "jetprop", Version: a.version}
	q := a.svc.Quarantine()
	if h.Quarantined, h.Streams = q.Len(), q.Streams(); h.Quarantined > 0 || len(h.Streams) > 0 {
		h.Status = HealthDegraded
	}
	writeJSON(w, http.StatusOK, h)
}
