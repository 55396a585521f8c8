package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/replay"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

type serviceFixture struct {
	svc       *service.Service
	h         *service.Handler
	devices   *projections.Devices
	artifacts *projections.Artifacts
	modules   *artifacts.Store
	store     events.Store
	tasks     *projections.Tasks
}

// newService wires a service the way the server does: a JetStream store,
// the MODULES object store, projections that follow the streams.
func newService(t *testing.T) serviceFixture {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	nc, js := natstest.Connect(t, natstest.Start(t))
	store, err := events.NewJetStream(testCtx(t), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mods, err := artifacts.New(testCtx(t), js, artifacts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tasks, devices, arts := projections.NewTasks(codec), projections.NewDevices(codec), projections.NewArtifacts(codec)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range []projections.Projection{tasks, devices, arts} {
		wg.Go(func() {
			if err := projections.Follow(ctx, store, p); err != nil {
				t.Errorf("follow %s: %v", p.Kind(), err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	h := service.NewHandler(store, codec, service.SystemClock{}, replay.NewSeqIDs("id-"))
	svc := service.New(h, tasks, devices, mods, service.WithArtifacts(arts))
	return serviceFixture{svc: svc, h: h, devices: devices, artifacts: arts, modules: mods, store: store, tasks: tasks}
}

// device makes a device announce itself (or go offline) and waits until the
// read model shows it.
func (f serviceFixture) device(t *testing.T, cmd engine.DeviceCommand) {
	t.Helper()
	d := mustDevice(t, f.h, cmd)
	if err := f.devices.WaitFor(testCtx(t), d.Seq); err != nil {
		t.Fatal(err)
	}
}

func (f serviceFixture) create(t *testing.T, spec events.TaskCreated) engine.Task {
	t.Helper()
	task, err := f.svc.CreateTask(testCtx(t), spec, bytes.NewReader(wasmfixtures.Add()))
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func (f serviceFixture) start(t *testing.T, id string) engine.Task {
	t.Helper()
	task, err := f.svc.StartTask(testCtx(t), id)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	return task
}

func TestService_StartTask(t *testing.T) {
	f := newService(t)
	f.device(t, engine.Announce{ID: "d2"})
	f.device(t, engine.Announce{ID: "d1"})
	var placed []string
	for range 3 {
		task := f.create(t, events.TaskCreated{Name: "add", Inputs: []string{"1", "2"}})
		placed = append(placed, f.start(t, task.ID).Device)
	}
	// d1 first (ids in order), then the idle d2, then a tie taken by turn 2.
	if want := []string{"d1", "d2", "d1"}; !slices.Equal(placed, want) {
		t.Fatalf("placed on %v, want %v", placed, want)
	}
	if got, want := f.svc.TaskLoad(), map[string]int{"d1": 2, "d2": 1}; !maps.Equal(got, want) {
		t.Fatalf("load %v, want %v", got, want)
	}

	t.Run("target device", func(t *testing.T) {
		task := f.create(t, events.TaskCreated{Name: "add", TargetDevice: "d1"})
		if got := f.start(t, task.ID).Device; got != "d1" {
			t.Fatalf("placed on %s, want the target d1", got)
		}
	})
	t.Run("target offline", func(t *testing.T) {
		f.device(t, engine.MarkOffline{ID: "d2", Reason: "last will"})
		task := f.create(t, events.TaskCreated{Name: "add", TargetDevice: "d2"})
		_, err := f.svc.StartTask(testCtx(t), task.ID)
		checkErr(t, err, domain.ErrNoDevice)
	})
	t.Run("target unknown", func(t *testing.T) {
		task := f.create(t, events.TaskCreated{Name: "add", TargetDevice: "d9"})
		_, err := f.svc.StartTask(testCtx(t), task.ID)
		checkErr(t, err, domain.ErrNoDevice)
	})
	t.Run("unknown task", func(t *testing.T) {
		_, err := f.svc.StartTask(testCtx(t), "nope")
		checkErr(t, err, domain.ErrNotFound)
	})
	t.Run("already running", func(t *testing.T) {
		task := f.create(t, events.TaskCreated{Name: "add"})
		f.start(t, task.ID)
		_, err := f.svc.StartTask(testCtx(t), task.ID)
		checkErr(t, err, domain.ErrInvalidState)
	})
}

func TestService_StartTask_NoDevice(t *testing.T) {
	f := newService(t)
	task := f.create(t, events.TaskCreated{Name: "add"})
	_, err := f.svc.StartTask(testCtx(t), task.ID)
	checkErr(t, err, domain.ErrNoDevice)
	f.device(t, engine.Heartbeat{ID: "d1"})
	f.device(t, engine.MarkOffline{ID: "d1"})
	_, err = f.svc.StartTask(testCtx(t), task.ID)
	checkErr(t, err, domain.ErrNoDevice)
}

func TestService_Modules(t *testing.T) {
	f := newService(t)
	task := f.create(t, events.TaskCreated{Name: "add"})
	if !domain.ValidDigest(task.Module) || task.ModuleSize != int64(len(wasmfixtures.Add())) {
		t.Fatalf("module %q size %d", task.Module, task.ModuleSize)
	}
	t.Run("not wasm", func(t *testing.T) {
		_, err := f.svc.CreateTask(testCtx(t), events.TaskCreated{Name: "add"}, bytes.NewReader(wasmfixtures.Invalid()))
		checkErr(t, err, domain.ErrNotWasm)
	})
	t.Run("upload later", func(t *testing.T) {
		bare, err := f.svc.CreateTask(testCtx(t), events.TaskCreated{Name: "echo"}, nil)
		if err != nil || bare.HasModule() {
			t.Fatalf("create without module: %+v, %v", bare, err)
		}
		got, err := f.svc.UploadModule(testCtx(t), bare.ID, bytes.NewReader(wasmfixtures.Echo()))
		if err != nil {
			t.Fatal(err)
		}
		if !got.HasModule() || got.Module == task.Module || got.ModuleSize != int64(len(wasmfixtures.Echo())) {
			t.Fatalf("after upload: module %q size %d", got.Module, got.ModuleSize)
		}
	})
	t.Run("upload to unknown", func(t *testing.T) {
		_, err := f.svc.UploadModule(testCtx(t), "nope", bytes.NewReader(wasmfixtures.Echo()))
		checkErr(t, err, domain.ErrNotFound)
	})
	t.Run("invalid spec", func(t *testing.T) {
		_, err := f.svc.CreateTask(testCtx(t), events.TaskCreated{}, nil)
		checkErr(t, err, domain.ErrInvalid)
	})
}

func TestService_WaitTask(t *testing.T) {
	f := newService(t)
	f.device(t, engine.Announce{ID: "d1"})
	task := f.create(t, events.TaskCreated{Name: "add"})
	f.start(t, task.ID)
	done := make(chan engine.Task, 1)
	errc := make(chan error, 1)
	go func() {
		got, err := f.svc.WaitTask(testCtx(t), task.ID)
		done <- got
		errc <- err
	}()
	mustTask(t, f.h, engine.RecordResult{ID: task.ID, Device: "d1", Result: json.RawMessage(`"3"`)})
	got := <-done
	if err := <-errc; err != nil || got.State != engine.TaskCompleted || string(got.Result) != `"3"` {
		t.Fatalf("WaitTask = %s %s, %v", got.State, got.Result, err)
	}

	t.Run("timeout", func(t *testing.T) {
		other := f.create(t, events.TaskCreated{Name: "add"})
		ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
		defer cancel()
		got, err := f.svc.WaitTask(ctx, other.ID)
		checkErr(t, err, context.DeadlineExceeded)
		if got.State != engine.TaskPending {
			t.Fatalf("state %s", got.State)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		_, err := f.svc.WaitTask(testCtx(t), "nope")
		checkErr(t, err, domain.ErrNotFound)
	})
}

// foldingTasks is the tasks read model with the projection's goroutine
// folding an event at the worst moment: just before the first LastSeq.
type foldingTasks struct {
	service.TaskView
	once sync.Once
	fold func()
}

func (f *foldingTasks) LastSeq() uint64 {
	f.once.Do(f.fold)
	return f.TaskView.LastSeq()
}

// TestService_WaitTaskFoldBetweenReads: the task's last event is folded
// between WaitTask's read of the task and of the sequence. WaitTask must
// still see it, not wait for a later event that may never come (with one
// task at a time nothing else is appended: the dispatch benchmark's
// occasional 30 s hang).
func TestService_WaitTaskFoldBetweenReads(t *testing.T) {
	f := newService(t)
	f.device(t, engine.Announce{ID: "d1"})
	task := f.create(t, events.TaskCreated{Name: "add"})
	f.start(t, task.ID)
	view := &foldingTasks{TaskView: f.tasks, fold: func() {
		mustTask(t, f.h, engine.RecordResult{ID: task.ID, Device: "d1", Result: json.RawMessage(`"3"`)})
		natstest.CheckFor(t, 10*time.Second, func() error {
			if got, _ := f.tasks.Get(task.ID); got.State != engine.TaskCompleted {
				return fmt.Errorf("task is %s", got.State)
			}
			return nil
		})
	}}
	svc := service.New(f.h, view, f.devices, f.modules)
	ctx, cancel := context.WithTimeout(testCtx(t), 2*time.Second)
	defer cancel()
	got, err := svc.WaitTask(ctx, task.ID)
	if err != nil || got.State != engine.TaskCompleted {
		t.Fatalf("WaitTask = %s, %v; want completed", got.State, err)
	}
}

func TestService_StopDelete(t *testing.T) {
	f := newService(t)
	f.device(t, engine.Announce{ID: "d1"})
	task := f.create(t, events.TaskCreated{Name: "add"})
	keep := f.create(t, events.TaskCreated{Name: "add"})
	f.start(t, task.ID)
	checkErr(t, f.svc.DeleteTask(testCtx(t), task.ID), domain.ErrInvalidState)
	stopped, err := f.svc.StopTask(testCtx(t), task.ID)
	if err != nil || stopped.State != engine.TaskStopped || stopped.State.PropellerState() != 6 {
		t.Fatalf("stop: %s, %v", stopped.State, err)
	}
	if err := f.svc.DeleteTask(testCtx(t), task.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.GetTask(task.ID)
	checkErr(t, err, domain.ErrNotFound)
	checkErr(t, f.svc.DeleteTask(testCtx(t), task.ID), domain.ErrNotFound)
	list, total := f.svc.ListTasks(0, 10)
	if total != 1 || len(list) != 1 || list[0].ID != keep.ID {
		t.Fatalf("list after delete: %d %+v", total, list)
	}
	if load := f.svc.TaskLoad(); len(load) != 0 {
		t.Fatalf("load after stop: %v", load)
	}
}

func TestService_Devices(t *testing.T) {
	f := newService(t)
	f.device(t, engine.Announce{ID: "d2", Metadata: events.DeviceMetadata{Hostname: "pi-2"}})
	f.device(t, engine.Heartbeat{ID: "d1"})
	f.device(t, engine.MarkOffline{ID: "d3"}) // a stranger's last will
	d, err := f.svc.GetDevice("d2")
	if err != nil || d.Metadata.Hostname != "pi-2" || d.State != engine.DeviceAnnounced {
		t.Fatalf("GetDevice = %+v, %v", d, err)
	}
	_, err = f.svc.GetDevice("d3")
	checkErr(t, err, domain.ErrNotFound)
	var ids []string
	for _, d := range f.svc.ListDevices() {
		ids = append(ids, d.ID)
	}
	if want := []string{"d1", "d2"}; !slices.Equal(ids, want) {
		t.Fatalf("devices %v, want %v", ids, want)
	}
}
