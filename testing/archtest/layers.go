package archtest

// Layer is one row of the layer table: the packages at Path (a trailing
// "/..." for a whole subtree), what lives there, and what they may import
// besides the standard library: module packages (by path, "/..." for a
// subtree), third-party modules by their short names in Modules, or "*"
// for anything.
type Layer struct {
	Path string
	What string
	May  []string
}

// Modules are the third-party modules the layers name, by short name.
var Modules = map[string]string{
	"nats.go":        "github.com/nats-io/nats.go",
	"nats-server":    "github.com/nats-io/nats-server/v2",
	"nats-jwt":       "github.com/nats-io/jwt/v2",
	"nkeys":          "github.com/nats-io/nkeys",
	"x/crypto":       "golang.org/x/crypto",
	"paho":           "github.com/eclipse/paho.mqtt.golang",
	"wazero":         "github.com/tetratelabs/wazero",
	"ulid":           "github.com/oklog/ulid/v2",
	"oras-go":        "oras.land/oras-go/v2",
	"opencontainers": "github.com/opencontainers",
	"yaml":           "sigs.k8s.io/yaml",
	"client_golang":  "github.com/prometheus/client_golang",
}

// Layers is the layer table, from the leaf upwards. Dependencies point
// up this table: a package imports only packages above it.
var Layers = []Layer{
	{"engine/domain", "the shared vocabulary: sentinel errors (the API maps them to status codes), module digests, secrets and their hashes, the wasm header and the structural check of a module before any runtime decodes it (`CheckModule`), module size defaults, device metadata, the roles of API tokens", nil},
	{"events", "the event envelope, every event type (a secret's only as ciphertext), the codec (type name ↔ Go type, round-tripped at start), the `Store` port with its JetStream and in-memory implementations, the `Quarantine` of stored messages that cannot be read", []string{"engine/domain", "nats.go", "ulid"}},
	{"engine", "the pure core: deciders and folds of task, device (with its provisioning and admission), workflow, artifact, transfer, API token and secret; `${secret:NAME}` references; placement; the workflow spec and planner; the workflow process manager's decisions (`Reconcile`, `Fire`). No I/O, no goroutine, no `context`, no clock: time and ids come in with commands", []string{"engine/domain", "events"}},
	{"engine/replaycheck", "the replay checker behind `jetprop events replay --check`", []string{"engine", "engine/domain", "events"}},
	{"engine/service", "the application layer: `Handler` (load, decide, append with the expected sequence, retry), `Service` (the use cases of the API and CLI; secrets sealed and opened through its `Sealer` port), `WorkflowManager` (runs the process manager, durable timers), `Liveness`, the clock and id sources", []string{"engine", "engine/domain", "events", "ulid"}},
	{"projections", "read models (tasks, devices, artifacts, workflows, API tokens by hash, secrets sealed) folded with the core's `Apply`, rebuilt by replay, followed by subscription, `WaitFor(seq)` for read-your-writes", []string{"engine", "engine/domain", "events"}},
	{"adapters/certs", "X.509 and TLS from PEM files: listener and client `tls.Config`s, mutual-TLS modes, a client pinned to one server certificate, the development CA of `jetprop certs dev`, the engine's in-memory client CA; ECDSA P-256, standard library only", nil},
	{"adapters/mqtt/wire", "Propeller's MQTT topics and payloads, lenient decoders; shared by the engine and the proplet", []string{"engine/domain"}},
	{"adapters/mqtt/outbound", "what the server side sends to devices over a paho connection: `Publisher` (QoS ≥ 1) and `ChunkServer` (module chunks), with ports for module lookup and transfer progress; no NATS", []string{"adapters/mqtt/wire", "engine/domain", "paho"}},
	{"adapters/mqtt", "the engine's side of the device protocol: `Inbound` (stream `EDGE_IN` → commands), `Dispatcher` (task events → start and stop messages, secrets put in only for a device's own topic), `Transfers` (transfer progress as events)", []string{"adapters/mqtt/outbound", "adapters/mqtt/wire", "engine", "engine/domain", "engine/service", "events", "nats.go"}},
	{"adapters/mqtt/proxy", "`jetprop proxy`: Propeller's registry proxy over any MQTT broker (TLS with Propeller's variables), modules pulled from OCI registries into a disk cache; no NATS, no wasm runtime", []string{"adapters/certs", "adapters/mqtt/outbound", "adapters/mqtt/wire", "adapters/oci", "engine/domain", "paho"}},
	{"adapters/artifacts", "the module store: object store `MODULES` by digest, wasm checked on the way in", []string{"engine/domain", "nats.go", "wazero"}},
	{"adapters/oci", "OCI registries through oras-go: import (tag or digest as written, wasm layer by media type) and export", []string{"engine/domain", "oras-go", "opencontainers"}},
	{"adapters/timers", "durable timers and cron on JetStream message schedules (stream `TIMERS`)", []string{"nats.go"}},
	{"adapters/leases", "work shared among engine replicas: partitions held through leases in a key-value bucket (`JP_LEASES`), renewed by compare-and-set and expiring when their replica stops; the dispatcher's `Shares`", []string{"nats.go"}},
	{"adapters/sealer", "secrets sealed with AES-256-GCM (the name as additional data) under a key from a file or the environment, or a key file made at first use; the service's `Sealer`", nil},
	{"adapters/natsserver", "the embedded nats-server: JetStream, NATS and MQTT listeners, readiness; the engine's and the devices' accounts and the auth callout that admits devices", []string{"nats-server", "nats.go", "nats-jwt", "nkeys", "x/crypto"}},
	{"adapters/metrics", "Prometheus metrics through client_golang on a registry of its own: read models' counts by state, inbound device-message counters and the quarantine read at scrape time; HTTP requests by route pattern (the API's `Metrics` port) and event-store appends (`Appends`, a decorator of `events.Store`) counted as they happen; Go runtime and process", []string{"adapters/mqtt", "engine", "events", "projections", "client_golang"}},
	{"adapters/httpapi", "the HTTP API (Propeller's routes and jetprop's): one route table with the role each route needs, bearer-token authentication (`WithAuth`), `GET /metrics` and every request observed under its route pattern through the `Metrics` port (`WithMetrics`)", []string{"adapters/mqtt/wire", "engine", "engine/domain", "engine/service", "events"}},
	{"adapters/httpapi/client", "the Go client of the HTTP API", []string{"adapters/httpapi", "engine", "engine/domain", "events"}},
	{"workers/runtime", "wasm runtimes: wazero in process, an external runtime as a subprocess", []string{"engine/domain", "wazero"}},
	{"workers/journal", "the proplet's one-file journal: MQTT session store and accepted tasks", []string{"paho"}},
	{"workers/modcache", "the proplet's module cache by digest and its downloads in progress", []string{"engine/domain"}},
	{"workers/proplet", "the proplet: paho client (TLS with Propeller's variables), persistent session, discovery, heartbeats, tasks, chunked downloads; no NATS", []string{"adapters/certs", "adapters/mqtt/wire", "engine/domain", "workers/journal", "workers/modcache", "workers/runtime", "paho", "ulid"}},
	{"examples", "example modules, embedded for `jetprop demo`", nil},
	{"cmd/...", "`jetprop` (CLI, `up`, `server`, `proxy`; `cmd/jetprop/app` is the composition root) and `proplet`; `cmd/internal/envflag` (the one flag-and-environment helper of every command), `cmd/internal/pprofmux` (the pprof routes behind every `--pprof`) and `cmd/internal/propletcmd` (the proplet command, shared by `proplet` and `jetprop proplet`): flags, environment and wiring only", []string{"*"}},
	{"testing/...", "test harnesses: `natstest`, `storetest`, `apitest`, `registrytest`, `wasmfixtures`, `tlstest` (a development PKI per test), `tcpproxy` (a TCP relay that can cut, refuse, hold or read connections), `replay` (golden histories, simulations), `e2e` (real processes, kill -9), `fleetsim` (simulated proplets on real MQTT, the measurements of `jetprop sim` and `make fleet-bench`), `upproc` (`jetprop up` as a process of its own, for `make fleet-bench` and `make restart-bench`), `archtest` (this table)", []string{"*"}},
}

// Closures are packages whose whole dependency closure (go list -deps)
// must not reach the named modules.
var Closures = []struct {
	Path    string
	Tests   bool // with the package's tests
	Without []string
	Why     string
}{
	{"adapters/mqtt/proxy", false, []string{"nats.go", "nats-server", "wazero"}, "the proxy runs beside a Propeller manager, on any MQTT broker"},
	{"cmd/proplet", false, []string{"nats.go", "nats-server"}, "the proplet is a small binary for devices"},
	{"engine", true, []string{"nats-server"}, "the pure core's tests need no server"},
	{"adapters/httpapi/client", false, []string{"client_golang"}, "the API takes metrics through a port: its Go client carries no Prometheus"},
}
