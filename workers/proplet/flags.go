package proplet

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// RegisterFlags defines the proplet's flags on fs, each defaulting to its
// PROPLET_* environment variable (the names Propeller's proplet reads; older
// Propeller names are accepted too), else to the built-in default. A bad
// variable is reported by Validate.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	env := &envReader{}
	fs.StringVar(&c.MQTTAddress, "mqtt-address", env.str(DefaultMQTTAddress, "PROPLET_MQTT_ADDRESS"),
		"MQTT broker URL (env PROPLET_MQTT_ADDRESS)")
	fs.StringVar(&c.Tenant, "tenant", env.str("", "PROPLET_TENANT_ID", "PROPLET_DOMAIN_ID"),
		"tenant id, the m/<tenant> topic level (env PROPLET_TENANT_ID, or PROPLET_DOMAIN_ID)")
	fs.StringVar(&c.Channel, "channel", env.str("", "PROPLET_CHANNEL_ID"),
		"channel id, the c/<channel> topic level (env PROPLET_CHANNEL_ID)")
	fs.StringVar(&c.EntityID, "entity-id", env.str("", "PROPLET_ENTITY_ID", "PROPLET_CLIENT_ID"),
		"proplet id, MQTT client id and username; empty: a generated id kept in the data dir (env PROPLET_ENTITY_ID, or PROPLET_CLIENT_ID)")
	fs.StringVar(&c.APIKey, "api-key", env.str("", "PROPLET_API_KEY", "PROPLET_CLIENT_KEY"),
		"MQTT password; prefer the env var, flags show in ps (env PROPLET_API_KEY, or PROPLET_CLIENT_KEY)")
	fs.StringVar(&c.Namespace, "namespace", env.str("", "PROPLET_NAMESPACE", "PROPLET_MANAGER_K8S_NAMESPACE"),
		"namespace reported in discovery and heartbeats (env PROPLET_NAMESPACE)")
	fs.StringVar(&c.ExternalRuntime, "external-runtime", env.str("", "PROPLET_EXTERNAL_WASM_RUNTIME"),
		"run modules with the binary at `path`, as: path <module.wasm> [args...], instead of in-process wazero (env PROPLET_EXTERNAL_WASM_RUNTIME)")
	fs.StringVar(&c.DataDir, "data-dir", env.str(defaultDataDir(), "PROPLET_DATA_DIR"),
		"directory for the proplet id, the journal (MQTT session store, accepted tasks) and the compilation cache; one proplet per directory (env PROPLET_DATA_DIR)")
	fs.StringVar(&c.LogLevel, "log-level", env.str(DefaultLogLevel, "PROPLET_LOG_LEVEL"),
		"debug, info, warn or error (env PROPLET_LOG_LEVEL)")
	c.QoS = env.qos()
	fs.Var((*qosValue)(&c.QoS), "qos", "MQTT QoS `level`: 0, 1 or 2; results are sent at least at 1 (env PROPLET_MQTT_QOS)")
	c.registerDurations(fs, env)
	c.DefaultMemoryMiB = env.int(DefaultMemoryMiB, "PROPLET_MEMORY_LIMIT_MIB")
	fs.IntVar(&c.DefaultMemoryMiB, "memory-mib", c.DefaultMemoryMiB,
		"wasm memory limit in MiB for tasks that carry no memory_mib (env PROPLET_MEMORY_LIMIT_MIB)")
	c.MaxModuleMiB = env.int(DefaultMaxModuleMiB, "PROPLET_MAX_MODULE_MIB")
	fs.IntVar(&c.MaxModuleMiB, "max-module-mib", c.MaxModuleMiB,
		"largest module fetched from an http(s) image_url or in chunks, in MiB (env PROPLET_MAX_MODULE_MIB)")
	c.ModuleCacheMiB = env.int(DefaultModuleCacheMiB, "PROPLET_MODULE_CACHE_MIB")
	fs.IntVar(&c.ModuleCacheMiB, "module-cache-mib", c.ModuleCacheMiB,
		"disk space for modules kept by digest in the data dir, in MiB; least recently used evicted first (env PROPLET_MODULE_CACHE_MIB)")
	c.ChunkRetries = env.int(DefaultChunkRetries, "PROPLET_CHUNK_RETRIES")
	fs.IntVar(&c.ChunkRetries, "chunk-retries", c.ChunkRetries,
		"quiet periods in a row, each followed by a request for the missing chunks, before a download fails (env PROPLET_CHUNK_RETRIES)")
	c.envErrs = env.errs
}

func (c *Config) registerDurations(fs *flag.FlagSet, env *envReader) {
	c.Liveliness = env.seconds(DefaultLiveliness, "PROPLET_LIVELINESS_INTERVAL")
	fs.Var((*secondsValue)(&c.Liveliness), "liveliness",
		"heartbeat `interval`, in seconds or as a duration like 500ms (env PROPLET_LIVELINESS_INTERVAL)")
	c.DefaultTimeout = env.seconds(DefaultTaskTimeout, "PROPLET_TASK_TIMEOUT")
	fs.Var((*secondsValue)(&c.DefaultTimeout), "task-timeout",
		"`timeout` of a non-daemon task that carries no timeout_ms, in seconds or as a duration (env PROPLET_TASK_TIMEOUT)")
	c.ChunkTimeout = env.seconds(DefaultChunkTimeout, "PROPLET_CHUNK_TIMEOUT")
	fs.Var((*secondsValue)(&c.ChunkTimeout), "chunk-timeout",
		"quiet `period` of a chunked module download after which the missing chunks are asked for again, doubling each time, in seconds or as a duration (env PROPLET_CHUNK_TIMEOUT)")
}

// envReader reads PROPLET_* defaults and collects parse errors.
type envReader struct{ errs []error }

// str returns the first non-empty variable of names, else def.
func (e *envReader) str(def string, names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return def
}

func (e *envReader) int(def int, name string) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want an integer", name, v))
		return def
	}
	return n
}

func (e *envReader) qos() byte {
	q := e.int(DefaultQoS, "PROPLET_MQTT_QOS")
	if q < 0 || q > 2 {
		e.errs = append(e.errs, fmt.Errorf("PROPLET_MQTT_QOS=%d: want 0, 1 or 2", q))
		return DefaultQoS
	}
	return byte(q)
}

func (e *envReader) seconds(def time.Duration, name string) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := parseSeconds(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: %w", name, v, err))
		return def
	}
	return d
}

// parseSeconds accepts a number of seconds ("10", "0.5", as Propeller
// does) or a Go duration ("10s", "500ms").
func parseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want seconds or a duration like 10s")
	}
	return d, nil
}

// secondsValue is a flag.Value for durations given as seconds or durations.
type secondsValue time.Duration

func (v *secondsValue) String() string { return time.Duration(*v).String() }

func (v *secondsValue) Set(s string) error {
	d, err := parseSeconds(s)
	if err != nil {
		return err
	}
	*v = secondsValue(d)
	return nil
}

// qosValue is a flag.Value for an MQTT QoS.
type qosValue byte

func (v *qosValue) String() string { return strconv.Itoa(int(*v)) }

func (v *qosValue) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 8)
	if err != nil || n > 2 {
		return fmt.Errorf("want 0, 1 or 2")
	}
	*v = qosValue(n)
	return nil
}
