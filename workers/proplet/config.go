package proplet

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/workers/journal"
)

// Defaults, the same as Propeller's proplet where it has one.
const (
	DefaultMQTTAddress = "tcp://localhost:1883"
	DefaultQoS         = 2
	DefaultLiveliness  = 10 * time.Second
	// DefaultMetricsInterval is how often proplet and task metrics are
	// published (the Rust proplet's PROPLET_METRICS_INTERVAL default).
	DefaultMetricsInterval = 10 * time.Second
	// MinMetricsInterval bounds how often metrics may be published: a
	// sample costs the engine a decode and a window slot on every replica.
	MinMetricsInterval  = time.Second
	DefaultTaskTimeout  = 60 * time.Second // non-daemon tasks without timeout_ms
	DefaultMemoryMiB    = 256              // tasks without memory_mib
	DefaultMaxModuleMiB = 100              // largest module fetched (the engine's default limit too)
	DefaultLogLevel     = "info"
	// DefaultChunkTimeout is the quiet period after which the missing
	// chunks of a module are asked for again (doubling each time).
	DefaultChunkTimeout = 3 * time.Second
	// DefaultChunkRetries is how many quiet periods in a row fail a download.
	DefaultChunkRetries = 5
	// DefaultModuleCacheMiB bounds the on-disk module cache.
	DefaultModuleCacheMiB = 1024
	// DefaultResultResend is how long a result on the proplet's own topics
	// waits for the engine's ack before it is sent again (then twice as
	// long each time, at most two minutes).
	DefaultResultResend = 10 * time.Second
	// DefaultUnackedResults bounds the results kept until acked (and 64
	// MiB of them): the oldest is dropped first, with a log line.
	DefaultUnackedResults = journal.DefaultResultLimit
	// MaxMemoryMiB is the most a 32-bit wasm memory can address.
	MaxMemoryMiB = 4096
)

// Config is everything a proplet needs. Fill it by hand, or with the
// proplet command's flags (cmd/internal/propletcmd, whose defaults come
// from Propeller's PROPLET_* variables); Validate fills the zero fields
// with the defaults and checks it.
type Config struct {
	// MQTTAddress is the broker URL (tcp://, mqtt://, ssl://, tls://,
	// mqtts://, ws:// or wss://), or several, comma-separated: the nodes
	// of a cluster, tried in order, the next one when a connection is
	// lost.
	MQTTAddress string
	Tenant      string // topic prefix m/<tenant>/c/<channel>
	Channel     string
	// EntityID is the proplet id: MQTT client id and username. Empty: a
	// ULID generated once and kept in DataDir/proplet-id.
	EntityID string
	APIKey   string // MQTT password
	// Namespace is reported in discovery and heartbeats.
	Namespace string
	// SharedTopics makes the proplet speak on Propeller's shared topics
	// (control/proplet/results, control/manager/start, ...), as a member
	// of a Propeller manager's fleet. Otherwise it uses its own topics
	// (control/proplet/<id>/results, control/manager/<id>/start, ...): a
	// jetprop engine sends it only what is addressed to it, and its
	// messages prove who sent them.
	SharedTopics bool
	// ExternalRuntime is a wasm runtime binary to run modules with, instead
	// of in-process wazero.
	ExternalRuntime string
	// TieredOff compiles a latent task's module with wazero's optimizing
	// compiler before it answers, instead of with the interpreter first
	// (answering at once) and the compiler in the background
	// (runtime.Options.Tiered).
	TieredOff bool
	// DataDir holds the proplet id, the journal (the MQTT session store,
	// so unacknowledged QoS >= 1 messages survive a crash, and the tasks
	// accepted, reported interrupted after one), the module cache and the
	// downloads in progress (modules/) and the compilation cache.
	// One proplet per DataDir.
	DataDir string
	// QoS is 0, 1 or 2 for discovery and, with SharedTopics, the
	// subscriptions to starts and stops; results use at least 1. On its
	// own topics the proplet subscribes at QoS 0 (see subscribe).
	QoS byte
	// HeartbeatQoS is the QoS of the heartbeats, 0 by default: a
	// heartbeat is superseded by the next one, and at QoS 1 or 2 the
	// broker stores and acknowledges each (docs/RATIONALE.md, "Heartbeats
	// at QoS 0"). Metrics go at QoS 0 too.
	HeartbeatQoS byte
	// Liveliness is the heartbeat interval.
	Liveliness time.Duration
	// DefaultTimeout bounds a non-daemon task that carries no timeout_ms.
	// Daemon tasks run until they end or are stopped.
	DefaultTimeout time.Duration
	// DefaultMemoryMiB bounds a task's wasm memory when it carries no memory_mib.
	DefaultMemoryMiB int
	// MaxModuleMiB caps a module fetched from an http(s) image_url or over
	// the registry topics.
	MaxModuleMiB int
	// ModuleCacheMiB bounds the modules kept in DataDir/modules by digest
	// (least recently used evicted first).
	ModuleCacheMiB int
	// ChunkTimeout is the quiet period of a chunked download: when no new
	// chunk came for that long, the missing ones are asked for again, and
	// the period doubles (at most 30 s).
	ChunkTimeout time.Duration
	// ChunkRetries is how many quiet periods in a row fail a download.
	ChunkRetries int
	// ResultResend is how long a result on the proplet's own topics waits
	// for the engine's ack (wire.ResultAck) before it is sent again; the
	// wait doubles each time, to at most two minutes. Results are kept in
	// the journal until acked, UnackedResults of them at most.
	ResultResend   time.Duration
	UnackedResults int
	LogLevel       string // debug, info, warn, error (used by the proplet command)
	// MetricsInterval is how often the proplet publishes its metrics
	// (control/proplet/metrics) and those of each running task
	// (control/proplet/task_metrics), in the Rust proplet's shape.
	MetricsInterval time.Duration
	// MetricsOff publishes no metrics (Propeller's
	// PROPLET_ENABLE_MONITORING=false).
	MetricsOff bool
	// Observer, when set, is told of every task that ends (the proplet
	// command's Prometheus metrics).
	Observer RunObserver `json:"-"`

	// MQTT over TLS (an ssl://, tls://, mqtts:// or wss:// address; see
	// tls.go). PEM files, as Propeller's PROPLET_MQTT_TLS_* variables name
	// them: the CA the broker's certificate is verified against (default:
	// the system's CAs), and a client certificate with its key for mutual
	// TLS.
	MQTTCACert     string
	MQTTClientCert string
	MQTTClientKey  string
	// MQTTInsecureSkipVerify accepts any broker certificate. Labs only.
	MQTTInsecureSkipVerify bool
	// TLS, when set, is used as is instead of the files (the local
	// proplets of `jetprop up`).
	TLS *tls.Config `json:"-"`
}

// Validate fills defaults (setDefaults), then reports every problem at once.
func (c *Config) Validate() error {
	c.setDefaults()
	errs := c.validateMQTT()
	errs = append(errs, c.validateTLS()...)
	errs = append(errs, c.validateLimits()...)
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required (--data or PROPLET_DATA_DIR)"))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("log level %q: want debug, info, warn or error (--log-level or PROPLET_LOG_LEVEL)", c.LogLevel))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("proplet: invalid config:\n%w", err)
	}
	return nil
}

// setDefaults fills the zero fields with the Default constants.
func (c *Config) setDefaults() {
	c.MQTTAddress = withDefaultPorts(cmp.Or(c.MQTTAddress, DefaultMQTTAddress))
	c.Liveliness = cmp.Or(c.Liveliness, DefaultLiveliness)
	c.MetricsInterval = cmp.Or(c.MetricsInterval, DefaultMetricsInterval)
	c.DefaultTimeout = cmp.Or(c.DefaultTimeout, DefaultTaskTimeout)
	c.DefaultMemoryMiB = cmp.Or(c.DefaultMemoryMiB, DefaultMemoryMiB)
	c.MaxModuleMiB = cmp.Or(c.MaxModuleMiB, DefaultMaxModuleMiB)
	c.ModuleCacheMiB = cmp.Or(c.ModuleCacheMiB, DefaultModuleCacheMiB)
	c.ChunkTimeout = cmp.Or(c.ChunkTimeout, DefaultChunkTimeout)
	c.ChunkRetries = cmp.Or(c.ChunkRetries, DefaultChunkRetries)
	c.ResultResend = cmp.Or(c.ResultResend, DefaultResultResend)
	c.UnackedResults = cmp.Or(c.UnackedResults, DefaultUnackedResults)
	c.LogLevel = cmp.Or(c.LogLevel, DefaultLogLevel)
	c.DataDir = cmp.Or(c.DataDir, DefaultDataDir())
}

func (c *Config) validateMQTT() []error {
	var errs []error
	if _, err := wire.Brokers(c.MQTTAddress); err != nil {
		errs = append(errs, fmt.Errorf("mqtt address %q: %w (--mqtt-url or PROPLET_MQTT_ADDRESS)", c.MQTTAddress, err))
	}
	// Check each level alone, so both are reported.
	if err := (wire.Topics{Tenant: c.Tenant, Channel: "-"}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w (--tenant or PROPLET_TENANT_ID)", err))
	}
	if err := (wire.Topics{Tenant: "-", Channel: c.Channel}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w (--channel or PROPLET_CHANNEL_ID)", err))
	}
	if c.QoS > 2 {
		errs = append(errs, fmt.Errorf("qos %d: want 0, 1 or 2 (--mqtt-qos or PROPLET_MQTT_QOS)", c.QoS))
	}
	if c.HeartbeatQoS > 2 {
		errs = append(errs, fmt.Errorf("heartbeat qos %d: want 0, 1 or 2 (--heartbeat-qos or PROPLET_HEARTBEAT_QOS)", c.HeartbeatQoS))
	}
	if strings.ContainsAny(c.EntityID, "/+# \t\r\n") {
		errs = append(errs, fmt.Errorf("entity id %q: it is a topic level (registry/server/<id>), so no /, +, # or spaces (--entity-id or PROPLET_ENTITY_ID)", c.EntityID))
	}
	return errs
}

func (c *Config) validateLimits() []error {
	var errs []error
	if c.Liveliness < 0 {
		errs = append(errs, fmt.Errorf("liveliness interval %s: want > 0 (--liveliness or PROPLET_LIVELINESS_INTERVAL)", c.Liveliness))
	}
	if c.MetricsInterval < MinMetricsInterval {
		errs = append(errs, fmt.Errorf("metrics interval %s: want at least %s (--metrics-interval or PROPLET_METRICS_INTERVAL)", c.MetricsInterval, MinMetricsInterval))
	}
	if c.DefaultTimeout < 0 {
		errs = append(errs, fmt.Errorf("task timeout %s: want > 0 (--task-timeout or PROPLET_TASK_TIMEOUT)", c.DefaultTimeout))
	}
	if c.DefaultMemoryMiB < 0 || c.DefaultMemoryMiB > MaxMemoryMiB {
		errs = append(errs, fmt.Errorf("memory limit %d MiB: want 1..%d (--memory-mib or PROPLET_MEMORY_LIMIT_MIB)", c.DefaultMemoryMiB, MaxMemoryMiB))
	}
	if c.MaxModuleMiB < 0 {
		errs = append(errs, fmt.Errorf("max module size %d MiB: want > 0 (--max-module-mib or PROPLET_MAX_MODULE_MIB)", c.MaxModuleMiB))
	}
	if c.ModuleCacheMiB < 0 {
		errs = append(errs, fmt.Errorf("module cache size %d MiB: want > 0 (--module-cache-mib or PROPLET_MODULE_CACHE_MIB)", c.ModuleCacheMiB))
	}
	if c.ChunkTimeout < 0 {
		errs = append(errs, fmt.Errorf("chunk timeout %s: want > 0 (--chunk-timeout or PROPLET_CHUNK_TIMEOUT)", c.ChunkTimeout))
	}
	if c.ResultResend < 0 || c.UnackedResults < 0 {
		errs = append(errs, fmt.Errorf("result resend %s, unacked results %d: want > 0", c.ResultResend, c.UnackedResults))
	}
	if c.ChunkRetries < 0 {
		errs = append(errs, fmt.Errorf("chunk retries %d: want > 0 (--chunk-retries or PROPLET_CHUNK_RETRIES)", c.ChunkRetries))
	}
	return errs
}

// DefaultDataDir is $XDG_STATE_HOME/jetprop-proplet, else
// ~/.local/state/jetprop-proplet, else ./proplet-data.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "jetprop-proplet")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "jetprop-proplet")
	}
	return "proplet-data"
}
