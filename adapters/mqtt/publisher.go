package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// PublisherConfig declares the engine's MQTT client connection.
type PublisherConfig struct {
	URL      string // tcp://host:port of the MQTT listener
	ClientID string
	Username string
	Password string
	QoS      byte // 1 or 2 (default 1)
	Topics   wire.Topics
	Timeout  time.Duration // per publish (default 10 s)
}

// Publisher sends manager messages to proplets through a real MQTT client
// connection, so they are delivered at QoS >= 1 and kept for proplets whose
// persistent session is offline.
type Publisher struct {
	cfg    PublisherConfig
	client paho.Client
	log    *slog.Logger
}

// NewPublisher connects to the MQTT listener (and reconnects on its own).
func NewPublisher(cfg PublisherConfig, log *slog.Logger) (*Publisher, error) {
	if cfg.QoS == 0 {
		cfg.QoS = 1
	}
	if cfg.QoS > 2 {
		return nil, fmt.Errorf("mqtt: qos %d out of range", cfg.QoS)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if err := cfg.Topics.Validate(); err != nil {
		return nil, err
	}
	opts := paho.NewClientOptions().AddBroker(cfg.URL).SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).SetPassword(cfg.Password).
		SetCleanSession(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).SetMaxReconnectInterval(5 * time.Second).
		SetKeepAlive(30 * time.Second).SetOrderMatters(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) { log.Warn("mqtt publisher connection lost", "err", err) })
	p := &Publisher{cfg: cfg, client: paho.NewClient(opts), log: log}
	tok := p.client.Connect()
	if !tok.WaitTimeout(cfg.Timeout) {
		p.client.Disconnect(0)
		return nil, fmt.Errorf("mqtt: connect to %s: timed out after %s", cfg.URL, cfg.Timeout)
	}
	if err := tok.Error(); err != nil {
		p.client.Disconnect(0)
		return nil, fmt.Errorf("mqtt: connect to %s: %w", cfg.URL, err)
	}
	return p, nil
}

// Start publishes a start request on control/manager/start.
func (p *Publisher) Start(ctx context.Context, req wire.StartRequest) error {
	return p.Publish(ctx, wire.SuffixStart, req)
}

// Stop publishes a stop request on control/manager/stop.
func (p *Publisher) Stop(ctx context.Context, req wire.StopRequest) error {
	return p.Publish(ctx, wire.SuffixStop, req)
}

// Publish sends v as JSON on the deployment's topic with suffix and waits
// for the broker's acknowledgement.
func (p *Publisher) Publish(ctx context.Context, suffix string, v any) error {
	tok, err := p.PublishAsync(suffix, v)
	if err != nil {
		return err
	}
	return p.Wait(ctx, suffix, tok)
}

// PublishAsync sends v without waiting; Wait collects the outcome.
func (p *Publisher) PublishAsync(suffix string, v any) (paho.Token, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return p.client.Publish(p.cfg.Topics.Topic(suffix), p.cfg.QoS, false, b), nil
}

// Wait waits for a publish's acknowledgement, ctx and the publish timeout.
func (p *Publisher) Wait(ctx context.Context, suffix string, tok paho.Token) error {
	topic := p.cfg.Topics.Topic(suffix)
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
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

// Close disconnects, letting in-flight publishes finish for up to 250 ms.
func (p *Publisher) Close() { p.client.Disconnect(250) }
