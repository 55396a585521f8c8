package natsserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"
)

// The two accounts of the embedded server. The engine's streams, buckets
// and timers live in EngineAccount, which no device can reach; devices
// (MQTT clients, and NATS clients that are not the engine) live in
// DevicesAccount, with the MQTT listener's own state. DevicesAccount
// exports the device topics (m.>) as a stream that EngineAccount imports,
// so EDGE_IN captures what devices publish; nothing flows back but through
// the engine's MQTT connection.
const (
	EngineAccount  = "ENGINE"
	DevicesAccount = "DEVICES"
)

// The engine's own users: the only ones the auth callout does not decide.
// Their passwords are drawn at every start and never leave the process.
const (
	EngineUser     = "jetprop-engine"      // in EngineAccount: the event log
	EngineMQTTUser = "jetprop-engine-mqtt" // in DevicesAccount: commands to devices over MQTT
)

// DeviceSubjects is what devices publish that the engine account imports.
const DeviceSubjects = "m.>"

// DevicesJSAPI is the prefix under which the engine account reaches the
// JetStream API of the devices' account (where the MQTT listener keeps its
// sessions and messages): jetstream.NewWithAPIPrefix(nc, DevicesJSAPI).
const DevicesJSAPI = "$JS.DEVICES.API"

// Client is what a connecting client presents, as the auth callout tells
// it.
type Client struct {
	Type     string // "mqtt" or "nats"
	Username string
	Password string
	ClientID string // the MQTT client id ("" for NATS)
	Host     string // remote address
	// CertChains are the client certificate chains the server verified
	// (PEM), with mutual TLS.
	CertChains [][]string
}

// Grant is what an admitted client may do, in DevicesAccount. Subjects are
// NATS subjects (an MQTT topic a/b is a.b).
type Grant struct {
	Name string // the user name the server shows for the connection
	Pub  []string
	Sub  []string
	MQTT bool // the connection must be MQTT
}

// Authorizer decides whether a client that is not the engine may connect,
// and what it may do (the auth callout's decision). An error refuses the
// client; its text goes to the server log.
type Authorizer interface {
	Authorize(ctx context.Context, c Client) (Grant, error)
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, c Client) (Grant, error)

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, c Client) (Grant, error) { return f(ctx, c) }

// errNoAuthorizer refuses everyone but the engine.
var errNoAuthorizer = errors.New("natsserver: no device may connect (no authorizer)")

// auth holds the engine's passwords and the callout's signing key.
type auth struct {
	engine, engineMQTT string
	route              string // routes' password (cluster nodes only)
	issuer             nkeys.KeyPair
	issuerPub          string
}

func newAuth() (*auth, error) {
	kp, err := nkeys.CreateAccount()
	if err != nil {
		return nil, fmt.Errorf("natsserver: callout key: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return &auth{engine: secret(), engineMQTT: secret(), issuer: kp, issuerPub: pub}, nil
}

func secret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// accounts declares the two accounts, the engine's users and the callout
// in opts.
func (a *auth) apply(opts *server.Options, deviceSubs int) error {
	engine := server.NewAccount(EngineAccount)
	devices, err := devicesAccount(deviceSubs)
	if err != nil {
		return err
	}
	if err := devices.AddStreamExport(DeviceSubjects, []*server.Account{engine}); err != nil {
		return fmt.Errorf("natsserver: export device subjects: %w", err)
	}
	if err := engine.AddStreamImport(devices, DeviceSubjects, ""); err != nil {
		return fmt.Errorf("natsserver: import device subjects: %w", err)
	}
	if err := devices.AddServiceExport("$JS.API.>", []*server.Account{engine}); err != nil {
		return fmt.Errorf("natsserver: export the devices' JetStream API: %w", err)
	}
	if err := engine.AddServiceImport(devices, DevicesJSAPI+".>", "$JS.API.>"); err != nil {
		return fmt.Errorf("natsserver: import the devices' JetStream API: %w", err)
	}
	opts.Accounts = []*server.Account{engine, devices}
	var enginePW []byte
	// The server keeps bcrypt hashes of the engine's passwords, not the
	// passwords (nats-server checks a "$2a$" password with bcrypt). They
	// are 192 random bits: the lowest cost is plenty, and keeps every
	// engine connection's check cheap.
	enginePW, err = bcrypt.GenerateFromPassword([]byte(a.engine), bcrypt.MinCost)
	if err != nil {
		return err
	}
	mqttPW, err := bcrypt.GenerateFromPassword([]byte(a.engineMQTT), bcrypt.MinCost)
	if err != nil {
		return err
	}
	opts.Users = []*server.User{
		{Username: EngineUser, Password: string(enginePW), Account: engine},
		{Username: EngineMQTTUser, Password: string(mqttPW), Account: devices,
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeMqtt: {}}},
	}
	opts.AuthCallout = &server.AuthCallout{Issuer: a.issuerPub, Account: EngineAccount,
		AuthUsers: []string{EngineUser, EngineMQTTUser}}
	opts.NoAuthUser = ""
	return nil
}

// devicesAccount makes DevicesAccount, whose connections may hold at most
// subs subscriptions each (none: no limit). Over MQTT every QoS >= 1
// subscription is a durable JetStream consumer, so this bounds what one
// device can cost the broker. nats-server applies the limits of the
// account, not those of a user the auth callout admits, and sets account
// limits only from its configuration language: hence the parse.
func devicesAccount(subs int) (*server.Account, error) {
	if subs <= 0 {
		return server.NewAccount(DevicesAccount), nil
	}
	var o server.Options
	if err := o.ProcessConfigString(fmt.Sprintf("accounts: { %s: { limits: { max_subscriptions: %d } } }", DevicesAccount, subs)); err != nil {
		return nil, fmt.Errorf("natsserver: the devices' account: %w", err)
	}
	for _, acc := range o.Accounts {
		if acc.Name == DevicesAccount {
			return acc, nil
		}
	}
	return nil, fmt.Errorf("natsserver: the devices' account was not declared")
}

// enableJetStream turns JetStream on in both accounts (the devices'
// account holds the MQTT listener's sessions and messages).
func enableJetStream(ns *server.Server) error {
	for _, name := range []string{EngineAccount, DevicesAccount} {
		acc, err := ns.LookupAccount(name)
		if err != nil {
			return fmt.Errorf("natsserver: account %s: %w", name, err)
		}
		if acc.JetStreamEnabled() {
			continue
		}
		limits := map[string]server.JetStreamAccountLimits{_EMPTY: {MaxMemory: -1, MaxStore: -1, MaxStreams: -1, MaxConsumers: -1}}
		if err := acc.EnableJetStream(limits, nil); err != nil {
			return fmt.Errorf("natsserver: jetstream for %s: %w", name, err)
		}
	}
	return nil
}

const _EMPTY = ""

// calloutTimeout bounds one authorization decision.
const calloutTimeout = 2 * time.Second

// calloutQueue is the queue group of the callout's responders: in a
// cluster, one node answers each request, its own node's responder first
// (nats-server prefers a local queue subscriber), another node's when its
// own is not up.
const calloutQueue = "jetprop-callout"

// serveCallout answers the server's authorization requests with authz's
// decisions until nc is closed.
func (a *auth) serveCallout(nc *nats.Conn, authz Authorizer, log *slog.Logger) error {
	_, err := nc.QueueSubscribe(server.AuthCalloutSubject, calloutQueue, func(m *nats.Msg) {
		resp, err := a.decide(authz, m.Data, log)
		if err != nil {
			log.Warn("auth callout: cannot answer", "err", err)
			return
		}
		_ = m.Respond([]byte(resp))
	})
	if err != nil {
		return fmt.Errorf("natsserver: auth callout: %w", err)
	}
	return nc.Flush()
}

func (a *auth) decide(authz Authorizer, req []byte, log *slog.Logger) (string, error) {
	rc, err := jwt.DecodeAuthorizationRequestClaims(string(req))
	if err != nil {
		return "", err
	}
	resp := jwt.NewAuthorizationResponseClaims(rc.UserNkey)
	resp.Audience = rc.Server.ID
	c := client(rc)
	grant, err := a.authorize(authz, c)
	if err != nil {
		log.Info("connection refused", "type", c.Type, "user", c.Username, "client_id", c.ClientID, "host", c.Host, "reason", err)
		resp.Error = err.Error()
		return resp.Encode(a.issuer)
	}
	if resp.Jwt, err = userJWT(rc.UserNkey, grant, a.issuer); err != nil {
		return "", err
	}
	return resp.Encode(a.issuer)
}

func (a *auth) authorize(authz Authorizer, c Client) (Grant, error) {
	if authz == nil {
		return Grant{}, errNoAuthorizer
	}
	ctx, cancel := context.WithTimeout(context.Background(), calloutTimeout)
	defer cancel()
	return authz.Authorize(ctx, c)
}

// userJWT is the user the server admits into DevicesAccount for a grant:
// it may publish and subscribe to the granted subjects and nothing else.
func userJWT(nkey string, g Grant, issuer nkeys.KeyPair) (string, error) {
	uc := jwt.NewUserClaims(nkey)
	uc.Audience = DevicesAccount
	uc.Name = g.Name
	uc.Permissions.Pub.Allow.Add(g.Pub...)
	uc.Permissions.Sub.Allow.Add(g.Sub...)
	if len(g.Pub) == 0 {
		uc.Permissions.Pub.Deny.Add(">")
	}
	if len(g.Sub) == 0 {
		uc.Permissions.Sub.Deny.Add(">")
	}
	if g.MQTT {
		uc.AllowedConnectionTypes.Add(jwt.ConnectionTypeMqtt)
	}
	return uc.Encode(issuer)
}

func client(rc *jwt.AuthorizationRequestClaims) Client {
	c := Client{Type: rc.ClientInformation.Type, Username: rc.ConnectOptions.Username,
		Password: rc.ConnectOptions.Password, ClientID: rc.ClientInformation.MQTT, Host: rc.ClientInformation.Host}
	if rc.TLS != nil {
		for _, chain := range rc.TLS.VerifiedChains {
			c.CertChains = append(c.CertChains, []string(chain))
		}
	}
	return c
}

// Disconnect closes the connections in DevicesAccount of the user the
// callout admitted as name (Grant.Name), and the MQTT connection with
// client id mqttClient when it is not empty. It returns how many it closed.
func (s *Server) Disconnect(name, mqttClient string) (int, error) {
	cz, err := s.ns.Connz(&server.ConnzOptions{Account: DevicesAccount, Limit: 1 << 20})
	if err != nil {
		return 0, fmt.Errorf("natsserver: list connections: %w", err)
	}
	n := 0
	for _, c := range cz.Conns {
		if c.NameTag != name && (mqttClient == "" || c.MQTTClient != mqttClient) {
			continue
		}
		if err := s.ns.DisconnectClientByID(c.Cid); err == nil {
			n++
		}
	}
	return n, nil
}
