package mqtt_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/natstest"
)

// checkSettled waits until Inbound has settled n messages for good and
// both consumers have nothing pending.
func (r *edgeRig) checkSettled(t *testing.T, n uint64) {
	t.Helper()
	natstest.CheckFor(t, time.Minute, func() error {
		if got := r.settled(); got < n {
			return fmt.Errorf("%d of %d messages settled; stats %+v", got, n, r.in.Stats())
		}
		for _, name := range []string{mqtt.EdgeConsumer, mqtt.EdgeLivenessConsumer} {
			c, err := r.js.Consumer(context.Background(), mqtt.EdgeStream, name)
			if err != nil {
				return err
			}
			info, err := c.Info(context.Background())
			if err != nil {
				return err
			}
			if info.NumPending != 0 || info.NumAckPending != 0 {
				return fmt.Errorf("consumer %s: %d pending, %d unacked", name, info.NumPending, info.NumAckPending)
			}
		}
		return nil
	})
}

// TestInbound_EachMessageOnce: the two consumers split EDGE_IN between
// them: every message is recorded by exactly one, whatever its topic.
func TestInbound_EachMessageOnce(t *testing.T) {
	rig := newEdgeRig(t, mqtt.InboundConfig{Workers: 4})
	var msgs []edgeMsg
	for _, d := range []device{{id: "p1"}, {id: "p2", shared: true}, {id: "dotted.id"}, {id: "alive"}, {id: "results", shared: true}} {
		msgs = append(msgs, d.create(), d.alive(wire.StatusAlive), d.result("t-"+d.id), d.alive(wire.StatusOffline),
			d.msg(wire.SuffixMetrics, map[string]any{}), d.msg(wire.SuffixTaskMetrics, map[string]any{"task_id": "t"}),
			d.msg(wire.SuffixModuleRequest, map[string]any{"app_name": "a"}), d.msg(wire.SuffixInvokeResults, map[string]any{}))
	}
	for _, raw := range []struct{ suffix, data string }{
		{wire.SuffixAlive, `not json`},
		{wire.OwnTopic(wire.SuffixAlive, "p3"), `{"proplet_id":"p4","status":"alive"}`}, // names another device
		{wire.SuffixCreate, `{}`},
		{"control/proplet/p5/unknown", `{}`},
		{"control/proplet/p5/alive/more", `{}`},
		{"registry/proplet/p6", `{"app_name":"a"}`},
	} {
		msgs = append(msgs, edgeMsg{topic: edgeTopics.Topic(raw.suffix), data: []byte(raw.data)})
	}
	rig.publish(t, msgs)
	rig.run(t)
	natstest.CheckFor(t, time.Minute, func() error {
		if s := rig.in.Stats(); s.Received != uint64(len(msgs)) || s.Recorded+s.Malformed+s.Ignored != s.Received {
			return fmt.Errorf("stats %+v, want %d received and settled", s, len(msgs))
		}
		return nil
	})
	rig.checkSettled(t, uint64(len(msgs)))
	if s := rig.in.Stats(); s.Received != uint64(len(msgs)) {
		t.Errorf("received %d messages of %d", s.Received, len(msgs))
	}
}

// TestInbound_Fleet runs a fleet's interleaved messages through the real
// handler with several workers: every result is recorded and every device
// ends in the state its last create, alive or last will says.
func TestInbound_Fleet(t *testing.T) {
	for _, workers := range []int{1, 8} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			rig := newEdgeRig(t, mqtt.InboundConfig{Workers: workers})
			fl := fleet("f", 24)
			var tasks []string
			var streams [][]edgeMsg
			final := map[string]engine.DeviceState{}
			for i, d := range fl {
				s := []edgeMsg{d.create()}
				for j := range 6 {
					task := fmt.Sprintf("%s-t%d", d.id, j)
					tasks = append(tasks, task)
					status := []string{wire.StatusAlive, wire.StatusOffline}[(i+j)%2]
					s = append(s, d.result(task), d.alive(status))
				}
				final[d.id] = map[bool]engine.DeviceState{true: engine.DeviceAlive, false: engine.DeviceOffline}[(i+5)%2 == 0]
				streams = append(streams, s)
			}
			rig.scheduleTasks(t, tasks, func(i int) string { return fl[i/6].id })
			var msgs []edgeMsg
			for i := 0; len(msgs) < len(fl)*13; i++ {
				for _, s := range streams {
					if i < len(s) {
						msgs = append(msgs, s[i])
					}
				}
			}
			rig.publish(t, msgs)
			rig.run(t)
			rig.checkSettled(t, uint64(len(msgs)))
			if s := rig.in.Stats(); s.Recorded != uint64(len(msgs)) {
				t.Errorf("stats %+v: want all %d recorded", s, len(msgs))
			}
			for _, id := range tasks {
				if got := rig.task(t, id); got.State != engine.TaskCompleted {
					t.Errorf("task %s is %s, want completed", id, got.State)
				}
			}
			for _, d := range fl {
				if got := rig.device(t, d.id); got.State != final[d.id] || !got.Announced {
					t.Errorf("device %s is %s (announced %v), want %s", d.id, got.State, got.Announced, final[d.id])
				}
			}
		})
	}
}

// TestInbound_UpgradeFromOneConsumer: an engine that recorded everything
// with the work consumer alone leaves it at an ack floor; the liveness
// consumer, new, starts after it, so heartbeats recorded before are not
// recorded again, and the work consumer leaves the later ones to it.
func TestInbound_UpgradeFromOneConsumer(t *testing.T) {
	rig := newEdgeRig(t, mqtt.InboundConfig{})
	p1 := device{id: "p1"}
	rig.publish(t, []edgeMsg{p1.create(), p1.alive(wire.StatusAlive), p1.alive(wire.StatusOffline), p1.alive(wire.StatusAlive)})
	// The engine before: one consumer, which recorded the first two.
	ctx := context.Background()
	old, err := rig.js.CreateOrUpdateConsumer(ctx, mqtt.EdgeStream, jetstream.ConsumerConfig{
		Durable: mqtt.EdgeConsumer, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := old.Fetch(2)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rig.run(t)
	rig.checkSettled(t, 2)
	c, err := rig.js.Consumer(ctx, mqtt.EdgeStream, mqtt.EdgeLivenessConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.CachedInfo().Config; cfg.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || cfg.OptStartSeq != 3 {
		t.Errorf("liveness consumer delivers by %v from %d, want by start sequence from 3", cfg.DeliverPolicy, cfg.OptStartSeq)
	}
	if s := rig.in.Stats(); s.Received != 2 {
		t.Errorf("stats %+v: want the last two heartbeats received, once", s)
	}
	if got := rig.device(t, p1.id); got.State != engine.DeviceAlive {
		t.Errorf("device is %s, want alive", got.State)
	}
}
