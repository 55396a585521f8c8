package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jetprop/jetprop/cmd/internal/envflag"
	"github.com/jetprop/jetprop/cmd/internal/propletcmd"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
)

// The commands that run jetprop parse their own flags (app.Config's).

func runUp(ctx context.Context, e *env, args []string) error {
	return serve(ctx, e, "up", args)
}

func runServer(ctx context.Context, e *env, args []string) error {
	return serve(ctx, e, "server", args)
}

func runProplet(ctx context.Context, e *env, args []string) error {
	return propletcmd.Main(ctx, args, e.stderr, e.lookup)
}

// serve parses the server flags, starts jetprop and runs until ctx is done
// or a component fails.
func serve(ctx context.Context, e *env, name string, args []string) error {
	cfg, err := serverConfig(e, name, args)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.LogLevel)
	if gc := tuneGC(e.lookup); gc != "" {
		log.Debug("garbage collector", "set", gc, "override", "GOGC, GOMEMLIMIT")
	}
	a, err := app.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintf(e.stdout, "jetprop %s %s ready\n  http    %s\n  nats    %s\n  mqtt    %s\n  data    %s\n  topics  m/%s/c/%s/...\n  %s\n",
		name, version(), a.HTTPURL(), a.NATSURL(), a.MQTTURL(), cfg.DataDir, cfg.Tenant, cfg.Channel, authBanner(cfg, a))
	if cfg.Clustered() {
		fmt.Fprintf(e.stdout, "  cluster node %s of %s, routes %s\n", cfg.ServerName, cmp.Or(cfg.ClusterName, app.DefaultClusterName), cmp.Or(cfg.Routes, "(none)"))
	}
	if q := a.Quarantine(); q.Len() > 0 || len(q.Streams()) > 0 {
		fmt.Fprintf(e.stdout, "  health  degraded: %d quarantined, %d damaged streams; see 'jetprop events doctor --server %s'\n",
			q.Len(), len(q.Streams()), a.HTTPURL())
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(e.stdout, "jetprop: shutting down")
		return nil
	case <-a.Failed():
		return a.Err()
	}
}

// authBanner is the start banner's line about authentication.
func authBanner(cfg app.Config, a *app.App) string {
	switch exposed := cfg.Exposed(); {
	case cfg.Auth && a.AdminTokenFileExists():
		return "auth    on: API requests need a token; an admin token is in " + app.AdminTokenPath(cfg.DataDir)
	case cfg.Auth:
		return "auth    on: API requests need a token"
	case len(exposed) > 0:
		return "INSECURE: no authentication on " + strings.Join(exposed, " and ") + " (--insecure): anyone who can reach it may use it"
	}
	return "dev mode: no authentication (loopback only); start with --auth on for tokens and device credentials"
}

var serveHelp = map[string]string{
	"up": `Run jetprop on one box: an embedded nats-server (JetStream on disk under
--data, the NATS port, the MQTT port proplets connect to), the engine, the
HTTP API and --proplets local proplets, until interrupted.`,
	"server": `Run a jetprop server: the engine and the HTTP API, with an embedded
nats-server or, with --nats-url, an existing NATS server (JetStream and MQTT
enabled). Proplets connect to the MQTT port. With --cluster-listen the
embedded server is a node of a cluster of jetprop servers (see
docs/production.md). Runs until interrupted.`,
}

// serverConfig parses the flags of up or server.
func serverConfig(e *env, name string, args []string) (app.Config, error) {
	fs := flag.NewFlagSet("jetprop "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	set := envflag.New(fs, e.lookup)
	var cfg app.Config
	serverFlags(set, &cfg, name == "up")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(e.stdout, "Usage: jetprop %s [flags]\n\n%s\n\nFlags:\n", name, serveHelp[name])
			set.PrintDefaults(e.stdout)
		}
		return cfg, usageErr(name, err)
	}
	if fs.NArg() > 0 {
		return cfg, usageErr(name, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if _, err := parseLevel(cfg.LogLevel); err != nil {
		return cfg, usageErr(name, err)
	}
	secretsKey(e, &cfg, name == "up")
	if v, ok := e.lookup("JETPROP_CLUSTER_SECRET"); ok && name == "server" {
		cfg.ClusterSecret = strings.TrimSpace(v) // a variable only: a flag would show in the process list
	}
	return cfg, errors.Join(set.Err(), cfg.Validate())
}

// serverFlags declares the flags of up (with --proplets) and server on s,
// each bound to its JETPROP_* variable.
func serverFlags(s *envflag.Set, c *app.Config, up bool) {
	s.String(&c.DataDir, "data", app.DefaultData, "data directory: JetStream store, proplet caches", "JETPROP_DATA")
	s.String(&c.HTTPAddr, "http", app.DefaultHTTP, "HTTP API listen address", "JETPROP_HTTP")
	httpLimitFlags(s, c)
	s.String(&c.Host, "host", app.DefaultHost, "listen address of the NATS and MQTT ports; 0.0.0.0 to let devices on the network in (with --auth on, or --insecure)", "JETPROP_HOST")
	s.Int(&c.NATSPort, "nats-port", app.DefaultNATSPort, "NATS client port of the embedded server, -1 for a random one", "JETPROP_NATS_PORT")
	s.Int(&c.MQTTPort, "mqtt-port", app.DefaultMQTTPort, "MQTT port proplets connect to, -1 for a random one", "JETPROP_MQTT_PORT")
	s.String(&c.NATSURL, "nats-url", "", "use an existing NATS server (JetStream and MQTT enabled) instead of embedding one", "JETPROP_NATS_URL")
	s.String(&c.MQTTURL, "mqtt-url", "", "MQTT listener of the server given by --nats-url, e.g. tcp://nats:1883", "JETPROP_MQTT_URL")
	s.String(&c.Tenant, "tenant", app.DefaultTenant, "Propeller tenant (domain) id in topics m/<tenant>/c/<channel>/...", "JETPROP_TENANT")
	s.String(&c.Channel, "channel", app.DefaultChannel, "Propeller channel id in topics", "JETPROP_CHANNEL")
	s.Int(&c.Replicas, "replicas", app.DefaultReplicas, "replicas of every stream: 1 on one box, 3 on a cluster", "JETPROP_REPLICAS")
	s.Int64(&c.MaxModule, "max-module", app.DefaultMaxModule, "largest wasm module accepted, in bytes", "JETPROP_MAX_MODULE")
	s.Bool(&c.SyncAlways, "sync-always", false, "fsync every JetStream write: survives power loss, about 4x slower appends", "JETPROP_SYNC_ALWAYS")
	s.Duration(&c.Liveness, "liveness-timeout", app.DefaultLiveness, "mark a proplet offline after this long without a heartbeat", "JETPROP_LIVENESS_TIMEOUT")
	s.Duration(&c.AcceptTimeout, "accept-timeout", app.DefaultAccept, "place a task elsewhere, and mark its proplet unreachable, when the proplet has not accepted the start this long after it was first sent (jetprop proplets; the start is sent again meanwhile)", "JETPROP_ACCEPT_TIMEOUT")
	s.Duration(&c.DeadlineGrace, "deadline-grace", app.DefaultGrace, "give up a running task's attempt this long after its timeout (timeout_ms, else 60s; not daemons nor workflow steps) passed without a result: a new attempt elsewhere while its retry policy allows, else it fails \"timed out\"", "JETPROP_DEADLINE_GRACE")
	s.Duration(&c.SnapshotInterval, "snapshot-interval", app.DefaultSnapshotInterval, "write snapshots of the tasks, devices and workflows read models this often (and at shutdown) to the SNAPSHOTS object store, so a start replays only the events after them; a negative value turns snapshots off (every start replays every stream)", "JETPROP_SNAPSHOT_INTERVAL")
	s.String(&c.PprofAddr, "pprof", "", "serve Go's runtime profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060; off by default", "JETPROP_PPROF")
	s.Int(&c.ChunkSize, "chunk-size", app.DefaultChunkSize, "bytes a module chunk carries to proplets over MQTT (capped to fit the max payload)", "JETPROP_CHUNK_SIZE")
	deviceLimitFlags(s, c)
	s.Int(&c.TaskSlots, "task-slots", 0, "tasks a start places on one proplet at most (scheduled or running there): a proplet at the cap is busy, a start when every one is busy is 409, and cron task firings wait and start by priority; 0: no cap", "JETPROP_TASK_SLOTS")
	s.Bool(&c.OCIPlainHTTP, "oci-plain-http", false, "talk plain HTTP to OCI registries (loopback or lab registries)", "JETPROP_OCI_PLAIN_HTTP")
	s.String(&c.OCIUsername, "oci-username", "", "username for the registries of --oci-registry-hosts", "JETPROP_OCI_USERNAME")
	s.String(&c.OCIPassword, "oci-password", "", "password for the registries of --oci-registry-hosts", "JETPROP_OCI_PASSWORD")
	s.String(&c.OCIToken, "oci-token", "", "bearer token for the registries of --oci-registry-hosts", "JETPROP_OCI_TOKEN")
	s.String(&c.OCIRegistryHosts, "oci-registry-hosts", "", "`hosts` (host[:port], comma-separated) the --oci-username/--oci-password/--oci-token credentials are sent to "+
		"(required with them); every other registry is asked anonymously", "JETPROP_OCI_REGISTRY_HOSTS")
	s.Var((*onOff)(&c.Auth), "auth", "`on|off`: on requires API tokens (an admin token is written to --data/admin.token at first start) and device credentials; "+
		"off is dev mode, on loopback addresses only", "JETPROP_AUTH")
	s.Bool(&c.Insecure, "insecure", false, "allow --auth off on addresses that are not loopback (--http, --host): anyone who can reach them may use them", "JETPROP_INSECURE")
	s.String(&c.SecretsKeyFile, "secrets-key-file", "", "`file` holding the key secrets are sealed with: 32 random bytes, raw or base64 "+
		"(head -c 32 /dev/urandom | base64 > FILE); or the key itself in base64 in JETPROP_SECRETS_KEY. "+
		"Without either, 'up' without --auth makes --data/secrets.key at the first secret set; otherwise secrets are refused", "JETPROP_SECRETS_KEY_FILE")
	s.String(&c.LogLevel, "log-level", app.DefaultLogLevel, "debug, info, warn or error", "JETPROP_LOG_LEVEL")
	serverTLSFlags(s, c)
	if up {
		s.Int(&c.Proplets, "proplets", app.DefaultProplets, "local proplets to start in this process, 0 for none", "JETPROP_PROPLETS")
		return
	}
	clusterFlags(s, c)
}

// deviceLimitFlags declares the bounds of what devices send (docs/limits.md).
func deviceLimitFlags(s *envflag.Set, c *app.Config) {
	s.Float64(&c.DeviceLimit.Rate, "device-rate", app.DefaultDeviceRate, "results, accepts, metrics and module requests a device may send a second, on average (more are dropped and counted, GET /inbound/stats); negative: no limit", "JETPROP_DEVICE_RATE")
	s.Int(&c.DeviceLimit.Burst, "device-burst", app.DefaultDeviceBurst, "results, accepts, metrics and module requests a device may send at once", "JETPROP_DEVICE_BURST")
	s.Float64(&c.DeviceAliveLimit.Rate, "device-alive-rate", app.DefaultDeviceAliveRate, "discoveries and heartbeats a device may send a second, on average; negative: no limit", "JETPROP_DEVICE_ALIVE_RATE")
	s.Int(&c.DeviceAliveLimit.Burst, "device-alive-burst", app.DefaultDeviceAliveBurst, "discoveries and heartbeats a device may send at once", "JETPROP_DEVICE_ALIVE_BURST")
	s.Int64(&c.EdgeMaxBytes, "edge-max-bytes", 0, "bytes the EDGE_IN stream of device messages may hold (the oldest go first), reserved from the NATS store; default "+strconv.Itoa(app.DefaultEdgeMaxBytes)+" with the embedded server, none with --nats-url; negative: no bound", "JETPROP_EDGE_MAX_BYTES")
}

// clusterFlags declares the flags that make server's embedded nats-server
// a cluster node (docs/production.md).
func clusterFlags(s *envflag.Set, c *app.Config) {
	s.String(&c.ClusterListen, "cluster-listen", "", "`host:port` of this node's route listener: makes the embedded server a node of a cluster "+
		"(with --server-name, --routes and the cluster secret; see docs/production.md)", "JETPROP_CLUSTER_LISTEN")
	s.String(&c.ServerName, "server-name", "", "this node's name, unique in the cluster (n1, n2, ...)", "JETPROP_SERVER_NAME")
	s.String(&c.ClusterName, "cluster-name", "", "the cluster's name, the same on every node (default "+app.DefaultClusterName+")", "JETPROP_CLUSTER_NAME")
	s.String(&c.Routes, "routes", "", "route addresses of the other nodes, comma-separated host:port (the same list on every node may include the node itself)", "JETPROP_ROUTES")
	s.String(&c.ClusterSecretFile, "cluster-secret-file", "", "`file` holding the secret every node shares (head -c 32 /dev/urandom | base64 > FILE): "+
		"the engine's passwords, the auth callout's key and the routes' password derive from it; or the secret itself in JETPROP_CLUSTER_SECRET", "JETPROP_CLUSTER_SECRET_FILE")
}

// secretsKey reads the key of secrets from JETPROP_SECRETS_KEY, a
// variable with no flag (a key on the command line would show in the
// process list and the shell's history), and has `up` in dev mode keep a
// key file in its data directory when no key is given.
func secretsKey(e *env, cfg *app.Config, up bool) {
	if v, ok := e.lookup("JETPROP_SECRETS_KEY"); ok {
		cfg.SecretsKey = strings.TrimSpace(v)
	}
	cfg.GenerateSecretsKey = up && !cfg.Auth
}

// onOff is a bool flag spelled on or off (--auth on).
type onOff bool

func (v *onOff) String() string {
	if v != nil && *v {
		return "on"
	}
	return "off"
}

func (v *onOff) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on":
		*v = true
	case "off":
		*v = false
	default:
		return fmt.Errorf("%q: want on or off", s)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	l, _ := parseLevel(level) // checked by serverConfig
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// httpLimitFlags declares the HTTP API's timeouts and per-client cap
// (docs/limits.md).
func httpLimitFlags(s *envflag.Set, c *app.Config) {
	s.Duration(&c.HTTPReadHeaderTimeout, "http-read-header-timeout", app.DefaultHTTPReadHeaderTimeout, "a request's headers must arrive within this `duration`", "JETPROP_HTTP_READ_HEADER_TIMEOUT")
	s.Duration(&c.HTTPReadTimeout, "http-read-timeout", app.DefaultHTTPReadTimeout, "a request's body must arrive within this `duration`, plus 1s per --http-min-read-rate bytes (408 otherwise)", "JETPROP_HTTP_READ_TIMEOUT")
	s.Int64(&c.HTTPMinReadRate, "http-min-read-rate", app.DefaultHTTPMinReadRate, "the slowest upload, in `bytes/s`, that is given all the time it needs", "JETPROP_HTTP_MIN_READ_RATE")
	s.Duration(&c.HTTPWriteTimeout, "http-write-timeout", app.DefaultHTTPWriteTimeout, "an answer must be written within this `duration` after the request's body (long polls, event streams and downloads excepted)", "JETPROP_HTTP_WRITE_TIMEOUT")
	s.Duration(&c.HTTPIdleTimeout, "http-idle-timeout", app.DefaultHTTPIdleTimeout, "close a keep-alive connection idle this long", "JETPROP_HTTP_IDLE_TIMEOUT")
	s.Int(&c.HTTPMaxPerClient, "http-max-per-client", app.DefaultHTTPMaxPerClient, "requests one client (its token with --auth on, else its IP address) may have in flight; more are answered 429", "JETPROP_HTTP_MAX_PER_CLIENT")
}
