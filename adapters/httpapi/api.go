// Package httpapi serves jetprop's HTTP API: the subset of Propeller's
// manager API that a drop-in server offers (tasks, proplets, health), plus
// jetprop's own event stream, artifact catalog, API tokens and secrets
// (never their values), and metrics (WithMetrics). Every answer
// is JSON (but module downloads and the metrics' exposition); every
// error is {"error": "..."} with a 4xx status for a client's mistake, 503
// with Retry-After while the event store is unavailable or a read model
// behind (worth sending again; creates take an Idempotency-Key so that a
// repeat makes nothing twice), and 500 only for a fault of the server,
// which is logged. With WithAuth every
// route but GET /health needs a bearer token of the role the route table
// (routes) declares.
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

// DefaultMaxBody is the limit of a streamed upload's body (PUT
// /tasks/{id}/upload, POST /artifacts) unless WithMaxBody is given: room
// for the largest module the store accepts by default. JSON bodies have
// their own, smaller limit (MaxJSONBody).
var DefaultMaxBody = MaxBodyFor(domain.DefaultMaxModuleSize)

// MaxBodyFor returns a body limit that fits a module of moduleMax bytes sent
// base64-encoded or as a multipart upload, plus 1 MiB for the rest.
func MaxBodyFor(moduleMax int64) int64 { return (moduleMax+2)/3*4 + 1<<20 }

// MaxJSONBody bounds every JSON request body (and a body of POST
// /workflows, JSON or YAML-turned-JSON): a JSON decoder holds the whole
// value, and the decoded value again, so a body costs some times its size
// in memory before it can be refused. 4 MiB carries any task or spec the
// engine's bounds admit (engine.MaxTaskPayload, MaxWorkflowSpec) and a
// module of up to MaxInlineModule inline, as Propeller's clients send
// them; larger modules go through the streamed upload endpoints, which
// never hold a module in memory. WithMaxBody lowers it, never raises it.
const MaxJSONBody = 4 << 20

// MaxInlineModule is the largest module a JSON body can carry inline
// (base64, with 256 KiB for the rest of the body). The client sends a
// larger one by PUT /tasks/{id}/upload.
const MaxInlineModule = (MaxJSONBody - 256<<10) / 4 * 3

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
	auth    bool // WithAuth: every route but the public ones needs a token
	mux     *http.ServeMux
	table   []route             // the routes registered, in order
	metrics Metrics             // WithMetrics: GET /metrics and every request observed
	inbound func() InboundStats // WithInbound: GET /inbound/stats
	samples Samples             // WithSamples: GET /proplets/{id}/metrics, GET /tasks/{id}/metrics
	limits  *Limits             // WithLimits: deadlines and the requests per client
	invoker Invoker             // WithInvoker: invocations of latent tasks
	clients *clientCount
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
	for _, rt := range a.routes() {
		a.handle(rt)
	}
	return a
}

// routes is the route table: every route with the access it requires.
// Reads are viewer, writes operator, access management and secrets admin;
// GET /health is public (it holds no secret). TestAPI_EveryRouteHasItsRole
// walks the table and holds every route to that rule.
func (a *api) routes() []route {
	return []route{
		{"GET /health", public, a.health},
		{"GET /metrics", viewer, a.serveMetrics},
		{"POST /tasks", operator, a.createTask},
		{"GET /tasks", viewer, a.listTasks},
		{"GET /tasks/{id}", viewer, a.getTask},
		{"PUT /tasks/{id}", operator, a.updateTask},
		{"DELETE /tasks/{id}", operator, a.deleteTask},
		{"PUT /tasks/{id}/upload", operator, a.uploadModule},
		{"POST /tasks/{id}/start", operator, a.startTask},
		{"POST /tasks/{id}/stop", operator, a.stopTask},
		{"GET /tasks/{id}/results", viewer, a.results},
		{"POST /tasks/{id}/invoke", operator, a.invokeTask},
		{"POST /functions/{name}/invoke", operator, a.invokeFunction},
		{"GET /tasks/{id}/invocations", viewer, a.listInvocations},
		{"GET /tasks/{id}/metrics", viewer, a.taskMetrics},
		{"GET /proplets", viewer, a.listProplets},
		{"GET /proplets/{id}", viewer, a.getProplet},
		{"DELETE /proplets/{id}", admin, a.deleteProplet},
		{"GET /proplets/{id}/alive-history", viewer, a.aliveHistory},
		{"GET /proplets/{id}/metrics", viewer, a.propletMetrics},
		{"GET /events", viewer, a.events},
		{"GET /events/quarantine", viewer, a.quarantine},
		{"GET /inbound/stats", viewer, a.inboundStats},
		{"POST /workflows", operator, a.createWorkflow},
		{"GET /workflows", viewer, a.listWorkflows},
		{"GET /workflows/{id}", viewer, a.getWorkflow},
		{"POST /workflows/{id}/cancel", operator, a.cancelWorkflow},
		{"POST /jobs", operator, a.createJob},
		{"GET /jobs", viewer, a.listJobs},
		{"GET /jobs/{id}", viewer, a.getJob},
		{"POST /jobs/{id}/start", operator, a.startJob},
		{"POST /jobs/{id}/stop", operator, a.stopJob},
		{"POST /artifacts", operator, a.pushArtifact},
		{"GET /artifacts", viewer, a.listArtifacts},
		{"GET /artifacts/{ref}", viewer, a.getArtifact},
		{"GET /artifacts/{ref}/content", viewer, a.artifactContent},
		{"DELETE /artifacts/{ref}", operator, a.deleteArtifact},
		{"POST /artifacts/import", operator, a.importArtifact},
		{"POST /artifacts/{ref}/export", operator, a.exportArtifact},
		{"POST /tokens", admin, a.createToken},
		{"GET /tokens", admin, a.listTokens},
		{"GET /tokens/{id}", admin, a.getToken},
		{"DELETE /tokens/{id}", admin, a.revokeToken},
		{"PUT /secrets/{name}", admin, a.setSecret},
		{"GET /secrets", admin, a.listSecrets},
		{"DELETE /secrets/{name}", admin, a.deleteSecret},
		{"POST /devices", admin, a.provisionDevice},
		{"GET /devices", admin, a.listDevices},
		{"GET /devices/{id}", admin, a.getDevice},
		{"POST /devices/{id}/revoke", admin, a.revokeDevice},
	}
}

// ServeHTTP answers requests no route matches with JSON 404 or 405 (the
// mux's own answers are plain text), and passes the rest to the mux. With
// WithAuth, a request no route matches needs a valid token too (401
// otherwise), so that the API's shape is not open to anonymous probes.
// With WithMetrics every request is observed under the pattern it matched.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := a.mux.Handler(r)
	next := a.mux.ServeHTTP
	if pattern == "" {
		next = a.noRoute
	}
	a.observe(w, r, pattern, func(w http.ResponseWriter, r *http.Request) { a.limit(w, r, pattern, next) })
}

var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}

func (a *api) noRoute(w http.ResponseWriter, r *http.Request) {
	if a.auth {
		if _, err := a.authenticate(r); err != nil {
			unauthorized(w, err)
			return
		}
	}
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
