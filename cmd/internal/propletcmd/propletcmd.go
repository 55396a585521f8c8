// Package propletcmd is the proplet command, shared by bin/proplet and
// `jetprop proplet`: its flags (each bound to Propeller's PROPLET_*
// variables with envflag), its help, and Main, which runs a
// proplet.Proplet until its context is done.
package propletcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/jetprop/jetprop/cmd/internal/envflag"
	"github.com/jetprop/jetprop/workers/proplet"
)

const usageText = `proplet runs WebAssembly tasks on this device for a jetprop or Propeller
manager, speaking Propeller's MQTT protocol.

It connects to the broker at --mqtt-url as client --entity-id (username the
same, password --api-key) with a persistent session, announces itself on
m/<tenant>/c/<channel>/control/proplet/create, heartbeats on .../alive every
--liveliness, runs the tasks started on .../control/manager/start (modules
inline, from an http(s) image_url, or in chunks over .../registry/proplet and
.../registry/server, cached on disk by digest; in-process wazero or
--external-runtime) and publishes results on .../control/proplet/results.

With an ssl://, tls:// or mqtts:// --mqtt-url (port 8883 unless given) it
speaks TLS, verifying the broker against --mqtt-ca (else the system's CAs)
and presenting --mqtt-cert and --mqtt-key when the broker asks for a client
certificate (mutual TLS).

Every flag defaults to the PROPLET_* environment variable named in its help
(an empty variable counts as unset).

Usage: proplet [flags]

Flags:
`

// Main is the proplet command: it parses args (flags over the PROPLET_*
// variables read with lookup, os.LookupEnv when nil), logs to stderr at the
// configured level and runs until ctx is done. -h prints help and returns
// nil.
func Main(ctx context.Context, args []string, stderr io.Writer, lookup func(string) (string, bool)) error {
	fs := flag.NewFlagSet("proplet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	set := envflag.New(fs, lookup)
	var cfg proplet.Config
	var sv serving
	Flags(set, &cfg)
	servingFlags(set, &sv)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		set.PrintDefaults(stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("proplet: unexpected arguments %q (see -h)", fs.Args())
	}
	if err := errors.Join(set.Err(), cfg.Validate(), sv.validate()); err != nil {
		return err
	}
	runs := newRunHistogram()
	cfg.Observer = runs
	log := newLogger(stderr, cfg.LogLevel)
	p, err := proplet.New(cfg, log)
	if err != nil {
		return err
	}
	srvs, err := sv.start(registry(p.Stats, runs), log)
	defer srvs.close()
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// Flags declares the proplet's flags on s, writing to c. Each defaults to
// its PROPLET_* variables (the names Propeller's proplet reads, then older
// Propeller names), else to the proplet.Default constants. Variables that
// do not parse are reported by s.Err.
func Flags(s *envflag.Set, c *proplet.Config) {
	s.String(&c.MQTTAddress, "mqtt-url", proplet.DefaultMQTTAddress,
		"MQTT broker `URL`: tcp://, mqtt://, ssl://, tls://, mqtts://, ws:// or wss://", "PROPLET_MQTT_ADDRESS")
	s.Deprecated("mqtt-address", "mqtt-url")
	s.String(&c.Tenant, "tenant", "", "tenant id, the m/<tenant> topic level", "PROPLET_TENANT_ID", "PROPLET_DOMAIN_ID")
	s.String(&c.Channel, "channel", "", "channel id, the c/<channel> topic level", "PROPLET_CHANNEL_ID")
	s.String(&c.EntityID, "entity-id", "",
		"proplet id, MQTT client id and username; empty: a generated id kept in the data dir", "PROPLET_ENTITY_ID", "PROPLET_CLIENT_ID")
	s.String(&c.APIKey, "api-key", "", "MQTT password; prefer the env var, flags show in ps", "PROPLET_API_KEY", "PROPLET_CLIENT_KEY")
	s.String(&c.Namespace, "namespace", "", "namespace reported in discovery and heartbeats", "PROPLET_NAMESPACE", "PROPLET_MANAGER_K8S_NAMESPACE")
	s.Bool(&c.SharedTopics, "shared-topics", false, "speak on Propeller's shared topics, to join a Propeller manager's fleet; a jetprop engine also takes the proplet's own topics (control/proplet/<id>/...), which prove who sent a message", "PROPLET_SHARED_TOPICS")
	s.String(&c.ExternalRuntime, "external-runtime", "",
		"run modules with the binary at `path`, as: path <module.wasm> [args...], instead of in-process wazero", "PROPLET_EXTERNAL_WASM_RUNTIME")
	s.Var((*inverted)(&c.TieredOff), "tiered-compile",
		"a latent task answers from wazero's interpreter as soon as it is deployed while the optimizing compiler compiles it in the background (true or false)", "PROPLET_TIERED_COMPILE")
	s.String(&c.DataDir, "data", proplet.DefaultDataDir(),
		"`directory` for the proplet id, the journal (MQTT session store, accepted tasks) and the compilation cache; one proplet per directory", "PROPLET_DATA_DIR")
	s.Deprecated("data-dir", "data")
	s.String(&c.LogLevel, "log-level", proplet.DefaultLogLevel, "debug, info, warn or error", "PROPLET_LOG_LEVEL")
	c.QoS = proplet.DefaultQoS
	s.Var((*qos)(&c.QoS), "mqtt-qos", "MQTT QoS `level`: 0, 1 or 2 of discovery and, with --shared-topics, the subscriptions to starts and stops (on its own topics it subscribes at 0); results are sent at least at 1", "PROPLET_MQTT_QOS")
	s.Deprecated("qos", "mqtt-qos")
	s.Var((*qos)(&c.HeartbeatQoS), "heartbeat-qos", "MQTT QoS `level` of the heartbeats: 0 (each is superseded by the next; at 1 or 2 the broker stores and acknowledges every one), 1 or 2", "PROPLET_HEARTBEAT_QOS")
	durationFlags(s, c)
	sizeFlags(s, c)
	tlsFlags(s, c)
}

// tlsFlags: MQTT over TLS, with the variables of Propeller's proplet.
func tlsFlags(s *envflag.Set, c *proplet.Config) {
	s.String(&c.MQTTCACert, "mqtt-ca", "",
		"PEM `file` of the CA the broker's certificate is verified against, for an ssl://, tls:// or mqtts:// --mqtt-url (default: the system's CAs)", "PROPLET_MQTT_TLS_CA_CERT")
	s.String(&c.MQTTClientCert, "mqtt-cert", "", "PEM `file` of this proplet's client certificate, for mutual TLS", "PROPLET_MQTT_TLS_CLIENT_CERT")
	s.String(&c.MQTTClientKey, "mqtt-key", "", "PEM `file` of the client certificate's private key", "PROPLET_MQTT_TLS_CLIENT_KEY")
	s.Bool(&c.MQTTInsecureSkipVerify, "mqtt-insecure-skip-verify", false,
		"accept any broker certificate: anyone on the path can read and change the traffic; labs only", "PROPLET_MQTT_TLS_INSECURE_SKIP_VERIFY")
}

func durationFlags(s *envflag.Set, c *proplet.Config) {
	s.Seconds(&c.Liveliness, "liveliness", proplet.DefaultLiveliness,
		"heartbeat `interval`, in seconds or as a duration like 500ms", "PROPLET_LIVELINESS_INTERVAL")
	s.Seconds(&c.MetricsInterval, "metrics-interval", proplet.DefaultMetricsInterval,
		"`interval` of the proplet's and its running tasks' metrics (control/proplet/metrics and task_metrics), in seconds or as a duration; at least 1s", "PROPLET_METRICS_INTERVAL")
	s.Var((*inverted)(&c.MetricsOff), "monitoring", "publish proplet and task metrics (true or false)", "PROPLET_ENABLE_MONITORING")
	s.Seconds(&c.DefaultTimeout, "task-timeout", proplet.DefaultTaskTimeout,
		"`timeout` of a non-daemon task that carries no timeout_ms, in seconds or as a duration", "PROPLET_TASK_TIMEOUT")
	s.Seconds(&c.ChunkTimeout, "chunk-timeout", proplet.DefaultChunkTimeout,
		"quiet `period` of a chunked module download after which the missing chunks are asked for again, doubling each time, in seconds or as a duration", "PROPLET_CHUNK_TIMEOUT")
}

func sizeFlags(s *envflag.Set, c *proplet.Config) {
	s.Int(&c.DefaultMemoryMiB, "memory-mib", proplet.DefaultMemoryMiB,
		"wasm memory limit in MiB for tasks that carry no memory_mib", "PROPLET_MEMORY_LIMIT_MIB")
	s.Int(&c.MaxModuleMiB, "max-module-mib", proplet.DefaultMaxModuleMiB,
		"largest module fetched from an http(s) image_url or in chunks, in MiB", "PROPLET_MAX_MODULE_MIB")
	s.Int(&c.ModuleCacheMiB, "module-cache-mib", proplet.DefaultModuleCacheMiB,
		"disk space for modules kept by digest in the data dir, in MiB; least recently used evicted first", "PROPLET_MODULE_CACHE_MIB")
	s.Int(&c.ChunkRetries, "chunk-retries", proplet.DefaultChunkRetries,
		"quiet periods in a row, each followed by a request for the missing chunks, before a download fails", "PROPLET_CHUNK_RETRIES")
}

// qos is a flag.Value for an MQTT QoS.
type qos byte

// inverted is a boolean flag that sets the opposite of its value.
type inverted bool

func (v *inverted) String() string   { return strconv.FormatBool(!bool(*v)) }
func (v *inverted) IsBoolFlag() bool { return true }
func (v *inverted) Set(s string) error {
	b, err := strconv.ParseBool(s)
	*v = inverted(!b)
	return err
}

func (v *qos) String() string { return strconv.Itoa(int(*v)) }

func (v *qos) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 8)
	if err != nil || n > 2 {
		return errors.New("want 0, 1 or 2")
	}
	*v = qos(n)
	return nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(strings.TrimSpace(level))) // checked by Validate
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})).With("component", "proplet")
}
