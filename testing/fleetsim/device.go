package fleetsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// Timings of a device that Config does not set.
const (
	maxReconnectWait = 30 * time.Second // as the proplet
	firstRetryWait   = time.Second      // after a failed first connect, doubling
	goodbyeWait      = 5 * time.Second  // for the offline status at Close
	disconnectQuiet  = 250              // ms, as the proplet
)

// device is one simulated proplet: a paho client on its own topics.
type device struct {
	f      *Fleet
	id     string
	topics wire.Topics
	client paho.Client

	connects   chan struct{} // a connect happened; the loop (re)subscribes and announces
	setupDone  chan struct{} // closed after the first setup, or when the device gives up
	setupOnce  sync.Once
	subscribed atomic.Bool // the broker accepted the subscription to starts
	// unreachable is why the broker refused the subscription, which the
	// heartbeats say; nil while it has not, and always with NoAccept.
	unreachable atomic.Pointer[string]
}

func newDevice(f *Fleet, i int, id string) *device {
	d := &device{f: f, id: id, topics: wire.Topics{Tenant: f.cfg.Tenant, Channel: f.cfg.Channel},
		connects: make(chan struct{}, 1), setupDone: make(chan struct{})}
	d.client = paho.NewClient(d.options(f.cfg.key(i)))
	return d
}

// options are the proplet's (workers/proplet/mqtt.go) with paho's
// in-memory session store instead of the journal.
func (d *device) options(key string) *paho.ClientOptions {
	will, _ := json.Marshal(wire.Alive{PropletID: d.id, Status: wire.StatusOffline})
	cfg := d.f.cfg
	return paho.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(d.id).
		SetUsername(d.id).
		SetPassword(key).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(maxReconnectWait).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetKeepAlive(cfg.KeepAlive).
		SetOrderMatters(true).
		SetBinaryWill(d.topic(wire.SuffixAlive), will, 1, false).
		SetDefaultPublishHandler(d.onMessage).
		SetOnConnectHandler(d.onConnect).
		SetConnectionLostHandler(d.onConnectionLost)
}

// topic is the device's own topic for a shared suffix.
func (d *device) topic(suffix string) string { return d.topics.Topic(wire.OwnTopic(suffix, d.id)) }

func (d *device) onConnect(paho.Client) {
	d.f.stats.connected.Add(1)
	select {
	case d.connects <- struct{}{}:
	default: // one pending is enough
	}
}

func (d *device) onConnectionLost(_ paho.Client, err error) {
	d.f.stats.connected.Add(-1)
	d.f.stats.lost.Add(1)
	d.f.cfg.Logger.Debug("connection lost", keyDevice, d.id, keyErr, err)
}

// run connects (retrying until ctx is done), then subscribes and
// announces on every connect and heartbeats every interval, as the
// proplet's announceLoop does. After the first setup, or when it gives
// up, it closes setupDone and calls release.
func (d *device) run(ctx context.Context, release func()) {
	setup := func() { d.setupOnce.Do(func() { close(d.setupDone); release() }) }
	defer setup()
	if !d.connect(ctx) {
		return
	}
	ticker := time.NewTicker(d.f.cfg.Heartbeat)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.connects:
			d.subscribe(ctx)
			d.announce(ctx)
			setup()
		case <-ticker.C:
			d.tick(ctx)
		}
	}
}

func (d *device) tick(ctx context.Context) {
	if !d.client.IsConnectionOpen() {
		return
	}
	if !d.subscribed.Load() {
		d.subscribe(ctx)
	}
	d.heartbeat(ctx)
}

// connect makes the first connection, with backoff; paho reconnects by
// itself afterwards.
func (d *device) connect(ctx context.Context) bool {
	wait := firstRetryWait
	for {
		d.f.stats.connectAttempts.Add(1)
		err := d.waitToken(ctx, d.client.Connect(), d.f.cfg.ConnectTimeout)
		if err == nil {
			return true
		}
		d.f.stats.connectError(err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, maxReconnectWait)
	}
}

// subscribe makes the proplet's two subscriptions: starts and stops at
// Config.QoS (at QoS 1 one JetStream consumer per device), chunks at QoS
// 0. A refusal makes the device unreachable, which its heartbeats say,
// until a later try succeeds.
func (d *device) subscribe(ctx context.Context) {
	filters := map[string]byte{
		d.topics.Topic(wire.OwnTopic("control/manager", d.id) + "/+"): d.f.cfg.QoS,
		d.topics.Topic(wire.PropletChunkTopic(d.id)):                  0,
	}
	tok := d.client.SubscribeMultiple(filters, d.onMessage)
	if err := d.waitToken(ctx, tok, d.f.cfg.Heartbeat); err != nil {
		d.f.stats.subscribeErrors.Add(1)
		return
	}
	if refused := refusedFilters(tok.(*paho.SubscribeToken).Result()); len(refused) > 0 {
		d.f.stats.subscribeRefused.Add(1)
		if !d.f.cfg.NoAccept {
			why := fmt.Sprintf("the broker refused the subscription to %s (SUBACK 0x80)", strings.Join(refused, ", "))
			d.unreachable.Store(&why)
		}
		return
	}
	d.unreachable.Store(nil)
	d.subscribed.Store(true)
}

// refusedFilters are the filters of a SUBACK with the failure code, sorted.
func refusedFilters(codes map[string]byte) []string {
	var out []string
	for filter, code := range codes {
		if code == 0x80 {
			out = append(out, filter)
		}
	}
	slices.Sort(out)
	return out
}

func (d *device) announce(ctx context.Context) {
	disc := wire.Discovery{PropletID: d.id, Metadata: wire.Metadata{Description: "fleetsim"}, Accepts: !d.f.cfg.NoAccept}
	if err := d.publish(ctx, wire.SuffixCreate, disc); err != nil {
		d.f.stats.discoveryErrors.Add(1)
	}
	d.heartbeat(ctx)
}

// heartbeat publishes "alive", or "unreachable" with the reason while the
// broker refuses the subscription, at QoS 1 and records how long the
// broker took to acknowledge it.
func (d *device) heartbeat(ctx context.Context) {
	alive := wire.Alive{PropletID: d.id, Status: wire.StatusAlive}
	if why := d.unreachable.Load(); why != nil {
		alive.Status, alive.Reason = wire.StatusUnreachable, *why
	}
	start := time.Now()
	if err := d.publish(ctx, wire.SuffixAlive, alive); err != nil {
		d.f.stats.heartbeatErrors.Add(1)
		return
	}
	d.f.stats.heartbeats.Add(1)
	if alive.Status == wire.StatusUnreachable {
		d.f.stats.unreachableHeartbeats.Add(1)
	}
	d.f.acks.Add(time.Since(start))
}

// publish sends v as JSON at QoS 1 on the device's own topic and waits for
// the broker's acknowledgement, at most one heartbeat interval.
func (d *device) publish(ctx context.Context, suffix string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return d.waitToken(ctx, d.client.Publish(d.topic(suffix), 1, false, b), d.f.cfg.Heartbeat)
}

// errTimeout is a token that did not complete in time.
var errTimeout = errors.New("fleetsim: no answer from the broker in time")

func (d *device) waitToken(ctx context.Context, tok paho.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return errTimeout
	}
}

// onMessage handles what the broker delivers: starts are recorded,
// accepted and answered, the rest counted.
func (d *device) onMessage(_ paho.Client, m paho.Message) {
	_, suffix, err := wire.ParseTopic(m.Topic())
	kind, dev := wire.SplitOwn(suffix)
	switch {
	case err != nil || dev != d.id:
		d.f.stats.foreign.Add(1) // not this device's topic
	case kind == wire.SuffixStart:
		d.onStart(m.Payload(), m.Duplicate())
	case kind == wire.SuffixStop:
		d.f.stats.stops.Add(1)
	default:
		d.f.stats.other.Add(1)
	}
}

func (d *device) onStart(payload []byte, dup bool) {
	req, err := wire.DecodeStart(payload)
	switch {
	case err != nil:
		d.f.stats.startsInvalid.Add(1)
		return
	case req.PropletID != "" && req.PropletID != d.id:
		d.f.stats.foreign.Add(1)
	}
	if dup {
		d.f.stats.redelivered.Add(1)
	}
	first := d.f.recordStart(req.ID, req.Attempt, d.id)
	d.f.answers.Go(func() {
		d.accept(req)
		if first {
			d.answer(req)
		}
	})
}

// accept tells the engine that the device took the start, as the proplet
// does for every start it receives, a re-sent one too.
func (d *device) accept(req wire.StartRequest) {
	if d.f.cfg.NoAccept {
		return
	}
	msg := wire.Accepted{TaskID: req.ID, Attempt: req.Attempt, PropletID: d.id}
	if err := d.publish(d.f.ctx, wire.SuffixAccepted, msg); err != nil {
		d.f.stats.acceptErrors.Add(1)
		return
	}
	d.f.stats.accepts.Add(1)
}

// resultMessage is wire.Result as the proplet sends it: error null on
// success (wire.Result would send "").
type resultMessage struct {
	TaskID    string          `json:"task_id"`
	PropletID string          `json:"proplet_id"`
	Attempt   int             `json:"attempt,omitempty"`
	Results   json.RawMessage `json:"results"`
	Error     *string         `json:"error"`
}

// answer publishes the start's result after the answer delay, once per
// task and attempt.
func (d *device) answer(req wire.StartRequest) {
	ctx := d.f.ctx
	if delay := d.f.cfg.AnswerDelay; delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	out := "ok"
	if d.f.cfg.Echo {
		out = strings.Join(req.Inputs, " ")
	}
	msg := resultMessage{TaskID: req.ID, PropletID: d.id, Attempt: req.Attempt, Results: wire.StringResult(out)}
	if err := d.publish(ctx, wire.SuffixResults, msg); err != nil {
		d.f.stats.resultErrors.Add(1)
		return
	}
	d.f.stats.results.Add(1)
}

// goodbye publishes the offline status, as the proplet does before it
// disconnects (the will is only sent for an abrupt loss), and disconnects.
func (d *device) goodbye() {
	if d.client.IsConnectionOpen() {
		ctx, cancel := context.WithTimeout(context.Background(), goodbyeWait)
		_ = d.publish(ctx, wire.SuffixAlive, wire.Alive{PropletID: d.id, Status: wire.StatusOffline})
		cancel()
		d.f.stats.connected.Add(-1)
	}
	d.client.Disconnect(disconnectQuiet)
}

// Log keys.
const (
	keyDevice = "device"
	keyErr    = "err"
)
