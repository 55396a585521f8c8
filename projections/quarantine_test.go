package projections_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

// appendRaw stores env after agg's last event, as a buggy or hostile
// writer could: the store does not decode bodies.
func appendRaw(t *testing.T, store events.Store, env events.Envelope) uint64 {
	t.Helper()
	v, err := store.Version(testCtx(t), env.Aggregate)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := store.Append(testCtx(t), env.Aggregate, v, env)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func undecodable(id, typ, data string) events.Envelope {
	return events.Envelope{ID: "bad-" + id + typ, Type: typ, Aggregate: events.TaskAggregate(id), Time: t0, Version: 1, Data: json.RawMessage(data)}
}

func TestTasks_Quarantine(t *testing.T) {
	tests := []struct {
		name string
		bad  events.Envelope
	}{
		{"unknown type", undecodable("t1", "task.teleported", `{}`)},
		{"body that does not fit its type", undecodable("t1", "task.scheduled", `{"attempt": "one"}`)},
		{"body that is not JSON", undecodable("t1", "task.scheduled", `{`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := events.NewMemory()
			r := newRun(t, store).task(create("t1"), schedule("t1", "pi-1"), create("t2"))
			good := r.tasks["t1"]
			badSeq := appendRaw(t, store, tc.bad)
			// Events after the bad one, of t1 (the handler refuses its
			// commands now, so written raw; the model stays frozen) and of
			// t2 (applied).
			started, err := events.Wrap(events.TaskAggregate("t1"), "late", events.Meta{Time: t0}, events.TaskStarted{Attempt: 1})
			if err != nil {
				t.Fatal(err)
			}
			appendRaw(t, store, started)
			r.task(schedule("t2", "pi-2"))
			q := events.NewQuarantine()
			tasks := projections.NewTasks(codec, projections.WithQuarantine(q))
			var mu sync.Mutex
			var observed []string
			tasks.Observe(func(env events.Envelope) {
				mu.Lock()
				defer mu.Unlock()
				observed = append(observed, fmt.Sprintf("%s %d", env.Aggregate.ID, env.Seq))
			})
			if err := projections.Catchup(testCtx(t), store, tasks); err != nil {
				t.Fatalf("Catchup = %v, want the bad event skipped", err)
			}
			if got, _ := tasks.Get("t1"); got.State != engine.TaskScheduled || got.Seq != good.Seq {
				t.Fatalf("t1 is %s at %d, want its last good state: scheduled at %d", got.State, got.Seq, good.Seq)
			}
			if got, _ := tasks.Get("t2"); got.State != engine.TaskScheduled {
				t.Fatalf("t2 is %s, want scheduled: the rest of the stream applies", got.State)
			}
			last, _ := store.LastSeq(testCtx(t), events.KindTask)
			if tasks.LastSeq() != last {
				t.Fatalf("LastSeq = %d, want %d: held events still move the cursor", tasks.LastSeq(), last)
			}
			rec, ok := q.Get(events.TaskAggregate("t1"))
			if !ok || rec.Seq != badSeq || rec.Headers[events.HeaderType][0] != tc.bad.Type || rec.Data != string(tc.bad.Data) {
				t.Fatalf("quarantine record %+v, %t; want seq %d with the envelope", rec, ok, badSeq)
			}
			if err := q.Check(events.TaskAggregate("t1")); !errors.Is(err, domain.ErrQuarantined) {
				t.Fatalf("Check = %v", err)
			}
			if want := "[t1 1 t1 2 t2 3 t2 6]"; fmt.Sprint(observed) != want {
				t.Fatalf("observers told of %v, want %s: nothing of t1 from the bad event on", observed, want)
			}
		})
	}
}

// A message quarantined by another reader (the store, the handler) stops
// the aggregate from that message on, even before the projection reaches it.
func TestWorkflows_QuarantinedElsewhere(t *testing.T) {
	store := events.NewMemory()
	h := newHandler(store)
	spec := engine.WorkflowSpec{Name: "w", Steps: []engine.StepSpec{{Name: "a", Module: digest}}}
	w, err := h.Workflow(testCtx(t), engine.CreateWorkflow{ID: "w1", Spec: spec, At: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Workflow(testCtx(t), engine.CancelWorkflow{ID: "w1", Reason: "later"}); err != nil {
		t.Fatal(err)
	}
	q := events.NewQuarantine()
	q.Add(events.NewQuarantined(events.KindWorkflow, "jp.evt.wf.w1", nil, nil, w.Seq+1, errors.New("bad Jp-Time")))
	wfs := projections.NewWorkflows(codec, projections.WithQuarantine(q))
	if err := projections.Catchup(testCtx(t), store, wfs); err != nil {
		t.Fatal(err)
	}
	if got, ok := wfs.Get("w1"); !ok || got.State.Terminal() || got.Seq != w.Seq {
		t.Fatalf("w1 %s at %d, want its state before the quarantined message (%d)", got.State, got.Seq, w.Seq)
	}
}

// Without a quarantine an event that does not decode fails Apply, as
// before quarantines existed (TestCatchup_UnknownType).
func TestDevices_NoQuarantine(t *testing.T) {
	store := events.NewMemory()
	appendRaw(t, store, events.Envelope{ID: "x", Type: "device.alive", Aggregate: events.DeviceAggregate("d1"), Time: t0, Version: 1, Data: json.RawMessage(`[]`)})
	err := projections.Catchup(testCtx(t), store, projections.NewDevices(codec))
	if _, ok := errors.AsType[*events.DecodeError](err); !ok {
		t.Fatalf("Catchup = %v, want a *DecodeError", err)
	}
}
