package engine_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// fold applies evs to w as stored events at successive sequences, one
// second apart from t0.
func foldWF(t *testing.T, w engine.Workflow, evs ...events.Event) engine.Workflow {
	t.Helper()
	for _, ev := range evs {
		seq := w.Seq + 1
		w = w.Apply(events.Envelope{Aggregate: events.WorkflowAggregate("wf"), Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second)}, ev)
	}
	return w
}

func wfCreated(t *testing.T, spec engine.WorkflowSpec) events.Event {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	ev := events.WorkflowCreated{Spec: b}
	if d, err := time.ParseDuration(spec.Deadline); err == nil {
		ev.DeadlineAt = t0.Add(d)
	}
	return ev
}

func noTasks(string) (engine.Task, bool) { return engine.Task{}, false }

// TestReconcile_Settle: a state lacking the consequences it calls for (a
// write cut short) gets them recorded first, by Settle.
func TestReconcile_Settle(t *testing.T) {
	spec := engine.WorkflowSpec{Name: "s", Steps: []engine.StepSpec{
		{Name: "a", Module: "m:1"}, {Name: "b", Module: "m:1", DependsOn: []string{"a"}},
	}}
	w := foldWF(t, engine.Workflow{}, wfCreated(t, spec),
		events.WorkflowStepStarted{Step: "a", Attempt: 1, TaskID: "wf-a-1"},
		events.WorkflowStepFailed{Step: "a", Attempt: 1, Reason: "boom", Final: true}) // no skip of b, no terminal event
	acts := engine.Reconcile(w, engine.Observed{Task: noTasks})
	if len(acts) == 0 || !reflect.DeepEqual(acts[0], engine.RecordCommand{Command: engine.Settle{ID: "wf"}}) {
		t.Fatalf("actions %+v, want Settle first", acts)
	}
	evs, err := engine.DecideWorkflow(w, engine.Settle{ID: "wf"})
	want := []events.Event{events.WorkflowStepSkipped{Step: "b", Reason: "dependency a failed"}, events.WorkflowFailed{Reason: "failed steps: a"}}
	if err != nil || !reflect.DeepEqual(evs, want) {
		t.Fatalf("settle = %+v, %v; want %+v", evs, err, want)
	}
	if evs, _ := engine.DecideWorkflow(foldWF(t, w, evs...), engine.Settle{ID: "wf"}); len(evs) != 0 {
		t.Fatalf("settle of a settled workflow = %+v", evs)
	}
}

// TestReconcile_Actions: a step's task is created, recorded, placed; once
// it ran, its outcome is recorded; timers count from the events' times.
func TestReconcile_Actions(t *testing.T) {
	spec := engine.WorkflowSpec{Name: "s", Deadline: "1h", Steps: []engine.StepSpec{
		{Name: "a", Module: "sha256:0000000000000000000000000000000000000000000000000000000000000000", Function: "f", Timeout: "10s", Inputs: []string{"1"}},
		{Name: "fan", Module: "m:1", Placement: engine.StepPlacement{Selector: map[string]string{"tag": "gpu"}}, DependsOn: []string{"a"}},
	}}
	w := foldWF(t, engine.Workflow{}, wfCreated(t, spec))
	acts := engine.Reconcile(w, engine.Observed{Task: noTasks})
	wantTask := events.TaskCreated{Name: "f", Module: spec.Steps[0].Module, Inputs: []string{"1"}, TimeoutMS: 10000, Workflow: "wf", Step: "a", StepAttempt: 1}
	deadline := engine.ScheduleTimer{ID: "wf_wf_deadline", At: t0.Add(time.Hour), Fire: engine.TimerFire{Kind: engine.TimerDeadline, Workflow: "wf"}}
	want := []engine.Action{
		deadline,
		engine.CreateStepTask{TaskID: "wf-a-1", Spec: wantTask},
		engine.RecordCommand{Command: engine.StartStep{ID: "wf", Step: "a", Attempt: 1, TaskID: "wf-a-1"}},
		engine.StartStepTask{TaskID: "wf-a-1"},
	}
	if !reflect.DeepEqual(acts, want) {
		t.Fatalf("actions\n got %+v\nwant %+v", acts, want)
	}

	w = foldWF(t, w, events.WorkflowStepStarted{Step: "a", Attempt: 1, TaskID: "wf-a-1"})
	started := w.Steps[0].StartedAt
	done := engine.Task{ID: "wf-a-1", State: engine.TaskCompleted, Result: json.RawMessage(`"2"`)}
	acts = engine.Reconcile(w, engine.Observed{Task: func(id string) (engine.Task, bool) { return done, id == done.ID }})
	timeout := engine.TimerFire{Kind: engine.TimerTimeout, Workflow: "wf", Step: "a", Attempt: 1}
	want = []engine.Action{
		engine.RecordCommand{Command: engine.StepFinished{ID: "wf", Step: "a", Attempt: 1, TaskID: "wf-a-1", Result: json.RawMessage(`"2"`)}},
		deadline,
		engine.ScheduleTimer{ID: timeout.TimerID(), At: started.Add(10 * time.Second), Fire: timeout},
	}
	if !reflect.DeepEqual(acts, want) {
		t.Fatalf("actions\n got %+v\nwant %+v", acts, want)
	}

	// The fan-out step waits while no device matches its selector.
	w = foldWF(t, w, events.WorkflowStepCompleted{Step: "a", Attempt: 1, Result: json.RawMessage(`"2"`)})
	cpu := engine.Device{ID: "d1", State: engine.DeviceAlive}
	if acts := engine.Reconcile(w, engine.Observed{Task: noTasks, Devices: []engine.Device{cpu}}); !reflect.DeepEqual(acts, []engine.Action{deadline}) {
		t.Fatalf("fan-out started with no matching device: %+v", acts)
	}
	gpu := engine.Device{ID: "d2", State: engine.DeviceAlive, Metadata: events.DeviceMetadata{Tags: []string{"gpu"}}}
	acts = engine.Reconcile(w, engine.Observed{Task: noTasks, Devices: []engine.Device{cpu, gpu}})
	if len(acts) != 4 || acts[1].(engine.CreateStepTask).Spec.TargetDevice != "d2" {
		t.Fatalf("fan-out actions %+v", acts)
	}
}
