// Package proxy is jetprop's Propeller-style registry proxy: for
// deployments that keep a Propeller manager, it answers the proplets'
// registry requests with modules pulled from OCI registries, over any MQTT
// 3.1.1 broker (no NATS or JetStream needed).
//
// A proplet publishes {"app_name": <image reference>} on
// m/<domain>/c/<channel>/registry/proplet. The proxy pulls that image,
// honouring its tag or digest (Propeller's proxy always pulled "latest"),
// takes the wasm layer by media type (not the largest layer), and publishes
// the module as Chunk messages on registry/server, exactly as Propeller's
// proxy does, or on registry/server/<proplet_id> to a jetprop proplet that
// named itself. A relative name ("demo/add:v1") is resolved against the
// configured registry. A module that cannot be had (unknown tag, refused
// credentials, unreachable registry) is logged and counted, and a proplet
// that named itself gets a Chunk whose "error" field says why, instead of
// waiting for a timeout.
//
// Delivery is outbound.ChunkServer's: chunks sized to fit the broker's payload
// limit after base64, at most Workers × Window chunks (2 × 5, like the 10 of
// Propeller's channel) in flight at once, only the chunks a resuming
// jetprop proplet asks for. Pulled modules stream to files named by digest
// in a temp directory (bounded, least recently used out, removed at Close),
// so memory never holds a whole module and a module asked for again is not
// downloaded again while it stays cached; the registry is still asked what
// the tag points at every time.
package proxy

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/certs"
	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine/domain"
)

// Defaults.
const (
	DefaultChunkSize   = outbound.DefaultChunkSize // Propeller's
	DefaultMQTTAddress = "tcp://localhost:1883"
	DefaultMaxPayload  = 1 << 20 // NATS's and Propeller's reference broker's limit
	DefaultMaxModule   = domain.DefaultMaxModuleSize
	DefaultCacheSize   = 512 << 20 // or DefaultMaxModule when larger
	DefaultTimeout     = 30 * time.Second
	DefaultQoS         = 1
)

// Delivery bounds: transfers served at once, chunks in flight per transfer.
const (
	workers = 2
	window  = 5
)

// Config declares a proxy: a zero field takes its default (setDefaults),
// Validate checks the rest. Every field has a flag and a PROXY_*
// environment variable in `jetprop proxy`.
type Config struct {
	// RegistryURL is the registry ("localhost:5000", "docker.io",
	// "http://registry:5000") that relative names resolve against and the
	// only one credentials are sent to. An http:// URL sets PlainHTTP.
	RegistryURL  string
	Authenticate bool   // send credentials to RegistryURL
	Username     string // basic auth, with Password (preferred over Token when both are set, as in Propeller)
	Password     string
	Token        string // a registry access token
	PlainHTTP    bool   // talk plain HTTP to every registry

	ChunkSize  int   // raw bytes a chunk (default 512000, capped to fit MaxPayload after base64)
	MaxPayload int   // the broker's max message size (default 1 MiB)
	MaxModule  int64 // largest module pulled (default 100 MiB)
	CacheDir   string
	CacheSize  int64 // bytes of pulled modules kept (default 512 MiB, at least MaxModule)

	MQTTAddress string        // tcp://host:port (default tcp://localhost:1883)
	QoS         byte          // 1 or 2 (default 1)
	Timeout     time.Duration // connect, subscribe and each publish (default 30 s)
	DomainID    string        // tenant in m/<domain>/c/<channel>/...
	ChannelID   string
	InstanceID  string // MQTT client id; set it for a persistent session (default: random, clean session)
	ClientID    string // MQTT username
	ClientKey   string // MQTT password
	// TLS of an ssl://, tls:// or mqtts:// MQTTAddress: the files
	// Propeller's PROXY_MQTT_TLS_* variables name (see tls.go).
	TLS certs.Client
}

// setDefaults fills the zero fields with the Default constants.
func (c *Config) setDefaults() {
	if c.ChunkSize <= 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.MaxModule <= 0 {
		c.MaxModule = DefaultMaxModule
	}
	if c.CacheSize <= 0 {
		c.CacheSize = max(DefaultCacheSize, c.MaxModule)
	}
	c.MQTTAddress = cmp.Or(c.MQTTAddress, DefaultMQTTAddress)
	c.QoS = cmp.Or(c.QoS, DefaultQoS)
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
}

// Validate fills defaults (setDefaults), then checks the config.
func (c *Config) Validate() error {
	c.setDefaults()
	if err := c.topics().Validate(); err != nil {
		return fmt.Errorf("proxy: domain and channel: %w", err)
	}
	if _, _, err := parseRegistryURL(c.RegistryURL); err != nil {
		return err
	}
	switch {
	case c.QoS > 2:
		return fmt.Errorf("proxy: MQTT QoS %d: want 1 or 2", c.QoS)
	case c.CacheSize < c.MaxModule:
		return fmt.Errorf("proxy: cache size %d is less than the largest module (%d)", c.CacheSize, c.MaxModule)
	case c.Authenticate && c.RegistryURL == "":
		return errors.New("proxy: authentication needs the registry URL (credentials go to that registry only)")
	case c.Authenticate && (c.Username == "" || c.Password == "") && c.Token == "":
		return errors.New("proxy: authentication needs a registry username and password, or a token")
	}
	return c.validateTLS()
}

func (c Config) topics() wire.Topics { return wire.Topics{Tenant: c.DomainID, Channel: c.ChannelID} }

// Log keys.
const (
	logApp     = "app_name"
	logProplet = "proplet"
	logRef     = "ref"
	logDigest  = "digest"
	logSize    = "size"
	logErr     = "err"
)

// Proxy is a running registry proxy.
type Proxy struct {
	cfg    Config
	log    *slog.Logger
	cache  *cache
	chunks *outbound.ChunkServer
	mq     *client
	stats  *counters

	ctx       context.Context // of the chunk server; cancelled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Start connects to the broker and serves registry requests until Close.
// It returns once the proxy is subscribed, or fails after cfg.Timeout.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, log: log, stats: &counters{}}
	if err := p.start(ctx); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Proxy) start(ctx context.Context) error {
	host, plain, _ := parseRegistryURL(p.cfg.RegistryURL)
	c, err := oci.New(p.ociOptions(host, plain)...)
	if err != nil {
		return fmt.Errorf("proxy: registry client: %w", err)
	}
	if p.cache, err = newCache(p.cfg.CacheDir, p.cfg.MaxModule, p.cfg.CacheSize, p.stats); err != nil {
		return err
	}
	res := &resolver{oci: c, cache: p.cache, registry: host, log: p.log}
	p.cfg.warnInsecure(p.log)
	p.mq = newClient(p.cfg, p.onRequest, p.log)
	p.chunks = outbound.NewChunkServer(outbound.ChunkPorts{Resolver: res, Opener: p.cache, Publisher: p.mq,
		Progress: &progress{log: p.log, stats: p.stats}},
		outbound.ChunkConfig{ChunkSize: p.cfg.ChunkSize, MaxPayload: p.cfg.MaxPayload, Workers: workers, Window: window}, p.log)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Go(func() { _ = p.chunks.Run(p.ctx) }) // returns nil when cancelled
	if err := p.mq.connect(ctx, p.cfg); err != nil {
		return err
	}
	p.log.Info("proxy ready", "mqtt", p.cfg.MQTTAddress, "topic", p.cfg.topics().Topic(wire.SuffixModuleRequest),
		"registry", host, "authenticate", p.cfg.Authenticate, "chunk_size", p.chunks.ChunkSize())
	return nil
}

// ociOptions are the registry client's options; credentials go to host only.
func (p *Proxy) ociOptions(host string, plain bool) []oci.Option {
	opts := []oci.Option{oci.WithPlainHTTP(plain || p.cfg.PlainHTTP), oci.WithLogger(p.log)}
	if !p.cfg.Authenticate {
		return opts
	}
	if p.cfg.Username != "" && p.cfg.Password != "" {
		opts = append(opts, oci.WithBasicAuth(p.cfg.Username, p.cfg.Password))
	} else {
		opts = append(opts, oci.WithBearerToken(p.cfg.Token))
	}
	return append(opts, oci.WithCredentialHost(host))
}

// onRequest hands a registry request to the chunk server (it does not wait
// for the transfer).
func (p *Proxy) onRequest(_ paho.Client, m paho.Message) {
	req, err := wire.DecodeModuleRequest(m.Payload())
	if err != nil {
		p.stats.malformed.Add(1)
		p.log.Warn("malformed registry request dropped", "topic", m.Topic(), logErr, err)
		return
	}
	p.stats.requests.Add(1)
	p.log.Info("module requested", logApp, req.AppName, logProplet, req.PropletID)
	if err := p.chunks.Request(p.ctx, req); err != nil {
		p.stats.dropped.Add(1)
		p.log.Warn("registry request dropped", logApp, req.AppName, logProplet, req.PropletID, logErr, err)
	}
}

// ChunkSize is the raw size of the chunks published.
func (p *Proxy) ChunkSize() int { return p.chunks.ChunkSize() }

// Stats returns the counters.
func (p *Proxy) Stats() Stats { return p.stats.snapshot() }

// Close disconnects, stops the transfers under way, waits for them and
// removes the cache. Closing again does nothing.
func (p *Proxy) Close() { p.closeOnce.Do(p.close) }

func (p *Proxy) close() {
	if p.mq != nil {
		p.mq.close()
	}
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	if p.cache != nil {
		if err := p.cache.close(); err != nil {
			p.log.Warn("remove module cache", logErr, err)
		}
	}
}

// parseRegistryURL reads "host[:port]", "http://host[:port]" (plain HTTP)
// or "https://host[:port]"; "" is no registry.
func parseRegistryURL(s string) (host string, plain bool, err error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "/")
	if !strings.Contains(s, "://") {
		if strings.ContainsAny(s, "/@ ") {
			return "", false, fmt.Errorf("proxy: registry URL %q: want host[:port], optionally with http:// or https://", s)
		}
		return dockerHub(s), false, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Path != "" || u.User != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false, fmt.Errorf("proxy: registry URL %q: want host[:port], optionally with http:// or https://", s)
	}
	return dockerHub(u.Host), u.Scheme == "http", nil
}

// randomID is a fresh MQTT client id.
func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "jetprop-proxy-" + hex.EncodeToString(b)
}
