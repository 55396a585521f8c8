package mqtt_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
)

// laneLog is the Commands and Seer ports for the ordering tests: it keeps
// what each device's messages caused, per lane, in the order it was told,
// yields on every call so that workers interleave, and holds the calls
// gate names until the test opens them.
type laneLog struct {
	rec  *recorder
	gate func(call string) <-chan struct{} // nil: nothing waits

	mu   sync.Mutex
	logs map[string][]string // "<device> <lane>" -> calls
	err  error               // answered once, to the first command (then nil)
}

var (
	_ mqtt.Commands = (*laneLog)(nil)
	_ mqtt.Seer     = (*laneLog)(nil)
)

func newLaneLog() *laneLog { return &laneLog{rec: newRecorder(), logs: map[string][]string{}} }

func (l *laneLog) Task(_ context.Context, cmd engine.TaskCommand) (engine.Task, error) {
	r := cmd.(engine.RecordResult)
	return engine.Task{}, l.call(r.Device, "work", "result "+r.ID)
}

func (l *laneLog) Device(_ context.Context, cmd engine.DeviceCommand) (engine.Device, error) {
	var call string
	switch c := cmd.(type) {
	case engine.Announce:
		call = "create " + c.Namespace
	case engine.Heartbeat:
		call = "alive " + c.Namespace
	case engine.MarkOffline:
		call = "offline"
	}
	return engine.Device{}, l.call(cmd.DeviceID(), "liveness", call)
}

func (l *laneLog) Seen(id string) { _ = l.call(id, "liveness", "seen") }
func (l *laneLog) Gone(id string) { _ = l.call(id, "liveness", "gone") }

func (l *laneLog) call(device, lane, call string) error {
	runtime.Gosched()
	if l.gate != nil {
		if wait := l.gate(device + " " + call); wait != nil {
			<-wait
		}
	}
	l.mu.Lock()
	l.logs[device+" "+lane] = append(l.logs[device+" "+lane], call)
	err := l.err
	l.err = nil
	l.mu.Unlock()
	l.rec.add(device + " " + call)
	return err
}

func (l *laneLog) snapshot() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	for k, v := range l.logs {
		out[k] = slices.Clone(v)
	}
	return out
}

// sent is one device message of a test stream and what it must cause.
type sent struct {
	dev  string
	lane string   // "liveness" or "work"
	want []string // the calls it causes, in order
	msg  edgeMsg
}

// say builds the messages of one device for the ordering tests; n makes
// each heartbeat and discovery tell apart.
func (d device) say(kind string, n int) sent {
	ns := fmt.Sprint(n)
	switch kind {
	case "create":
		return sent{d.id, "liveness", []string{"create " + ns, "seen"}, d.msg(wire.SuffixCreate, map[string]any{"namespace": ns})}
	case "alive":
		return sent{d.id, "liveness", []string{"alive " + ns, "seen"}, d.msg(wire.SuffixAlive, map[string]any{"status": "alive", "namespace": ns})}
	case "offline":
		return sent{d.id, "liveness", []string{"gone", "offline"}, d.msg(wire.SuffixAlive, map[string]any{"status": "offline"})}
	}
	task := fmt.Sprintf("%s-t%d", d.id, n)
	return sent{d.id, "work", []string{"result " + task}, d.msg(wire.SuffixResults, map[string]any{"task_id": task, "results": n})}
}

// script turns "a:alive b:result a:offline" into messages, devices by name.
func script(devs map[string]device, s string) []sent {
	var out []sent
	for i, w := range strings.Fields(s) {
		name, kind, _ := strings.Cut(w, ":")
		out = append(out, devs[name].say(kind, i))
	}
	return out
}

// interleave returns the streams merged round robin, as devices publishing
// at once would store them.
func interleave(streams ...[]sent) []sent {
	var out []sent
	for i := 0; ; i++ {
		more := false
		for _, s := range streams {
			if i < len(s) {
				out = append(out, s[i])
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

func repeat(s string, n int) string { return strings.TrimSpace(strings.Repeat(s+" ", n)) }

// TestInbound_OrderPerDevice: under parallelism, the messages of one device
// cause their calls in the order EDGE_IN holds them, per lane: create and
// alive (with the liveness calls Seen and Gone) in one order, results in
// another. Neither lane waits for the other.
func TestInbound_OrderPerDevice(t *testing.T) {
	own := func(id string) device { return device{id: id} }
	shared := func(id string) device { return device{id: id, shared: true} }
	devs := map[string]device{"a": own("a"), "b": own("b"), "c": shared("c"), "d": shared("d")}
	var fleet [][]sent
	for i := range 40 {
		d := map[string]device{"x": {id: fmt.Sprintf("dev%d", i), shared: i%2 == 1}}
		fleet = append(fleet, script(d, "x:create x:alive x:result x:offline x:result x:alive x:result x:alive"))
	}
	bothTopics := script(map[string]device{"o": own("e"), "s": shared("e")},
		"o:create s:alive o:result s:result o:offline s:alive o:result s:offline o:alive")
	tests := []struct {
		name   string
		stream []sent
	}{
		{"alive and offline of one device while another floods results", interleave(
			script(devs, repeat("a:alive a:offline", 10)),
			script(devs, repeat("b:result", 200)),
		)},
		{"a device's liveness among its own results", script(devs, repeat("a:result a:alive a:result a:result a:offline a:result a:alive", 8))},
		{"devices named by their payloads (shared topics)", interleave(
			script(devs, repeat("c:alive c:offline c:result", 20)),
			script(devs, repeat("d:result d:alive d:result d:offline", 20)),
		)},
		{"forty devices at once", interleave(fleet...)},
		{"one device on its own and the shared topics", bothTopics},
	}
	for _, tt := range tests {
		for _, workers := range []int{1, 2, 4, 16} {
			t.Run(fmt.Sprintf("%s/workers=%d", tt.name, workers), func(t *testing.T) {
				log := newLaneLog()
				got := runStream(t, log, workers, tt.stream)
				for key, want := range expectedCalls(tt.stream) {
					if !slices.Equal(got[key], want) {
						t.Errorf("%s:\n got %q\nwant %q", key, got[key], want)
					}
				}
			})
		}
	}
}

// runStream delivers stream to an Inbound with workers workers and log as
// its engine and liveness, waits until every message is settled and
// returns the calls per device and lane.
func runStream(t *testing.T, log *laneLog, workers int, stream []sent) map[string][]string {
	t.Helper()
	js := newFakeJetStream()
	in := newInbound(t, js, mqtt.InboundPorts{Commands: log, Seer: log}, mqtt.InboundConfig{Workers: workers, WorkLimit: unlimited, LivenessLimit: unlimited})
	handle := runInbound(t, &inboundRig{in: in, js: js})
	msgs := deliver(handle, stream)
	for _, m := range msgs {
		m.waitSettled(t)
		if got := m.outcome(); !slices.Equal(got, []string{"ack"}) {
			t.Errorf("message %d on %s settled %q, want one ack", m.seq, m.subject, got)
		}
	}
	return log.snapshot()
}

func deliver(handle jetstream.MessageHandler, stream []sent) []*fakeMsg {
	msgs := make([]*fakeMsg, len(stream))
	for i, s := range stream {
		msgs[i] = newFakeMsg(s.msg.topic, string(s.msg.data), uint64(i+1))
		handle(msgs[i])
	}
	return msgs
}

func expectedCalls(stream []sent) map[string][]string {
	want := map[string][]string{}
	for _, s := range stream {
		want[s.dev+" "+s.lane] = append(want[s.dev+" "+s.lane], s.want...)
	}
	return want
}

// TestInbound_HeartbeatDoesNotWaitBehindResults: a device's results are
// held in the engine; its heartbeat, stored after them, is recorded
// meanwhile.
func TestInbound_HeartbeatDoesNotWaitBehindResults(t *testing.T) {
	log := newLaneLog()
	held := make(chan struct{})
	log.gate = func(call string) <-chan struct{} {
		if strings.HasPrefix(call, "p1 result") {
			return held
		}
		return nil
	}
	p1 := device{id: "p1"}
	stream := []sent{p1.say("result", 1), p1.say("result", 2), p1.say("alive", 3)}
	js := newFakeJetStream()
	in := newInbound(t, js, mqtt.InboundPorts{Commands: log, Seer: log}, mqtt.InboundConfig{Workers: 1})
	msgs := deliver(runInbound(t, &inboundRig{in: in, js: js}), stream)
	log.rec.waitFor(t, "the heartbeat, while the results are held", func(calls []any) bool {
		return slices.Contains(calls, any("p1 seen"))
	})
	close(held)
	for _, m := range msgs {
		m.waitSettled(t)
	}
	if got, want := log.snapshot()["p1 work"], []string{"result p1-t1", "result p1-t2"}; !slices.Equal(got, want) {
		t.Errorf("results %q, want %q", got, want)
	}
}

// TestInbound_DevicesProceedInParallel: one device's result is held in the
// engine; another device's messages, on another worker, are recorded
// meanwhile, and the held device's later messages wait for it.
func TestInbound_DevicesProceedInParallel(t *testing.T) {
	const workers = 4
	slow, fast := device{id: "slow"}, device{id: "fast"}
	for i := 0; mqtt.PartitionOf(fast.id, workers) == mqtt.PartitionOf(slow.id, workers); i++ {
		fast.id = fmt.Sprintf("fast%d", i)
	}
	log := newLaneLog()
	held := make(chan struct{})
	log.gate = func(call string) <-chan struct{} {
		if call == "slow result slow-t0" {
			return held
		}
		return nil
	}
	stream := interleave(
		script(map[string]device{"s": slow}, "s:result s:result"),
		script(map[string]device{"f": fast}, "f:result f:result f:result"),
	)
	js := newFakeJetStream()
	in := newInbound(t, js, mqtt.InboundPorts{Commands: log, Seer: log}, mqtt.InboundConfig{Workers: workers, WorkLimit: unlimited, LivenessLimit: unlimited})
	msgs := deliver(runInbound(t, &inboundRig{in: in, js: js}), stream)
	for _, i := range []int{1, 3, 4} { // the fast device's
		msgs[i].waitSettled(t)
	}
	if got := log.snapshot()["slow work"]; len(got) != 0 {
		t.Errorf("slow device's results recorded before its first was released: %q", got)
	}
	close(held)
	for _, m := range msgs {
		m.waitSettled(t)
	}
	if got, want := log.snapshot()["slow work"], []string{"result slow-t0", "result slow-t1"}; !slices.Equal(got, want) {
		t.Errorf("slow device's results %q, want %q", got, want)
	}
}

// TestInbound_RetriedMessageIsRedeliveredLater pins the guarantee kept
// from the single consumer: a message whose recording fails for an error
// of our own is nak'ed for redelivery a second later, and the device's
// later messages go on meanwhile (JetStream redelivers it after them).
// That changes no outcome: a result is decided on its task alone, and a
// late heartbeat or last will is corrected by the device's next one.
func TestInbound_RetriedMessageIsRedeliveredLater(t *testing.T) {
	log := newLaneLog()
	log.err = errTransient
	p1 := device{id: "p1"}
	stream := []sent{p1.say("alive", 0), p1.say("offline", 1)}
	js := newFakeJetStream()
	in := newInbound(t, js, mqtt.InboundPorts{Commands: log, Seer: log}, mqtt.InboundConfig{})
	msgs := deliver(runInbound(t, &inboundRig{in: in, js: js}), stream)
	for _, m := range msgs {
		m.waitSettled(t)
	}
	if got := msgs[0].outcome(); !slices.Equal(got, []string{"nak 1s"}) {
		t.Errorf("failed heartbeat settled %q, want nak 1s", got)
	}
	if got := msgs[1].outcome(); !slices.Equal(got, []string{"ack"}) {
		t.Errorf("last will settled %q, want ack", got)
	}
	if got, want := log.snapshot()["p1 liveness"], []string{"alive 0", "gone", "offline"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if s := in.Stats(); s.Retried != 1 || s.Recorded != 1 {
		t.Errorf("stats %+v, want one retried and one recorded", s)
	}
}

// TestInbound_WorkConsumerLeavesLiveness: the work consumer sees every
// message of EDGE_IN; it acks the liveness consumer's unread, and the
// liveness consumer does the same with anything else.
func TestInbound_WorkConsumerLeavesLiveness(t *testing.T) {
	rig := newInboundRig(t, nil)
	byName := startInbound(t, rig)
	alive := newFakeMsg(edgeTopics.Topic(wire.SuffixAlive), `{"proplet_id":"p1","status":"alive"}`, 1)
	byName[mqtt.EdgeConsumer].handle(alive)
	result := newFakeMsg(edgeTopics.Topic(wire.SuffixResults), `{"task_id":"t1","proplet_id":"p1"}`, 2)
	byName[mqtt.EdgeLivenessConsumer].handle(result)
	for _, m := range []*fakeMsg{alive, result} {
		m.waitSettled(t)
		if got := m.outcome(); !slices.Equal(got, []string{"ack"}) {
			t.Errorf("settled %q, want ack", got)
		}
	}
	if calls := rig.calls(); len(calls) != 0 {
		t.Errorf("calls %v, want none", calls)
	}
	if s := rig.in.Stats(); s != (mqtt.Snapshot{}) {
		t.Errorf("stats %+v, want nothing counted", s)
	}
}

// TestInbound_LivenessConsumerStart: a new liveness consumer starts after
// the work consumer's ack floor (an engine before it recorded heartbeats
// up to there), or at the first message; an existing one keeps its start.
func TestInbound_LivenessConsumerStart(t *testing.T) {
	tests := []struct {
		name      string
		workFloor uint64
		existing  *jetstream.ConsumerConfig // the liveness consumer before Run
		policy    jetstream.DeliverPolicy
		start     uint64
	}{
		{name: "new deployment", policy: jetstream.DeliverAllPolicy},
		{name: "upgrade from one consumer", workFloor: 41, policy: jetstream.DeliverByStartSequencePolicy, start: 42},
		{name: "restart", workFloor: 900,
			existing: &jetstream.ConsumerConfig{Durable: mqtt.EdgeLivenessConsumer, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 42},
			policy:   jetstream.DeliverByStartSequencePolicy, start: 42},
		{name: "restart of a deployment that began with both", workFloor: 900,
			existing: &jetstream.ConsumerConfig{Durable: mqtt.EdgeLivenessConsumer, DeliverPolicy: jetstream.DeliverAllPolicy},
			policy:   jetstream.DeliverAllPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newInboundRig(t, nil)
			rig.js.ackFloor = map[string]uint64{mqtt.EdgeConsumer: tt.workFloor}
			if tt.existing != nil {
				rig.js.consumers[mqtt.EdgeLivenessConsumer] = *tt.existing
			}
			runInbound(t, rig)
			c := rig.js.consumer(mqtt.EdgeLivenessConsumer)
			if c.DeliverPolicy != tt.policy || c.OptStartSeq != tt.start {
				t.Errorf("liveness consumer delivers by %v from %d, want %v from %d", c.DeliverPolicy, c.OptStartSeq, tt.policy, tt.start)
			}
		})
	}
}
