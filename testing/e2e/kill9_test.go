package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/examples"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestKill9_StatePreserved runs tasks into every end state (and leaves some
// pending), kills `jetprop up` with SIGKILL, and starts it again on the same
// data dir: GET /tasks and GET /proplets answer exactly what they answered
// before, field for field.
//
// The first restart runs no local proplet (--proplets 0): then nothing but
// the stored events can shape what the server shows, so the comparison is
// of persisted state alone. Devices are compared right after the start: the
// restarted server gives every known device a fresh liveness grace period
// (30 s here), so a device may legitimately go offline later, not sooner.
// The second restart (after a second kill -9) brings the same local proplet
// back: it reconnects and announces itself with unchanged metadata, which
// must not change the device either, and a new task runs on it.
func TestKill9_StatePreserved(t *testing.T) {
	skipShort(t)
	s := startServer(t, t.TempDir(), newPorts(t), 1)
	c := s.api
	ctx := context.Background()
	dev := waitUp(t, c, 1)[0]

	completed := run(t, c, httpapi.TaskRequest{Name: "add", File: examples.Add(), Inputs: wire.Strings{"10", "20"}})
	if completed.Status != "completed" || string(completed.Results) != `"30"` {
		t.Fatalf("add 10 20: %s %s %q", completed.Status, completed.Results, completed.Error)
	}
	wasi := run(t, c, httpapi.TaskRequest{Name: "_start", File: examples.Uppercase(), Stdin: []byte("kill -9"), Env: map[string]string{"A": "1"}})
	if wasi.Status != "completed" || string(wasi.Results) != `"KILL -9"` {
		t.Fatalf("uppercase: %s %s %q", wasi.Status, wasi.Results, wasi.Error)
	}
	badInputs := run(t, c, httpapi.TaskRequest{Name: "add", File: examples.Add(), Inputs: wire.Strings{"ten", "20"}})
	if badInputs.Status != "failed" || badInputs.Error == "" {
		t.Fatalf("add ten 20: %s %q", badInputs.Status, badInputs.Error)
	}
	timedOut := run(t, c, httpapi.TaskRequest{Name: "loop", File: wasmfixtures.Loop(), TimeoutMS: 200, MemoryMiB: 16})
	if timedOut.Status != "failed" || !strings.Contains(timedOut.Error, "timeout") {
		t.Fatalf("loop with a timeout: %s %q", timedOut.Status, timedOut.Error)
	}
	stopped := create(t, c, httpapi.TaskRequest{Name: "loop", File: wasmfixtures.Loop(), TimeoutMS: 60_000, PropletID: dev.ID})
	if _, err := c.StartTask(ctx, stopped.ID); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, stopped.ID, "running", 10*time.Second)
	if _, err := c.StopTask(ctx, stopped.ID); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, stopped.ID, "stopped", 10*time.Second)
	create(t, c, httpapi.TaskRequest{Name: "add", File: examples.Add(), Inputs: wire.Strings{"1", "2"}}) // pending, never started
	create(t, c, httpapi.TaskRequest{Name: "add"})                                                       // pending, no module yet
	deleted := create(t, c, httpapi.TaskRequest{Name: "add", File: examples.Add()})
	if err := c.DeleteTask(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}

	before := settledSnapshot(t, c)
	if len(before.Tasks) != 7 || len(before.Proplets) != 1 {
		t.Fatalf("before the kill: %d tasks and %d proplets, want 7 and 1", len(before.Tasks), len(before.Proplets))
	}
	s.kill9()

	s.restart(0)
	requireSame(t, "after kill -9 and a restart with --proplets 0", before, takeSnapshot(t, c))
	if _, err := c.GetTask(ctx, deleted.ID); err == nil {
		t.Fatalf("deleted task %s is back", deleted.ID)
	}

	s.kill9()
	s.restart(1)
	requireSame(t, "after a second kill -9 and a restart with the local proplet", before, takeSnapshot(t, c))
	again := run(t, c, httpapi.TaskRequest{Name: "add", File: examples.Add(), Inputs: wire.Strings{"2", "40"}, PropletID: dev.ID})
	if again.Status != "completed" || string(again.Results) != `"42"` {
		t.Fatalf("add after the restarts: %s %s %q", again.Status, again.Results, again.Error)
	}
	after := settledSnapshot(t, c)
	after.Tasks = slices.DeleteFunc(after.Tasks, func(x httpapi.Task) bool { return x.ID == again.ID })
	requireSame(t, "once the local proplet is back and has run a task", before, after)
}

// TestKill9_ResultWhileDown kills the server while an external proplet
// (bin/proplet, its own process and data dir) runs a task. The proplet
// finishes the task while the broker is gone; its result waits in its MQTT
// session store (the proplet's journal). The server comes back on the same
// ports and data dir, the proplet reconnects and resends, and the result
// is recorded, once. Run at the proplet's QoS 1 and at Propeller's
// default, 2.
func TestKill9_ResultWhileDown(t *testing.T) {
	skipShort(t)
	for _, qos := range []string{"1", "2"} {
		t.Run("qos"+qos, func(t *testing.T) { resultWhileDown(t, qos) })
	}
}

func resultWhileDown(t *testing.T, qos string) {
	p := newPorts(t)
	s := startServer(t, t.TempDir(), p, 0)
	edge := startEdgeProplet(t, p.mqtt, "edge-qos"+qos, qos)
	waitProplet(t, s.api, edge.id, "alive", 30*time.Second)

	module := filepath.Join(t.TempDir(), "loop.wasm")
	if err := os.WriteFile(module, wasmfixtures.Loop(), 0o600); err != nil {
		t.Fatal(err)
	}
	id := s.cli("task", "create", "--name", "loop", "--file", module, "--timeout", "2s", "--proplet", edge.id)
	s.cli("task", "start", id)
	waitStatus(t, s.api, id, "running", 10*time.Second)
	natstest.CheckFor(t, 10*time.Second, func() error {
		if !edge.logged(`msg="task started"`, "task_id="+id) {
			return fmt.Errorf("the proplet has not started task %s", id)
		}
		return nil
	})

	s.kill9()
	killed := time.Now()
	natstest.CheckFor(t, 15*time.Second, func() error {
		if !edge.logged(`msg="task ended"`, "task_id="+id, "timeout") {
			return fmt.Errorf("the proplet has not ended task %s with a timeout", id)
		}
		return nil
	})
	t.Logf("the proplet ended the task %s after the kill", time.Since(killed).Round(time.Millisecond))
	if !edge.logged("connection lost") {
		t.Errorf("the proplet did not notice that the broker was gone")
	}

	s.restart(0)
	task := waitStatus(t, s.api, id, "failed", 60*time.Second)
	if !strings.Contains(task.Error, "timeout") || task.PropletID != edge.id || task.Attempt != 1 {
		t.Fatalf("task after the restart: %s", jsonOf(task))
	}
	t.Logf("result recorded %s after the kill: %q", time.Since(killed).Round(time.Millisecond), task.Error)
	want := []string{"task.created", "task.scheduled", "task.started", "task.failed"}
	if got := taskEvents(t, s.api, id); !slices.Equal(got, want) {
		t.Fatalf("events of task %s: %v, want %v", id, got, want)
	}
	waitProplet(t, s.api, edge.id, "alive", 30*time.Second)

	// The proplet serves the restarted server as before.
	add := run(t, s.api, httpapi.TaskRequest{Name: "add", File: examples.Add(), Inputs: wire.Strings{"20", "22"}, PropletID: edge.id})
	if add.Status != "completed" || string(add.Results) != `"42"` {
		t.Fatalf("add after the restart: %s %s %q", add.Status, add.Results, add.Error)
	}
}

// TestKill9_InFlightResultsNotDelayed kills the server while results are
// fetched from EDGE_IN on the engine's consumer and not yet acknowledged
// (the engine fetches in batches and acknowledges one by one; the test
// holds some itself, so that there always are such results at the kill):
// after the restart they are redelivered and recorded at once, not after
// the consumer's ack wait (30 s). The results are published straight to
// EDGE_IN's NATS subjects, as nats-server's MQTT listener does, for a
// device that announced itself the same way.
func TestKill9_InFlightResultsNotDelayed(t *testing.T) {
	skipShort(t)
	p := newPorts(t)
	s := startServer(t, t.TempDir(), p, 0)
	ctx := context.Background()
	nc := s.natsConn(nats.MaxReconnects(-1))
	defer nc.Close()
	js, _ := jetstream.New(nc)
	topics := wire.Topics{Tenant: tenant, Channel: channel}
	const dev = "fake-device"
	if _, err := js.Publish(ctx, wire.Subject(topics.Topic(wire.SuffixCreate)), []byte(`{"proplet_id":"fake-device","metadata":{}}`)); err != nil {
		t.Fatal(err)
	}
	waitProplet(t, s.api, dev, "announced", 10*time.Second)

	const n = 3000
	ids := make(chan string, n)
	var wg sync.WaitGroup
	module := examples.Add()
	for range 4 {
		wg.Go(func() {
			for range n / 4 {
				task, err := s.api.CreateTask(ctx, httpapi.TaskRequest{Name: "add", File: module, PropletID: dev})
				if err == nil {
					_, err = s.api.StartTask(ctx, task.ID)
				}
				if err != nil {
					t.Error(err)
					return
				}
				ids <- task.ID
			}
		})
	}
	wg.Wait()
	close(ids)
	if t.Failed() {
		t.FailNow()
	}
	// The test holds some results fetched and unacknowledged itself, on the
	// engine's durable consumer, as the engine holds those it fetched and did
	// not record yet: to nats-server both are the same, and the engine may
	// record all of its own before any kill. Its pull request goes out before
	// the results on the same connection, so it waits in the consumer's queue
	// and, served in turn with the engine's (which takes at most 1024 at a
	// time), gets its share of the 3000.
	cons, err := js.Consumer(ctx, "EDGE_IN", "engine")
	if err != nil {
		t.Fatal(err)
	}
	const held = 10
	batch, err := cons.Fetch(held, jetstream.FetchMaxWait(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	results := wire.Subject(topics.Topic(wire.SuffixResults))
	for id := range ids {
		if _, err := js.PublishAsync(results, fmt.Appendf(nil, `{"task_id":%q,"proplet_id":%q,"results":"1","error":null}`, id, dev)); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	var heldSeqs []uint64
	for m := range batch.Messages() { // never acknowledged
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		heldSeqs = append(heldSeqs, md.Sequence.Stream)
	}
	if len(heldSeqs) != held {
		t.Fatalf("the test's pull got %d of %d results (%v)", len(heldSeqs), held, batch.Error())
	}
	// Kill once nats-server has written that they were delivered and not
	// acknowledged to disk (it writes a consumer's state at most ten times a
	// second): else the restarted consumer would deliver them as new.
	waitDeliveredOnDisk(t, s.dir, slices.Min(heldSeqs), slices.Max(heldSeqs))
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pending := info.NumAckPending
	s.kill9()
	s.restart(0)
	restarted := time.Now()
	natstest.CheckFor(t, 60*time.Second, func() error {
		list := takeSnapshot(t, s.api).Tasks
		left := 0
		for _, task := range list {
			if task.Status != "completed" {
				left++
			}
		}
		if left > 0 {
			return fmt.Errorf("%d of %d tasks not completed", left, len(list))
		}
		return nil
	})
	took := time.Since(restarted)
	t.Logf("killed with %d results fetched and not acknowledged; all %d recorded %s after the restart", pending, n, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Fatalf("results stored before the kill took %s to be recorded after the restart", took.Round(time.Millisecond))
	}
}

// waitDeliveredOnDisk waits until the state nats-server last wrote of the
// engine's consumer on EDGE_IN (obs/engine/o.dat, replaced atomically) says
// that stream sequences from..to were delivered and are not acknowledged.
// The file starts with magic 22 and version 2, then uvarints: ack floor
// (consumer, stream sequence), delivered (consumer, stream sequence). Any
// other header fails the test: a nats-server that changed the format.
func waitDeliveredOnDisk(t *testing.T, dataDir string, from, to uint64) {
	t.Helper()
	pattern := filepath.Join(dataDir, "jetstream", "*", "streams", "EDGE_IN", "obs", "engine", "o.dat")
	natstest.CheckFor(t, 30*time.Second, func() error {
		paths, _ := filepath.Glob(pattern)
		if len(paths) != 1 {
			return fmt.Errorf("%d files match %s", len(paths), pattern)
		}
		b, err := os.ReadFile(paths[0])
		if err != nil {
			return err
		}
		if len(b) < 2 || b[0] != 22 || b[1] != 2 {
			t.Fatalf("%s: header % x, want 16 02 (nats-server's consumer state, version 2)", paths[0], b[:min(len(b), 2)])
		}
		var seq [4]uint64 // ack floor consumer, stream; delivered consumer, stream
		b = b[2:]
		for i := range seq {
			v, n := binary.Uvarint(b)
			if n <= 0 {
				t.Fatalf("%s: cannot decode the consumer state", paths[0])
			}
			seq[i], b = v, b[n:]
		}
		if floor, delivered := seq[1], seq[3]; floor >= from || delivered < to {
			return fmt.Errorf("on disk: ack floor %d, delivered %d; want delivered %d..%d, not acknowledged", floor, delivered, from, to)
		}
		return nil
	})
}
