package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jetprop/jetprop/adapters/mqtt/proxy"
	"github.com/jetprop/jetprop/cmd/internal/envflag"
)

func proxyCommand() *command {
	return &command{
		name: "proxy", summary: "run a Propeller-style registry proxy: OCI images to proplets in chunks over any MQTT broker", maxArgs: 0,
		help: `Run a registry proxy for a deployment that keeps Propeller's manager: it
reads Propeller's PROXY_* variables, connects to any MQTT 3.1.1 broker (no
NATS needed), and answers proplets' requests on m/<tenant>/c/<channel>/registry/proplet
({"app_name": <image>}) with the wasm module in Chunk messages on
registry/server, as Propeller's proxy does; a jetprop proplet that names
itself gets them on registry/server/<proplet_id>.

Unlike Propeller's proxy it honours the tag or digest of the image
(demo/add:v2, demo/add@sha256:...), picks the wasm layer by media type,
and reports failures: an unknown tag, refused credentials or an unreachable
registry is logged and counted, and a proplet that named itself gets a
chunk whose "error" says why. A name without a registry host (demo/add:v1)
is resolved against --registry-url; credentials go to that registry only,
and only with --authenticate. Chunks are sized to fit --max-payload after
base64; at most 10 chunks are in flight; pulled modules are cached on
disk by digest (--cache-size) and removed at exit. Runs until interrupted.

Example: PROXY_REGISTRY_URL=localhost:5000 PROXY_PLAIN_HTTP=true \
  PROXY_DOMAIN_ID=<domain> PROXY_CHANNEL_ID=<channel> jetprop proxy`,
		setup: func(fs *flagSet, e *env) action {
			config := proxyFlags(fs.Set)
			return func(ctx context.Context, _ []string) error {
				cfg, level, err := config()
				if err != nil {
					return usageErr("proxy", err)
				}
				return runProxyMode(ctx, e, cfg, level)
			}
		},
	}
}

// proxyFlags declares the proxy's flags, each bound to the PROXY_*
// variable Propeller's proxy reads, and returns what builds the config from
// them once they are parsed.
func proxyFlags(s *envflag.Set) func() (proxy.Config, string, error) {
	var c proxy.Config
	var level string
	var chunk, payload, qos, maxModule, cacheSize int
	s.String(&c.RegistryURL, "registry-url", "", "`REGISTRY` (host[:port], docker.io, or http(s)://host[:port]) that names without a host resolve against; http:// is --plain-http", "PROXY_REGISTRY_URL")
	s.Bool(&c.Authenticate, "authenticate", false, "send the credentials below to --registry-url (and to no other registry)", "PROXY_AUTHENTICATE")
	s.String(&c.Username, "registry-username", "", "registry `USER` for basic auth", "PROXY_REGISTRY_USERNAME")
	s.String(&c.Password, "registry-password", "", "registry `PASSWORD` (prefer the environment variable: a flag shows in ps)", "PROXY_REGISTRY_PASSWORD")
	s.String(&c.Token, "registry-token", "", "registry access `TOKEN`, used when no username and password are given", "PROXY_REGISTRY_TOKEN")
	s.Bool(&c.PlainHTTP, "plain-http", false, "talk plain HTTP to registries (loopback and lab registries)", "PROXY_PLAIN_HTTP")
	s.Int(&chunk, "chunk-size", proxy.DefaultChunkSize, "raw `BYTES` a chunk carries (capped so the base64 message fits --max-payload)", "PROXY_CHUNK_SIZE")
	s.Int(&payload, "max-payload", proxy.DefaultMaxPayload, "the broker's largest message in `BYTES`", "PROXY_MAX_PAYLOAD")
	s.Int(&maxModule, "max-module", proxy.DefaultMaxModule, "largest module pulled, in `BYTES`", "PROXY_MAX_MODULE")
	s.String(&c.CacheDir, "cache-dir", "", "`DIR` to make the module cache's temporary directory in (default: the system's temp dir)", "PROXY_CACHE_DIR")
	s.Int(&cacheSize, "cache-size", proxy.DefaultCacheSize, "`BYTES` of pulled modules kept on disk (least recently used out)", "PROXY_CACHE_SIZE")
	s.String(&c.MQTTAddress, "mqtt-url", proxy.DefaultMQTTAddress, "MQTT broker `URL`", "PROXY_MQTT_ADDRESS")
	s.Deprecated("mqtt-address", "mqtt-url")
	s.Int(&qos, "mqtt-qos", proxy.DefaultQoS, "`QOS` of the subscription and the chunks: 1 or 2", "PROXY_MQTT_QOS")
	s.Duration(&c.Timeout, "mqtt-timeout", proxy.DefaultTimeout, "bound on connecting, subscribing and each publish", "PROXY_MQTT_TIMEOUT")
	s.String(&c.DomainID, "tenant", "", "`TENANT` (Propeller domain) id in topics m/<tenant>/c/<channel>/... (required)", "PROXY_DOMAIN_ID")
	s.Deprecated("domain-id", "tenant")
	s.String(&c.ChannelID, "channel", "", "`CHANNEL` id in topics (required)", "PROXY_CHANNEL_ID")
	s.Deprecated("channel-id", "channel")
	s.String(&c.InstanceID, "instance-id", "", "MQTT client `ID`; a stable one keeps a persistent session (default: random, clean session)", "PROXY_INSTANCE_ID")
	s.String(&c.ClientID, "client-id", "", "MQTT username (the proxy's entity `ID`)", "PROXY_CLIENT_ID")
	s.String(&c.ClientKey, "client-key", "", "MQTT password (the proxy's entity `KEY`)", "PROXY_CLIENT_KEY")
	s.String(&level, "log-level", "info", "debug, info, warn or error", "PROXY_LOG_LEVEL")
	s.String(&c.TLS.CA, "mqtt-ca", "", "PEM `file` of the CA the broker's certificate is verified against, for an ssl://, tls:// or mqtts:// --mqtt-url (default: the system's CAs)", "PROXY_MQTT_TLS_CA_CERT")
	s.String(&c.TLS.Cert, "mqtt-cert", "", "PEM `file` of the proxy's client certificate, for mutual TLS", "PROXY_MQTT_TLS_CLIENT_CERT")
	s.String(&c.TLS.Key, "mqtt-key", "", "PEM `file` of the client certificate's private key", "PROXY_MQTT_TLS_CLIENT_KEY")
	s.Bool(&c.TLS.InsecureSkipVerify, "mqtt-insecure-skip-verify", false, "accept any broker certificate: labs only", "PROXY_MQTT_TLS_INSECURE_SKIP_VERIFY")
	return func() (proxy.Config, string, error) {
		if qos < 1 || qos > 2 {
			return c, level, fmt.Errorf("--mqtt-qos %d: want 1 or 2", qos)
		}
		if chunk <= 0 || payload <= 0 || maxModule <= 0 || cacheSize <= 0 {
			return c, level, errors.New("--chunk-size, --max-payload, --max-module and --cache-size must be positive")
		}
		c.ChunkSize, c.MaxPayload, c.QoS = chunk, payload, byte(qos)
		c.MaxModule, c.CacheSize = int64(maxModule), int64(cacheSize)
		_, err := parseLevel(level)
		return c, level, err
	}
}

// runProxyMode runs the proxy until ctx is done.
func runProxyMode(ctx context.Context, e *env, cfg proxy.Config, level string) error {
	p, err := proxy.Start(ctx, cfg, newLogger(e.stderr, level))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "jetprop proxy %s ready\n  mqtt      %s\n  topics    m/%s/c/%s/registry/proplet -> registry/server\n  registry  %s\n  chunk     %d bytes\n",
		version(), cfg.MQTTAddress, cfg.DomainID, cfg.ChannelID, orNone(cfg.RegistryURL), p.ChunkSize())
	<-ctx.Done()
	p.Close()
	s := p.Stats()
	fmt.Fprintf(e.stdout, "jetprop proxy: shutting down (%d requests, %d delivered, %d failed, %d chunks)\n",
		s.Requests, s.Delivered, s.Failed, s.Chunks)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none: image names must name their registry)"
	}
	return s
}
