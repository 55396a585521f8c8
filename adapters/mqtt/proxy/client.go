package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// client is the proxy's MQTT connection: it subscribes to registry/proplet
// on every connect (Propeller's components do not re-subscribe after a
// reconnect) and publishes chunks for the chunk server.
type client struct {
	c       paho.Client
	topics  wire.Topics
	qos     byte
	timeout time.Duration
	log     *slog.Logger

	once   sync.Once
	ready  chan struct{} // closed by the first subscription
	mu     sync.Mutex
	subErr error // of the last subscription that failed
}

var _ mqtt.ChunkPublisher = (*client)(nil)

func newClient(cfg Config, handle paho.MessageHandler, log *slog.Logger) *client {
	m := &client{topics: cfg.topics(), qos: cfg.QoS, timeout: cfg.Timeout, log: log, ready: make(chan struct{})}
	id := cfg.InstanceID
	if id == "" {
		id = randomID()
	}
	opts := paho.NewClientOptions().AddBroker(cfg.MQTTAddress).SetClientID(id).
		SetUsername(cfg.ClientID).SetPassword(cfg.ClientKey).
		SetCleanSession(cfg.InstanceID == ""). // a stable id keeps requests sent while the proxy was away
		SetAutoReconnect(true).SetMaxReconnectInterval(5 * time.Second).SetKeepAlive(30 * time.Second).SetOrderMatters(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) { log.Warn("mqtt connection lost", logErr, err) }).
		SetOnConnectHandler(func(c paho.Client) { m.subscribe(c, handle) })
	m.c = paho.NewClient(opts)
	return m
}

// subscribe runs on every connect (in its own goroutine).
func (m *client) subscribe(c paho.Client, handle paho.MessageHandler) {
	topic := m.topics.Topic(wire.SuffixModuleRequest)
	tok := c.Subscribe(topic, m.qos, handle)
	err := fmt.Errorf("mqtt: subscribe %s: timed out after %s", topic, m.timeout)
	if tok.WaitTimeout(m.timeout) {
		err = tok.Error()
	}
	if err != nil {
		m.mu.Lock()
		m.subErr = err
		m.mu.Unlock()
		m.log.Error("subscribe to registry requests", "topic", topic, logErr, err)
		return
	}
	m.log.Debug("subscribed", "topic", topic)
	m.once.Do(func() { close(m.ready) })
}

// connect connects and waits for the first subscription. A broker that
// cannot be reached or refuses the credentials fails it at once; a
// connection lost later is re-established in the background.
func (m *client) connect(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := m.c.OptionsReader()
	server := r.Servers()[0]
	tok := m.c.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt: connect to %s: %w", server, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("mqtt: connect to %s: %w", server, ctx.Err())
	}
	select {
	case <-m.ready:
		return nil
	case <-ctx.Done():
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.subErr != nil {
			return m.subErr
		}
		return fmt.Errorf("mqtt: subscribe on %s: %w", server, ctx.Err())
	}
}

// PublishAsync sends v as JSON on the deployment's topic with suffix.
func (m *client) PublishAsync(suffix string, v any) (paho.Token, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return m.c.Publish(m.topics.Topic(suffix), m.qos, false, b), nil
}

// Wait waits for a publish's acknowledgement, ctx and the timeout.
func (m *client) Wait(ctx context.Context, suffix string, tok paho.Token) error {
	topic := m.topics.Topic(suffix)
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt: publish %s: %w", topic, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt: publish %s: %w", topic, ctx.Err())
	}
}

// close disconnects, letting in-flight publishes finish for up to 250 ms.
func (m *client) close() { m.c.Disconnect(250) }
