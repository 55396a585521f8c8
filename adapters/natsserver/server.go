// Package natsserver runs nats-server inside the jetprop process: JetStream on
// disk under the data dir, the NATS client port and the MQTT listener that
// proplets connect to.
package natsserver

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for a single box.
const (
	DefaultHost       = "127.0.0.1"
	DefaultNATSPort   = 4222
	DefaultMQTTPort   = 1883
	DefaultMaxPayload = 1 << 20
	DefaultMaxStore   = 16 << 30
	DefaultMaxMemory  = 256 << 20
	DefaultReady      = 10 * time.Second
	DefaultDeviceSubs = 32 // a proplet holds 2 to 6; the rest is headroom
	MQTTAckWait       = 5 * time.Second
)

// Config declares an embedded server. Use -1 for a random port.
type Config struct {
	DataDir    string // the JetStream store lives in DataDir/jetstream (required)
	Host       string // listen address for NATS and MQTT (default 127.0.0.1)
	NATSPort   int    // default 4222; -1 random
	MQTTPort   int    // default 1883; -1 random; 0 uses the default
	ServerName string // default "jetprop"; required, and unique, in a cluster
	MaxPayload int32  // default 1 MiB (also the MQTT payload limit)
	MaxStore   int64  // JetStream file store limit (default 16 GiB)
	MaxMemory  int64  // JetStream memory store limit (default 256 MiB)
	SyncAlways bool   // fsync every write (slower; survives power loss)
	Ready      time.Duration
	Logger     *slog.Logger
	// EnginePassword is the password of EngineUser, for an engine or an
	// operator's tool in another process; "" draws one at every start,
	// known only to this process.
	EnginePassword string
	// Authorize decides every connection but the engine's own (the auth
	// callout): who may connect, and to what subjects. nil admits nobody
	// else.
	Authorize Authorizer
	// DeviceSubs is the most subscriptions a device's connection may hold
	// (default DefaultDeviceSubs; -1: no limit). Each QoS >= 1 MQTT
	// subscription is a JetStream consumer in the broker.
	DeviceSubs int
	// TLS, when set, makes the NATS and MQTT listeners TLS only; its
	// ClientAuth and ClientCAs decide mutual TLS (see tls.go).
	TLS *tls.Config
	// Cluster, when set, makes this server a node of a cluster (see
	// cluster.go); nil: a single server.
	Cluster *Cluster
}

// setDefaults fills the zero fields with the Default constants.
func (c *Config) setDefaults() {
	c.Host = cmp.Or(c.Host, DefaultHost)
	c.NATSPort = cmp.Or(c.NATSPort, DefaultNATSPort)
	c.MQTTPort = cmp.Or(c.MQTTPort, DefaultMQTTPort)
	if c.Cluster == nil {
		c.ServerName = cmp.Or(c.ServerName, "jetprop")
	} else {
		c.Cluster.setDefaults(c.Host)
	}
	c.MaxPayload = cmp.Or(c.MaxPayload, DefaultMaxPayload)
	c.MaxStore = cmp.Or(c.MaxStore, DefaultMaxStore)
	c.MaxMemory = cmp.Or(c.MaxMemory, DefaultMaxMemory)
	c.Ready = cmp.Or(c.Ready, DefaultReady)
	c.DeviceSubs = cmp.Or(c.DeviceSubs, DefaultDeviceSubs)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate fills the defaults and checks the config.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("natsserver: data dir is required")
	}
	c.setDefaults()
	for _, f := range [...]struct {
		name string
		p    int
	}{{"nats", c.NATSPort}, {"mqtt", c.MQTTPort}} {
		name, p := f.name, f.p
		if p < -1 || p > 65535 {
			return fmt.Errorf("natsserver: %s port %d out of range", name, p)
		}
	}
	if c.Cluster == nil {
		return nil
	}
	if c.EnginePassword != "" {
		return errors.New("natsserver: a cluster node derives the engine's password from the cluster secret; give no EnginePassword")
	}
	return c.Cluster.validate(c.ServerName)
}

// Server is a running embedded nats-server.
type Server struct {
	ns      *server.Server
	cfg     Config
	opts    *server.Options // the server writes the real ports back here
	auth    *auth
	callout *nats.Conn // answers the auth callout
}

// Start starts the server and waits until JetStream answers.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a, err := cfg.auth()
	if err != nil {
		return nil, err
	}
	opts := cfg.options()
	if err := a.apply(opts, cfg.DeviceSubs); err != nil {
		return nil, err
	}
	if cfg.Cluster != nil {
		if err := cfg.Cluster.apply(opts, a); err != nil {
			return nil, err
		}
	}
	if err := migrateStore(cfg.DataDir); err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	ns.SetLoggerV2(&logger{l: cfg.Logger}, false, false, false)
	go ns.Start()
	s := &Server{ns: ns, cfg: cfg, opts: opts, auth: a}
	if err := s.ready(ctx); err != nil {
		s.Shutdown()
		return nil, err
	}
	return s, nil
}

// ready waits for connections, turns JetStream on in both accounts, starts
// answering the auth callout and waits until JetStream answers.
func (s *Server) ready(ctx context.Context) error {
	if !s.ns.ReadyForConnections(s.cfg.Ready) {
		return fmt.Errorf("natsserver: not ready after %s (is port %d or %d in use?)", s.cfg.Ready, s.cfg.NATSPort, s.cfg.MQTTPort)
	}
	if err := enableJetStream(s.ns); err != nil {
		return err
	}
	nc, err := s.Connect(nats.Name("jetprop auth callout"))
	if err != nil {
		return err
	}
	s.callout = nc
	if err := s.auth.serveCallout(nc, s.cfg.Authorize, s.cfg.Logger); err != nil {
		return err
	}
	if s.cfg.Cluster != nil {
		if err := s.waitCluster(ctx); err != nil {
			return err
		}
	}
	return s.waitJetStream(ctx)
}

// auth is the engine's passwords and the callout's key: derived from the
// cluster secret on a cluster node, else drawn at start (the engine's
// NATS password may be given).
func (c *Config) auth() (*auth, error) {
	if c.Cluster != nil {
		return clusterAuth(c.Cluster.Secret)
	}
	a, err := newAuth()
	if err != nil {
		return nil, err
	}
	a.engine = cmp.Or(c.EnginePassword, a.engine)
	return a, nil
}

// options builds a fresh Options value: NewServer mutates what it is given.
func (c *Config) options() *server.Options {
	o := &server.Options{
		ServerName:         c.ServerName,
		Host:               c.Host,
		Port:               c.NATSPort,
		MaxPayload:         c.MaxPayload,
		JetStream:          true,
		StoreDir:           c.DataDir, // nats-server adds "jetstream"
		JetStreamMaxStore:  c.MaxStore,
		JetStreamMaxMemory: c.MaxMemory,
		SyncAlways:         c.SyncAlways,
		NoSigs:             true,
		// No limit of consumers per stream (nats-server's default is 1,000):
		// DeviceSubs bounds each device instead. Without this, at most 500
		// Propeller proplets (two QoS 1 subscriptions each) could receive.
		JetStreamLimits: server.JSLimitOpts{DefaultMaxConsumers: -1},
		// A QoS >= 1 message a device received but did not ack is sent
		// again only when this expires (not on reconnect): 5 s, not 30 s.
		MQTT: server.MQTTOpts{Host: c.Host, Port: c.MQTTPort, AckWait: MQTTAckWait},
	}
	c.applyTLS(o)
	return o
}

func (s *Server) waitJetStream(ctx context.Context) error {
	nc, err := s.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Ready)
	defer cancel()
	for {
		err := accountInfo(ctx, js)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsserver: jetstream not ready: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// accountInfo asks for the account's JetStream info, waiting at most a
// second: a request the server drops (JetStream clustered, not yet
// current) is asked again.
func accountInfo(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := js.AccountInfo(ctx)
	return err
}

// Connect opens an in-process client connection as the engine, in
// EngineAccount.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(s.ns), nats.Name("jetprop"), nats.UserInfo(EngineUser, s.auth.engine)}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("natsserver: connect: %w", err)
	}
	return nc, nil
}

// ClientURL is the nats:// URL of the client port.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// MQTTAddr is host:port of the MQTT listener.
func (s *Server) MQTTAddr() string {
	return net.JoinHostPort(connectHost(s.cfg.Host), strconv.Itoa(s.opts.MQTT.Port))
}

// connectHost is where a local client connects to a listener on host: the
// loopback address for every interface.
func connectHost(host string) string {
	if host == "0.0.0.0" || host == "::" || host == "" {
		return "127.0.0.1"
	}
	return host
}

// MQTTURL is tcp://host:port (tls://host:port with TLS) of the MQTT
// listener, as paho expects it.
func (s *Server) MQTTURL() string { return s.cfg.mqttScheme() + "://" + s.MQTTAddr() }

// NATS exposes the embedded server (for tests and cluster checks).
func (s *Server) NATS() *server.Server { return s.ns }

// EnableJetStream turns JetStream on, with the limits it starts with, in
// each of the two accounts where it is off (a test turns an account's off
// to play an unavailable store); their streams are recovered from disk.
func (s *Server) EnableJetStream() error { return enableJetStream(s.ns) }

// EngineURL is the nats:// URL of the client port with the engine's
// credentials in it, for an engine in another process in tests.
func (s *Server) EngineURL() string {
	u, err := url.Parse(s.ClientURL())
	if err != nil {
		return s.ClientURL()
	}
	u.User = url.UserPassword(EngineUser, s.auth.engine)
	return u.String()
}

// EngineMQTTURL is MQTTURL with the engine's MQTT credentials in it.
func (s *Server) EngineMQTTURL() string {
	return s.cfg.mqttScheme() + "://" + url.UserPassword(EngineMQTTUser, s.auth.engineMQTT).String() + "@" + s.MQTTAddr()
}

// EnginePassword is the password of EngineUser on this server.
func (s *Server) EnginePassword() string { return s.auth.engine }

// EngineMQTT returns the user name and password of the engine's MQTT
// connection: in DevicesAccount, allowed everything there, and known only
// to this process.
func (s *Server) EngineMQTT() (user, password string) { return EngineMQTTUser, s.auth.engineMQTT }

// Shutdown stops the server and waits until it has stopped.
func (s *Server) Shutdown() {
	if s.callout != nil {
		s.callout.Close()
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
