package app

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
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
	NATSURL    string // use this NATS server instead of embedding one
	MQTTURL    string // its MQTT listener (required with NATSURL)
	Tenant     string
	Channel    string
	Proplets   int // local proplets (up only)
	Replicas   int
	MaxModule  int64
	SyncAlways bool
	Liveness   time.Duration
	LogLevel   string
	ChunkSize  int

	OCIPlainHTTP bool
	OCIUsername  string
	OCIPassword  string
	OCIToken     string

	envErrs []error // env vars that did not parse
}

// Defaults.
const (
	DefaultHTTP    = "127.0.0.1:7070"
	DefaultData    = "./jetprop-data"
	DefaultTenant  = "jetprop"
	DefaultChannel = "default"
)

// RegisterFlags declares the flags; each default comes from its env var.
func (c *Config) RegisterFlags(fs *flag.FlagSet, up bool) {
	fs.StringVar(&c.DataDir, "data", env("JETPROP_DATA", DefaultData), "data directory: JetStream store, proplet caches (env JETPROP_DATA)")
	fs.StringVar(&c.HTTPAddr, "http", env("JETPROP_HTTP", DefaultHTTP), "HTTP API listen address (env JETPROP_HTTP)")
	fs.StringVar(&c.Host, "host", env("JETPROP_HOST", natsserver.DefaultHost), "listen address of the NATS and MQTT ports; 0.0.0.0 to let devices on the network in (env JETPROP_HOST)")
	fs.IntVar(&c.NATSPort, "nats-port", c.envInt("JETPROP_NATS_PORT", natsserver.DefaultNATSPort), "NATS client port of the embedded server, -1 for a random one (env JETPROP_NATS_PORT)")
	fs.IntVar(&c.MQTTPort, "mqtt-port", c.envInt("JETPROP_MQTT_PORT", natsserver.DefaultMQTTPort), "MQTT port proplets connect to, -1 for a random one (env JETPROP_MQTT_PORT)")
	fs.StringVar(&c.NATSURL, "nats-url", env("JETPROP_NATS_URL", ""), "use an existing NATS server (JetStream and MQTT enabled) instead of embedding one (env JETPROP_NATS_URL)")
	fs.StringVar(&c.MQTTURL, "mqtt-url", env("JETPROP_MQTT_URL", ""), "MQTT listener of the server given by --nats-url, e.g. tcp://nats:1883 (env JETPROP_MQTT_URL)")
	fs.StringVar(&c.Tenant, "tenant", env("JETPROP_TENANT", DefaultTenant), "Propeller tenant (domain) id in topics m/<tenant>/c/<channel>/... (env JETPROP_TENANT)")
	fs.StringVar(&c.Channel, "channel", env("JETPROP_CHANNEL", DefaultChannel), "Propeller channel id in topics (env JETPROP_CHANNEL)")
	fs.IntVar(&c.Replicas, "replicas", c.envInt("JETPROP_REPLICAS", 1), "replicas of every stream: 1 on one box, 3 on a cluster (env JETPROP_REPLICAS)")
	fs.Int64Var(&c.MaxModule, "max-module", int64(c.envInt("JETPROP_MAX_MODULE", domain.DefaultMaxModuleSize)), "largest wasm module accepted, in bytes (env JETPROP_MAX_MODULE)")
	fs.BoolVar(&c.SyncAlways, "sync-always", c.envBool("JETPROP_SYNC_ALWAYS", false), "fsync every JetStream write: survives power loss, about 4x slower appends (env JETPROP_SYNC_ALWAYS)")
	fs.DurationVar(&c.Liveness, "liveness-timeout", c.envDuration("JETPROP_LIVENESS_TIMEOUT", service.DefaultLivenessTimeout), "mark a proplet offline after this long without a heartbeat (env JETPROP_LIVENESS_TIMEOUT)")
	fs.IntVar(&c.ChunkSize, "chunk-size", c.envInt("JETPROP_CHUNK_SIZE", 512000), "bytes a module chunk carries to proplets over MQTT (capped to fit the max payload) (env JETPROP_CHUNK_SIZE)")
	fs.BoolVar(&c.OCIPlainHTTP, "oci-plain-http", c.envBool("JETPROP_OCI_PLAIN_HTTP", false), "talk plain HTTP to OCI registries (loopback or lab registries) (env JETPROP_OCI_PLAIN_HTTP)")
	fs.StringVar(&c.OCIUsername, "oci-username", env("JETPROP_OCI_USERNAME", ""), "username for OCI registries (env JETPROP_OCI_USERNAME)")
	fs.StringVar(&c.OCIPassword, "oci-password", env("JETPROP_OCI_PASSWORD", ""), "password for OCI registries (env JETPROP_OCI_PASSWORD)")
	fs.StringVar(&c.OCIToken, "oci-token", env("JETPROP_OCI_TOKEN", ""), "bearer token for OCI registries (env JETPROP_OCI_TOKEN)")
	fs.StringVar(&c.LogLevel, "log-level", env("JETPROP_LOG_LEVEL", "info"), "debug, info, warn or error (env JETPROP_LOG_LEVEL)")
	if up {
		fs.IntVar(&c.Proplets, "proplets", c.envInt("JETPROP_PROPLETS", 1), "local proplets to start in this process, 0 for none (env JETPROP_PROPLETS)")
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if err := errors.Join(c.envErrs...); err != nil {
		return err
	}
	if err := (wire.Topics{Tenant: c.Tenant, Channel: c.Channel}).Validate(); err != nil {
		return err
	}
	switch {
	case c.DataDir == "":
		return errors.New("--data must not be empty")
	case c.HTTPAddr == "":
		return errors.New("--http must not be empty")
	case c.Proplets < 0:
		return errors.New("--proplets must not be negative")
	case c.NATSURL != "" && c.MQTTURL == "":
		return errors.New("--mqtt-url is required with --nats-url (proplets and the engine publish over MQTT)")
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("--replicas %d: want 1 to 5", c.Replicas)
	case c.MaxModule <= 0:
		return errors.New("--max-module must be positive")
	case c.ChunkSize < 0:
		return errors.New("--chunk-size must not be negative")
	case c.OCIToken != "" && c.OCIUsername != "":
		return errors.New("--oci-token and --oci-username exclude each other")
	}
	return nil
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func (c *Config) envInt(key string, def int) int { return envParse(c, key, def, strconv.Atoi) }

func (c *Config) envBool(key string, def bool) bool { return envParse(c, key, def, strconv.ParseBool) }

func (c *Config) envDuration(key string, def time.Duration) time.Duration {
	return envParse(c, key, def, time.ParseDuration)
}

func envParse[T any](c *Config, key string, def T, parse func(string) (T, error)) T {
	s, ok := os.LookupEnv(key)
	if !ok || s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("env %s=%q: %w", key, s, err))
		return def
	}
	return v
}
