package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// appendUndecodable stores an event of an unknown type after agg's last.
func appendUndecodable(t *testing.T, store events.Store, agg events.Aggregate) uint64 {
	t.Helper()
	v, err := store.Version(testCtx(t), agg)
	if err != nil {
		t.Fatal(err)
	}
	bad := events.Envelope{ID: "bad-" + agg.ID, Type: "task.teleported", Aggregate: agg, Time: t0, Version: 1, Data: json.RawMessage(`{}`)}
	seq, err := store.Append(testCtx(t), agg, v, bad)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// wantQuarantined fails unless err refuses agg for its message at seq.
func wantQuarantined(t *testing.T, err error, agg events.Aggregate, seq uint64) {
	t.Helper()
	qe, ok := errors.AsType[*events.QuarantineError](err)
	if !errors.Is(err, domain.ErrQuarantined) || !ok || qe.Record.Aggregate != agg || qe.Record.Seq != seq {
		t.Fatalf("err = %v, want %s quarantined at %d", err, agg, seq)
	}
}

func TestHandler_Quarantine(t *testing.T) {
	t1 := events.TaskAggregate("t1")
	tests := []struct {
		name string
		// damage makes t1 unreadable and returns the sequence of the
		// message that stops it.
		damage func(t *testing.T, store events.Store, q *events.Quarantine) uint64
		cached bool // the handler that wrote t1 decides (its cache holds t1)
	}{
		{"undecodable event, state cached", func(t *testing.T, s events.Store, _ *events.Quarantine) uint64 {
			return appendUndecodable(t, s, t1)
		}, true},
		{"undecodable event, new handler", func(t *testing.T, s events.Store, _ *events.Quarantine) uint64 {
			return appendUndecodable(t, s, t1)
		}, false},
		{"quarantined by another reader", func(t *testing.T, _ events.Store, q *events.Quarantine) uint64 {
			q.Add(events.NewQuarantined(events.KindTask, "jp.evt.task.t1", nil, nil, 1, errors.New("seen by a projection")))
			return 1
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := events.NewMemory()
			q := events.NewQuarantine()
			writer := service.NewHandler(store, codec, replay.NewFixedClock(t0, time.Second), replay.NewSeqIDs("w-"), service.WithQuarantine(q))
			mustTask(t, writer, engine.CreateTask{ID: "t1", Spec: events.TaskCreated{Name: "add", Module: digest}})
			seq := tc.damage(t, store, q)
			stored := len(load(t, store, t1))
			h := writer
			if !tc.cached {
				h = service.NewHandler(store, codec, replay.NewFixedClock(t0, time.Second), replay.NewSeqIDs("n-"), service.WithQuarantine(q))
			}
			_, err := h.Task(testCtx(t), engine.ScheduleTask{ID: "t1", Device: "d1"})
			wantQuarantined(t, err, t1, seq)
			if _, ok := q.Get(t1); !ok {
				t.Fatal("the shared quarantine does not hold t1")
			}
			// Refused again at once; other tasks are served.
			_, err = h.Task(testCtx(t), engine.StopTask{ID: "t1"})
			wantQuarantined(t, err, t1, seq)
			mustTask(t, h, engine.CreateTask{ID: "t2", Spec: events.TaskCreated{Name: "add", Module: digest}})
			if got := len(load(t, store, t1)); got != stored {
				t.Fatalf("t1 has %d events, want %d: the refused commands appended", got, stored)
			}
		})
	}
}

// A message that is not an event at all (JetStream: no envelope headers)
// quarantines its aggregate on the handler's load, even without a shared
// quarantine.
func TestHandler_QuarantineCorrupt(t *testing.T) {
	nc, _ := natstest.Connect(t, natstest.Start(t))
	store, err := events.NewJetStream(testCtx(t), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("jp.evt.task.x", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		if v, err := store.Version(testCtx(t), events.TaskAggregate("x")); err != nil || v == 0 {
			return errors.New("the raw message is not stored yet")
		}
		return nil
	})
	h := newHandler(store, "ev-")
	_, err = h.Task(testCtx(t), engine.CreateTask{ID: "x", Spec: events.TaskCreated{Name: "add", Module: digest}})
	wantQuarantined(t, err, events.TaskAggregate("x"), 1)
	if r, _ := h.Quarantine().Get(events.TaskAggregate("x")); r.Data != "{}" || r.Subject != "jp.evt.task.x" {
		t.Fatalf("record %+v", r)
	}
}

func TestHandler_QuarantineArtifact(t *testing.T) {
	store := events.NewMemory()
	seq := appendUndecodable(t, store, events.ArtifactAggregate("app"))
	h := newHandler(store, "ev-")
	_, err := h.LoadArtifact(testCtx(t), "app")
	wantQuarantined(t, err, events.ArtifactAggregate("app"), seq)
	_, err = h.Artifact(testCtx(t), engine.TagArtifact{Name: "app", Tag: "1", Digest: digest, Size: 10})
	wantQuarantined(t, err, events.ArtifactAggregate("app"), seq)
}

// quarantineRig is a service over a memory store, its read models
// following it with a shared quarantine, and a workflow manager.
type quarantineRig struct {
	store  *events.Memory
	q      *events.Quarantine
	h      *service.Handler
	svc    *service.Service
	wfs    *projections.Workflows
	timers *replay.Timers
	wfm    *service.WorkflowManager
}

func newQuarantineRig(t *testing.T) quarantineRig {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := quarantineRig{store: events.NewMemory(), q: events.NewQuarantine(), timers: replay.NewTimers()}
	r.h = service.NewHandler(r.store, codec, replay.NewFixedClock(t0, time.Second), replay.NewSeqIDs("ev-"), service.WithQuarantine(r.q))
	held := projections.WithQuarantine(r.q)
	tasks, devs := projections.NewTasks(codec, held), projections.NewDevices(codec, held)
	r.wfs = projections.NewWorkflows(codec, held)
	for _, p := range []projections.Projection{tasks, devs, r.wfs} {
		go func() { _ = projections.Follow(ctx, r.store, p) }()
	}
	r.svc = service.New(r.h, tasks, devs, nil, service.WithWorkflows(r.wfs))
	r.wfm = service.NewWorkflowManager(r.svc, r.timers, nil)
	return r
}

func TestService_Quarantine(t *testing.T) {
	r := newQuarantineRig(t)
	tSeq := appendUndecodable(t, r.store, events.TaskAggregate("t1"))
	wSeq := appendUndecodable(t, r.store, events.WorkflowAggregate("w1"))
	dSeq := appendUndecodable(t, r.store, events.DeviceAggregate("d1"))
	natstest.CheckFor(t, 10*time.Second, func() error {
		if n := r.svc.Quarantine().Len(); n != 3 {
			return errors.New("the read models have not quarantined all three yet")
		}
		return nil
	})
	// Nothing good of them was read: asking for them says why, not 404.
	_, err := r.svc.GetTask("t1")
	wantQuarantined(t, err, events.TaskAggregate("t1"), tSeq)
	_, err = r.svc.GetWorkflow("w1")
	wantQuarantined(t, err, events.WorkflowAggregate("w1"), wSeq)
	_, err = r.svc.GetDevice("d1")
	wantQuarantined(t, err, events.DeviceAggregate("d1"), dSeq)
	_, err = r.svc.StartTask(testCtx(t), "t1")
	wantQuarantined(t, err, events.TaskAggregate("t1"), tSeq)
	if _, err := r.svc.GetTask("t2"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("GetTask(t2) = %v, want ErrNotFound", err)
	}
}

func TestWorkflowManager_Quarantine(t *testing.T) {
	r := newQuarantineRig(t)
	spec := engine.WorkflowSpec{Name: "nightly", Cron: "0 3 * * *", Steps: []engine.StepSpec{{Name: "a", Module: digest}}}
	if _, err := r.svc.Workflow(testCtx(t), engine.CreateWorkflow{ID: "w1", Spec: spec, At: t0}); err != nil {
		t.Fatal(err)
	}
	appendUndecodable(t, r.store, events.WorkflowAggregate("w1"))
	stored := len(load(t, r.store, events.WorkflowAggregate("w1")))
	natstest.CheckFor(t, 10*time.Second, func() error {
		if _, ok := r.q.Get(events.WorkflowAggregate("w1")); !ok {
			return errors.New("w1 is not quarantined yet")
		}
		return nil
	})
	if err := r.wfm.Reconcile(testCtx(t), "w1"); err != nil {
		t.Fatalf("Reconcile = %v, want the quarantined workflow left alone", err)
	}
	// A timer of a quarantined workflow is dropped (no redelivery loop),
	// and a cron creates no run of it.
	for _, kind := range []string{engine.TimerCron, engine.TimerDeadline} {
		payload, _ := json.Marshal(engine.TimerFire{Kind: kind, Workflow: "w1"})
		if err := r.wfm.FireTimer(testCtx(t), payload, t0.Add(time.Hour)); err != nil {
			t.Fatalf("FireTimer(%s) = %v, want nil", kind, err)
		}
	}
	if _, total := r.wfs.List(0, 10); total != 1 {
		t.Fatalf("%d workflows, want only w1: a cron run was created", total)
	}
	if got := len(load(t, r.store, events.WorkflowAggregate("w1"))); got != stored {
		t.Fatalf("w1 has %d events, want %d: something was appended after the bad one", got, stored)
	}
}

// A quarantined device shows its last good state, which may say up
// forever (its heartbeats and last will are refused): no task goes there.
func TestService_PlacementSkipsQuarantinedDevice(t *testing.T) {
	r := newQuarantineRig(t)
	for _, id := range []string{"d1", "d2"} {
		mustDevice(t, r.h, engine.Announce{ID: id})
	}
	dSeq := appendUndecodable(t, r.store, events.DeviceAggregate("d1"))
	natstest.CheckFor(t, 10*time.Second, func() error {
		if _, ok := r.q.Get(events.DeviceAggregate("d1")); !ok {
			return errors.New("d1 is not quarantined yet")
		}
		if len(r.svc.ListDevices()) != 2 {
			return errors.New("the devices are not in the read model yet")
		}
		return nil
	})
	for i := range 3 {
		id := fmt.Sprintf("t%d", i)
		mustTask(t, r.h, engine.CreateTask{ID: id, Spec: events.TaskCreated{Name: "add", Module: digest}})
		natstest.CheckFor(t, 10*time.Second, func() error {
			_, err := r.svc.GetTask(id)
			return err
		})
		task, err := r.svc.StartTask(testCtx(t), id)
		if err != nil || task.Device != "d2" {
			t.Fatalf("start %s: placed on %q, %v; want d2", id, task.Device, err)
		}
	}
	_, err := r.h.Device(testCtx(t), engine.Heartbeat{ID: "d1"})
	wantQuarantined(t, err, events.DeviceAggregate("d1"), dSeq)
}
