package service_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/replay"
)

// A service made over read models that replayed a history (as the server
// does at start) places from an index that knows that history: loads,
// devices up or not, and devices quarantined before and after New.
func TestService_PlacementAfterReplay(t *testing.T) {
	store, q := events.NewMemory(), events.NewQuarantine()
	h := service.NewHandler(store, codec, replay.NewFixedClock(t0, time.Second), replay.NewSeqIDs("p-"), service.WithQuarantine(q))
	for _, id := range []string{"d1", "d2", "d3", "d4", "d5"} {
		mustDevice(t, h, engine.Announce{ID: id})
	}
	mustDevice(t, h, engine.MarkOffline{ID: "d4", Reason: "last will"})
	for i, dev := range []string{"d1", "d1", "d2", "d5"} {
		id := string(rune('a' + i))
		mustTask(t, h, engine.CreateTask{ID: id, Spec: events.TaskCreated{Name: "add", Module: digest}})
		mustTask(t, h, engine.ScheduleTask{ID: id, Device: dev})
	}
	appendUndecodable(t, store, events.DeviceAggregate("d3")) // d3 is up, idle, and quarantined

	held := projections.WithQuarantine(q)
	tasks, devices := projections.NewTasks(codec, held), projections.NewDevices(codec, held)
	for _, p := range []projections.Projection{tasks, devices} {
		if err := projections.Catchup(testCtx(t), store, p); err != nil {
			t.Fatal(err)
		}
	}
	svc := service.New(h, tasks, devices, nil)
	wfm := service.NewWorkflowManager(svc, replay.NewTimers(), nil)
	ctx, cancel := context.WithCancel(testCtx(t))
	t.Cleanup(cancel)
	for _, p := range []projections.Projection{tasks, devices} {
		go func() { _ = projections.Follow(ctx, store, p) }()
	}

	// d1 has 2 tasks, d2 and d5 one each; turn 4 takes the first of d2, d5.
	if got := service.ServicePlace(svc, ""); got != "d2" {
		t.Fatalf("placed on %q, want d2 (d3 is quarantined, d4 offline)", got)
	}
	mustTask(t, h, engine.CreateTask{ID: "e", Spec: events.TaskCreated{Name: "add", Module: digest}})
	if err := tasks.WaitFor(testCtx(t), lastSeq(t, store, events.KindTask)); err != nil {
		t.Fatal(err)
	}
	if task, err := svc.StartTask(testCtx(t), "e"); err != nil || task.Device != "d2" {
		t.Fatalf("StartTask = %q, %v; want d2", task.Device, err)
	}
	if got := service.ServicePlace(svc, ""); got != "d5" {
		t.Fatalf("next placed on %q, want d5, the only one left with one task", got)
	}
	mustTask(t, h, engine.CreateTask{ID: "f", Spec: events.TaskCreated{Name: "add", Module: digest, TargetDevice: "d3"}})
	if err := tasks.WaitFor(testCtx(t), lastSeq(t, store, events.KindTask)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.StartTask(testCtx(t), "f"); !errors.Is(err, domain.ErrNoDevice) {
		t.Fatalf("StartTask on the quarantined target = %v, want ErrNoDevice", err)
	}

	appendUndecodable(t, store, events.DeviceAggregate("d5")) // quarantined while the service runs
	natstest.CheckFor(t, 10*time.Second, func() error {
		if _, ok := q.Get(events.DeviceAggregate("d5")); !ok {
			return errors.New("d5 is not quarantined yet")
		}
		return nil
	})
	if got := service.ServicePlace(svc, ""); got != "d2" {
		t.Fatalf("placed on %q, want d2 once d5 is quarantined", got)
	}
	if got := service.ServicePlace(svc, "d5"); got != "" {
		t.Fatalf("placed a task for d5 on %q, want none: d5 is quarantined", got)
	}
	var ids []string
	for _, d := range service.ManagerObserved(wfm).Devices {
		ids = append(ids, d.ID)
	}
	if want := []string{"d1", "d2"}; !slices.Equal(ids, want) {
		t.Fatalf("the workflow manager sees %v, want %v", ids, want)
	}
}

func lastSeq(t *testing.T, store events.Store, kind events.Kind) uint64 {
	t.Helper()
	seq, err := store.LastSeq(testCtx(t), kind)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}
