package mqtt_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/natstest"
)

// knownTasks is the tasks read model as the Observer sees it.
type knownTasks map[string]bool

func (k knownTasks) Get(id string) (engine.Task, bool) { return engine.Task{ID: id}, k[id] }

func (d device) metrics(rss int) edgeMsg {
	return d.msg(wire.SuffixMetrics, map[string]any{"namespace": "default",
		"cpu_metrics": map[string]any{"percent": 5.5}, "memory_metrics": map[string]any{"rss_bytes": rss}})
}

func (d device) taskMetrics(task string, mem int) edgeMsg {
	return d.msg(wire.SuffixTaskMetrics, map[string]any{"task_id": task, "metrics": map[string]any{"memory_bytes": mem}})
}

// TestObserver_KeepsSamples: with Keep, the observer keeps the metrics of
// known devices for known tasks, on shared and own topics; it passes over
// unknown devices and tasks, malformed payloads and a payload naming
// another device than its topic.
func TestObserver_KeepsSamples(t *testing.T) {
	rig := newEdgeRig(t, mqtt.InboundConfig{})
	samples := mqtt.NewSamples(4, 0)
	obs := mqtt.NewObserver(rig.nc, edgeTopics, fakeSeer{rec: newRecorder()}, knownDevices{"probe": true, "p1": true, "p2": true},
		slog.New(slog.DiscardHandler))
	obs.Keep(samples, knownTasks{"t1": true}, func() time.Time { return heartbeatAt })
	runObserver(t, obs)

	probe := device{id: "probe"}
	natstest.CheckFor(t, 10*time.Second, func() error {
		rig.publish(t, []edgeMsg{probe.metrics(1)})
		rig.publishComplete(t)
		if _, n := samples.PropletMetrics("probe", 0, 1); n == 0 {
			return errors.New("the probe's sample is not kept yet")
		}
		return nil
	})

	p1, p2, stranger := device{id: "p1"}, device{id: "p2", shared: true}, device{id: "stranger"}
	rig.publish(t, []edgeMsg{
		stranger.metrics(9),
		{topic: edgeTopics.Topic(wire.OwnTopic(wire.SuffixMetrics, "p1")), data: []byte(`{"proplet_id":"p2","memory_metrics":{"rss_bytes":9}}`)},
		{topic: edgeTopics.Topic(wire.SuffixMetrics), data: []byte(`{"proplet_id":"p2","cpu_metrics":7}`)},
		p1.metrics(100),
		p2.metrics(200),
		p1.taskMetrics("t1", 300),
		p1.taskMetrics("t-unknown", 9),
		stranger.taskMetrics("t1", 9),
		p2.metrics(201), // once it is kept, all before it were seen
	})
	rig.publishComplete(t)
	natstest.CheckFor(t, 10*time.Second, func() error {
		if _, n := samples.PropletMetrics("p2", 0, 10); n != 2 {
			return errors.New("p2's last sample is not kept yet")
		}
		return nil
	})
	p1s, _ := samples.PropletMetrics("p1", 0, 10)
	p2s, _ := samples.PropletMetrics("p2", 0, 10)
	if len(p1s) != 1 || p1s[0].Memory.RSSBytes != 100 || p1s[0].CPU.Percent != 5.5 || !p1s[0].Timestamp.Time.Equal(heartbeatAt) {
		t.Errorf("p1's samples: %+v", p1s)
	}
	if len(p2s) != 2 || p2s[0].Memory.RSSBytes != 200 || p2s[1].Memory.RSSBytes != 201 {
		t.Errorf("p2's samples: %+v", p2s)
	}
	if s, _ := samples.PropletMetrics("stranger", 0, 10); len(s) != 0 {
		t.Errorf("an unknown device's samples are kept: %+v", s)
	}
	ts, _ := samples.TaskMetrics("t1", 0, 10)
	if len(ts) != 1 || ts[0].Metrics.MemoryBytes != 300 || ts[0].PropletID != "p1" {
		t.Errorf("t1's samples: %+v", ts)
	}
	if devices, tasks := samples.Counts(); devices != 3 || tasks != 1 {
		t.Errorf("%d device and %d task windows, want 3 and 1", devices, tasks)
	}
}
