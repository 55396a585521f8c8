package mqtt_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// dispatchRig runs a Dispatcher on an in-memory event store with fakes of
// its other ports. It has one worker, so jobs are dispatched in the order
// they were routed and settle can use a barrier.
type dispatchRig struct {
	store    *events.Memory
	tasks    *fakeTasks
	send     *fakeSender
	cmds     *fakeCommands
	modules  *fakeModules
	rec      *recorder
	cfg      mqtt.DispatcherConfig
	resolver outbound.ModuleResolver
	devices  mqtt.DeviceReader
	secrets  mqtt.SecretResolver // nil: none
	held     mqtt.Quarantine     // nil: none
	replacer mqtt.Replacer       // nil: the send starts an attempt
	handled  mqtt.Handled        // nil: replaced at the accept timeout
	shares   mqtt.Shares         // nil: every task is this replica's
	ids      int
	d        *mqtt.Dispatcher // the one run started
}

// Modules the rig's module source holds, around its inline limit.
var (
	smallModule = []byte("\x00asm\x01\x00\x00\x00")                     // 8 bytes
	limitModule = append(slices.Clone(smallModule), make([]byte, 8)...) // 16 bytes: the inline limit
	largeModule = append(slices.Clone(limitModule), 0)                  // 17 bytes
)

const rigInlineLimit = 16

func newDispatchRig() *dispatchRig {
	rec := newRecorder()
	return &dispatchRig{
		store: events.NewMemory(), tasks: newFakeTasks(), rec: rec,
		send: &fakeSender{rec: rec}, cmds: &fakeCommands{rec: rec},
		modules: &fakeModules{rec: rec, mods: map[string][]byte{
			"sha256:small": smallModule, "sha256:limit": limitModule, "sha256:large": largeModule,
		}},
		cfg: mqtt.DispatcherConfig{Workers: 1, InlineLimit: rigInlineLimit, Retry: time.Millisecond},
	}
}

func (r *dispatchRig) dispatcher() *mqtt.Dispatcher {
	ports := mqtt.DispatcherPorts{Store: r.store, Codec: events.DefaultCodec(), Tasks: r.tasks, Commands: r.cmds,
		Modules: r.modules, Sender: r.send, Resolver: r.resolver, Devices: r.devices, Secrets: r.secrets, Quarantine: r.held,
		Replacer: r.replacer, Handled: r.handled, Shares: r.shares}
	return mqtt.NewDispatcher(ports, r.cfg, slog.New(slog.DiscardHandler))
}

// run starts the dispatcher following the store from `from` and returns once
// it has read the tasks left scheduled (with shares: at once); cleanup
// stops it and checks that Run ended without error.
func (r *dispatchRig) run(t *testing.T, from uint64) {
	t.Helper()
	d := r.dispatcher()
	r.d = d
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	var runErr error
	go func() { defer close(ended); runErr = d.Run(ctx, from) }()
	t.Cleanup(func() {
		cancel()
		<-ended
		if runErr != nil {
			t.Errorf("Run after cancel: %v", runErr)
		}
	})
	if r.shares != nil {
		return // the tasks left scheduled are read when the share grows
	}
	select {
	case <-r.tasks.active:
	case <-ended:
		t.Fatalf("Run ended before reading the read model: %v", runErr)
	case <-time.After(waitTimeout):
		t.Fatal("Run did not read the tasks left scheduled")
	}
}

// append stores ev as the next event of task id and returns its sequence.
func (r *dispatchRig) append(t *testing.T, id string, ev events.Event) uint64 {
	t.Helper()
	ctx := context.Background()
	agg := events.TaskAggregate(id)
	last, err := r.store.Version(ctx, agg)
	if err != nil {
		t.Fatal(err)
	}
	r.ids++
	env, err := events.Wrap(agg, fmt.Sprintf("ev-%d", r.ids), events.Meta{Time: time.Unix(1, 0)}, ev)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := r.store.Append(ctx, agg, last, env)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// settle stops a barrier task and waits for its stop message. With one
// worker every job routed before it is done by then: settle returns the
// calls those jobs made.
func (r *dispatchRig) settle(t *testing.T) []any {
	t.Helper()
	id := fmt.Sprintf("barrier-%d", r.ids)
	r.append(t, id, events.TaskStopped{Device: "barrier"})
	stop := wire.StopRequest{ID: id, PropletID: "barrier"}
	calls := r.rec.waitFor(t, "the barrier's stop message", func(calls []any) bool {
		return slices.ContainsFunc(calls, func(c any) bool { return reflect.DeepEqual(c, stop) })
	})
	i := slices.IndexFunc(calls, func(c any) bool { return reflect.DeepEqual(c, stop) })
	if i != len(calls)-1 {
		t.Fatalf("calls after the barrier:\n%s", formatCalls(calls))
	}
	return calls[:i]
}

// schedule records task.scheduled for the task's device and attempt, then
// shows the task in the read model at that sequence, as the projection would.
func (r *dispatchRig) schedule(t *testing.T, task engine.Task) uint64 {
	t.Helper()
	task.Seq = r.append(t, task.ID, events.TaskScheduled{Device: task.Device, Attempt: task.Attempt})
	r.tasks.put(task)
	return task.Seq
}

func checkCalls(t *testing.T, got, want []any) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("calls:\n%swant:\n%s", formatCalls(got), formatCalls(want))
	}
}

// fullTask is a task with every field the start message carries, scheduled
// on p1 for its second attempt; fullStart is the message for it before the
// module is settled.
func fullTask() engine.Task {
	return engine.Task{
		ID: "t1", State: engine.TaskScheduled, Device: "p1", Attempt: 2,
		TaskCreated: events.TaskCreated{
			Name: "compute", Inputs: []string{"3", "4"}, Env: map[string]string{"MODE": "fast"},
			CLIArgs: []string{"--invoke", "compute"}, Daemon: true, TimeoutMS: 1500, MemoryMiB: 64,
			Stdin: []byte("stdin"),
			ParentResults: map[string]json.RawMessage{
				"b": json.RawMessage(`"x"`), "a": json.RawMessage(`7`),
			},
		},
	}
}

func fullStart() wire.StartRequest {
	return wire.StartRequest{
		ID: "t1", Name: "compute", State: 1, // Propeller's Scheduled
		Inputs: wire.Strings{"3", "4"}, CLIArgs: []string{"--invoke", "compute"},
		Env: map[string]string{"MODE": "fast"}, Daemon: true, PropletID: "p1",
		ParentResults: json.RawMessage(`{"a":7,"b":"x"}`),
		Attempt:       2, TimeoutMS: 1500, MemoryMiB: 64, Stdin: []byte("stdin"),
	}
}

func TestDispatcher_StartRequest(t *testing.T) {
	tests := []struct {
		name     string
		limit    int64                   // InlineLimit; 0: none
		resolver outbound.ModuleResolver // nil: images go to the proplet as they are
		task     func(*engine.Task)
		want     func(*wire.StartRequest)
	}{{
		name: "module within the inline limit goes in the message", limit: rigInlineLimit,
		task: func(t *engine.Task) { t.Module, t.ModuleSize, t.ImageURL = "sha256:small", 8, "demo:1" },
		want: func(r *wire.StartRequest) { r.File, r.Digest, r.Size = smallModule, "sha256:small", 8 },
	}, {
		name: "module of exactly the inline limit goes in the message", limit: rigInlineLimit,
		task: func(t *engine.Task) { t.Module, t.ModuleSize = "sha256:limit", 16 },
		want: func(r *wire.StartRequest) { r.File, r.Digest, r.Size = limitModule, "sha256:limit", 16 },
	}, {
		name: "module over the inline limit goes by digest", limit: rigInlineLimit,
		task: func(t *engine.Task) { t.Module, t.ModuleSize, t.ImageURL = "sha256:large", 17, "demo:2" },
		want: func(r *wire.StartRequest) { r.ImageURL, r.Digest, r.Size = "sha256:large", "sha256:large", 17 },
	}, {
		name: "no inline limit: every module goes in the message", limit: 0,
		task: func(t *engine.Task) { t.Module, t.ModuleSize = "sha256:large", 17 },
		want: func(r *wire.StartRequest) { r.File, r.Digest, r.Size = largeModule, "sha256:large", 17 },
	}, {
		name: "http image is left to the proplet", limit: rigInlineLimit, resolver: fakeResolver{},
		task: func(t *engine.Task) { t.ImageURL, t.ParentResults = "https://example.com/m.wasm", nil },
		want: func(r *wire.StartRequest) { r.ImageURL, r.ParentResults = "https://example.com/m.wasm", nil },
	}, {
		name: "OCI image is resolved and sent in the message", limit: rigInlineLimit,
		resolver: fakeResolver{"ghcr.io/acme/m:1": {"sha256:small", 8}},
		task:     func(t *engine.Task) { t.ImageURL = "ghcr.io/acme/m:1" },
		want:     func(r *wire.StartRequest) { r.File, r.Digest, r.Size = smallModule, "sha256:small", 8 },
	}, {
		name: "OCI image is resolved and sent by digest over the limit", limit: rigInlineLimit,
		resolver: fakeResolver{"ghcr.io/acme/m:2": {"sha256:large", 17}},
		task:     func(t *engine.Task) { t.ImageURL = "ghcr.io/acme/m:2" },
		want:     func(r *wire.StartRequest) { r.ImageURL, r.Digest, r.Size = "sha256:large", "sha256:large", 17 },
	}, {
		name: "OCI image without a resolver is left to the proplet", limit: rigInlineLimit,
		task: func(t *engine.Task) { t.ImageURL = "ghcr.io/acme/m:1" },
		want: func(r *wire.StartRequest) { r.ImageURL = "ghcr.io/acme/m:1" },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newDispatchRig()
			rig.cfg.InlineLimit, rig.resolver = tt.limit, tt.resolver
			rig.run(t, 1)
			task := fullTask()
			tt.task(&task)
			seq := rig.schedule(t, task)
			want := fullStart()
			tt.want(&want)
			checkCalls(t, rig.settle(t), []any{want, engine.MarkStarted{ID: "t1", Attempt: 2}})
			if !rig.tasks.waitedFor(seq) {
				t.Errorf("the dispatcher did not wait for the read model to reach seq %d", seq)
			}
		})
	}
}

// httpTask is a task the proplet fetches itself: its start needs no module.
func httpTask(device string, attempt int) engine.Task {
	return engine.Task{
		ID: "t1", State: engine.TaskScheduled, Device: device, Attempt: attempt,
		TaskCreated: events.TaskCreated{Name: "main", ImageURL: "https://example.com/m.wasm"},
	}
}

func httpStart(device string, attempt int) wire.StartRequest {
	return wire.StartRequest{
		ID: "t1", Name: "main", State: 1, ImageURL: "https://example.com/m.wasm",
		PropletID: device, Attempt: attempt,
	}
}

func TestDispatcher_TaskThatMovedOn(t *testing.T) {
	tests := []struct {
		name   string
		events []events.Event // after task.scheduled{p1, 1}
		final  *engine.Task   // the read model after them; nil: deleted
		want   []any
	}{{
		name:   "stopped before dispatch: the stop only",
		events: []events.Event{events.TaskStopped{Device: "p1", Attempt: 1, Reason: "user"}},
		final:  &engine.Task{ID: "t1", State: engine.TaskStopped, Device: "p1", Attempt: 1},
		want:   []any{wire.StopRequest{ID: "t1", PropletID: "p1"}},
	}, {
		name:   "failed before dispatch: nothing",
		events: []events.Event{events.TaskFailed{Device: "p1", Attempt: 1, Reason: "device offline"}},
		final:  &engine.Task{ID: "t1", State: engine.TaskFailed, Device: "p1", Attempt: 1},
	}, {
		name:   "deleted before dispatch: nothing",
		events: []events.Event{events.TaskFailed{Device: "p1", Attempt: 1}, events.TaskDeleted{}},
	}, {
		name:   "started already: nothing",
		events: []events.Event{events.TaskStarted{Device: "p1", Attempt: 1}},
		final:  &engine.Task{ID: "t1", State: engine.TaskRunning, Device: "p1", Attempt: 1},
	}, {
		name: "rescheduled before dispatch: only the new attempt",
		events: []events.Event{
			events.TaskFailed{Device: "p1", Attempt: 1, Reason: "device offline"},
			events.TaskScheduled{Device: "p2", Attempt: 2},
		},
		final: func() *engine.Task { t := httpTask("p2", 2); return &t }(),
		want:  []any{httpStart("p2", 2), engine.MarkStarted{ID: "t1", Attempt: 2}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newDispatchRig()
			rig.run(t, 1)
			last := rig.append(t, "t1", events.TaskScheduled{Device: "p1", Attempt: 1})
			for _, ev := range tt.events {
				last = rig.append(t, "t1", ev)
			}
			if tt.final == nil {
				rig.tasks.remove("t1", last)
			} else {
				final := *tt.final
				final.Seq = last
				rig.tasks.put(final)
			}
			checkCalls(t, rig.settle(t), tt.want)
		})
	}
}

func TestDispatcher_DuplicateJobStartsOnce(t *testing.T) {
	rig := newDispatchRig()
	// Left scheduled by an earlier run, whose event is replayed too: Run
	// routes the task twice, and the read model never shows it started
	// (the fake commands do not change it).
	rig.schedule(t, httpTask("p1", 1))
	rig.run(t, 1)
	checkCalls(t, rig.settle(t), []any{httpStart("p1", 1), engine.MarkStarted{ID: "t1", Attempt: 1}})
}

func TestDispatcher_RunDispatchesTasksLeftScheduled(t *testing.T) {
	rig := newDispatchRig()
	left := httpTask("p1", 1)
	left.ID = "a-left"
	rig.schedule(t, left)
	running := httpTask("p1", 1)
	running.ID = "b-running"
	rig.schedule(t, running)
	running.State = engine.TaskRunning
	running.Seq = rig.append(t, running.ID, events.TaskStarted{Device: "p1", Attempt: 1})
	rig.tasks.put(running)
	pending := engine.Task{ID: "c-pending", State: engine.TaskPending, Seq: rig.append(t, "c-pending", events.TaskCreated{Name: "main"})}
	rig.tasks.put(pending)

	from, err := rig.store.LastSeq(context.Background(), events.KindTask)
	if err != nil {
		t.Fatal(err)
	}
	rig.run(t, from+1) // the read model is caught up: nothing to replay

	want := httpStart("p1", 1)
	want.ID = "a-left"
	checkCalls(t, rig.settle(t), []any{want, engine.MarkStarted{ID: "a-left", Attempt: 1}})
}

func TestDispatcher_UndeliverableModuleFailsTask(t *testing.T) {
	tests := []struct {
		name       string
		resolver   outbound.ModuleResolver
		task       func(*engine.Task)
		wantReason []string // what the reason must name
	}{{
		name:       "module not in the store",
		task:       func(t *engine.Task) { t.Module, t.ModuleSize = "sha256:gone", 8 },
		wantReason: []string{"sha256:gone"},
	}, {
		name:       "OCI image the resolver cannot import",
		resolver:   fakeResolver{},
		task:       func(t *engine.Task) { t.ImageURL = "ghcr.io/acme/missing:1" },
		wantReason: []string{"ghcr.io/acme/missing:1", "manifest unknown"},
	}, {
		name: "parent results that are not JSON",
		task: func(t *engine.Task) {
			t.ImageURL, t.ParentResults = "https://example.com/m.wasm", map[string]json.RawMessage{"a": json.RawMessage(`{`)}
		},
		wantReason: []string{"parent results"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newDispatchRig()
			rig.resolver = tt.resolver
			rig.run(t, 1)
			task := fullTask()
			tt.task(&task)
			rig.schedule(t, task)
			calls := rig.settle(t)
			checkCalls(t, withoutReasons(calls), []any{engine.FailTask{ID: "t1", Attempt: 2}})
			reason := calls[0].(engine.FailTask).Reason
			for _, s := range tt.wantReason {
				if !strings.Contains(reason, s) {
					t.Errorf("reason %q does not name %q", reason, s)
				}
			}
		})
	}
}

// withoutReasons blanks the reasons of FailTask commands, whose text the
// table tests do not pin.
func withoutReasons(calls []any) []any {
	out := slices.Clone(calls)
	for i, c := range out {
		switch c := c.(type) {
		case engine.FailTask:
			c.Reason = ""
			out[i] = c
		case failedCmd:
			if f, ok := c.Cmd.(engine.FailTask); ok {
				f.Reason = ""
				out[i] = failedCmd{f}
			}
		}
	}
	return out
}

func TestDispatcher_RetriesTransientErrors(t *testing.T) {
	start := fullStart()
	start.File, start.Digest, start.Size = smallModule, "sha256:small", 8
	started := engine.MarkStarted{ID: "t1", Attempt: 2}
	tests := []struct {
		name   string
		module string
		setup  func(*dispatchRig)
		want   []any
	}{{
		name:   "sender unavailable twice",
		module: "sha256:small",
		setup:  func(r *dispatchRig) { r.send.fails.n = 2 },
		want:   []any{failedStart{"t1"}, failedStart{"t1"}, start, started},
	}, {
		name:   "module store unavailable once",
		module: "sha256:small",
		setup:  func(r *dispatchRig) { r.modules.fails.n = 1 },
		want:   []any{failedGet{"sha256:small"}, start, started},
	}, {
		name:   "failing the task refused once",
		module: "sha256:gone",
		setup:  func(r *dispatchRig) { r.cmds.fails.n = 1 },
		want:   []any{failedCmd{engine.FailTask{ID: "t1", Attempt: 2}}, engine.FailTask{ID: "t1", Attempt: 2}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newDispatchRig()
			tt.setup(rig)
			rig.run(t, 1)
			task := fullTask()
			task.Module, task.ModuleSize = tt.module, 8
			rig.schedule(t, task)
			checkCalls(t, withoutReasons(rig.settle(t)), tt.want)
		})
	}
}

func TestDispatcher_RunReturnsUndecodableEvent(t *testing.T) {
	rig := newDispatchRig()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	bad := events.Envelope{ID: "bad", Type: events.TaskScheduled{}.EventType(), Data: json.RawMessage(`{"attempt":"two"}`)}
	if _, err := rig.store.Append(ctx, events.TaskAggregate("t1"), 0, bad); err != nil {
		t.Fatal(err)
	}
	err := rig.dispatcher().Run(ctx, 1)
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		t.Fatalf("Run = %v, want the decode error", err)
	}
	calls, _ := rig.rec.snapshot()
	checkCalls(t, calls, nil)
}

// fakeDevices is the devices read model: which devices listen on their own
// topics.
type fakeDevices map[string]engine.Device

func (f fakeDevices) Get(id string) (engine.Device, bool) {
	d, ok := f[id]
	return d, ok
}

// TestDispatcher_OwnTopics: a start and a stop go to the device's own
// topics when it listens there, to the shared ones for a Propeller proplet
// (or a device the read model does not know).
func TestDispatcher_OwnTopics(t *testing.T) {
	rig := newDispatchRig()
	rig.devices = fakeDevices{"own": {ID: "own", OwnTopics: true}, "legacy": {ID: "legacy"}}
	rig.run(t, 1)
	for _, dev := range []string{"own", "legacy", "unknown"} {
		task := httpTask(dev, 1)
		task.ID = "t-" + dev
		rig.schedule(t, task)
		rig.append(t, task.ID, events.TaskStopped{Device: dev, Attempt: 1})
	}
	rig.settle(t)
	want := []string{
		"control/manager/own/start", "control/manager/own/stop",
		wire.SuffixStart, wire.SuffixStop, wire.SuffixStart, wire.SuffixStop,
		wire.SuffixStop, // the barrier's
	}
	if got := rig.send.sentOn(); !slices.Equal(got, want) {
		t.Fatalf("sent on %q, want %q", got, want)
	}
}
