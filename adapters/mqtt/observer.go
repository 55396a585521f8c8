package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
)

// Observer tells this engine replica's Seer of every heartbeat and
// discovery its known devices publish, so that liveness is the same in
// every replica: Inbound's durable consumers share the recording of
// device messages among the replicas, so each of them records only some
// of a device's heartbeats, and one that went by those alone would mark
// the device offline while it heartbeats to another. The Observer hears
// the heartbeat topics as they are published, on a plain NATS
// subscription (what EDGE_IN stores is Inbound's to record): nothing to
// ack, no consumer in the server, no second read of the stream per
// heartbeat (at 10,000 devices, 1,000 a second). A replica that starts
// gives every known device a fresh grace period anyway, so it needs no
// history.
//
// It only watches: the transitions a heartbeat or last will causes
// (device.alive, device.offline) are recorded by Inbound, once.
//
// With Keep, it also reads the metrics topics and keeps each known
// device's and known task's recent samples, so that every replica
// answers GET /proplets/{id}/metrics and GET /tasks/{id}/metrics alike.
type Observer struct {
	nc      *nats.Conn
	topics  wire.Topics
	seer    Seer
	devices DeviceReader
	log     *slog.Logger
	samples *Samples
	tasks   TaskFinder
	now     func() time.Time
}

// TaskFinder finds a task (projections.Tasks).
type TaskFinder interface {
	Get(id string) (engine.Task, bool)
}

// Keep makes the observer keep the metrics samples of known devices and
// tasks in samples, stamped with now when they carry no wall-clock time.
// Call it before Run.
func (o *Observer) Keep(samples *Samples, tasks TaskFinder, now func() time.Time) {
	o.samples, o.tasks, o.now = samples, tasks, now
}

// NewObserver wires an observer of devices' heartbeats.
func NewObserver(nc *nats.Conn, topics wire.Topics, seer Seer, devices DeviceReader, log *slog.Logger) *Observer {
	return &Observer{nc: nc, topics: topics, seer: seer, devices: devices, log: log}
}

// subjects are the heartbeat and discovery topics, shared and own.
func (o *Observer) subjects() []string {
	var out []string
	kinds := []string{wire.SuffixAlive, wire.SuffixCreate}
	if o.samples != nil {
		kinds = append(kinds, wire.SuffixMetrics, wire.SuffixTaskMetrics)
	}
	for _, s := range kinds {
		out = append(out, wire.Subject(o.topics.Topic(s)), wire.Subject(o.topics.Topic(wire.OwnTopic(s, "+"))))
	}
	return out
}

// Run follows the heartbeats until ctx is done.
func (o *Observer) Run(ctx context.Context) error {
	// One channel for every subject keeps the order the connection
	// received them in: a device's discovery before its heartbeat.
	ch := make(chan *nats.Msg, observerBuffer)
	var subs []*nats.Subscription
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	for _, subject := range o.subjects() {
		sub, err := o.nc.ChanSubscribe(subject, ch)
		if err != nil {
			return fmt.Errorf("mqtt: heartbeat observer: %w", err)
		}
		subs = append(subs, sub)
	}
	if err := o.nc.Flush(); err != nil {
		return fmt.Errorf("mqtt: heartbeat observer: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-ch:
			o.observe(m.Subject, m.Data)
		}
	}
}

// observerBuffer is how many heartbeats may wait for the observer (a
// fleet of 100,000 devices reconnecting at once); more are dropped, and
// the next heartbeat of their device, 10 s later, counts.
const observerBuffer = 100_000

// observe takes one message: a sign of life of a device this replica
// knows, or its last will. Anything else (malformed, a device not
// recorded yet) is Inbound's to count and record.
func (o *Observer) observe(subject string, data []byte) {
	suffix, err := o.topics.Suffix(wire.Topic(subject))
	if err != nil {
		return
	}
	shared, device := wire.SplitOwn(suffix)
	if shared == wire.SuffixMetrics || shared == wire.SuffixTaskMetrics {
		o.keep(shared, device, data)
		return
	}
	var named string
	offline := false
	switch shared {
	case wire.SuffixAlive:
		a, err := wire.DecodeAlive(data)
		if err != nil {
			return
		}
		named, offline = a.PropletID, a.Status == wire.StatusOffline
	case wire.SuffixCreate:
		d, err := wire.DecodeDiscovery(data)
		if err != nil {
			return
		}
		named = d.PropletID
	default:
		return
	}
	id, err := sender(device, named)
	if err != nil || id == "" {
		return
	}
	if _, known := o.devices.Get(id); !known {
		return
	}
	if offline {
		o.seer.Gone(id)
		return
	}
	o.seer.Seen(id)
}

// keep takes one metrics sample of a known device (and, for a task
// sample, a known task). Malformed samples are Inbound's to count.
func (o *Observer) keep(kind, device string, data []byte) {
	if o.samples == nil {
		return
	}
	if kind == wire.SuffixMetrics {
		m, err := wire.DecodePropletMetrics(data)
		if id, ok := o.known(device, m.PropletID, err); ok {
			o.samples.AddProplet(id, m, o.now())
		}
		return
	}
	m, err := wire.DecodeTaskMetrics(data)
	id, ok := o.known(device, m.PropletID, err)
	if !ok || m.TaskID == "" {
		return
	}
	if _, known := o.tasks.Get(m.TaskID); known {
		m.PropletID = id
		o.samples.AddTask(m.TaskID, m, o.now())
	}
}

// known is the sender of a decoded message, if it is a device this replica
// knows.
func (o *Observer) known(device, named string, err error) (string, bool) {
	if err != nil {
		return "", false
	}
	id, err := sender(device, named)
	if err != nil || id == "" {
		return "", false
	}
	_, ok := o.devices.Get(id)
	return id, ok
}
