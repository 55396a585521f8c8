package app_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/journal"
	"github.com/jetprop/jetprop/workers/proplet"
)

// TestApp_LostResultSentAgain: the broker takes a proplet's result (it
// PUBACKs it) but EDGE_IN does not capture it, as happens when the
// capture of the devices' messages misses one. The task stays running
// until the proplet, which heard no ack from the engine, sends the
// result again; that copy is recorded, and acked.
func TestApp_LostResultSentAgain(t *testing.T) {
	ns := natstest.Start(t)
	cfg := testConfig(t.TempDir(), 0)
	cfg.NATSURL, cfg.MQTTURL = ns.EngineURL(), ns.EngineMQTTURL()
	a := startApp(t, cfg)
	dataDir := t.TempDir()
	p, err := proplet.New(proplet.Config{MQTTAddress: ns.MQTTURL(), Tenant: "t1", Channel: "c1", DataDir: dataDir, QoS: 1,
		ResultResend: 200 * time.Millisecond}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitDevices(t, a, 1)

	// EDGE_IN captures everything but results for now.
	_, js := natstest.Connect(t, ns)
	topics := wire.Topics{Tenant: "t1", Channel: "c1"}
	full := mqtt.EdgeStreamConfig(topics, 1)
	blind := full
	blind.Subjects = []string{wire.Subject(topics.Topic(wire.SuffixModuleRequest)), wire.Subject(topics.Topic(wire.SuffixModuleRequest + "/#"))}
	for _, k := range []string{wire.SuffixCreate, wire.SuffixAlive, wire.SuffixAccepted, wire.SuffixTaskMetrics, wire.SuffixMetrics} {
		blind.Subjects = append(blind.Subjects, wire.Subject(topics.Topic(k)), wire.Subject(topics.Topic(wire.OwnTopic(k, "+"))))
	}
	if _, err := js.UpdateStream(context.Background(), blind); err != nil {
		t.Fatal(err)
	}

	task, err := a.Service().CreateTask(context.Background(), events.TaskCreated{Name: "add", Inputs: []string{"1", "2"}}, bytes.NewReader(wasmfixtures.Add()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Service().StartTask(context.Background(), task.ID); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		if n := p.ResultsResent(); n == 0 {
			return fmt.Errorf("the result was not sent again")
		}
		return nil
	})
	if tk, _ := a.Tasks().Get(task.ID); tk.State != engine.TaskRunning {
		t.Fatalf("task is %s with its result lost, want running", tk.State)
	}

	if _, err := js.UpdateStream(context.Background(), full); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		if tk, _ := a.Tasks().Get(task.ID); tk.State != engine.TaskCompleted {
			return fmt.Errorf("task is %s", tk.State)
		}
		if a.InboundStats().ResultAcks == 0 {
			return fmt.Errorf("no result acked")
		}
		return nil
	})
	want := []string{"task.created", "task.scheduled", "task.started", "task.completed"}
	if got := eventTypes(t, a, events.TaskAggregate(task.ID)); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	// Acked: the proplet keeps the result no longer, and stops sending it.
	natstest.CheckFor(t, 10*time.Second, func() error {
		if n := p.Unacked(); n != 0 {
			return fmt.Errorf("%d results wait for an ack", n)
		}
		return nil
	})
	cancel()
	<-done
	j, err := journal.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if kept := j.Results(); len(kept) != 0 {
		t.Fatalf("the proplet still keeps %+v", kept)
	}
}
