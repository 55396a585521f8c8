package proplet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// MQTT timings, in seconds so a proplet moves to a surviving node of a
// cluster within seconds: a broker that does not answer a connect is left
// for the next after connectTimeout; a connection that stops answering is
// found lost after keepAlive plus paho's ping timeout (10 s); a lost
// connection is tried again (every broker in turn) at most
// maxReconnectWait apart.
const (
	connectTimeout   = 5 * time.Second
	keepAlive        = 15 * time.Second
	maxReconnectWait = 5 * time.Second
	subscribeTimeout = 10 * time.Second
	disconnectQuiet  = 250 // ms for in-flight work before DISCONNECT
)

// clientOptions: a persistent session (clean session off, stable client id,
// the journal as session store so unacknowledged QoS >= 1 messages survive
// a crash),
// automatic reconnects, a last will on the alive topic, and manual acks: a
// start is acknowledged only once it is accepted, so one that arrives while
// the proplet shuts down is redelivered to its next session (on the shared
// topics; on its own topics commands come at QoS 0, and the engine sends
// a start again until it is accepted).
func (p *Proplet) clientOptions() *paho.ClientOptions {
	will, _ := json.Marshal(wire.Alive{PropletID: p.id, Status: wire.StatusOffline, Namespace: p.cfg.Namespace})
	opts := paho.NewClientOptions().
		SetTLSConfig(p.tls).
		SetClientID(p.id).
		SetUsername(p.id).
		SetPassword(p.cfg.APIKey).
		SetCleanSession(false).
		SetStore(p.journal.Store()).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxReconnectWait).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(keepAlive).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetBinaryWill(p.topics.Topic(p.out(wire.SuffixAlive)), will, 1, false).
		SetDefaultPublishHandler(p.onMessage).
		SetOnConnectHandler(p.onConnect).
		SetConnectionAttemptHandler(p.onAttempt).
		SetConnectionLostHandler(p.onConnectionLost)
	for _, b := range wire.SplitBrokers(p.cfg.MQTTAddress) {
		opts.AddBroker(b)
	}
	return opts
}

// connect makes the first connection, retrying with backoff until it works
// or ctx is done; paho reconnects by itself afterwards. The Connect token
// completes once paho has resent the session store, and with it claimed the
// message ids of the stored messages; only then is ready closed, and
// nothing publishes before that (paho would otherwise hand a new message
// the id of a stored one, and overwrite it in the store).
func (p *Proplet) connect(ctx context.Context) {
	backoff := time.Second
	for {
		tok := p.client.Connect()
		err := wait(ctx, tok)
		if ctx.Err() != nil {
			tok.WaitTimeout(connectTimeout) // let the attempt settle before Disconnect
			return
		}
		if err == nil {
			close(p.ready)
			return
		}
		p.log.Error("connect failed", keyBroker, p.cfg.MQTTAddress, keyErr, err, keyRetryIn, backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxReconnectWait)
	}
}

func (p *Proplet) onConnect(paho.Client) {
	p.connects.Add(1)
	var b string
	if last := p.broker.Load(); last != nil {
		b = *last
	}
	p.log.Info("connected", keyBroker, b)
	select {
	case p.connected <- struct{}{}:
	default: // one pending announcement is enough
	}
}

// onAttempt notes the broker paho tries now (of the list, in turn): the
// one it is connected to when onConnect runs.
func (p *Proplet) onAttempt(broker *url.URL, cfg *tls.Config) *tls.Config {
	b := broker.Redacted()
	p.broker.Store(&b)
	return cfg
}

func (p *Proplet) onConnectionLost(_ paho.Client, err error) {
	p.log.Warn("connection lost, reconnecting", keyErr, err)
}

// Resubscribing after the broker refused: the first retry after
// resubscribeMin, doubling up to resubscribeMax, and on every reconnect.
const (
	resubscribeMin = 10 * time.Second
	resubscribeMax = 5 * time.Minute
)

// announceLoop owns subscribing, discovery and heartbeats. On every connect
// it (re)subscribes, announces itself and heartbeats at once; then it
// heartbeats every Liveliness interval. While it cannot subscribe, its
// heartbeats say unreachable, with the reason, and it tries again with a
// backoff (see resubscribe).
func (p *Proplet) announceLoop(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-p.ready: // the first connect's signal is waiting in p.connected
	}
	ticker := time.NewTicker(p.cfg.Liveliness)
	defer ticker.Stop()
	var r reception
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.connected:
			p.resubscribe(ctx, &r)
		case <-ticker.C:
			if !p.client.IsConnectionOpen() {
				continue
			}
			if r.due(time.Now()) {
				p.resubscribe(ctx, &r)
				continue
			}
			p.heartbeat(ctx, r.err)
		}
	}
}

// resubscribe subscribes. Then it announces the proplet (discovery and a
// heartbeat), so an engine that saw it unreachable sees it reachable
// again. When the subscription fails it heartbeats unreachable, with the
// reason, publishing no discovery: a proplet that cannot receive must not
// look healthy.
func (p *Proplet) resubscribe(ctx context.Context, r *reception) {
	err := p.subscribe(ctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		r.failed(err, time.Now())
		p.log.Error("cannot receive: subscribe failed; heartbeats say unreachable", keyErr, err, keyRetryIn, r.backoff)
		p.heartbeat(ctx, err)
		return
	}
	if r.err != nil {
		p.log.Info("subscribed: reachable again", keyReason, r.err)
	}
	r.subscribed()
	p.announce(ctx)
}

// reception is whether the subscriptions stand and, when they do not, why
// and when to try again.
type reception struct {
	err     error         // of the last subscribe; nil once subscribed
	backoff time.Duration // from the last failure to the next try
	next    time.Time     // of the next try
}

// failed records a failed subscribe at now: the next try is resubscribeMin
// later, then twice as long each time, at most resubscribeMax.
func (r *reception) failed(err error, now time.Time) {
	r.err = err
	r.backoff = min(max(2*r.backoff, resubscribeMin), resubscribeMax)
	r.next = now.Add(r.backoff)
}

// subscribed records a subscribe that worked: the backoff starts over.
func (r *reception) subscribed() { *r = reception{} }

// due reports whether a failed subscribe is to be tried again at now.
func (r *reception) due(now time.Time) bool {
	return r.err != nil && !now.Before(r.next)
}

// subscribe subscribes to starts and stops, and to module chunks at QoS 0
// on registry/server/<id>, where the jetprop engine answers this proplet
// alone.
//
// On its own topics that is one subscription for commands
// (control/manager/<id>/+), at QoS 0 whatever Config.QoS says: nats-server
// makes every QoS >= 1 MQTT subscription a durable JetStream consumer,
// flushed to disk on every ack, and at 10,000 devices those consumers are
// the broker's bottleneck (and beyond its default of 1,000 consumers per
// stream). Delivery is the engine's job there instead: it sends a start
// again until the proplet accepts it (sendAccepted), and places the task
// elsewhere when no accept comes in time.
//
// On the shared topics (Propeller's manager, which sends once) starts and
// stops are two subscriptions at Config.QoS, so the broker keeps what
// comes while the proplet is away; invokes come at QoS 0 (no broker
// consumer: a call waits for its answer and times out); chunks come on registry/server too,
// where Propeller's proxy answers everyone.
//
// Chunks need no broker-side session state (chunks sent while the
// proplet is away are worthless to keep): a lost chunk is asked for again
// after the quiet period.
func (p *Proplet) subscribe(ctx context.Context) error {
	filters := map[string]byte{
		p.topics.Topic(wire.OwnTopic("control/manager", p.id) + "/+"): 0,
		p.topics.Topic(wire.PropletChunkTopic(p.id)):                  0,
	}
	if p.cfg.SharedTopics {
		filters = map[string]byte{
			p.topics.Topic(wire.SuffixStart):             p.cfg.QoS,
			p.topics.Topic(wire.SuffixStop):              p.cfg.QoS,
			p.topics.Topic(wire.SuffixInvoke):            0, // a call waits for its answer: one kept while away is answered too late
			p.topics.Topic(wire.SuffixChunk):             0,
			p.topics.Topic(wire.PropletChunkTopic(p.id)): 0,
		}
	}
	ctx, cancel := context.WithTimeout(ctx, subscribeTimeout)
	defer cancel()
	tok := p.client.SubscribeMultiple(filters, p.onMessage)
	if err := wait(ctx, tok); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	return refused(tok.(*paho.SubscribeToken).Result())
}

// refused reports topics the broker refused (return code 0x80).
func refused(codes map[string]byte) error {
	for topic, code := range codes {
		if code == 0x80 {
			return fmt.Errorf("broker refused the subscription to %s", topic)
		}
	}
	return nil
}

func (p *Proplet) announce(ctx context.Context) {
	d := wire.Discovery{PropletID: p.id, Namespace: p.cfg.Namespace, Metadata: p.meta, Accepts: !p.cfg.SharedTopics}
	if err := p.publishWithin(ctx, wire.SuffixCreate, p.cfg.QoS, d); err != nil {
		p.log.Warn("discovery not published", keyErr, err)
	}
	p.heartbeat(ctx, nil)
}

// heartbeat says alive, or unreachable with the reason when unreachable
// is not nil.
func (p *Proplet) heartbeat(ctx context.Context, unreachable error) {
	a := wire.Alive{PropletID: p.id, Status: wire.StatusAlive, Namespace: p.cfg.Namespace}
	if unreachable != nil {
		a.Status, a.Reason = wire.StatusUnreachable, unreachable.Error()
	}
	if err := p.publishWithin(ctx, wire.SuffixAlive, p.cfg.HeartbeatQoS, a); err != nil {
		p.log.Warn("heartbeat not published", keyErr, err)
	}
}

// publishWithin publishes and waits at most one liveliness interval.
func (p *Proplet) publishWithin(ctx context.Context, suffix string, qos byte, v any) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Liveliness)
	defer cancel()
	return p.publish(ctx, suffix, qos, v)
}

// publish sends v as JSON and waits for the broker's acknowledgement (for
// QoS >= 1) or ctx. A QoS >= 1 message that ctx gave up on stays in the
// session store and is sent again after a reconnect or restart.
func (p *Proplet) publish(ctx context.Context, suffix string, qos byte, v any) error {
	tok, err := p.send(ctx, suffix, qos, v)
	if err != nil {
		return err
	}
	return wait(ctx, tok)
}

// send hands v, as JSON, to paho once the first connect is complete (or
// fails when ctx ends first) and returns paho's token.
func (p *Proplet) send(ctx context.Context, suffix string, qos byte, v any) (paho.Token, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("proplet: encode %s: %w", suffix, err)
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	return p.client.Publish(p.topics.Topic(p.out(suffix)), qos, false, b), nil
}

// out is where a message of a shared suffix goes: the proplet's own topic,
// or the shared one with SharedTopics.
func (p *Proplet) out(suffix string) string {
	if p.cfg.SharedTopics {
		return suffix
	}
	return wire.OwnTopic(suffix, p.id)
}

// goOffline tells the manager we are leaving (the will is only sent for an
// abrupt loss) and disconnects.
func (p *Proplet) goOffline() {
	if p.client.IsConnectionOpen() {
		a := wire.Alive{PropletID: p.id, Status: wire.StatusOffline, Namespace: p.cfg.Namespace}
		if err := p.publish(p.pubCtx, wire.SuffixAlive, 1, a); err != nil {
			p.log.Warn("offline status not published", keyErr, err)
		}
	}
	p.client.Disconnect(disconnectQuiet)
	p.log.Info("disconnected")
}

// wait waits for a paho token or ctx.
func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
