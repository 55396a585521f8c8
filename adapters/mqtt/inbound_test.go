package mqtt_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

var edgeTopics = wire.Topics{Tenant: "t1", Channel: "c1"}

// heartbeatAt is the inbound rigs' clock.
var heartbeatAt = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// inboundRig is an Inbound on fakes of JetStream, the engine and liveness.
type inboundRig struct {
	in   *mqtt.Inbound
	js   *fakeJetStream
	cmds *fakeCommands
	rec  *recorder
}

// newInboundRig makes the rig; hook, when not nil, gets the module
// requests.
func newInboundRig(t *testing.T, hook func(context.Context, wire.ModuleRequest) error) *inboundRig {
	t.Helper()
	rec := newRecorder()
	r := &inboundRig{js: newFakeJetStream(), cmds: &fakeCommands{rec: rec}, rec: rec}
	r.in = newInbound(t, r.js, mqtt.InboundPorts{Commands: r.cmds, Seer: fakeSeer{rec}, ModuleRequests: hook}, mqtt.InboundConfig{})
	return r
}

// newInbound makes an Inbound of edgeTopics on js with the other ports and
// cfg given.
func newInbound(t *testing.T, js *fakeJetStream, ports mqtt.InboundPorts, cfg mqtt.InboundConfig) *mqtt.Inbound {
	t.Helper()
	ports.JetStream = js
	cfg.Topics, cfg.Replicas = edgeTopics, 1
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return heartbeatAt }
	}
	in, err := mqtt.NewInbound(context.Background(), ports, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func (r *inboundRig) calls() []any {
	calls, _ := r.rec.snapshot()
	return calls
}

const discovery = `{"proplet_id":"p1","namespace":"ns","metadata":{
	"description":"rack 4","tags":["edge","arm"],"location":"lab","ip":"10.0.0.7",
	"environment":"prod","os":"linux","hostname":"pi4","cpu_arch":"arm64",
	"total_memory_bytes":"4096","proplet_version":"0.3.1","wasm_runtime":"wazero"}}`

var announced = engine.Announce{ID: "p1", Namespace: "ns", Metadata: domain.DeviceMetadata{
	Description: "rack 4", Tags: []string{"edge", "arm"}, Location: "lab", IP: "10.0.0.7",
	Environment: "prod", OS: "linux", Hostname: "pi4", CPUArch: "arm64",
	TotalMemoryBytes: 4096, PropletVersion: "0.3.1", WasmRuntime: "wazero",
}}

func TestInbound_Handle(t *testing.T) {
	errRefused := errors.New("refused by the engine")
	tests := []struct {
		name    string
		topic   string // a suffix of edgeTopics, or a whole topic when it starts with "m/"
		payload string
		cmdErr  error // what the engine answers
		want    []any
		wantErr error
	}{{
		name: "discovery announces with its metadata", topic: wire.SuffixCreate, payload: discovery,
		want: []any{announced, seen{"p1"}},
	}, {
		name: "discovery on the device's own topic, with accepts", topic: "control/proplet/p1/create",
		payload: `{"proplet_id":"p1","metadata":{},"accepts":true}`,
		want:    []any{engine.Announce{ID: "p1", OwnTopics: true, Accepts: true}, seen{"p1"}},
	}, {
		name: "discovery the engine refuses: not seen", topic: wire.SuffixCreate, payload: discovery,
		cmdErr: errRefused, want: []any{announced}, wantErr: errRefused,
	}, {
		name: "heartbeat", topic: wire.SuffixAlive, payload: `{"proplet_id":"p1","status":"alive","namespace":"ns"}`,
		want: []any{engine.Heartbeat{ID: "p1", Namespace: "ns", At: heartbeatAt}, seen{"p1"}},
	}, {
		name: "heartbeat of a proplet that cannot receive", topic: wire.SuffixAlive,
		payload: `{"proplet_id":"p1","status":"unreachable","reason":"subscription refused"}`,
		want:    []any{engine.Heartbeat{ID: "p1"}, engine.MarkUnreachable{ID: "p1", Reason: "the proplet says it cannot receive: subscription refused"}, seen{"p1"}},
	}, {
		name: "unreachable without a reason", topic: wire.SuffixAlive, payload: `{"proplet_id":"p1","status":"unreachable"}`, wantErr: wire.ErrInvalid,
	}, {
		name: "accept on the device's own topic", topic: "control/proplet/p1/accepted",
		payload: `{"task_id":"t1","attempt":2,"proplet_id":"p1"}`,
		want:    []any{engine.MarkReachable{ID: "p1"}, engine.MarkStarted{ID: "t1", Attempt: 2, Device: "p1"}},
	}, {
		name: "accept naming another device", topic: "control/proplet/p1/accepted",
		payload: `{"task_id":"t1","attempt":2,"proplet_id":"p2"}`, wantErr: wire.ErrInvalid,
	}, {
		name: "accept without an attempt", topic: "control/proplet/p1/accepted",
		payload: `{"task_id":"t1","proplet_id":"p1"}`, wantErr: wire.ErrInvalid,
	}, {
		name: "accept on the shared topic is ignored", topic: wire.SuffixAccepted,
		payload: `{"task_id":"t1","attempt":2,"proplet_id":"p1"}`, wantErr: mqtt.ErrIgnored,
	}, {
		name: "heartbeat the engine refuses: not seen", topic: wire.SuffixAlive, payload: `{"proplet_id":"p1","status":"alive"}`,
		cmdErr: errRefused, want: []any{engine.Heartbeat{ID: "p1", At: heartbeatAt}}, wantErr: errRefused,
	}, {
		name: "last will marks the device offline", topic: wire.SuffixAlive, payload: `{"proplet_id":"p1","status":"offline"}`,
		want: []any{gone{"p1"}, engine.MarkOffline{ID: "p1", Reason: "last will: connection lost", LastWill: true}},
	}, {
		name: "result", topic: wire.SuffixResults,
		payload: `{"task_id":"t1","proplet_id":"p1","results":{"sum":7},"attempt":2}`,
		want:    []any{engine.RecordResult{ID: "t1", Device: "p1", Attempt: 2, Result: json.RawMessage(`{"sum":7}`)}},
	}, {
		name: "failed result of a Propeller proplet (no attempt)", topic: wire.SuffixResults,
		payload: `{"task_id":"t1","proplet_id":"p1","results":null,"error":"trap: unreachable"}`,
		want:    []any{engine.RecordResult{ID: "t1", Device: "p1", Result: json.RawMessage(`null`), Error: "trap: unreachable"}},
	}, {
		name: "result for a task the engine does not know", topic: wire.SuffixResults,
		payload: `{"task_id":"t9","proplet_id":"p1","results":1}`, cmdErr: domain.ErrNotFound,
		want:    []any{engine.RecordResult{ID: "t9", Device: "p1", Result: json.RawMessage(`1`)}},
		wantErr: domain.ErrNotFound,
	}, {
		name: "task metrics are decoded and dropped", topic: wire.SuffixTaskMetrics,
		payload: `{"task_id":"t1","proplet_id":"p1","metrics":{"cpu_percent":3.5},"timestamp":"2026-01-02T03:04:05Z"}`,
	}, {
		name: "proplet metrics are decoded and dropped", topic: wire.SuffixMetrics,
		payload: `{"proplet_id":"p1","metrics":{"memory_bytes":1024},"timestamp":1767323045}`,
	}, {
		name: "malformed discovery", topic: wire.SuffixCreate, payload: `{"proplet_id":`, wantErr: wire.ErrInvalid,
	}, {
		name: "discovery without proplet id", topic: wire.SuffixCreate, payload: `{"metadata":{}}`, wantErr: wire.ErrInvalid,
	}, {
		name: "malformed heartbeat", topic: wire.SuffixAlive, payload: `not json`, wantErr: wire.ErrInvalid,
	}, {
		name: "heartbeat of an unknown status", topic: wire.SuffixAlive, payload: `{"proplet_id":"p1","status":"asleep"}`, wantErr: wire.ErrInvalid,
	}, {
		name: "malformed result", topic: wire.SuffixResults, payload: `[1,2]`, wantErr: wire.ErrInvalid,
	}, {
		name: "result without task id", topic: wire.SuffixResults, payload: `{"proplet_id":"p1"}`, wantErr: wire.ErrInvalid,
	}, {
		name: "malformed task metrics", topic: wire.SuffixTaskMetrics, payload: `{`, wantErr: wire.ErrInvalid,
	}, {
		name: "malformed proplet metrics", topic: wire.SuffixMetrics, payload: `"x"`, wantErr: wire.ErrInvalid,
	}, {
		name: "malformed registry request", topic: wire.SuffixModuleRequest, payload: `{`, wantErr: wire.ErrInvalid,
	}, {
		name: "topic of another tenant", topic: "m/t2/c/c1/" + wire.SuffixAlive,
		payload: `{"proplet_id":"p1","status":"alive"}`, wantErr: wire.ErrBadTopic,
	}, {
		name: "topic of another channel", topic: "m/t1/c/c2/" + wire.SuffixResults,
		payload: `{"task_id":"t1","proplet_id":"p1"}`, wantErr: wire.ErrBadTopic,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newInboundRig(t, nil)
			rig.cmds.err = tt.cmdErr
			topic := tt.topic
			if topic[:2] != "m/" {
				topic = edgeTopics.Topic(topic)
			}
			err := rig.in.Handle(context.Background(), topic, []byte(tt.payload))
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("Handle = %v, want %v", err, tt.wantErr)
			}
			checkCalls(t, rig.calls(), tt.want)
		})
	}
}

func TestInbound_HandleModuleRequests(t *testing.T) {
	errBusy := errors.New("chunk server busy")
	full := `{"app_name":"sha256:abc","proplet_id":"p1","task_id":"t1","chunks":[2,5]}`
	tests := []struct {
		name    string
		hook    bool  // a hook is set
		hookErr error // what it answers
		payload string
		want    []any
		wantErr error
		anyErr  bool // some error the test cannot name (the request is ignored)
	}{{
		name: "request goes to the hook", hook: true, payload: full,
		want: []any{wire.ModuleRequest{AppName: "sha256:abc", PropletID: "p1", TaskID: "t1", Chunks: []int{2, 5}}},
	}, {
		name: "Propeller's request: app name only", hook: true, payload: `{"app_name":"demo:1"}`,
		want: []any{wire.ModuleRequest{AppName: "demo:1"}},
	}, {
		name: "the hook's error is returned", hook: true, hookErr: errBusy, payload: full,
		want:    []any{wire.ModuleRequest{AppName: "sha256:abc", PropletID: "p1", TaskID: "t1", Chunks: []int{2, 5}}},
		wantErr: errBusy,
	}, {
		name: "request without app name never reaches the hook", hook: true, payload: `{"proplet_id":"p1"}`,
		wantErr: wire.ErrInvalid,
	}, {
		name: "request for a negative chunk never reaches the hook", hook: true, payload: `{"app_name":"a","chunks":[-1]}`,
		wantErr: wire.ErrInvalid,
	}, {
		name: "no hook: ignored", payload: full, anyErr: true,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rig *inboundRig
			var hook func(context.Context, wire.ModuleRequest) error
			if tt.hook {
				hook = func(_ context.Context, req wire.ModuleRequest) error {
					rig.rec.add(req)
					return tt.hookErr
				}
			}
			rig = newInboundRig(t, hook)
			err := rig.in.Handle(context.Background(), edgeTopics.Topic(wire.SuffixModuleRequest), []byte(tt.payload))
			switch {
			case tt.anyErr:
				if err == nil {
					t.Fatal("Handle = nil, want an error")
				}
			case !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil):
				t.Fatalf("Handle = %v, want %v", err, tt.wantErr)
			}
			checkCalls(t, rig.calls(), tt.want)
		})
	}
}

// runInbound runs rig.in until the test ends and returns a handler that
// delivers a message as the server would, to both consumers: the message
// to the one that records it (the liveness consumer for create and alive,
// else the work consumer), and a twin to the other, which must ack it
// unread at once.
func runInbound(t *testing.T, rig *inboundRig) jetstream.MessageHandler {
	t.Helper()
	byName := startInbound(t, rig)
	return func(m jetstream.Msg) {
		mine, other := byName[mqtt.EdgeConsumer], byName[mqtt.EdgeLivenessConsumer]
		if isLiveness(m.Subject()) {
			mine, other = other, mine
		}
		fm := m.(*fakeMsg)
		twin := &fakeMsg{subject: fm.subject, data: fm.data, seq: fm.seq, done: make(chan struct{})}
		other.handle(twin)
		if got := twin.outcome(); !slices.Equal(got, []string{"ack"}) {
			t.Errorf("consumer %s settled message %d on %s %q, want one ack, at once", other.consumer, fm.seq, fm.subject, got)
		}
		mine.handle(m)
	}
}

// isLiveness reports whether subject is a create or alive topic of edgeTopics.
func isLiveness(subject string) bool {
	suffix, err := edgeTopics.Suffix(wire.Topic(subject))
	if err != nil {
		return false
	}
	shared, _ := wire.SplitOwn(suffix)
	return shared == wire.SuffixAlive || shared == wire.SuffixCreate
}

// startInbound runs rig.in until the test ends and returns the handlers
// Run gave its consumers, by consumer.
func startInbound(t *testing.T, rig *inboundRig) map[string]namedHandler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	var runErr error
	go func() { defer close(ended); runErr = rig.in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ended
		if runErr != nil {
			t.Errorf("Run after cancel: %v", runErr)
		}
	})
	byName := map[string]namedHandler{}
	for len(byName) < 2 {
		select {
		case h := <-rig.js.handlers:
			byName[h.consumer] = h
		case <-ended:
			t.Fatalf("Run ended before consuming: %v", runErr)
		case <-time.After(waitTimeout):
			t.Fatal("Run did not consume")
		}
	}
	return byName
}

func TestInbound_RunSettlesEachMessage(t *testing.T) {
	alive := `{"proplet_id":"p1","status":"alive"}`
	result := `{"task_id":"t1","proplet_id":"p1","results":1,"attempt":1}`
	ack, retry := []string{"ack"}, []string{"nak 1s"}
	tests := []struct {
		name    string
		topic   string
		payload string
		cmdErr  error
		want    []string      // how the message was settled
		stats   mqtt.Snapshot // besides Received: 1
	}{
		{"recorded", edgeTopics.Topic(wire.SuffixAlive), alive, nil, ack, mqtt.Snapshot{Recorded: 1}},
		{"metrics are recorded as nothing", edgeTopics.Topic(wire.SuffixMetrics), `{"proplet_id":"p1"}`, nil, ack, mqtt.Snapshot{Recorded: 1}},
		{"malformed JSON is dropped", edgeTopics.Topic(wire.SuffixResults), `{"task_id"`, nil, ack, mqtt.Snapshot{Malformed: 1}},
		{"missing field is dropped", edgeTopics.Topic(wire.SuffixResults), `{}`, nil, ack, mqtt.Snapshot{Malformed: 1}},
		{"another tenant's topic is dropped", "m/t2/c/c1/" + wire.SuffixAlive, alive, nil, ack, mqtt.Snapshot{Malformed: 1}},
		{"a command the engine finds invalid is dropped", edgeTopics.Topic(wire.SuffixResults), result, domain.ErrInvalid, ack, mqtt.Snapshot{Malformed: 1}},
		{"result for an unknown task is ignored", edgeTopics.Topic(wire.SuffixResults), result, domain.ErrNotFound, ack, ignoredFor(mqtt.IgnoredCounts{Unknown: 1})},
		{"result for an older attempt is ignored", edgeTopics.Topic(wire.SuffixResults), result, domain.ErrStale, ack, ignoredFor(mqtt.IgnoredCounts{Stale: 1})},
		{"result for a quarantined task is ignored", edgeTopics.Topic(wire.SuffixResults), result, domain.ErrQuarantined, ack, ignoredFor(mqtt.IgnoredCounts{Quarantined: 1})},
		{"heartbeat of a quarantined device is ignored", edgeTopics.Topic(wire.SuffixAlive), alive, domain.ErrQuarantined, ack, ignoredFor(mqtt.IgnoredCounts{Quarantined: 1})},
		{"heartbeat of a revoked device is ignored", edgeTopics.Topic(wire.SuffixAlive), alive, domain.ErrInvalidState, ack, ignoredFor(mqtt.IgnoredCounts{Revoked: 1})},
		{"topic nobody handles is ignored", edgeTopics.Topic("control/proplet/unknown"), `{}`, nil, ack, ignoredFor(mqtt.IgnoredCounts{Unhandled: 1})},
		{"invoke answers are checked, answered elsewhere", edgeTopics.Topic(wire.SuffixInvokeResults), `{"task_id":"t1","invocation_id":"i1","results":"1","error":null}`, nil, ack, mqtt.Snapshot{Recorded: 1}},
		{"invoke answer without invocation id is dropped", edgeTopics.Topic(wire.SuffixInvokeResults), `{}`, nil, ack, mqtt.Snapshot{Malformed: 1}},
		{"module request without a hook is ignored", edgeTopics.Topic(wire.SuffixModuleRequest), `{"app_name":"a"}`, nil, ack, ignoredFor(mqtt.IgnoredCounts{Unhandled: 1})},
		{"engine unavailable: redelivered later", edgeTopics.Topic(wire.SuffixResults), result, errTransient, retry, mqtt.Snapshot{Retried: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newInboundRig(t, nil)
			rig.cmds.err = tt.cmdErr
			handle := runInbound(t, rig)
			msg := newFakeMsg(tt.topic, tt.payload, 42)
			handle(msg)
			msg.waitSettled(t)
			if got := msg.outcome(); !slices.Equal(got, tt.want) {
				t.Errorf("message settled %q, want %q", got, tt.want)
			}
			want := tt.stats
			want.Received = 1
			if got := rig.in.Stats(); got != want {
				t.Errorf("stats %+v, want %+v", got, want)
			}
		})
	}
}

// ignoredFor is the stats of one message ignored for the reason by counts.
func ignoredFor(by mqtt.IgnoredCounts) mqtt.Snapshot {
	return mqtt.Snapshot{Ignored: 1, IgnoredBy: by}
}

func TestInbound_SetsUpEdgeStream(t *testing.T) {
	rig := newInboundRig(t, nil)
	if want := mqtt.EdgeStreamConfig(edgeTopics, 1); !reflect.DeepEqual(rig.js.stream, want) {
		t.Errorf("stream %+v, want %+v", rig.js.stream, want)
	}
	runInbound(t, rig)
	for _, name := range []string{mqtt.EdgeConsumer, mqtt.EdgeLivenessConsumer} {
		c := rig.js.consumer(name)
		if c.Durable != name || c.AckPolicy != jetstream.AckExplicitPolicy || c.DeliverPolicy != jetstream.DeliverAllPolicy ||
			c.AckWait != mqtt.EdgeAckWait || c.MaxAckPending != mqtt.DefaultEdgeMaxAckPending || c.FilterSubject != "" || len(c.FilterSubjects) != 0 {
			t.Errorf("consumer %+v: want durable %q, explicit acks, from the start, ack wait %s, max ack pending %d, every subject",
				c, name, mqtt.EdgeAckWait, mqtt.DefaultEdgeMaxAckPending)
		}
	}
	// Messages a crashed engine fetched but never acked come back at once:
	// each consumer is reset to its ack floor before consuming.
	want := []string{"stream EDGE_IN",
		"consumer EDGE_IN/engine", "reset EDGE_IN/engine",
		"lookup EDGE_IN/engine-liveness", "consumer EDGE_IN/engine-liveness", "reset EDGE_IN/engine-liveness",
		"consume engine", "consume engine-liveness"}
	rig.js.mu.Lock()
	steps := slices.Clone(rig.js.steps)
	rig.js.mu.Unlock()
	if !slices.Equal(steps, want) {
		t.Errorf("steps %q, want %q", steps, want)
	}
}

func TestInbound_SetupErrors(t *testing.T) {
	errJS := errors.New("jetstream not enabled")
	t.Run("stream", func(t *testing.T) {
		js := newFakeJetStream()
		js.streamErr = errJS
		ports := mqtt.InboundPorts{JetStream: js, Commands: &fakeCommands{}, Seer: fakeSeer{}}
		_, err := mqtt.NewInbound(context.Background(), ports, mqtt.InboundConfig{Topics: edgeTopics, Replicas: 1}, slog.New(slog.DiscardHandler))
		if !errors.Is(err, errJS) {
			t.Fatalf("NewInbound = %v, want %v", err, errJS)
		}
	})
	tests := []struct {
		name string
		set  func(*fakeJetStream)
	}{
		{"consumer", func(js *fakeJetStream) { js.consumerErr = errJS }},
		{"lookup", func(js *fakeJetStream) { js.lookupErr = errJS }},
		{"reset", func(js *fakeJetStream) { js.resetErr = errJS }},
		{"consume", func(js *fakeJetStream) { js.consumeErr = errJS }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newInboundRig(t, nil)
			tt.set(rig.js)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := rig.in.Run(ctx); !errors.Is(err, errJS) {
				t.Fatalf("Run = %v, want %v", err, errJS)
			}
		})
	}
}
