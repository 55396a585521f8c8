package fleetsim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// Timings of a device that Config does not set.
const (
	maxReconnectWait = 30 * time.Second // as the proplet
	firstRetryWait   = time.Second      // after a failed connect, doubling
	goodbyeWait      = 5 * time.Second  // for the offline status at Close
)

// device is one simulated proplet: an MQTT client of the simulator's own
// (mqttClient) on its own topics. Its goroutine connects, reconnects and
// reads; what it sends after a connect or on a heartbeat is a chain of
// callbacks run by whoever receives the acknowledgement.
type device struct {
	f      *Fleet
	id     string
	topics wire.Topics
	c      *mqttClient

	setupDone  chan struct{} // closed after the first setup, or when the device gives up
	setupOnce  sync.Once
	chains     atomic.Int32 // setups and heartbeats under way; a heartbeat tick skips while one is
	subscribed atomic.Bool  // the broker accepted the subscription to starts
	// unreachable is why the broker refused the subscription, which the
	// heartbeats say; nil while it has not, and always with NoAccept.
	unreachable atomic.Pointer[string]
}

func newDevice(f *Fleet, i int, id string) *device {
	d := &device{f: f, id: id, topics: wire.Topics{Tenant: f.cfg.Tenant, Channel: f.cfg.Channel},
		setupDone: make(chan struct{})}
	d.c = newMQTTClient(d.clientConfig(f.cfg.key(i)))
	return d
}

// clientConfig is the proplet's CONNECT (workers/proplet/mqtt.go): its id
// as client id and user name, its key, a persistent session, the offline
// status as will at QoS 1.
func (d *device) clientConfig(key string) clientConfig {
	will, _ := json.Marshal(wire.Alive{PropletID: d.id, Status: wire.StatusOffline})
	cfg := d.f.cfg
	return clientConfig{url: cfg.URL, id: d.id, username: d.id, password: key,
		keepAlive: cfg.KeepAlive, connectTimeout: cfg.ConnectTimeout,
		willTopic: d.topic(wire.SuffixAlive), will: will}
}

// topic is the device's own topic for a shared suffix.
func (d *device) topic(suffix string) string { return d.topics.Topic(wire.OwnTopic(suffix, d.id)) }

// run connects (retrying with backoff until ctx is done), reads the
// connection until it fails, and reconnects; after every connect it
// subscribes and announces, as the proplet does. Its heartbeats and
// keepalive run on the fleet's scheduler from the first connect on.
// After the first setup, or when it gives up, it closes setupDone and
// calls release.
func (d *device) run(ctx context.Context, release func()) {
	setup := func() { d.setupOnce.Do(func() { close(d.setupDone); release() }) }
	defer setup()
	wait, first := firstRetryWait, true
	for ctx.Err() == nil {
		d.f.stats.connectAttempts.Add(1)
		nc, br, err := d.c.connect(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errClosed) {
				return
			}
			d.f.stats.connectError(err)
			if !sleep(ctx, wait) {
				return
			}
			wait = min(2*wait, maxReconnectWait)
			continue
		}
		if first {
			d.schedule()
			first = false
		}
		if d.online(nc, br, setup) >= firstRetryWait {
			wait = firstRetryWait // reconnect at once; a connection lost at once backs off
			continue
		}
		if !sleep(ctx, wait) {
			return
		}
		wait = min(2*wait, maxReconnectWait)
	}
}

// sleep waits for d or ctx, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// online sets the device up on the connection nc and reads it until it
// fails or close closes it; it returns how long it was up.
func (d *device) online(nc net.Conn, br *bufio.Reader, setup func()) time.Duration {
	start := time.Now()
	d.f.stats.connected.Add(1)
	d.chains.Add(1)
	d.subscribe(func() { d.announce(func() { d.chains.Add(-1); setup() }) })
	err := d.c.serve(br, func(p *packets.PublishPacket) { d.onMessage(p.TopicName, p.Payload, p.Dup) })
	if d.c.detach(nc) {
		d.f.stats.connected.Add(-1)
		d.f.stats.lost.Add(1)
		d.f.cfg.Logger.Debug("connection lost", keyDevice, d.id, keyErr, err)
	}
	return time.Since(start)
}

// schedule puts the device's heartbeats (its phase: one interval after
// its first connect, as a ticker started then) and keepalive on the
// fleet's scheduler.
func (d *device) schedule() {
	now := time.Now()
	d.f.sched.add(now.Add(d.f.cfg.Heartbeat), every(d.f.cfg.Heartbeat, d.tick))
	d.f.sched.add(now.Add(d.f.cfg.KeepAlive), func(_, now time.Time) time.Time { return d.c.keepalive(now) })
}

// tick is a heartbeat, after another try at the subscription the broker
// refused; it skips while the connection is down or a setup or the last
// heartbeat is under way.
func (d *device) tick(time.Time) {
	if !d.c.connected() || !d.chains.CompareAndSwap(0, 1) {
		return
	}
	done := func() { d.chains.Add(-1) }
	if !d.subscribed.Load() {
		d.subscribe(func() { d.heartbeat(done) })
		return
	}
	d.heartbeat(done)
}

// subscribe makes the proplet's two subscriptions in one SUBSCRIBE:
// starts and stops at Config.QoS (at QoS 1 one JetStream consumer per
// device), chunks at QoS 0; then calls then. A refusal makes the device
// unreachable, which its heartbeats say, until a later try succeeds.
func (d *device) subscribe(then func()) {
	filters := []string{
		d.topics.Topic(wire.OwnTopic("control/manager", d.id) + "/+"),
		d.topics.Topic(wire.PropletChunkTopic(d.id)),
	}
	err := d.c.subscribe(filters, []byte{d.f.cfg.QoS, 0}, d.f.cfg.Heartbeat, func(ack packets.ControlPacket, err error) {
		d.onSuback(filters, ack, err)
		then()
	})
	if err != nil {
		d.f.stats.subscribeErrors.Add(1)
		then()
	}
}

func (d *device) onSuback(filters []string, ack packets.ControlPacket, err error) {
	if err != nil {
		d.f.stats.subscribeErrors.Add(1)
		return
	}
	if refused := refusedFilters(filters, ack.(*packets.SubackPacket).ReturnCodes); len(refused) > 0 {
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

// refusedFilters are the filters whose SUBACK code is the failure code,
// sorted.
func refusedFilters(filters []string, codes []byte) []string {
	var out []string
	for i, code := range codes {
		if code == 0x80 && i < len(filters) {
			out = append(out, filters[i])
		}
	}
	slices.Sort(out)
	return out
}

// announce publishes the discovery, then a heartbeat, then calls then.
func (d *device) announce(then func()) {
	disc := wire.Discovery{PropletID: d.id, Metadata: wire.Metadata{Description: "fleetsim"}, Accepts: !d.f.cfg.NoAccept}
	d.publishAsync(wire.SuffixCreate, disc, func(err error) {
		if err != nil {
			d.f.stats.discoveryErrors.Add(1)
		}
		d.heartbeat(then)
	})
}

// heartbeat publishes "alive", or "unreachable" with the reason while the
// broker refuses the subscription, at Config.HeartbeatQoS (at 1 it records
// how long the broker took to acknowledge it), and calls then.
func (d *device) heartbeat(then func()) {
	alive := wire.Alive{PropletID: d.id, Status: wire.StatusAlive}
	if why := d.unreachable.Load(); why != nil {
		alive.Status, alive.Reason = wire.StatusUnreachable, *why
	}
	if d.f.cfg.HeartbeatQoS == 0 {
		b, err := json.Marshal(alive)
		if err == nil {
			err = d.c.publish0(d.topic(wire.SuffixAlive), b)
		}
		d.onHeartbeat(alive.Status, err)
		then()
		return
	}
	start := time.Now()
	d.publishAsync(wire.SuffixAlive, alive, func(err error) {
		if d.onHeartbeat(alive.Status, err) {
			d.f.acks.Add(time.Since(start))
		}
		then()
	})
}

// onHeartbeat counts a heartbeat sent (at QoS 1: acknowledged), or not,
// and reports whether it was.
func (d *device) onHeartbeat(status string, err error) bool {
	if err != nil {
		d.f.stats.heartbeatErrors.Add(1)
		return false
	}
	d.f.stats.heartbeats.Add(1)
	if status == wire.StatusUnreachable {
		d.f.stats.unreachableHeartbeats.Add(1)
	}
	return true
}

// publishAsync sends v as JSON at QoS 1 on the device's own topic and
// calls done with the outcome: acknowledged, or not within one heartbeat
// interval (the scheduler's sweep says so; no timer per publish).
func (d *device) publishAsync(suffix string, v any, done func(error)) {
	b, err := json.Marshal(v)
	if err == nil {
		err = d.c.publish(d.topic(suffix), b, d.f.cfg.Heartbeat, func(_ packets.ControlPacket, err error) { done(err) })
	}
	if err != nil {
		done(err)
	}
}

// publish is publishAsync that waits for the outcome, or ctx.
func (d *device) publish(ctx context.Context, suffix string, v any) error {
	ch := make(chan error, 1)
	d.publishAsync(suffix, v, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// onMessage handles what the broker delivers: starts are recorded,
// accepted and answered, the rest counted.
func (d *device) onMessage(topic string, payload []byte, dup bool) {
	_, suffix, err := wire.ParseTopic(topic)
	kind, dev := wire.SplitOwn(suffix)
	switch {
	case err != nil || dev != d.id:
		d.f.stats.foreign.Add(1) // not this device's topic
	case kind == wire.SuffixStart:
		d.onStart(payload, dup)
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
// The device's goroutine reads the acknowledgement, then ends.
func (d *device) goodbye() {
	if d.c.connected() {
		ctx, cancel := context.WithTimeout(context.Background(), goodbyeWait)
		_ = d.publish(ctx, wire.SuffixAlive, wire.Alive{PropletID: d.id, Status: wire.StatusOffline})
		cancel()
	}
	if d.c.close() {
		d.f.stats.connected.Add(-1)
	}
}

// Log keys.
const (
	keyDevice = "device"
	keyErr    = "err"
)
