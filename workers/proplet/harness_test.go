package proplet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/tcpproxy"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

const wait = 10 * time.Second

var topics = wire.Topics{Tenant: "tenant1", Channel: "chan1"}

// manager is a plain paho client playing Propeller's manager: it records
// everything proplets publish and sends starts and stops at QoS 1.
type manager struct {
	t      testing.TB
	client paho.Client

	mu   sync.Mutex
	msgs []message
}

type message struct {
	suffix  string // the shared suffix, also for a message on a proplet's own topic
	device  string // the proplet whose own topic it came on ("" for a shared topic)
	payload []byte
	qos     byte // as delivered to the manager, which subscribes at 1
}

func newManager(t testing.TB, s *natsserver.Server) *manager {
	t.Helper()
	return newManagerAt(t, s.MQTTURL())
}

// newManagerAt connects a manager to the broker at url.
func newManagerAt(t testing.TB, url string) *manager {
	t.Helper()
	m := &manager{t: t}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID("manager-" + strings.ReplaceAll(t.Name(), "/", "-")).
		SetCleanSession(true).SetAutoReconnect(false)
	m.client = paho.NewClient(opts)
	m.await(m.client.Connect())
	m.await(m.client.Subscribe(topics.Prefix()+"/control/proplet/#", 1, m.record))
	t.Cleanup(func() { m.client.Disconnect(0) })
	return m
}

func (m *manager) await(tok paho.Token) {
	m.t.Helper()
	if !tok.WaitTimeout(wait) {
		m.t.Fatal("mqtt: no answer")
	}
	if err := tok.Error(); err != nil {
		m.t.Fatal(err)
	}
}

func (m *manager) record(_ paho.Client, msg paho.Message) {
	suffix, _ := topics.Suffix(msg.Topic())
	shared, device := wire.SplitOwn(suffix)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, message{suffix: shared, device: device, payload: msg.Payload(), qos: msg.Qos()})
}

func (m *manager) publish(suffix string, v any) {
	m.t.Helper()
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			m.t.Fatal(err)
		}
	}
	m.await(m.client.Publish(topics.Topic(suffix), 1, false, b))
}

func (m *manager) start(req wire.StartRequest) { m.t.Helper(); m.publish(wire.SuffixStart, req) }

// startOn publishes a start on device's own topic.
func (m *manager) startOn(device string, req wire.StartRequest) {
	m.t.Helper()
	m.publish(wire.OwnTopic(wire.SuffixStart, device), req)
}

// senders returns the devices whose own topics carried messages of a
// suffix, in order ("" for the shared topic).
func (m *manager) senders(suffix string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, msg := range m.msgs {
		if msg.suffix == suffix {
			out = append(out, msg.device)
		}
	}
	return out
}

func (m *manager) stop(id string) {
	m.t.Helper()
	m.publish(wire.SuffixStop, wire.StopRequest{ID: id})
}

// received returns the payloads seen on a topic suffix, in order.
func (m *manager) received(suffix string) [][]byte {
	var out [][]byte
	for _, msg := range m.on(suffix) {
		out = append(out, msg.payload)
	}
	return out
}

// qosOf returns the QoS at which each message on a topic suffix was
// delivered, in order.
func (m *manager) qosOf(suffix string) []byte {
	var out []byte
	for _, msg := range m.on(suffix) {
		out = append(out, msg.qos)
	}
	return out
}

// on returns the messages seen on a topic suffix, in order.
func (m *manager) on(suffix string) []message {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []message
	for _, msg := range m.msgs {
		if msg.suffix == suffix {
			out = append(out, msg)
		}
	}
	return out
}

// results returns the results for a task, decoded, with their raw JSON.
func (m *manager) results(taskID string) ([]wire.Result, []string) {
	var rs []wire.Result
	var raws []string
	for _, b := range m.received(wire.SuffixResults) {
		r, err := wire.DecodeResult(b)
		if err != nil {
			m.t.Errorf("result %s: %v", b, err)
			continue
		}
		if r.TaskID == taskID {
			rs, raws = append(rs, r), append(raws, string(b))
		}
	}
	return rs, raws
}

// waitResult waits for the first result of a task.
func (m *manager) waitResult(taskID string) (wire.Result, string) {
	m.t.Helper()
	var r wire.Result
	var raw string
	natstest.CheckFor(m.t, wait, func() error {
		rs, raws := m.results(taskID)
		if len(rs) == 0 {
			return fmt.Errorf("no result for %s", taskID)
		}
		r, raw = rs[0], raws[0]
		return nil
	})
	return r, raw
}

// waitAlive waits until n alive messages with status match.
func (m *manager) waitAlive(status string, n int) []wire.Alive {
	m.t.Helper()
	var got []wire.Alive
	natstest.CheckFor(m.t, wait, func() error {
		got = got[:0]
		for _, b := range m.received(wire.SuffixAlive) {
			if a, err := wire.DecodeAlive(b); err == nil && a.Status == status {
				got = append(got, a)
			}
		}
		if len(got) < n {
			return fmt.Errorf("%d %q alive messages, want %d", len(got), status, n)
		}
		return nil
	})
	return got
}

func (m *manager) waitDiscoveries(n int) {
	m.t.Helper()
	natstest.CheckFor(m.t, wait, func() error {
		if got := len(m.received(wire.SuffixCreate)); got < n {
			return fmt.Errorf("%d discoveries, want %d", got, n)
		}
		return nil
	})
}

// testConfig is a proplet that speaks Propeller's shared topics, as the
// manager of these tests does (Propeller's manager); own-topic behaviour is
// tested with ownConfig.
func testConfig(t testing.TB, s *natsserver.Server) proplet.Config {
	return proplet.Config{
		SharedTopics: true,
		MQTTAddress:  s.MQTTURL(),
		Tenant:       topics.Tenant,
		Channel:      topics.Channel,
		EntityID:     "proplet-1",
		Namespace:    "edge",
		DataDir:      t.TempDir(),
		QoS:          1,
		Liveliness:   100 * time.Millisecond,
		// No registry answers in most tests: give up after 0.1+0.2+0.4 s.
		ChunkTimeout: 100 * time.Millisecond,
		ChunkRetries: 2,
	}
}

// running is a proplet whose Run goroutine the test owns.
type running struct {
	*proplet.Proplet
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned, with its error in err
	err    error
	log    *testWriter
}

// waitLog waits for a log line of the proplet containing every one of parts.
func (r *running) waitLog(t testing.TB, parts ...string) {
	t.Helper()
	natstest.CheckFor(t, wait, func() error {
		if !r.log.logged(parts) {
			return fmt.Errorf("the proplet did not log %q", parts)
		}
		return nil
	})
}

// stop cancels Run and waits for it to return.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
}

// startProplet runs a proplet until the test ends and waits for it to
// subscribe (its first discovery reaches m).
func startProplet(t testing.TB, cfg proplet.Config, m *manager) *running {
	t.Helper()
	before := len(m.received(wire.SuffixCreate))
	r := launch(t, cfg)
	m.waitDiscoveries(before + 1)
	return r
}

func launch(t testing.TB, cfg proplet.Config) *running {
	t.Helper()
	log, w := newTestLogger(t)
	p, err := proplet.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Proplet: p, cancel: cancel, done: make(chan struct{}), log: w}
	go func() {
		defer close(r.done)
		r.err = p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(time.Minute):
			var dump strings.Builder
			pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Errorf("proplet %s: Run did not return a minute after its context ended; goroutines:\n%s", p.ID(), dump.String())
		}
	})
	return r
}

// startProxy forwards TCP to the broker; it can cut every connection at
// once, the way a network failure or a killed process would, and refuse
// new ones (SetDown).
func startProxy(t testing.TB, target string) *tcpproxy.Proxy {
	return tcpproxy.Start(t, target, tcpproxy.Copy, tcpproxy.Copy)
}

// testLogger logs to t.Log until the test ends, then drops late lines.
func testLogger(t testing.TB) *slog.Logger {
	log, _ := newTestLogger(t)
	return log
}

// newTestLogger is testLogger with the writer, which keeps the lines.
func newTestLogger(t testing.TB) (*slog.Logger, *testWriter) {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), w
}

type testWriter struct {
	mu    sync.Mutex
	t     testing.TB
	done  bool
	lines []string
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	line := strings.TrimSuffix(string(b), "\n")
	w.lines = append(w.lines, line)
	if !w.done {
		w.t.Log(line)
	}
	return len(b), nil
}

// logged reports whether a line contains every one of parts.
func (w *testWriter) logged(parts []string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return hasLine(w.lines, parts)
}

// hasLine reports whether one of lines contains every one of parts.
func hasLine(lines, parts []string) bool {
	return slices.ContainsFunc(lines, func(l string) bool {
		return !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) })
	})
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// waitGone waits until the broker has no connection for an MQTT client id.
func waitGone(t testing.TB, s *server.Server, clientID string) {
	t.Helper()
	natstest.CheckFor(t, wait, func() error {
		cz, err := s.Connz(&server.ConnzOptions{MQTTClient: clientID})
		if err != nil {
			return err
		}
		if len(cz.Conns) > 0 {
			return fmt.Errorf("%s still connected", clientID)
		}
		return nil
	})
}

// startBroker runs a bare nats-server whose MQTT listener redelivers an
// unacknowledged message after ackWait (natstest keeps the default 30 s),
// and returns it with its MQTT URL.
func startBroker(t testing.TB, ackWait time.Duration) (*server.Server, string) {
	t.Helper()
	opts := &server.Options{
		ServerName: "proplet-test", Host: "127.0.0.1", Port: -1, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(), JetStreamMaxStore: 1 << 30, JetStreamMaxMemory: 64 << 20,
		MQTT: server.MQTTOpts{Host: "127.0.0.1", Port: -1, AckWait: ackWait},
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(wait) {
		t.Fatal("nats-server not ready")
	}
	return s, fmt.Sprintf("tcp://127.0.0.1:%d", opts.MQTT.Port)
}

// contains reports whether a line holds s.
func (w *testWriter) contains(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.ContainsFunc(w.lines, func(l string) bool { return strings.Contains(l, s) })
}

// ownConfig is testConfig on the proplet's own topics, where jetprop's
// engine talks to it: commands at QoS 0, starts answered with accepts.
func ownConfig(t testing.TB, s *natsserver.Server) proplet.Config {
	cfg := testConfig(t, s)
	cfg.SharedTopics = false
	return cfg
}

// startOwn publishes a start on the proplet's own topic, as the engine
// does, with its proplet_id set.
func (m *manager) startOwn(device string, req wire.StartRequest) {
	m.t.Helper()
	req.PropletID = device
	m.startOn(device, req)
}

// stopOwn publishes a stop on the proplet's own topic.
func (m *manager) stopOwn(device, id string) {
	m.t.Helper()
	m.publish(wire.OwnTopic(wire.SuffixStop, device), wire.StopRequest{ID: id, PropletID: device})
}

// waitResults waits for n results of a task.
func (m *manager) waitResults(taskID string, n int) []wire.Result {
	m.t.Helper()
	var rs []wire.Result
	natstest.CheckFor(m.t, wait, func() error {
		if rs, _ = m.results(taskID); len(rs) < n {
			return fmt.Errorf("%d results of %s, want %d", len(rs), taskID, n)
		}
		return nil
	})
	return rs
}

// marker runs a quick task on the proplet's own topic and waits for its
// result: commands reach the proplet in order on its one subscription, so
// anything sent before has been handled.
func (m *manager) marker(device, id string) {
	m.t.Helper()
	m.startOwn(device, wire.StartRequest{ID: id, Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}, Attempt: 1})
	m.waitResult(id)
}

// runs counts the times a proplet started a task (its "task started" log
// lines).
func (r *running) runs(taskID string) int {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	n := 0
	for _, l := range r.log.lines {
		if strings.Contains(l, `msg="task started"`) && strings.Contains(l, "task_id="+taskID+" ") {
			n++
		}
	}
	return n
}

func waitRunning(t testing.TB, p *running, taskID string) {
	t.Helper()
	natstest.CheckFor(t, wait, func() error {
		if !slices.Contains(p.Running(), taskID) {
			return fmt.Errorf("%s not running (running %v)", taskID, p.Running())
		}
		return nil
	})
}
