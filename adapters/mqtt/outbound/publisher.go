package outbound

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// DefaultTimeout bounds a connect and each publish unless configured.
const DefaultTimeout = 10 * time.Second

// Failover timings: a broker that does not answer a connect is given up
// for the next one after brokerConnectTimeout; a connection that stops
// answering is found lost after keepAlive plus paho's ping timeout; a lost
// connection is tried again (every broker in turn) at most
// maxReconnectWait apart. Seconds, so dispatch moves to a surviving node
// of a cluster within seconds.
const (
	brokerConnectTimeout = 5 * time.Second
	keepAlive            = 10 * time.Second
	maxReconnectWait     = 2 * time.Second
)

// PublisherConfig declares an MQTT client connection that publishes.
type PublisherConfig struct {
	// URL is tcp://host:port of the broker (tls://, ssl://, mqtts:// with
	// TLS), or several, comma-separated: the publisher connects to the
	// first that answers and fails over to the others.
	URL      string
	ClientID string
	Username string
	Password string
	QoS      byte // 1 or 2 (default 1)
	Topics   wire.Topics
	TLS      *tls.Config   // for a TLS URL: the CA, a client certificate (nil: the system's CAs)
	Timeout  time.Duration // each publish, and the first connect unless ConnectFor (default DefaultTimeout)
	// ConnectFor bounds the first connect (default Timeout). On a cluster
	// a broker whose JetStream is electing a leader cannot take a session
	// for a while: an engine starting then waits for it.
	ConnectFor time.Duration
	// Persistent keeps the broker's session across reconnects (clean
	// session off): subscriptions and messages queued while away survive.
	Persistent bool
	// FailFast fails the first connect at once when the broker cannot be
	// reached or refuses it; otherwise it is retried until Timeout.
	FailFast bool
	// OnConnect runs on every connect, in its own goroutine: subscribe
	// there, since a reconnect does not restore subscriptions of a clean
	// session.
	OnConnect func(paho.Client)
}

func (c *PublisherConfig) setDefaults() {
	if c.QoS == 0 {
		c.QoS = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ConnectFor <= 0 {
		c.ConnectFor = c.Timeout
	}
}

// Validate checks the config (after defaults).
func (c PublisherConfig) Validate() error {
	if c.QoS > 2 {
		return fmt.Errorf("mqtt: qos %d out of range", c.QoS)
	}
	if c.URL == "" {
		return errors.New("mqtt: broker URL is empty")
	}
	if _, err := wire.Brokers(c.URL); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	return c.Topics.Validate()
}

// Publisher is an MQTT client connection that publishes JSON messages on
// the deployment's topics and reconnects on its own.
type Publisher struct {
	cfg    PublisherConfig
	client paho.Client
}

// NewPublisher connects to the broker; it fails after cfg.Timeout, when
// ctx is done, or (with FailFast) as soon as the broker refuses.
func NewPublisher(ctx context.Context, cfg PublisherConfig, log *slog.Logger) (*Publisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := paho.NewClientOptions().SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).SetPassword(cfg.Password).SetTLSConfig(cfg.TLS).
		SetCleanSession(!cfg.Persistent).SetAutoReconnect(true).
		SetConnectRetry(!cfg.FailFast).SetConnectRetryInterval(time.Second).SetConnectTimeout(brokerConnectTimeout).
		SetMaxReconnectInterval(maxReconnectWait).SetKeepAlive(keepAlive).SetOrderMatters(false).
		SetConnectionLostHandler(func(_ paho.Client, err error) { log.Warn("mqtt connection lost", "err", err) }).
		SetReconnectingHandler(func(_ paho.Client, o *paho.ClientOptions) { log.Info("mqtt reconnecting", "brokers", len(o.Servers)) })
	for _, b := range wire.SplitBrokers(cfg.URL) {
		opts.AddBroker(b)
	}
	if cfg.OnConnect != nil {
		opts.SetOnConnectHandler(cfg.OnConnect)
	}
	p := &Publisher{cfg: cfg, client: paho.NewClient(opts)}
	if err := p.connect(ctx); err != nil {
		p.client.Disconnect(0)
		return nil, err
	}
	return p, nil
}

func (p *Publisher) connect(ctx context.Context) error {
	brokers := redacted(p.cfg.URL)
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectFor)
	defer cancel()
	tok := p.client.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt: connect to %s: %w", brokers, err)
		}
		return nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("mqtt: connect to %s: timed out after %s", brokers, p.cfg.ConnectFor)
		}
		return fmt.Errorf("mqtt: connect to %s: %w", brokers, ctx.Err())
	}
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

// Notify sends v as JSON at QoS 0 and does not wait: for messages whose
// loss the receiver makes up for (it asks again). It fails only when v
// does not encode, ctx is done, or paho failed the publish at once (not
// connected).
func (p *Publisher) Notify(ctx context.Context, suffix string, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tok := p.client.Publish(p.cfg.Topics.Topic(suffix), 0, false, b)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt: publish %s: %w", p.cfg.Topics.Topic(suffix), err)
		}
	default:
	}
	return nil
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

// redacted is a broker list without the credentials in its URLs, for
// errors and logs.
func redacted(list string) string {
	var out []string
	for _, b := range wire.SplitBrokers(list) {
		if u, err := url.Parse(b); err == nil && u.User != nil {
			u.User = nil
			b = u.String()
		}
		out = append(out, b)
	}
	return strings.Join(out, ",")
}
