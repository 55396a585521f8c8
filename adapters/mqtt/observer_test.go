package mqtt_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/natstest"
)

// knownDevices is the devices read model as the Observer sees it: which
// devices are recorded.
type knownDevices map[string]bool

func (k knownDevices) Get(id string) (engine.Device, bool) {
	return engine.Device{ID: id}, k[id]
}

// runObserver runs obs until the test ends, and fails the test when Run
// fails.
func runObserver(t *testing.T, obs *mqtt.Observer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- obs.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// TestObserver_EverySignOfLife: the observer tells its seer of every
// heartbeat and discovery of a known device, shared topics or own, and of
// last wills; it passes over unknown devices, malformed payloads and a
// payload naming another device than its topic.
func TestObserver_EverySignOfLife(t *testing.T) {
	rig := newEdgeRig(t, mqtt.InboundConfig{})
	rec := newRecorder()
	obs := mqtt.NewObserver(rig.nc, edgeTopics, fakeSeer{rec: rec}, knownDevices{"probe": true, "p1": true, "p2": true, "last": true},
		slog.New(slog.DiscardHandler))
	runObserver(t, obs)

	// The observer starts at the newest message: heartbeat until it hears.
	probe := device{id: "probe"}
	natstest.CheckFor(t, 10*time.Second, func() error {
		rig.publish(t, []edgeMsg{probe.alive(wire.StatusAlive)})
		rig.publishComplete(t)
		calls, _ := rec.snapshot()
		if !slices.Contains(calls, any(seen{"probe"})) {
			return errors.New("the probe is not heard yet")
		}
		return nil
	})
	before, _ := rec.snapshot()

	p1, p2, stranger := device{id: "p1"}, device{id: "p2", shared: true}, device{id: "stranger"}
	rig.publish(t, []edgeMsg{
		stranger.alive(wire.StatusAlive),
		{topic: edgeTopics.Topic(wire.OwnTopic(wire.SuffixAlive, "p1")), data: []byte(`{"proplet_id":"p2","status":"alive"}`)},
		{topic: edgeTopics.Topic(wire.SuffixAlive), data: []byte(`not json`)},
		p1.alive(wire.StatusAlive),
		p2.create(),
		p1.result("t1"),
		p1.alive(wire.StatusOffline),
		device{id: "last"}.alive(wire.StatusAlive), // once it is seen, all before it were
	})
	rig.publishComplete(t)
	calls := rec.waitFor(t, "the last heartbeat", func(calls []any) bool {
		return slices.Contains(calls, any(seen{"last"}))
	})
	// Late copies of the probe may come in between.
	got := slices.DeleteFunc(calls[len(before):], func(c any) bool { return c == any(seen{"probe"}) })
	want := []any{seen{"p1"}, seen{"p2"}, gone{"p1"}, seen{"last"}}
	if !slices.Equal(got, want) {
		t.Fatalf("seer heard %v, want %v", got, want)
	}
}
