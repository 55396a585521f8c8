package proplet_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/journal"
	"github.com/jetprop/jetprop/workers/proplet"
)

// TestProplet_CrashReportsInterrupted kills a proplet process (kill -9)
// while a task runs. Started again on the same data dir, the proplet
// reports the task failed, "interrupted: proplet restarted" with its
// attempt, exactly once, and does not run it again.
func TestProplet_CrashReportsInterrupted(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	c := startChild(t, cfg)
	m.waitDiscoveries(1)
	m.start(wire.StartRequest{ID: "crash", Name: "loop", File: wasmfixtures.Loop(), Daemon: true, Attempt: 4})
	c.waitLog(`msg="task started"`, "task_id=crash")
	c.kill()
	if rs, _ := m.results("crash"); len(rs) != 0 {
		t.Fatalf("a killed proplet sent a result: %+v", rs)
	}
	waitGone(t, s.NATS(), cfg.EntityID)

	p := launch(t, cfg)
	r, raw := m.waitResult("crash")
	if string(r.Error) != "interrupted: proplet restarted" || r.Attempt != 4 || r.PropletID != cfg.EntityID {
		t.Fatalf("result %s", raw)
	}
	// Starts arrive in order: a redelivered "crash" start would come first.
	m.start(wire.StartRequest{ID: "marker", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}})
	m.waitResult("marker")
	if running := p.Running(); len(running) != 0 {
		t.Fatalf("running %v after the restart", running)
	}
	if rs, raws := m.results("crash"); len(rs) != 1 {
		t.Fatalf("results for crash: %v", raws)
	}
}

// TestProplet_CrashResendsUnconfirmedResult: a result published while the
// broker is unreachable, by a process then killed, is delivered by the
// next run.
func TestProplet_CrashResendsUnconfirmedResult(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	px := startProxy(t, s.MQTTAddr())
	cfg := testConfig(t, s)
	cfg.MQTTAddress = px.URL()
	c := startChild(t, cfg)
	m.waitDiscoveries(1)
	m.start(wire.StartRequest{ID: "late", Name: "loop", File: wasmfixtures.Loop(), TimeoutMS: 300, Attempt: 2})
	c.waitLog(`msg="task started"`, "task_id=late")
	px.SetDown(true)
	c.waitLog(`msg="result stored"`, "task_id=late") // in the session store, unconfirmed
	c.kill()

	cfg.MQTTAddress = s.MQTTURL()
	launch(t, cfg)
	r, raw := m.waitResult("late")
	if !strings.Contains(string(r.Error), "timeout after 300ms") || r.Attempt != 2 {
		t.Fatalf("result %s", raw)
	}
	m.start(wire.StartRequest{ID: "marker", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}})
	m.waitResult("marker")
	if rs, raws := m.results("late"); len(rs) != 1 {
		t.Fatalf("results for late: %v (the finished task was reported interrupted too?)", raws)
	}
}

// TestProplet_ResultWhileBrokerUnreachable: a result published while the
// network is down is delivered once the proplet reconnects. The task ends
// when the test says so, after the cut: its runtime is a script (standing
// in for wasmtime) that makes a FIFO, waits for a line on it and prints it.
func TestProplet_ResultWhileBrokerUnreachable(t *testing.T) {
	dir := t.TempDir()
	script, gate := filepath.Join(dir, "gated-wasmtime"), filepath.Join(dir, "gate")
	body := "#!/bin/sh\nmkfifo \"$2\" || exit 1\nread line < \"$2\"\necho \"$line\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s := natstest.Start(t)
	m := newManager(t, s)
	px := startProxy(t, s.MQTTAddr())
	cfg := testConfig(t, s)
	cfg.MQTTAddress, cfg.ExternalRuntime = px.URL(), script
	p := startProplet(t, cfg, m)
	m.start(wire.StartRequest{ID: "offline", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{gate}})
	natstest.CheckFor(t, wait, func() error {
		if !slices.Contains(p.Running(), "offline") {
			return errors.New("task not running")
		}
		return nil
	})
	px.SetDown(true)
	var w *os.File
	natstest.CheckFor(t, wait, func() error { // until the script made the FIFO and reads it
		var err error
		w, err = os.OpenFile(gate, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		return err
	})
	if _, err := w.WriteString("published while down\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p.waitLog(t, `msg="result stored"`, "task_id=offline") // in the session store, unconfirmed
	if rs, _ := m.results("offline"); len(rs) != 0 {
		t.Fatal("result delivered through a network that is down")
	}
	px.SetDown(false)
	if r, raw := m.waitResult("offline"); r.Failed() || r.Text() != "published while down\n" {
		t.Fatalf("result %s", raw)
	}
}

// TestProplet_ImportsLegacyStore: an unconfirmed result left in the paho
// file store of an earlier version is sent by the next run.
func TestProplet_ImportsLegacyStore(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	dir := filepath.Join(cfg.DataDir, "mqtt-store")
	old := paho.NewFileStore(dir)
	old.Open()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.TopicName, pub.Qos, pub.MessageID = topics.Topic(wire.SuffixResults), 1, 9
	pub.Payload = []byte(`{"task_id":"legacy","proplet_id":"proplet-1","results":"7","error":null}`)
	old.Put("o.9", pub)
	old.Close()

	launch(t, cfg)
	if r, raw := m.waitResult("legacy"); r.Text() != "7" {
		t.Fatalf("result %s", raw)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("legacy store still there: %v", err)
	}
}

// TestProplet_DataDirInUse: a second proplet on the same data dir fails
// at once instead of corrupting the first one's journal.
func TestProplet_DataDirInUse(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	startProplet(t, cfg, m)
	cfg.EntityID = "proplet-2"
	p, err := proplet.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); !errors.Is(err, journal.ErrLocked) {
		t.Fatalf("Run: %v, want journal.ErrLocked", err)
	}
}

// TestProplet_RedeliveredStartOfInterruptedTask: the previous run
// journaled a task and died before the broker had the start's
// acknowledgement (played here by a client that takes the proplet's
// session, receives the start, and loses its connection without acking).
// The broker redelivers the start (after its ack wait, 1 s here); the new
// run reports the task interrupted and does not run that attempt again.
// Broker redelivery is what the shared topics have (their subscriptions
// are at QoS 1); on its own topics the engine sends a start again instead
// (TestProplet_AcceptsInterruptedAttempt).
func TestProplet_RedeliveredStartOfInterruptedTask(t *testing.T) {
	s, url := startBroker(t, time.Second)
	m := newManagerAt(t, url)
	px := startProxy(t, strings.TrimPrefix(url, "tcp://"))
	cfg := proplet.Config{MQTTAddress: url, Tenant: topics.Tenant, Channel: topics.Channel, EntityID: "proplet-1",
		DataDir: t.TempDir(), QoS: 1, Liveliness: time.Second, SharedTopics: true}
	got := make(chan struct{}, 1)
	opts := paho.NewClientOptions().AddBroker(px.URL()).SetClientID(cfg.EntityID).
		SetCleanSession(false).SetAutoReconnect(false).SetAutoAckDisabled(true)
	dead := paho.NewClient(opts)
	m.await(dead.Connect())
	m.await(dead.Subscribe(topics.Topic(wire.SuffixStart), 1, func(paho.Client, paho.Message) { got <- struct{}{} }))
	m.start(wire.StartRequest{ID: "again", Name: "loop", File: wasmfixtures.Loop(), Daemon: true, Attempt: 1})
	select {
	case <-got:
	case <-time.After(wait):
		t.Fatal("start not delivered")
	}
	j, err := journal.Open(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Accepted("again", 1, nil); err != nil {
		t.Fatal(err)
	}
	j.Close()
	px.SetDown(true) // dies without acking
	waitGone(t, s, cfg.EntityID)

	c := startChild(t, cfg)
	if r, raw := m.waitResult("again"); string(r.Error) != "interrupted: proplet restarted" || r.Attempt != 1 {
		t.Fatalf("result %s", raw)
	}
	c.waitLog(`msg="redelivered start of a task reported interrupted ignored"`, "task_id=again")
	m.start(wire.StartRequest{ID: "marker", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}})
	m.waitResult("marker")
	if c.logged([]string{`msg="task started"`, "task_id=again"}) {
		t.Fatalf("the redelivered start ran again:\n%s", c.log())
	}
	if rs, raws := m.results("again"); len(rs) != 1 {
		t.Fatalf("results for again: %v", raws)
	}
}

// TestProplet_ResendsManyStoredResults: a restart with many unconfirmed
// results in the store resends every one. paho learns the message ids of
// stored messages only as it resends them, so anything the proplet
// published before that finished could take a stored message's id and
// overwrite it; the proplet publishes nothing until the resend is done.
func TestProplet_ResendsManyStoredResults(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	j, err := journal.Open(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		b := fmt.Appendf(nil, `{"task_id":"old-%d","proplet_id":"proplet-1","results":"%d","error":null}`, i, i)
		if err := j.Store().Enqueue(topics.Topic(wire.SuffixResults), 1, b); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	launch(t, cfg)
	natstest.CheckFor(t, wait, func() error {
		for i := range n {
			if rs, _ := m.results(fmt.Sprint("old-", i)); len(rs) == 0 {
				return fmt.Errorf("no result for old-%d", i)
			}
		}
		return nil
	})
}

// TestProplet_ShutdownLeavesNoInterruptedTask: a task ended by a clean
// shutdown is reported once, as shut down, and not again as interrupted
// by the next run.
func TestProplet_ShutdownLeavesNoInterruptedTask(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	p := startProplet(t, cfg, m)
	m.start(wire.StartRequest{ID: "daemon", Name: "loop", File: wasmfixtures.Loop(), Daemon: true})
	natstest.CheckFor(t, wait, func() error {
		if len(p.Running()) == 0 {
			return errors.New("daemon not running")
		}
		return nil
	})
	p.stop(t)
	m.waitResult("daemon")
	waitGone(t, s.NATS(), cfg.EntityID)
	startProplet(t, cfg, m)
	m.start(wire.StartRequest{ID: "marker", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}})
	m.waitResult("marker")
	if rs, raws := m.results("daemon"); len(rs) != 1 || string(rs[0].Error) != proplet.ErrShutdown.Error() {
		t.Fatalf("results for daemon: %v", raws)
	}
}
