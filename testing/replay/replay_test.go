package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/replay"
)

var update = flag.Bool("update", false, "rewrite the golden histories in testdata")

var (
	codec = events.DefaultCodec()
	t0    = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
)

const digest = "sha256:0b1e0f3d6c0a9b0c6d8e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c"

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// step is one command of a scenario and the error it must meet.
type step struct {
	task    engine.TaskCommand
	device  engine.DeviceCommand
	wantErr error
}

func task(c engine.TaskCommand) step               { return step{task: c} }
func device(c engine.DeviceCommand) step           { return step{device: c} }
func refused(c engine.TaskCommand, err error) step { return step{task: c, wantErr: err} }
func result(id, dev string, attempt int, r string) step {
	return task(engine.RecordResult{ID: id, Device: dev, Attempt: attempt, Result: json.RawMessage(r)})
}

// lifecycle is the scenario of testdata/task_lifecycle.jsonl: every task
// transition, the refusals and no-ops, and device liveness.
var lifecycle = []step{
	device(engine.Announce{ID: "pi-1", Namespace: "lab", Metadata: events.DeviceMetadata{Hostname: "pi-1", CPUArch: "aarch64", Tags: []string{"greenhouse"}, TotalMemoryBytes: 4 << 30}}),
	device(engine.Heartbeat{ID: "pi-1", Namespace: "lab"}),
	device(engine.Heartbeat{ID: "pi-1", Namespace: "lab"}), // no change, no event
	device(engine.Announce{ID: "pi-2", Namespace: "lab"}),
	device(engine.MarkOffline{ID: "ghost", Reason: "last will"}), // never a device

	// t1: a fast proplet answers before the start is recorded.
	task(engine.CreateTask{ID: "t1", Spec: events.TaskCreated{Name: "add", Module: digest, ModuleSize: 41, Inputs: []string{"1", "2"}}}),
	task(engine.ScheduleTask{ID: "t1", Device: "pi-1"}),
	result("t1", "pi-1", 0, `"3"`),
	task(engine.MarkStarted{ID: "t1", Attempt: 1}),
	result("t1", "pi-1", 0, `"3"`), // redelivered

	// t2: stopped, restarted elsewhere, a stale result, then a failure.
	task(engine.CreateTask{ID: "t2", Spec: events.TaskCreated{Name: "_start", ImageURL: "docker.io/jetprop/hello:1", Env: map[string]string{"A": "1"}, Daemon: true}}),
	task(engine.ScheduleTask{ID: "t2", Device: "pi-2"}),
	task(engine.MarkStarted{ID: "t2", Attempt: 1}),
	task(engine.StopTask{ID: "t2"}),
	task(engine.StopTask{ID: "t2"}),
	task(engine.ScheduleTask{ID: "t2", Device: "pi-1"}),
	task(engine.MarkStarted{ID: "t2", Attempt: 2}),
	step{task: engine.RecordResult{ID: "t2", Device: "pi-2", Attempt: 1, Result: json.RawMessage(`"late"`)}, wantErr: domain.ErrStale},
	task(engine.RecordResult{ID: "t2", Device: "pi-1", Error: "wasm trap: unreachable"}),
	refused(engine.DeleteTask{ID: "t9"}, domain.ErrNotFound),

	// t3: module uploaded later, a JSON result, then deleted.
	task(engine.CreateTask{ID: "t3", Spec: events.TaskCreated{Name: "train"}}),
	refused(engine.ScheduleTask{ID: "t3", Device: "pi-2"}, domain.ErrInvalid),
	task(engine.AttachModule{ID: "t3", Module: digest, Size: 41}),
	task(engine.ScheduleTask{ID: "t3", Device: "pi-2"}),
	refused(engine.DeleteTask{ID: "t3"}, domain.ErrInvalidState),
	task(engine.MarkStarted{ID: "t3", Attempt: 1}),
	result("t3", "pi-2", 1, `{"round":1,"weights":[0.5,-1]}`),
	refused(engine.StopTask{ID: "t3"}, domain.ErrInvalidState),
	task(engine.DeleteTask{ID: "t3"}),

	device(engine.MarkOffline{ID: "pi-2", Reason: "last will"}),
	device(engine.Heartbeat{ID: "pi-2"}),
}

// play runs steps through a deterministic handler and returns the states
// it returned last for every task and device.
func play(t *testing.T, store events.Store, steps []step) (map[string]engine.Task, map[string]engine.Device) {
	t.Helper()
	h := service.NewHandler(store, codec, replay.NewFixedClock(t0, time.Second), replay.NewSeqIDs("ev-"))
	tasks, devices := map[string]engine.Task{}, map[string]engine.Device{}
	for i, s := range steps {
		var err error
		if s.task != nil {
			var got engine.Task
			got, err = h.Task(testCtx(t), s.task)
			if err == nil {
				tasks[s.task.TaskID()] = got
			}
		} else {
			var got engine.Device
			got, err = h.Device(testCtx(t), s.device)
			if err == nil && got.Seq != 0 {
				devices[s.device.DeviceID()] = got
			}
		}
		if !errors.Is(err, s.wantErr) || (err == nil) != (s.wantErr == nil) {
			t.Fatalf("step %d: err = %v, want %v", i, err, s.wantErr)
		}
	}
	return tasks, devices
}

func record(t *testing.T, store events.Store) ([]events.Envelope, []byte) {
	t.Helper()
	envs, err := replay.Record(testCtx(t), store, events.KindTask, events.KindDevice)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := replay.WriteJSONL(&buf, envs); err != nil {
		t.Fatal(err)
	}
	return envs, buf.Bytes()
}

// checkReplay reads history back and checks it folds to the handler's states.
func checkReplay(t *testing.T, jsonl []byte, envs []events.Envelope, tasks map[string]engine.Task, devices map[string]engine.Device) {
	t.Helper()
	back, err := replay.ReadJSONL(bytes.NewReader(jsonl))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, envs) {
		t.Fatalf("JSONL round trip:\n got %+v\nwant %+v", back, envs)
	}
	gotTasks, err := replay.ReplayTasks(codec, back)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotTasks, tasks) {
		t.Fatalf("replayed tasks:\n got %+v\nwant %+v", gotTasks, tasks)
	}
	gotDevices, err := replay.ReplayDevices(codec, back)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotDevices, devices) {
		t.Fatalf("replayed devices:\n got %+v\nwant %+v", gotDevices, devices)
	}
}

const golden = "testdata/task_lifecycle.jsonl"

// A recorded history, written as JSONL and read back, replays to the states
// the handler returned; the history is the golden one, byte for byte.
func TestReplay_TaskLifecycle(t *testing.T) {
	store := events.NewMemory()
	tasks, devices := play(t, store, lifecycle)
	envs, jsonl := record(t, store)
	if *update {
		if err := os.WriteFile(golden, jsonl, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d events)", golden, len(envs))
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(jsonl, want) {
		t.Fatalf("history differs from %s (run with -update if the change is intended):\n%s", golden, diffLines(jsonl, want))
	}
	checkReplay(t, want, envs, tasks, devices)
	if tasks["t3"].Deleted != true || tasks["t1"].State != engine.TaskCompleted || tasks["t2"].State != engine.TaskFailed {
		t.Fatalf("scenario ended with t1 %s, t2 %s, t3 deleted %v", tasks["t1"].State, tasks["t2"].State, tasks["t3"].Deleted)
	}
}

// The JetStream store records the very same history as the memory store.
func TestReplay_JetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	nc, _ := natstest.Connect(t, natstest.Start(t))
	store, err := events.NewJetStream(testCtx(t), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tasks, devices := play(t, store, lifecycle)
	envs, jsonl := record(t, store)
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(jsonl, want) {
		t.Fatalf("JetStream history differs from %s:\n%s", golden, diffLines(jsonl, want))
	}
	checkReplay(t, jsonl, envs, tasks, devices)
}

// A scenario run twice through a handler with the fake clock and counting
// ids records the same bytes: the deciders draw nothing of their own.
func TestReplay_Deterministic(t *testing.T) {
	a, b := events.NewMemory(), events.NewMemory()
	play(t, a, lifecycle)
	play(t, b, lifecycle)
	_, ja := record(t, a)
	_, jb := record(t, b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("two runs of one scenario differ:\n%s", diffLines(ja, jb))
	}
}

func diffLines(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got %s\nwant %s", i+1, gl, wl)
		}
	}
	return "(equal lines)"
}

func TestRecord(t *testing.T) {
	store := events.NewMemory()
	play(t, store, lifecycle)
	tests := []struct {
		name  string
		kinds []events.Kind
		want  []events.Kind // kinds of the envelopes, in order of first appearance
	}{
		{"all kinds", nil, []events.Kind{events.KindTask, events.KindDevice}},
		{"tasks", []events.Kind{events.KindTask}, []events.Kind{events.KindTask}},
		{"devices first", []events.Kind{events.KindDevice, events.KindTask}, []events.Kind{events.KindDevice, events.KindTask}},
		{"empty kind", []events.Kind{events.KindWorkflow}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			envs, err := replay.Record(testCtx(t), store, tc.kinds...)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []events.Kind
			for i, e := range envs {
				if len(kinds) == 0 || kinds[len(kinds)-1] != e.Aggregate.Kind {
					kinds = append(kinds, e.Aggregate.Kind)
				} else if e.Seq <= envs[i-1].Seq {
					t.Fatalf("envelope %d: seq %d after %d", i, e.Seq, envs[i-1].Seq)
				}
			}
			if !reflect.DeepEqual(kinds, tc.want) {
				t.Fatalf("kinds %v, want %v", kinds, tc.want)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := replay.Record(ctx, store); !errors.Is(err, context.Canceled) {
			t.Fatalf("Record = %v, want context.Canceled", err)
		}
	})
}

func TestReadJSONL(t *testing.T) {
	line := `{"id":"e1","type":"task.deleted","aggregate":{"kind":"task","id":"t1"},"time":"2026-11-21T12:00:00Z","version":1,"data":{},"seq":4}`
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{name: "empty", in: "", want: 0},
		{name: "one", in: line + "\n", want: 1},
		{name: "no final newline", in: line + "\n" + line, want: 2},
		{name: "blank lines", in: "\n" + line + "\n\n  \n" + line + "\n", want: 2},
		{name: "CRLF", in: line + "\r\n" + line + "\r\n", want: 2},
		{name: "garbage", in: line + "\nnot json\n", wantErr: true},
		{name: "two on a line", in: line + line + "\n", wantErr: true},
		{name: "bad time", in: `{"id":"e1","time":"noon"}` + "\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := replay.ReadJSONL(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && len(got) != tc.want {
				t.Fatalf("%d envelopes, want %d", len(got), tc.want)
			}
		})
	}
	t.Run("line number", func(t *testing.T) {
		_, err := replay.ReadJSONL(strings.NewReader(line + "\n\n{oops\n"))
		if err == nil || !strings.Contains(err.Error(), "line 3") {
			t.Fatalf("err = %v, want it to name line 3", err)
		}
	})
}

func TestReplayTasks_Bad(t *testing.T) {
	envs, err := replay.ReadJSONL(mustOpen(t, golden))
	if err != nil {
		t.Fatal(err)
	}
	var firstTask []events.Envelope
	for _, e := range envs {
		if e.Aggregate == events.TaskAggregate("t1") {
			firstTask = append(firstTask, e)
		}
	}
	t.Run("out of order", func(t *testing.T) {
		swapped := []events.Envelope{firstTask[1], firstTask[0]}
		if _, err := replay.ReplayTasks(codec, swapped); !errors.Is(err, replay.ErrOrder) {
			t.Fatalf("err = %v, want ErrOrder", err)
		}
	})
	t.Run("repeated", func(t *testing.T) {
		if _, err := replay.ReplayTasks(codec, []events.Envelope{firstTask[0], firstTask[0]}); !errors.Is(err, replay.ErrOrder) {
			t.Fatalf("err = %v, want ErrOrder", err)
		}
	})
	t.Run("unknown type", func(t *testing.T) {
		bad := firstTask[0]
		bad.Type = "task.teleported"
		if _, err := replay.ReplayTasks(codec, []events.Envelope{bad}); !errors.Is(err, events.ErrUnknownType) {
			t.Fatalf("err = %v, want ErrUnknownType", err)
		}
	})
	t.Run("other kinds ignored", func(t *testing.T) {
		devs, err := replay.ReplayDevices(codec, firstTask)
		if err != nil || len(devs) != 0 {
			t.Fatalf("ReplayDevices of task events = %v, %v", devs, err)
		}
	})
}

func mustOpen(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.FromSlash(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFixedClock(t *testing.T) {
	c := replay.NewFixedClock(t0.In(time.FixedZone("CET", 3600)), time.Second)
	if got := c.Now(); !got.Equal(t0) || got.Location() != time.UTC {
		t.Fatalf("first reading %v, want %v in UTC", got, t0)
	}
	if got := c.Now(); !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("second reading %v, want one tick later", got)
	}
	if got := c.Step(time.Hour); !got.Equal(t0.Add(2*time.Second + time.Hour)) {
		t.Fatalf("Step = %v", got)
	}
	c.Set(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("after Set: %v", got)
	}
	still := replay.NewFixedClock(t0, 0)
	if first, second := still.Now(), still.Now(); !first.Equal(second) {
		t.Fatal("a clock without tick moved on its own")
	}
	t.Run("concurrent", func(t *testing.T) {
		c := replay.NewFixedClock(t0, time.Nanosecond)
		seen := sync.Map{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					if _, dup := seen.LoadOrStore(c.Now(), true); dup {
						t.Error("two readings were equal")
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestSeqIDs(t *testing.T) {
	ids := replay.NewSeqIDs("ev-")
	if a, b := ids.New(), ids.New(); a != "ev-000001" || b != "ev-000002" {
		t.Fatalf("ids %q, %q", a, b)
	}
	var zero replay.SeqIDs
	if got := zero.New(); got != "000001" {
		t.Fatalf("zero value: %q", got)
	}
	t.Run("concurrent", func(t *testing.T) {
		ids := replay.NewSeqIDs("x:")
		seen := sync.Map{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					id := ids.New()
					if err := events.ValidateID(id); err != nil {
						t.Error(err)
					}
					if _, dup := seen.LoadOrStore(id, true); dup {
						t.Errorf("id %q made twice", id)
					}
				}
			})
		}
		wg.Wait()
	})
}

func ExampleWriteJSONL() {
	store := events.NewMemory()
	clock := replay.NewFixedClock(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), time.Second)
	h := service.NewHandler(store, events.DefaultCodec(), clock, replay.NewSeqIDs("ev-"))
	h.Device(context.Background(), engine.Heartbeat{ID: "pi-1"})
	h.Device(context.Background(), engine.MarkOffline{ID: "pi-1", Reason: "last will"})
	envs, _ := replay.Record(context.Background(), store, events.KindDevice)
	replay.WriteJSONL(os.Stdout, envs)
	// Output:
	// {"id":"ev-000001","type":"device.alive","aggregate":{"kind":"dev","id":"pi-1"},"time":"2026-11-21T12:00:00Z","version":1,"data":{},"seq":1}
	// {"id":"ev-000002","type":"device.offline","aggregate":{"kind":"dev","id":"pi-1"},"time":"2026-11-21T12:00:01Z","version":1,"data":{"reason":"last will"},"seq":2}
}
