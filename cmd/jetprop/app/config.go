package app

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/adapters/sealer"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
)

// Config is everything `jetprop server` and `jetprop up` are told.
type Config struct {
	DataDir    string
	Host       string // listen address of the embedded NATS and MQTT ports
	HTTPAddr   string
	NATSPort   int
	MQTTPort   int
	NATSURL    string // use this NATS server (or cluster: a comma-separated list) instead of embedding one
	MQTTURL    string // its MQTT listener, or a comma-separated list (required with NATSURL)
	Tenant     string
	Channel    string
	Proplets   int // local proplets (up only)
	Replicas   int
	MaxModule  int64
	SyncAlways bool
	Liveness   time.Duration
	// TaskSlots caps the tasks a start places on one proplet (0: no
	// cap); service.WithTaskSlots.
	TaskSlots int
	// AcceptTimeout: a proplet on its own topics that has not accepted a
	// start this long after it was first sent is marked unreachable and
	// the task goes to another device.
	AcceptTimeout time.Duration
	// DeadlineGrace: a running attempt of a task that is not a daemon nor
	// a workflow's is given up (a new attempt, or the task fails "timed
	// out") this long after its timeout (engine.DefaultTaskTimeout when it
	// has none) passed without its result.
	DeadlineGrace time.Duration
	LogLevel      string
	ChunkSize     int
	// DeviceLimit and DeviceAliveLimit are each device's rate limits of
	// inbound messages: results, accepts, metrics and module requests;
	// discoveries and heartbeats (mqtt.InboundConfig; zero fields take
	// the defaults, a negative rate turns a limit off).
	DeviceLimit, DeviceAliveLimit mqtt.RateLimit
	// EdgeMaxBytes bounds the EDGE_IN stream (default
	// mqtt.DefaultEdgeMaxBytes with the embedded server, none with
	// NATSURL; negative: no bound).
	EdgeMaxBytes int64
	// SnapshotInterval is how often the read models' snapshots are
	// written (also at shutdown); a start loads them and replays only the
	// events after them. Negative: no snapshots (every start replays
	// every stream).
	SnapshotInterval time.Duration

	// A cluster node (cluster.go): the embedded server's name, its route
	// listener, the other nodes' routes (comma-separated), the cluster's
	// name and the secret every node shares (ClusterSecret from
	// JETPROP_CLUSTER_SECRET only, or ClusterSecretFile).
	ServerName        string
	ClusterName       string
	ClusterListen     string
	Routes            string
	ClusterSecret     string
	ClusterSecretFile string

	// Auth requires credentials: a bearer token on every HTTP API request
	// but GET /health, and a provisioned device's id and key on every MQTT
	// connection. Off is dev mode (any MQTT client is admitted, anonymously,
	// to the device topics alone), allowed on loopback addresses only
	// unless Insecure.
	Auth bool
	// Insecure lets a server without Auth listen on addresses that are
	// not loopback.
	Insecure bool
	// The HTTP API's server timeouts and the requests one client may have
	// in flight (httpapi.Limits): the request's headers must arrive within
	// HTTPReadHeaderTimeout, its body within HTTPReadTimeout plus one
	// second per HTTPMinReadRate bytes, its answer within
	// HTTPWriteTimeout; a keep-alive connection idles HTTPIdleTimeout at
	// most. Zero: the default.
	HTTPReadHeaderTimeout time.Duration
	HTTPReadTimeout       time.Duration
	HTTPMinReadRate       int64
	HTTPWriteTimeout      time.Duration
	HTTPIdleTimeout       time.Duration
	HTTPMaxPerClient      int

	// PprofAddr serves Go's runtime profiles (net/http/pprof) on this
	// address, which must be loopback: they hold no secret but cost CPU
	// and say much about the process. Empty: off.
	PprofAddr string

	// MetricsOff turns the collection of metrics off: no windows of
	// device and task samples (their routes answer empty pages), no
	// dispatch and result latencies, and the local proplets publish no
	// metrics. GET /metrics still serves what the server keeps anyway.
	// For measuring what collection costs (BenchmarkDispatchMetrics).
	MetricsOff bool

	// The key secrets are sealed with: SecretsKey (the key in base64, from
	// JETPROP_SECRETS_KEY only, never a flag) or SecretsKeyFile (a file
	// holding it, raw or in base64). Without either, GenerateSecretsKey
	// keeps one in SecretsKeyPath(DataDir), made at the first secret set
	// (jetprop up in dev mode); otherwise secrets are refused.
	SecretsKey         string
	SecretsKeyFile     string
	GenerateSecretsKey bool

	OCIPlainHTTP bool
	OCIUsername  string
	OCIPassword  string
	OCIToken     string
	// OCIRegistryHosts are the registries ("host[:port]", comma-separated)
	// the OCI credentials above are sent to; every other registry is asked
	// anonymously. Credentials without it are refused by Validate.
	OCIRegistryHosts string

	// TLS of the listeners (tls.go): one certificate for HTTP, NATS and
	// MQTT; TLSCA verifies client certificates on NATS and MQTT.
	TLSCert       string
	TLSKey        string
	TLSCA         string
	TLSClientAuth string // off, optional or require (default: require with TLSCA, else off)
	// TLS of the connections to the server given by NATSURL and MQTTURL.
	NATSCA   string
	NATSCert string
	NATSKey  string
}

// Defaults: the flags of `jetprop up` and `jetprop server` start at these,
// and setDefaults puts them in the zero fields that have one.
const (
	DefaultHTTP      = "127.0.0.1:7070"
	DefaultData      = "./jetprop-data"
	DefaultHost      = natsserver.DefaultHost
	DefaultNATSPort  = natsserver.DefaultNATSPort
	DefaultMQTTPort  = natsserver.DefaultMQTTPort
	DefaultTenant    = "jetprop"
	DefaultChannel   = "default"
	DefaultReplicas  = 1
	DefaultMaxModule = domain.DefaultMaxModuleSize
	DefaultLiveness  = service.DefaultLivenessTimeout
	DefaultAccept    = 30 * time.Second
	DefaultGrace     = engine.DefaultDeadlineGrace
	DefaultChunkSize = outbound.DefaultChunkSize
	DefaultLogLevel  = "info"
	DefaultProplets  = 1 // up; a Config's zero is none

	DefaultHTTPReadHeaderTimeout = 10 * time.Second
	DefaultHTTPReadTimeout       = httpapi.DefaultReadTimeout
	DefaultHTTPMinReadRate       = httpapi.DefaultMinReadRate
	DefaultHTTPWriteTimeout      = httpapi.DefaultWriteTimeout
	DefaultHTTPIdleTimeout       = 2 * time.Minute
	DefaultHTTPMaxPerClient      = httpapi.DefaultPerClient
	// Rate limits per device and the bound of EDGE_IN (docs/limits.md).
	DefaultDeviceRate       = mqtt.DefaultWorkRate
	DefaultDeviceBurst      = mqtt.DefaultWorkBurst
	DefaultDeviceAliveRate  = mqtt.DefaultLivenessRate
	DefaultDeviceAliveBurst = mqtt.DefaultLivenessBurst
	DefaultEdgeMaxBytes     = mqtt.DefaultEdgeMaxBytes
)

// setDefaults fills the zero fields whose zero means "the default". The
// others (DataDir, HTTPAddr, Tenant, Channel, Replicas, MaxModule) must be
// set; Validate says which is not.
func (c *Config) setDefaults() {
	c.Host = cmp.Or(c.Host, DefaultHost)
	c.NATSPort = cmp.Or(c.NATSPort, DefaultNATSPort)
	c.MQTTPort = cmp.Or(c.MQTTPort, DefaultMQTTPort)
	c.Liveness = cmp.Or(c.Liveness, DefaultLiveness)
	c.AcceptTimeout = cmp.Or(c.AcceptTimeout, DefaultAccept)
	c.DeadlineGrace = cmp.Or(c.DeadlineGrace, DefaultGrace)
	c.ChunkSize = cmp.Or(c.ChunkSize, DefaultChunkSize)
	if c.NATSURL == "" { // an outside server's store is its own: no default reservation in it
		c.EdgeMaxBytes = cmp.Or(c.EdgeMaxBytes, mqtt.DefaultEdgeMaxBytes)
	}
	c.SnapshotInterval = cmp.Or(c.SnapshotInterval, DefaultSnapshotInterval)
	c.LogLevel = cmp.Or(c.LogLevel, DefaultLogLevel)
	c.HTTPReadHeaderTimeout = cmp.Or(c.HTTPReadHeaderTimeout, DefaultHTTPReadHeaderTimeout)
	c.HTTPReadTimeout = cmp.Or(c.HTTPReadTimeout, DefaultHTTPReadTimeout)
	c.HTTPMinReadRate = cmp.Or(c.HTTPMinReadRate, DefaultHTTPMinReadRate)
	c.HTTPWriteTimeout = cmp.Or(c.HTTPWriteTimeout, DefaultHTTPWriteTimeout)
	c.HTTPIdleTimeout = cmp.Or(c.HTTPIdleTimeout, DefaultHTTPIdleTimeout)
	c.HTTPMaxPerClient = cmp.Or(c.HTTPMaxPerClient, DefaultHTTPMaxPerClient)
	c.TLSClientAuth = cmp.Or(c.TLSClientAuth, string(certs.DefaultClientAuth(c.TLSCA)))
}

// Validate fills defaults (setDefaults), then checks the config.
func (c *Config) Validate() error {
	c.setDefaults()
	if err := (wire.Topics{Tenant: c.Tenant, Channel: c.Channel}).Validate(); err != nil {
		return err
	}
	switch {
	case c.DataDir == "":
		return errors.New("--data must not be empty")
	case c.HTTPAddr == "":
		return errors.New("--http must not be empty")
	case !validAddr(c.HTTPAddr):
		return fmt.Errorf("--http %q: want host:port, e.g. 127.0.0.1:7070", c.HTTPAddr)
	case c.Proplets < 0:
		return errors.New("--proplets must not be negative")
	case c.NATSURL != "" && c.MQTTURL == "":
		return errors.New("--mqtt-url is required with --nats-url (proplets and the engine publish over MQTT)")
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("--replicas %d: want 1 to 5", c.Replicas)
	case c.MaxModule <= 0:
		return errors.New("--max-module must be positive")
	case c.DeadlineGrace < 0:
		return errors.New("--deadline-grace must not be negative")
	case c.ChunkSize < 0:
		return errors.New("--chunk-size must not be negative")
	case c.TaskSlots < 0:
		return errors.New("--task-slots must not be negative (0: no cap)")
	case c.HTTPReadHeaderTimeout < 0, c.HTTPReadTimeout < 0, c.HTTPWriteTimeout < 0, c.HTTPIdleTimeout < 0:
		return errors.New("--http-read-header-timeout, --http-read-timeout, --http-write-timeout and --http-idle-timeout must not be negative")
	case c.HTTPMinReadRate < 0:
		return errors.New("--http-min-read-rate must not be negative")
	case c.HTTPMaxPerClient < 0:
		return errors.New("--http-max-per-client must not be negative")
	case c.DeviceLimit.Burst < 0 || c.DeviceAliveLimit.Burst < 0:
		return errors.New("--device-burst and --device-alive-burst must not be negative")
	case c.OCIToken != "" && c.OCIUsername != "":
		return errors.New("--oci-token and --oci-username exclude each other")
	case (c.OCIToken != "" || c.OCIUsername != "" || c.OCIPassword != "") && len(c.OCIHosts()) == 0:
		return errors.New("--oci-username, --oci-password and --oci-token need --oci-registry-hosts: the registries (host[:port], comma-separated) " +
			"they are sent to; every other registry is asked anonymously, so a reference a user names never gets the server's credentials")
	case len(c.OCIHosts()) > 0 && c.OCIToken == "" && c.OCIUsername == "":
		return errors.New("--oci-registry-hosts without --oci-token or --oci-username (and --oci-password): no credentials to send to them")
	case c.SecretsKey != "" && c.SecretsKeyFile != "":
		return errors.New("JETPROP_SECRETS_KEY and --secrets-key-file exclude each other")
	}
	if c.SecretsKey != "" {
		if _, err := sealer.ParseKey([]byte(c.SecretsKey)); err != nil {
			return fmt.Errorf("JETPROP_SECRETS_KEY: %w", err)
		}
	}
	if exposed := c.Exposed(); len(exposed) > 0 && !c.Auth && !c.Insecure {
		return fmt.Errorf("refusing to listen on %s without authentication: anyone who can reach it could run code on your proplets; "+
			"start with --auth on (API tokens and device credentials), or with --insecure to run open anyway", strings.Join(exposed, " and "))
	}
	if c.PprofAddr != "" {
		if host, _, err := net.SplitHostPort(c.PprofAddr); err != nil || !Loopback(host) {
			return fmt.Errorf("--pprof %s: profiles are served on a loopback address only (e.g. 127.0.0.1:6060)", c.PprofAddr)
		}
	}
	if err := c.validateCluster(); err != nil {
		return err
	}
	return c.validateTLS()
}

// Exposed lists the listen addresses that are not loopback, as flags
// ("--http 0.0.0.0:7070", "--host 0.0.0.0"): the HTTP API's, and the
// embedded NATS and MQTT listeners' (with an external NATS server, what
// it exposes is its own configuration's business). A host name other
// than localhost counts as exposed: it is not resolved.
func (c *Config) Exposed() []string {
	var out []string
	if host, _, err := net.SplitHostPort(c.HTTPAddr); err != nil || !Loopback(host) {
		out = append(out, "--http "+c.HTTPAddr)
	}
	if c.NATSURL == "" && !Loopback(cmp.Or(c.Host, DefaultHost)) {
		out = append(out, "--host "+c.Host)
	}
	return out
}

// Loopback reports whether host is "localhost" or a loopback IP address
// (brackets allowed); "" and "0.0.0.0" (every interface) are not.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func validAddr(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port != ""
}

// httpLimits are the HTTP API's limits (a validated config has them all).
func (c *Config) httpLimits() httpapi.Limits {
	return httpapi.Limits{ReadTimeout: c.HTTPReadTimeout, MinReadRate: c.HTTPMinReadRate,
		WriteTimeout: c.HTTPWriteTimeout, PerClient: c.HTTPMaxPerClient}
}

// OCIHosts are the hosts of OCIRegistryHosts, lower-cased, without blanks.
func (c Config) OCIHosts() []string {
	var out []string
	for _, h := range strings.Split(c.OCIRegistryHosts, ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			out = append(out, h)
		}
	}
	return out
}
