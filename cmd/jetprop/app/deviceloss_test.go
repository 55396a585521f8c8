package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/tcpproxy"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

// partition is a TCP proxy between one proplet and the MQTT listener that
// can stop moving bytes while keeping every connection open: the proplet
// vanishes for the broker and the engine (no heartbeat, no result, and no
// last will, since no connection closes), as behind a cut network link.
type partition struct {
	*tcpproxy.Proxy

	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed when not frozen
}

func newPartition(t *testing.T, mqttURL string) *partition {
	t.Helper()
	u, err := url.Parse(mqttURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &partition{thawed: make(chan struct{})}
	close(p.thawed)
	p.Proxy = tcpproxy.Start(t, u.Host, p.pipe, p.pipe)
	t.Cleanup(p.thaw) // before the proxy's cleanup, which waits for the pipes
	return p
}

// pipe copies src to dst, holding what it read while the link is frozen.
func (p *partition) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			thawed := p.thawed
			p.mu.Unlock()
			<-thawed
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *partition) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen, p.thawed = true, make(chan struct{})
	}
}

func (p *partition) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		close(p.thawed)
	}
}

// runProplet runs a real proplet that heartbeats every 100 ms, until the
// returned stop is called (or the test ends).
func runProplet(t *testing.T, mqttURL string) (*proplet.Proplet, func()) {
	t.Helper()
	p, err := proplet.New(proplet.Config{MQTTAddress: mqttURL, Tenant: "t1", Channel: "c1", DataDir: t.TempDir(), QoS: 1,
		Liveliness: 100 * time.Millisecond}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return p, stop
}

// startTask creates and starts a task from spec and module.
func startTask(t *testing.T, a *app.App, spec events.TaskCreated, module []byte) string {
	t.Helper()
	task, err := a.Service().CreateTask(context.Background(), spec, bytes.NewReader(module))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Service().StartTask(context.Background(), task.ID); err != nil {
		t.Fatal(err)
	}
	return task.ID
}

// waitTask waits until task id satisfies ok, and returns it.
func waitTask(t *testing.T, a *app.App, id string, timeout time.Duration, ok func(engine.Task) error) engine.Task {
	t.Helper()
	var tk engine.Task
	natstest.CheckFor(t, timeout, func() error {
		tk, _ = a.Tasks().Get(id)
		return ok(tk)
	})
	return tk
}

func runningOn(attempt int, devices ...string) func(engine.Task) error {
	return func(tk engine.Task) error {
		if tk.State != engine.TaskRunning || tk.Attempt != attempt || !slices.Contains(devices, tk.Device) {
			return fmt.Errorf("task is %s, attempt %d on %q (%s); want running, attempt %d on one of %q", tk.State, tk.Attempt, tk.Device, tk.Error, attempt, devices)
		}
		return nil
	}
}

// completed is a task that completed.
func completed(tk engine.Task) error {
	if tk.State != engine.TaskCompleted {
		return fmt.Errorf("task is %s, attempt %d on %s (%s)", tk.State, tk.Attempt, tk.Device, tk.Error)
	}
	return nil
}

// waitRerun waits until task id (add 1 2) completes, and checks that it
// did on its second attempt, on device.
func waitRerun(t *testing.T, a *app.App, id, device string) {
	t.Helper()
	done := waitTask(t, a, id, 20*time.Second, completed)
	if done.Attempt != 2 || done.Device != device || string(done.Result) != `"3"` {
		t.Fatalf("task = attempt %d on %s, result %s", done.Attempt, done.Device, done.Result)
	}
}

// acceptingDevice is device id on its own MQTT client: it accepts every
// start, then passes it to then (when not nil), and it announces itself.
func acceptingDevice(t *testing.T, a *app.App, topics wire.Topics, id string, then func(paho.Client, wire.StartRequest)) {
	t.Helper()
	c := mqttClient(t, a.MQTTURL(), id)
	tok := c.Subscribe(topics.Topic(wire.OwnTopic("control/manager", id)+"/+"), 0, func(c paho.Client, m paho.Message) {
		req, err := wire.DecodeStart(m.Payload())
		if err != nil || req.ID == "" {
			return
		}
		acc, _ := json.Marshal(wire.Accepted{TaskID: req.ID, Attempt: req.Attempt, PropletID: id})
		c.Publish(topics.Topic(wire.OwnTopic(wire.SuffixAccepted, id)), 1, false, acc)
		if then != nil {
			then(c, req)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	b, _ := json.Marshal(wire.Discovery{PropletID: id, Accepts: true})
	publish(t, c, topics.Topic(wire.OwnTopic(wire.SuffixCreate, id)), b)
}

// lostEvents returns the task's task.lost events.
func lostEvents(t *testing.T, a *app.App, id string) []events.TaskLost {
	t.Helper()
	envs, err := a.Store().Load(context.Background(), events.TaskAggregate(id))
	if err != nil {
		t.Fatal(err)
	}
	var out []events.TaskLost
	for _, env := range envs {
		if env.Type == "task.lost" {
			var e events.TaskLost
			if err := json.Unmarshal(env.Data, &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
	}
	return out
}

// TestApp_DeviceVanishes: a proplet running a task vanishes without a
// last will (its network link stops moving bytes); within the liveness
// timeout and one dispatch the task runs on the other proplet and
// completes there. When the link comes back, the vanished proplet's
// result of the old attempt is recorded as late (task.late_result) and
// does not change the task.
func TestApp_DeviceVanishes(t *testing.T) {
	cfg := testConfig(t.TempDir(), 0)
	cfg.Liveness = 1500 * time.Millisecond
	a := startApp(t, cfg)
	links := map[string]*partition{}
	for range 2 {
		link := newPartition(t, a.MQTTURL())
		p, _ := runProplet(t, link.URL())
		links[p.ID()] = link
	}
	waitDevices(t, a, 2)

	// sum(n) runs for about 2 s (23 ns an iteration, interruptible):
	// long enough to cut the link before it ends, and its result is known.
	const n = 100_000_000
	want := fmt.Sprintf("%q", fmt.Sprint(int64(n)*(n-1)/2))
	id := startTask(t, a, events.TaskCreated{Name: "sum", Inputs: []string{fmt.Sprint(n)}, TimeoutMS: 120_000}, wasmfixtures.Loop())
	ids := slices.Collect(func(yield func(string) bool) {
		for id := range links {
			if !yield(id) {
				return
			}
		}
	})
	first := waitTask(t, a, id, 10*time.Second, runningOn(1, ids...))
	links[first.Device].freeze()
	cut := time.Now()
	other := ids[0]
	if other == first.Device {
		other = ids[1]
	}

	moved := waitTask(t, a, id, cfg.Liveness+10*time.Second, runningOn(2, other))
	took := time.Since(cut)
	t.Logf("vanished %s → running on %s after %s (liveness timeout %s)", first.Device, other, took.Round(time.Millisecond), cfg.Liveness)
	if lost := lostEvents(t, a, id); len(lost) != 1 || lost[0].Cause != engine.LostOffline || lost[0].Device != first.Device {
		t.Fatalf("task.lost events %+v, want one of %s going offline", lost, first.Device)
	}
	if moved.Lost != 1 {
		t.Fatalf("lost = %d, want 1", moved.Lost)
	}
	done := waitTask(t, a, id, 60*time.Second, completed)
	if done.Attempt != 2 || done.Device != other || string(done.Result) != want {
		t.Fatalf("task = attempt %d on %s, result %s; want attempt 2 on %s, %s", done.Attempt, done.Device, done.Result, other, want)
	}

	links[first.Device].thaw() // the old attempt's result comes now
	late := waitTask(t, a, id, 60*time.Second, func(tk engine.Task) error {
		if len(tk.Ended) != 1 || !tk.Ended[0].Late {
			return fmt.Errorf("ended attempts %+v, want attempt 1 with a late result", tk.Ended)
		}
		return nil
	})
	if late.State != engine.TaskCompleted || late.Attempt != 2 || late.Device != other || string(late.Result) != want {
		t.Fatalf("after the late result: %+v", late)
	}
	types := eventTypes(t, a, events.TaskAggregate(id))
	if !slices.Contains(types, "task.late_result") || types[len(types)-1] != "task.late_result" {
		t.Fatalf("events %q: want the late result last", types)
	}
}

// TestApp_DeadlinePassed: a device that accepts a start and never reports
// (hung) holds the attempt until its deadline (timeout + grace); then the
// task runs on a real proplet. The hung device stays up all along.
func TestApp_DeadlinePassed(t *testing.T) {
	cfg := testConfig(t.TempDir(), 0)
	cfg.DeadlineGrace = 500 * time.Millisecond
	a := startApp(t, cfg)
	topics := wire.Topics{Tenant: cfg.Tenant, Channel: cfg.Channel}

	acceptingDevice(t, a, topics, "hung", nil)
	waitDevices(t, a, 1)

	id := startTask(t, a, events.TaskCreated{Name: "add", Inputs: []string{"1", "2"}, TimeoutMS: 500}, wasmfixtures.Add())
	started := waitTask(t, a, id, 10*time.Second, runningOn(1, "hung"))
	p, _ := runProplet(t, a.MQTTURL())
	waitDevices(t, a, 2)

	waitRerun(t, a, id, p.ID())
	lost := lostEvents(t, a, id)
	if len(lost) != 1 || lost[0].Cause != engine.LostDeadline || lost[0].Device != "hung" ||
		!lost[0].Deadline.Equal(started.StartedAt.Add(time.Second)) || !strings.HasPrefix(lost[0].Reason, "timed out") {
		t.Fatalf("task.lost events %+v, want the deadline of hung's attempt, %s", lost, started.StartedAt.Add(time.Second))
	}
	if d, _ := a.Devices().Get("hung"); !d.State.Up() {
		t.Fatalf("the hung device is %s: only its attempt was given up", d.State)
	}
}

// TestApp_ProletInterrupted: a device that reports its attempt
// interrupted (as a proplet does after a restart, for the tasks its
// journal held) has the task run again on another proplet instead of
// failing; with max_attempts 1 the same report fails the task.
func TestApp_ProletInterrupted(t *testing.T) {
	cfg := testConfig(t.TempDir(), 0)
	a := startApp(t, cfg)
	topics := wire.Topics{Tenant: cfg.Tenant, Channel: cfg.Channel}
	acceptingDevice(t, a, topics, "restarted", func(c paho.Client, req wire.StartRequest) {
		res, _ := json.Marshal(wire.Result{TaskID: req.ID, PropletID: "restarted", Attempt: req.Attempt,
			Error: "interrupted: proplet restarted", Results: json.RawMessage(`null`), Interrupted: true})
		c.Publish(topics.Topic(wire.OwnTopic(wire.SuffixResults, "restarted")), 1, false, res)
	})
	waitDevices(t, a, 1)

	once := startTask(t, a, events.TaskCreated{Name: "add", Inputs: []string{"1", "2"}, MaxAttempts: 1}, wasmfixtures.Add())
	failed := waitTask(t, a, once, 20*time.Second, func(tk engine.Task) error {
		if tk.State != engine.TaskFailed {
			return fmt.Errorf("task is %s", tk.State)
		}
		return nil
	})
	if want := "interrupted: proplet restarted; 1 of 1 attempts lost"; failed.Error != want {
		t.Fatalf("error %q, want %q", failed.Error, want)
	}

	p, _ := runProplet(t, a.MQTTURL())
	waitDevices(t, a, 2)
	var id string
	natstest.CheckFor(t, 20*time.Second, func() error { // until placement picks the device that reports interrupted
		id = startTask(t, a, events.TaskCreated{Name: "add", Inputs: []string{"1", "2"}}, wasmfixtures.Add())
		if tk, _ := a.Tasks().Get(id); tk.Attempt == 1 && tk.Device == "restarted" {
			return nil
		}
		return errors.New("placed on the proplet")
	})
	waitRerun(t, a, id, p.ID())
	if lost := lostEvents(t, a, id); len(lost) != 1 || lost[0].Cause != engine.LostInterrupted || lost[0].Device != "restarted" {
		t.Fatalf("task.lost events %+v, want one interrupted on restarted", lost)
	}
}

// TestApp_ProletShutDown: a real proplet shut down mid-task reports the
// attempt interrupted and says it goes offline; whichever the engine
// reads first, the task runs again on the other proplet.
func TestApp_ProletShutDown(t *testing.T) {
	cfg := testConfig(t.TempDir(), 0)
	a := startApp(t, cfg)
	first, stopFirst := runProplet(t, a.MQTTURL())
	waitDevices(t, a, 1)
	id := startTask(t, a, events.TaskCreated{Name: "loop", TimeoutMS: 120_000}, wasmfixtures.Loop())
	waitTask(t, a, id, 10*time.Second, runningOn(1, first.ID()))
	second, _ := runProplet(t, a.MQTTURL())
	waitDevices(t, a, 2)

	stopFirst()
	waitTask(t, a, id, 20*time.Second, runningOn(2, second.ID()))
	lost := lostEvents(t, a, id)
	if len(lost) != 1 || (lost[0].Cause != engine.LostInterrupted && lost[0].Cause != engine.LostOffline) {
		t.Fatalf("task.lost events %+v, want one, interrupted or offline", lost)
	}
	if _, err := a.Service().StopTask(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}
