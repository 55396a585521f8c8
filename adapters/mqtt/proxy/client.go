package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// client is the proxy's MQTT connection: it subscribes to registry/proplet
// on every connect (Propeller's components do not re-subscribe after a
// reconnect) and publishes chunks for the chunk server.
type client struct {
	*outbound.Publisher
	topic   string
	qos     byte
	timeout time.Duration
	handle  paho.MessageHandler
	log     *slog.Logger

	once   sync.Once
	ready  chan struct{} // closed by the first subscription
	mu     sync.Mutex
	subErr error // of the last subscription that failed
}

var _ outbound.ChunkPublisher = (*client)(nil)

// newClient returns the proxy's client; connect connects it.
func newClient(cfg Config, handle paho.MessageHandler, log *slog.Logger) *client {
	return &client{topic: cfg.topics().Topic(wire.SuffixModuleRequest), qos: cfg.QoS, timeout: cfg.Timeout,
		handle: handle, log: log, ready: make(chan struct{})}
}

// connect connects and waits for the first subscription. A broker that
// cannot be reached or refuses the credentials fails it at once; a
// connection lost later is re-established in the background.
func (m *client) connect(ctx context.Context, cfg Config) error {
	id := cfg.InstanceID
	if id == "" {
		id = randomID()
	}
	tlsc, err := cfg.mqttTLS()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	pub, err := outbound.NewPublisher(ctx, outbound.PublisherConfig{
		URL: cfg.MQTTAddress, ClientID: id, Username: cfg.ClientID, Password: cfg.ClientKey, TLS: tlsc,
		QoS: cfg.QoS, Topics: cfg.topics(), Timeout: cfg.Timeout,
		Persistent: cfg.InstanceID != "", // a stable id keeps requests sent while the proxy was away
		FailFast:   true, OnConnect: m.subscribe,
	}, m.log)
	if err != nil {
		return err
	}
	m.Publisher = pub
	select {
	case <-m.ready:
		return nil
	case <-ctx.Done():
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.subErr != nil {
			return m.subErr
		}
		return fmt.Errorf("mqtt: subscribe on %s: %w", cfg.MQTTAddress, ctx.Err())
	}
}

// subscribe runs on every connect (in its own goroutine).
func (m *client) subscribe(c paho.Client) {
	tok := c.Subscribe(m.topic, m.qos, m.handle)
	err := fmt.Errorf("mqtt: subscribe %s: timed out after %s", m.topic, m.timeout)
	if tok.WaitTimeout(m.timeout) {
		err = tok.Error()
	}
	if err != nil {
		m.mu.Lock()
		m.subErr = err
		m.mu.Unlock()
		m.log.Error("subscribe to registry requests", "topic", m.topic, logErr, err)
		return
	}
	m.log.Debug("subscribed", "topic", m.topic)
	m.once.Do(func() { close(m.ready) })
}

// close disconnects, if connected.
func (m *client) close() {
	if m.Publisher != nil {
		m.Publisher.Close()
	}
}
