package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/replay"
)

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

func newHandler(store events.Store) *service.Handler {
	return service.NewHandler(store, codec, replay.NewFixedClock(t0, time.Second), replay.NewSeqIDs("ev-"))
}

// run executes commands, failing on any error, and returns the last state
// of every task and device they touched.
type run struct {
	t       testing.TB
	h       *service.Handler
	tasks   map[string]engine.Task
	devices map[string]engine.Device
}

func newRun(t testing.TB, store events.Store) *run {
	return &run{t: t, h: newHandler(store), tasks: map[string]engine.Task{}, devices: map[string]engine.Device{}}
}

func (r *run) task(cmds ...engine.TaskCommand) *run {
	r.t.Helper()
	for _, c := range cmds {
		s, err := r.h.Task(testCtx(r.t), c)
		if err != nil {
			r.t.Fatalf("%#v: %v", c, err)
		}
		r.tasks[c.TaskID()] = s
	}
	return r
}

func (r *run) device(cmds ...engine.DeviceCommand) *run {
	r.t.Helper()
	for _, c := range cmds {
		s, err := r.h.Device(testCtx(r.t), c)
		if err != nil {
			r.t.Fatalf("%#v: %v", c, err)
		}
		if s.Seq != 0 {
			r.devices[c.DeviceID()] = s
		}
	}
	return r
}

func create(id string) engine.CreateTask {
	return engine.CreateTask{ID: id, Spec: events.TaskCreated{Name: "add", Module: digest, Inputs: []string{"1", "2"}}}
}

func schedule(id, dev string) engine.ScheduleTask { return engine.ScheduleTask{ID: id, Device: dev} }

func result(id, dev, r string) engine.RecordResult {
	return engine.RecordResult{ID: id, Device: dev, Result: json.RawMessage(r)}
}

// scenario writes a small fleet's history: three devices, five tasks in
// every state, one of them deleted.
func scenario(t testing.TB, store events.Store) *run {
	r := newRun(t, store)
	r.device(
		engine.Announce{ID: "pi-2", Namespace: "lab", Metadata: events.DeviceMetadata{Hostname: "pi-2", Tags: []string{"arm"}}},
		engine.Announce{ID: "pi-1", Namespace: "lab"},
		engine.Heartbeat{ID: "pi-1"},
		engine.Heartbeat{ID: "pi-3"},
		engine.MarkOffline{ID: "pi-3", Reason: "last will"},
		engine.MarkOffline{ID: "ghost", Reason: "last will"},
	)
	r.task(
		create("t1"), schedule("t1", "pi-1"), engine.MarkStarted{ID: "t1", Attempt: 1}, // running on pi-1
		create("t2"), schedule("t2", "pi-2"), result("t2", "pi-2", `{ "w" : [1, 2] }`), // completed
		create("t3"), schedule("t3", "pi-1"), // scheduled on pi-1
		create("t4"), schedule("t4", "pi-2"), engine.StopTask{ID: "t4"}, engine.DeleteTask{ID: "t4"}, // gone
		create("t5"), schedule("t5", "pi-2"), engine.RecordResult{ID: "t5", Device: "pi-2", Error: "trap"},
		schedule("t5", "pi-2"), // failed once, running again on pi-2
	)
	return r
}

func catchup(t testing.TB, store events.Store) (*projections.Tasks, *projections.Devices) {
	t.Helper()
	tasks, devices := projections.NewTasks(codec), projections.NewDevices(codec)
	for _, p := range []projections.Projection{tasks, devices} {
		if err := projections.Catchup(testCtx(t), store, p); err != nil {
			t.Fatal(err)
		}
	}
	return tasks, devices
}

func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func taskID(t engine.Task) string     { return t.ID }
func deviceID(d engine.Device) string { return d.ID }

func TestTasks(t *testing.T) {
	store := events.NewMemory()
	r := scenario(t, store)
	tasks, _ := catchup(t, store)

	if got, want := ids(tasks.All(), taskID), []string{"t1", "t2", "t3", "t5"}; !slices.Equal(got, want) {
		t.Fatalf("All() = %v, want %v (creation order, deleted gone)", got, want)
	}
	for id, want := range r.tasks {
		got, ok := tasks.Get(id)
		if id == "t4" {
			if ok {
				t.Errorf("Get(t4) found a deleted task: %+v", got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Get(%s) = %+v, %v\nwant the handler's %+v", id, got, ok, want)
		}
	}
	if got, want := ids(tasks.Active(), taskID), []string{"t1", "t3", "t5"}; !slices.Equal(got, want) {
		t.Errorf("Active() = %v, want %v", got, want)
	}
	if got, want := tasks.Load(), map[string]int{"pi-1": 2, "pi-2": 1}; !maps.Equal(got, want) {
		t.Errorf("Load() = %v, want %v", got, want)
	}
	if got := tasks.Turn(); got != 6 {
		t.Errorf("Turn() = %d, want 6 scheduled events", got)
	}
	last, _ := store.LastSeq(testCtx(t), events.KindTask)
	if got := tasks.LastSeq(); got != last {
		t.Errorf("LastSeq() = %d, want %d", got, last)
	}
	if got, ok := tasks.Get("t2"); !ok || string(got.Result) != `{"w":[1,2]}` {
		t.Errorf("t2 result %s", got.Result)
	}
}

func TestTasks_List(t *testing.T) {
	store := events.NewMemory()
	scenario(t, store)
	tasks, _ := catchup(t, store)
	tests := []struct {
		name          string
		offset, limit int
		want          []string
	}{
		{"all", 0, 10, []string{"t1", "t2", "t3", "t5"}},
		{"first page", 0, 2, []string{"t1", "t2"}},
		{"second page", 2, 2, []string{"t3", "t5"}},
		{"past the end", 4, 2, []string{}},
		{"far past the end", 99, 2, []string{}},
		{"zero limit", 0, 0, []string{}},
		{"negative offset", -3, 1, []string{"t1"}},
		{"negative limit", 1, -1, []string{}},
		{"huge limit", 1, int(^uint(0) >> 1), []string{"t2", "t3", "t5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, total := tasks.List(tc.offset, tc.limit)
			if total != 4 || !slices.Equal(ids(got, taskID), tc.want) {
				t.Fatalf("List(%d, %d) = %v, %d; want %v, 4", tc.offset, tc.limit, ids(got, taskID), total, tc.want)
			}
		})
	}
}

func TestDevices(t *testing.T) {
	store := events.NewMemory()
	r := scenario(t, store)
	_, devices := catchup(t, store)
	if got, want := ids(devices.List(), deviceID), []string{"pi-1", "pi-2", "pi-3"}; !slices.Equal(got, want) {
		t.Fatalf("List() = %v, want %v (sorted; a stranger's last will is no device)", got, want)
	}
	if got, want := ids(devices.Up(), deviceID), []string{"pi-1", "pi-2"}; !slices.Equal(got, want) {
		t.Fatalf("Up() = %v, want %v", got, want)
	}
	for id, want := range r.devices {
		if got, ok := devices.Get(id); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("Get(%s) = %+v, %v\nwant %+v", id, got, ok, want)
		}
	}
	if _, ok := devices.Get("ghost"); ok {
		t.Error("Get(ghost) found a device that only sent a last will")
	}
}

// Applying the same stored event twice (a redelivery after a resubscribe)
// or an older one changes nothing.
func TestProjections_Duplicates(t *testing.T) {
	store := events.NewMemory()
	scenario(t, store)
	var taskEnvs, devEnvs []events.Envelope
	collect := func(dst *[]events.Envelope) func(events.Envelope) error {
		return func(e events.Envelope) error { *dst = append(*dst, e); return nil }
	}
	if err := store.Replay(testCtx(t), events.KindTask, 1, collect(&taskEnvs)); err != nil {
		t.Fatal(err)
	}
	if err := store.Replay(testCtx(t), events.KindDevice, 1, collect(&devEnvs)); err != nil {
		t.Fatal(err)
	}
	once, onceDev := catchup(t, store)
	twice, twiceDev := projections.NewTasks(codec), projections.NewDevices(codec)
	for i, e := range taskEnvs {
		for _, again := range []events.Envelope{e, e, taskEnvs[i/2]} {
			if err := twice.Apply(again); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, e := range devEnvs {
		for range 2 {
			if err := twiceDev.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !reflect.DeepEqual(twice.All(), once.All()) || twice.Turn() != once.Turn() || twice.LastSeq() != once.LastSeq() {
		t.Fatalf("tasks with duplicates differ:\n got %+v (turn %d)\nwant %+v (turn %d)", twice.All(), twice.Turn(), once.All(), once.Turn())
	}
	if !reflect.DeepEqual(twiceDev.List(), onceDev.List()) {
		t.Fatalf("devices with duplicates differ:\n got %+v\nwant %+v", twiceDev.List(), onceDev.List())
	}
}

// An envelope without a stream sequence (not read from a store) is applied
// but never moves the cursor back.
func TestTasks_ApplyWithoutSeq(t *testing.T) {
	store := events.NewMemory()
	scenario(t, store)
	tasks, _ := catchup(t, store)
	last := tasks.LastSeq()
	env, err := events.Wrap(events.TaskAggregate("t9"), "loose", events.Meta{Time: t0}, events.TaskCreated{Name: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tasks.Apply(env); err != nil {
		t.Fatal(err)
	}
	if got := tasks.LastSeq(); got != last {
		t.Fatalf("LastSeq() = %d after an envelope without seq, want %d", got, last)
	}
	if _, ok := tasks.Get("t9"); !ok {
		t.Fatal("the envelope was not applied")
	}
}

func TestCatchup_Incremental(t *testing.T) {
	store := events.NewMemory()
	r := newRun(t, store).task(create("t1"))
	tasks, _ := catchup(t, store)
	r.task(schedule("t1", "pi-1"), create("t2"))
	if err := projections.Catchup(testCtx(t), store, tasks); err != nil {
		t.Fatal(err)
	}
	if got, _ := tasks.Get("t1"); got.State != engine.TaskScheduled || tasks.LastSeq() != 3 || len(tasks.All()) != 2 {
		t.Fatalf("after a second catchup: t1 %s, last seq %d, %d tasks", got.State, tasks.LastSeq(), len(tasks.All()))
	}
}

func TestCatchup_UnknownType(t *testing.T) {
	store := events.NewMemory()
	newRun(t, store).task(create("t1"))
	bad := events.Envelope{ID: "x1", Type: "task.teleported", Aggregate: events.TaskAggregate("t1"), Time: t0, Version: 1, Data: json.RawMessage(`{}`)}
	if _, err := store.Append(testCtx(t), bad.Aggregate, 1, bad); err != nil {
		t.Fatal(err)
	}
	tasks := projections.NewTasks(codec)
	err := projections.Catchup(testCtx(t), store, tasks)
	if !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("Catchup = %v, want ErrUnknownType", err)
	}
	if tasks.LastSeq() != 1 {
		t.Fatalf("LastSeq() = %d, want 1: the bad event is not applied", tasks.LastSeq())
	}
}

func TestWaitFor(t *testing.T) {
	store := events.NewMemory()
	r := newRun(t, store).task(create("t1"))
	tasks, _ := catchup(t, store)

	t.Run("applied already", func(t *testing.T) {
		if err := tasks.WaitFor(testCtx(t), 1); err != nil {
			t.Fatal(err)
		}
		if err := tasks.WaitFor(testCtx(t), 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("applied later", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { errc <- tasks.WaitFor(testCtx(t), 3) }()
		r.task(schedule("t1", "pi-1"))
		if err := projections.Catchup(testCtx(t), store, tasks); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			t.Fatalf("WaitFor(3) returned %v at seq %d", err, tasks.LastSeq())
		default:
		}
		r.task(engine.MarkStarted{ID: "t1", Attempt: 1})
		if err := projections.Catchup(testCtx(t), store, tasks); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Millisecond)
		defer cancel()
		err := tasks.WaitFor(ctx, 99)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitFor = %v, want DeadlineExceeded", err)
		}
	})
	t.Run("many waiters", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() { errs <- tasks.WaitFor(testCtx(t), 5) })
		}
		r.task(create("t2"), create("t3"))
		if err := projections.Catchup(testCtx(t), store, tasks); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Follow keeps projections current while readers use them (run with -race).
func TestFollow(t *testing.T) {
	store := events.NewMemory()
	tasks, devices := projections.NewTasks(codec), projections.NewDevices(codec)
	ctx, cancel := context.WithCancel(testCtx(t))
	var wg sync.WaitGroup
	for _, p := range []projections.Projection{tasks, devices} {
		wg.Go(func() {
			if err := projections.Follow(ctx, store, p); err != nil {
				t.Errorf("Follow(%s) = %v", p.Kind(), err)
			}
		})
	}
	stopReaders := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stopReaders:
					return
				default:
				}
				tasks.List(0, 5)
				tasks.Load()
				tasks.Active()
				tasks.Get("t1")
				devices.Up()
			}
		})
	}
	r := newRun(t, store)
	for i := range 20 {
		id := fmt.Sprintf("t%d", i)
		r.task(create(id), schedule(id, "pi-1"), result(id, "pi-1", `"ok"`))
	}
	r.device(engine.Heartbeat{ID: "pi-1"})
	if err := tasks.WaitFor(testCtx(t), 60); err != nil {
		t.Fatal(err)
	}
	if err := devices.WaitFor(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	close(stopReaders)
	cancel()
	wg.Wait()
	if n := len(tasks.All()); n != 20 || len(tasks.Active()) != 0 || len(devices.Up()) != 1 {
		t.Fatalf("%d tasks, %d active, %d devices up", n, len(tasks.Active()), len(devices.Up()))
	}
}

// Projections rebuilt by replay after the whole server restarts on the same
// data equal the ones before, and the states the handler returned.
func TestProjections_Restart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server twice")
	}
	dir := t.TempDir()
	srv := natstest.StartDir(t, dir)
	nc, _ := natstest.Connect(t, srv)
	store, err := events.NewJetStream(testCtx(t), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := scenario(t, store)
	tasks, devices := catchup(t, store)
	beforeTasks, beforeList, beforeDevices := tasks.All(), ids(devices.List(), deviceID), devices.List()
	beforeLoad, beforeTurn, beforeSeq := tasks.Load(), tasks.Turn(), tasks.LastSeq()
	nc.Close()
	srv.Shutdown()

	srv = natstest.StartDir(t, dir)
	nc, _ = natstest.Connect(t, srv)
	store, err = events.NewJetStream(testCtx(t), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tasks, devices = catchup(t, store)
	if !reflect.DeepEqual(tasks.All(), beforeTasks) {
		t.Fatalf("tasks after restart:\n got %+v\nwant %+v", tasks.All(), beforeTasks)
	}
	if !reflect.DeepEqual(devices.List(), beforeDevices) || !slices.Equal(ids(devices.List(), deviceID), beforeList) {
		t.Fatalf("devices after restart:\n got %+v\nwant %+v", devices.List(), beforeDevices)
	}
	if !maps.Equal(tasks.Load(), beforeLoad) || tasks.Turn() != beforeTurn || tasks.LastSeq() != beforeSeq {
		t.Fatalf("load %v turn %d seq %d, want %v %d %d", tasks.Load(), tasks.Turn(), tasks.LastSeq(), beforeLoad, beforeTurn, beforeSeq)
	}
	for _, task := range tasks.All() {
		if !reflect.DeepEqual(task, r.tasks[task.ID]) {
			t.Errorf("%s after restart differs from the handler's state:\n got %+v\nwant %+v", task.ID, task, r.tasks[task.ID])
		}
		for _, tm := range []time.Time{task.CreatedAt, task.UpdatedAt, task.StartedAt, task.FinishedAt} {
			if tm.Location() != time.UTC {
				t.Errorf("%s: time %v is in %v, want UTC", task.ID, tm, tm.Location())
			}
		}
	}
	for _, d := range devices.List() {
		if !reflect.DeepEqual(d, r.devices[d.ID]) {
			t.Errorf("%s after restart differs from the handler's state:\n got %+v\nwant %+v", d.ID, d, r.devices[d.ID])
		}
	}
}
