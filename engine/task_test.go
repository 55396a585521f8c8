package engine_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

const digest = "sha256:0b1e0f3d6c0a9b0c6d8e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c"

// taskOf folds evs into a task "t1", one second and one sequence apart.
func taskOf(evs ...events.Event) engine.Task {
	var t engine.Task
	for i, ev := range evs {
		env := events.Envelope{
			ID:        "e" + string(rune('a'+i)),
			Type:      ev.EventType(),
			Aggregate: events.TaskAggregate("t1"),
			Time:      t0.Add(time.Duration(i) * time.Second),
			Seq:       uint64(i + 1),
		}
		t = t.Apply(env, ev)
	}
	return t
}

var (
	created     = events.TaskCreated{Name: "add", Module: digest, ModuleSize: 42, Inputs: []string{"1", "2"}}
	createdBare = events.TaskCreated{Name: "add"}
	createdOCI  = events.TaskCreated{Name: "add", ImageURL: "docker.io/jetprop/add:1"}
	sched1      = events.TaskScheduled{Device: "dev-a", Attempt: 1}
	started1    = events.TaskStarted{Device: "dev-a", Attempt: 1}
	completed1  = events.TaskCompleted{Device: "dev-a", Attempt: 1, Result: json.RawMessage(`"3"`)}
	failed1     = events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "trap"}
	stopped1    = events.TaskStopped{Device: "dev-a", Attempt: 1, Reason: "stopped by request"}
	sched2      = events.TaskScheduled{Device: "dev-b", Attempt: 2}
	completed2  = events.TaskCompleted{Device: "dev-b", Attempt: 2, Result: json.RawMessage(`"3"`)}
)

// The task states every command is decided against.
var (
	none       = engine.Task{}
	pending    = taskOf(created)
	bare       = taskOf(createdBare)
	oci        = taskOf(createdOCI)
	scheduled  = taskOf(created, sched1)
	running    = taskOf(created, sched1, started1)
	completed  = taskOf(created, sched1, started1, completed1)
	early      = taskOf(created, sched1, completed1) // result before MarkStarted
	failed     = taskOf(created, sched1, started1, failed1)
	stopped    = taskOf(created, sched1, started1, stopped1)
	retried    = taskOf(created, sched1, stopped1, sched2)
	retriedEnd = taskOf(created, sched1, stopped1, sched2, completed2)
	deleted    = taskOf(created, events.TaskDeleted{})
)

// otherCommand is a command DecideTask does not know.
type otherCommand struct{}

func (otherCommand) TaskID() string { return "t1" }

type decideTaskTest struct {
	name    string
	task    engine.Task
	cmd     engine.TaskCommand
	want    []events.Event
	wantErr error
}

func runDecideTask(t *testing.T, tests []decideTaskTest) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.DecideTask(tc.task, tc.cmd)
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func evs(e ...events.Event) []events.Event { return e }

func TestDecideTask_Create(t *testing.T) {
	runDecideTask(t, []decideTaskTest{
		{name: "new", task: none, cmd: engine.CreateTask{ID: "t1", Spec: created}, want: evs(created)},
		{name: "without module", task: none, cmd: engine.CreateTask{ID: "t1", Spec: createdBare}, want: evs(createdBare)},
		{name: "exists", task: pending, cmd: engine.CreateTask{ID: "t1", Spec: created}, wantErr: domain.ErrExists},
		{name: "deleted ids are not reused", task: deleted, cmd: engine.CreateTask{ID: "t1", Spec: created}, wantErr: domain.ErrExists},
		{name: "empty id", task: none, cmd: engine.CreateTask{Spec: created}, wantErr: domain.ErrInvalid},
		{name: "id with a dot", task: none, cmd: engine.CreateTask{ID: "t.1", Spec: created}, wantErr: domain.ErrInvalid},
		{name: "id with a wildcard", task: none, cmd: engine.CreateTask{ID: "t*", Spec: created}, wantErr: domain.ErrInvalid},
		{name: "no name", task: none, cmd: engine.CreateTask{ID: "t1", Spec: events.TaskCreated{Module: digest}}, wantErr: domain.ErrInvalid},
		{name: "negative timeout", task: none, cmd: engine.CreateTask{ID: "t1", Spec: events.TaskCreated{Name: "f", TimeoutMS: -1}}, wantErr: domain.ErrInvalid},
		{name: "negative memory", task: none, cmd: engine.CreateTask{ID: "t1", Spec: events.TaskCreated{Name: "f", MemoryMiB: -1}}, wantErr: domain.ErrInvalid},
	})
}

func TestDecideTask_AttachModule(t *testing.T) {
	attach := engine.AttachModule{ID: "t1", Module: "sha256:beef", Size: 7}
	attached := events.TaskModuleAttached{Module: "sha256:beef", ModuleSize: 7}
	runDecideTask(t, []decideTaskTest{
		{name: "unknown", task: none, cmd: attach, wantErr: domain.ErrNotFound},
		{name: "deleted", task: deleted, cmd: attach, wantErr: domain.ErrNotFound},
		{name: "pending without module", task: bare, cmd: attach, want: evs(attached)},
		{name: "pending replaces module", task: pending, cmd: attach, want: evs(attached)},
		{name: "same module", task: pending, cmd: engine.AttachModule{ID: "t1", Module: digest, Size: 42}},
		{name: "empty digest", task: pending, cmd: engine.AttachModule{ID: "t1"}, wantErr: domain.ErrInvalid},
		{name: "scheduled", task: scheduled, cmd: attach, wantErr: domain.ErrInvalidState},
		{name: "running", task: running, cmd: attach, wantErr: domain.ErrInvalidState},
		{name: "failed", task: failed, cmd: attach, want: evs(attached)},
		{name: "stopped", task: stopped, cmd: attach, want: evs(attached)},
	})
}

func TestDecideTask_Schedule(t *testing.T) {
	onA := engine.ScheduleTask{ID: "t1", Device: "dev-a"}
	runDecideTask(t, []decideTaskTest{
		{name: "unknown", task: none, cmd: onA, wantErr: domain.ErrNotFound},
		{name: "deleted", task: deleted, cmd: onA, wantErr: domain.ErrNotFound},
		{name: "pending", task: pending, cmd: onA, want: evs(sched1)},
		{name: "pending by image url", task: oci, cmd: onA, want: evs(sched1)},
		{name: "pending without module", task: bare, cmd: onA, wantErr: domain.ErrInvalid},
		{name: "no device", task: pending, cmd: engine.ScheduleTask{ID: "t1"}, wantErr: domain.ErrNoDevice},
		{name: "scheduled", task: scheduled, cmd: onA, wantErr: domain.ErrInvalidState},
		{name: "running", task: running, cmd: onA, wantErr: domain.ErrInvalidState},
		{name: "completed", task: completed, cmd: onA, wantErr: domain.ErrInvalidState},
		{name: "failed retries", task: failed, cmd: engine.ScheduleTask{ID: "t1", Device: "dev-b"}, want: evs(sched2)},
		{name: "stopped restarts", task: stopped, cmd: engine.ScheduleTask{ID: "t1", Device: "dev-b"}, want: evs(sched2)},
	})
}

func TestDecideTask_MarkStarted(t *testing.T) {
	start1 := engine.MarkStarted{ID: "t1", Attempt: 1}
	runDecideTask(t, []decideTaskTest{
		{name: "unknown", task: none, cmd: start1, wantErr: domain.ErrNotFound},
		{name: "scheduled", task: scheduled, cmd: start1, want: evs(started1)},
		{name: "running", task: running, cmd: start1},
		{name: "other attempt", task: scheduled, cmd: engine.MarkStarted{ID: "t1", Attempt: 2}},
		{name: "old attempt", task: retried, cmd: start1},
		{name: "retried", task: retried, cmd: engine.MarkStarted{ID: "t1", Attempt: 2}, want: evs(events.TaskStarted{Device: "dev-b", Attempt: 2})},
		{name: "after the result", task: early, cmd: start1},
		{name: "after completion", task: completed, cmd: start1},
		{name: "after a stop", task: stopped, cmd: start1},
		{name: "pending", task: pending, cmd: engine.MarkStarted{ID: "t1"}},
	})
}

func TestDecideTask_Result(t *testing.T) {
	result := func(r string) engine.RecordResult {
		return engine.RecordResult{ID: "t1", Device: "dev-a", Result: json.RawMessage(r)}
	}
	runDecideTask(t, []decideTaskTest{
		{name: "unknown", task: none, cmd: result(`"3"`), wantErr: domain.ErrNotFound},
		{name: "running", task: running, cmd: result(`"3"`), want: evs(completed1)},
		{name: "still scheduled", task: scheduled, cmd: result(`"3"`), want: evs(completed1)},
		{name: "attempt given", task: running, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: json.RawMessage(`"3"`)}, want: evs(completed1)},
		{name: "device not given: not attributable", task: running, cmd: engine.RecordResult{ID: "t1", Result: json.RawMessage(`"3"`)}, wantErr: domain.ErrStale},
		{name: "another device", task: running, cmd: engine.RecordResult{ID: "t1", Device: "dev-b", Result: json.RawMessage(`"3"`)}, wantErr: domain.ErrStale},
		{name: "json object", task: running, cmd: result(`{"w":[1,2]}`),
			want: evs(events.TaskCompleted{Device: "dev-a", Attempt: 1, Result: json.RawMessage(`{"w":[1,2]}`)})},
		{name: "no result", task: running, cmd: result(``),
			want: evs(events.TaskCompleted{Device: "dev-a", Attempt: 1, Result: json.RawMessage(`null`)})},
		{name: "error", task: running, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Error: "trap"}, want: evs(failed1)},
		{name: "error while scheduled", task: scheduled, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Error: "trap"}, want: evs(failed1)},
		{name: "duplicate", task: completed, cmd: result(`"3"`)},
		{name: "duplicate with another value", task: completed, cmd: result(`"4"`)},
		{name: "late after a stop", task: stopped, cmd: result(`"3"`)},
		{name: "late after a failure", task: failed, cmd: result(`"3"`)},
		{name: "older attempt", task: retried, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: json.RawMessage(`"3"`)}, wantErr: domain.ErrStale},
		{name: "older attempt after the newer finished", task: retriedEnd, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1}, wantErr: domain.ErrStale},
		{name: "future attempt", task: running, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 2}, wantErr: domain.ErrStale},
		{name: "another device", task: running, cmd: engine.RecordResult{ID: "t1", Device: "dev-b"}, wantErr: domain.ErrStale},
		{name: "previous device of a retried task", task: retried, cmd: result(`"3"`), wantErr: domain.ErrStale},
		{name: "pending", task: pending, cmd: result(`"3"`), wantErr: domain.ErrStale},
	})
}

func TestDecideTask_Fail(t *testing.T) {
	fail := engine.FailTask{ID: "t1", Attempt: 1, Reason: "trap"}
	runDecideTask(t, []decideTaskTest{
		{name: "unknown", task: none, cmd: fail, wantErr: domain.ErrNotFound},
		{name: "running", task: running, cmd: fail, want: evs(failed1)},
		{name: "scheduled", task: scheduled, cmd: fail, want: evs(failed1)},
		{name: "other attempt", task: retried, cmd: fail},
		{name: "completed", task: completed, cmd: fail},
		{name: "failed", task: failed, cmd: fail},
		{name: "pending", task: pending, cmd: engine.FailTask{ID: "t1", Reason: "x"}},
	})
}

func TestDecideTask_Stop(t *testing.T) {
	stop := engine.StopTask{ID: "t1"}
	runDecideTask(t, []decideTaskTest{
		{name: "unknown", task: none, cmd: stop, wantErr: domain.ErrNotFound},
		{name: "running", task: running, cmd: stop, want: evs(stopped1)},
		{name: "scheduled", task: scheduled, cmd: stop, want: evs(stopped1)},
		{name: "with a reason", task: running, cmd: engine.StopTask{ID: "t1", Reason: "bored"},
			want: evs(events.TaskStopped{Device: "dev-a", Attempt: 1, Reason: "bored"})},
		{name: "stopped", task: stopped, cmd: stop},
		{name: "completed", task: completed, cmd: stop, wantErr: domain.ErrInvalidState},
		{name: "failed", task: failed, cmd: stop, wantErr: domain.ErrInvalidState},
		{name: "pending", task: pending, cmd: stop, wantErr: domain.ErrInvalidState},
	})
}

func TestDecideTask_Delete(t *testing.T) {
	del := engine.DeleteTask{ID: "t1"}
	runDecideTask(t, []decideTaskTest{
		{name: "unknown", task: none, cmd: del, wantErr: domain.ErrNotFound},
		{name: "deleted", task: deleted, cmd: del, wantErr: domain.ErrNotFound},
		{name: "pending", task: pending, cmd: del, want: evs(events.TaskDeleted{})},
		{name: "completed", task: completed, cmd: del, want: evs(events.TaskDeleted{})},
		{name: "stopped", task: stopped, cmd: del, want: evs(events.TaskDeleted{})},
		{name: "scheduled", task: scheduled, cmd: del, wantErr: domain.ErrInvalidState},
		{name: "running", task: running, cmd: del, wantErr: domain.ErrInvalidState},
	})
}

func TestDecideTask_UnknownCommand(t *testing.T) {
	runDecideTask(t, []decideTaskTest{
		{name: "existing task", task: pending, cmd: otherCommand{}, wantErr: domain.ErrInvalid},
		{name: "unknown task", task: none, cmd: otherCommand{}, wantErr: domain.ErrNotFound},
	})
}

// A result that arrives before the dispatcher marks the task started
// completes it; the late MarkStarted changes nothing. Propeller loses such
// results (the task stays Running forever).
func TestDecideTask_ResultBeforeStarted(t *testing.T) {
	hist := []events.Event{created, sched1}
	for _, cmd := range []engine.TaskCommand{
		engine.RecordResult{ID: "t1", Device: "dev-a", Result: json.RawMessage(`"3"`)},
		engine.MarkStarted{ID: "t1", Attempt: 1},
		engine.RecordResult{ID: "t1", Device: "dev-a", Result: json.RawMessage(`"3"`)}, // redelivered
	} {
		out, err := engine.DecideTask(taskOf(hist...), cmd)
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		hist = append(hist, out...)
	}
	got := taskOf(hist...)
	if got.State != engine.TaskCompleted || string(got.Result) != `"3"` || len(hist) != 3 {
		t.Fatalf("state %s result %s after %d events, want completed \"3\" after 3", got.State, got.Result, len(hist))
	}
	if !got.StartedAt.IsZero() {
		t.Errorf("StartedAt = %v, want zero: the start was never recorded", got.StartedAt)
	}
}

func TestTask_Apply(t *testing.T) {
	tests := []struct {
		name string
		got  engine.Task
		want engine.Task
	}{
		{
			name: "created",
			got:  pending,
			want: engine.Task{ID: "t1", TaskCreated: created, State: engine.TaskPending, CreatedAt: t0, UpdatedAt: t0, Seq: 1},
		},
		{
			name: "module attached",
			got:  taskOf(createdBare, events.TaskModuleAttached{Module: digest, ModuleSize: 9}),
			want: engine.Task{
				ID: "t1", TaskCreated: events.TaskCreated{Name: "add", Module: digest, ModuleSize: 9},
				CreatedAt: t0, UpdatedAt: t0.Add(time.Second), Seq: 2,
			},
		},
		{
			name: "completed",
			got:  completed,
			want: engine.Task{
				ID: "t1", TaskCreated: created, State: engine.TaskCompleted, Device: "dev-a", Attempt: 1,
				Result: json.RawMessage(`"3"`), CreatedAt: t0, UpdatedAt: t0.Add(3 * time.Second),
				StartedAt: t0.Add(2 * time.Second), FinishedAt: t0.Add(3 * time.Second), Seq: 4,
			},
		},
		{
			name: "failed",
			got:  failed,
			want: engine.Task{
				ID: "t1", TaskCreated: created, State: engine.TaskFailed, Device: "dev-a", Attempt: 1,
				Error: "trap", CreatedAt: t0, UpdatedAt: t0.Add(3 * time.Second),
				StartedAt: t0.Add(2 * time.Second), FinishedAt: t0.Add(3 * time.Second), Seq: 4,
			},
		},
		{
			name: "rescheduling clears the previous attempt",
			got:  taskOf(created, sched1, started1, failed1, sched2),
			want: engine.Task{
				ID: "t1", TaskCreated: created, State: engine.TaskScheduled, Device: "dev-b", Attempt: 2,
				CreatedAt: t0, UpdatedAt: t0.Add(4 * time.Second), Seq: 5,
			},
		},
		{
			name: "stopped",
			got:  stopped,
			want: engine.Task{
				ID: "t1", TaskCreated: created, State: engine.TaskStopped, Device: "dev-a", Attempt: 1,
				Error: "stopped by request", CreatedAt: t0, UpdatedAt: t0.Add(3 * time.Second),
				StartedAt: t0.Add(2 * time.Second), FinishedAt: t0.Add(3 * time.Second), Seq: 4,
			},
		},
		{
			name: "deleted",
			got:  deleted,
			want: engine.Task{
				ID: "t1", TaskCreated: created, State: engine.TaskPending, Deleted: true,
				CreatedAt: t0, UpdatedAt: t0.Add(time.Second), Seq: 2,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", tc.got, tc.want)
			}
		})
	}
}

func TestTask_Exists(t *testing.T) {
	tests := []struct {
		name              string
		task              engine.Task
		exists, hasModule bool
	}{
		{"none", none, false, false},
		{"pending", pending, true, true},
		{"without module", bare, true, false},
		{"by image url", oci, true, true},
		{"deleted", deleted, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.task.Exists(); got != tc.exists {
				t.Errorf("Exists() = %v, want %v", got, tc.exists)
			}
			if got := tc.task.HasModule(); got != tc.hasModule {
				t.Errorf("HasModule() = %v, want %v", got, tc.hasModule)
			}
		})
	}
}

func TestTaskState(t *testing.T) {
	tests := []struct {
		state            engine.TaskState
		name             string
		terminal, active bool
		propeller        int
	}{
		{engine.TaskPending, "pending", false, false, 0},
		{engine.TaskScheduled, "scheduled", false, true, 1},
		{engine.TaskRunning, "running", false, true, 2},
		{engine.TaskCompleted, "completed", true, false, 3},
		{engine.TaskFailed, "failed", true, false, 4},
		{engine.TaskStopped, "stopped", true, false, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.state.String(); got != tc.name {
				t.Errorf("String() = %q", got)
			}
			if tc.state.Terminal() != tc.terminal || tc.state.Active() != tc.active {
				t.Errorf("Terminal() = %v, Active() = %v", tc.state.Terminal(), tc.state.Active())
			}
			if got := tc.state.PropellerState(); got != tc.propeller {
				t.Errorf("PropellerState() = %d, want %d", got, tc.propeller)
			}
			b, err := json.Marshal(tc.state)
			if err != nil || string(b) != `"`+tc.name+`"` {
				t.Fatalf("Marshal = %s, %v", b, err)
			}
			var back engine.TaskState
			if err := json.Unmarshal(b, &back); err != nil || back != tc.state {
				t.Fatalf("Unmarshal = %v, %v", back, err)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		var s engine.TaskState
		if err := s.UnmarshalText([]byte("lost")); err == nil {
			t.Fatal("UnmarshalText(lost) succeeded")
		}
		if got := engine.TaskState(42).String(); got != "state(42)" {
			t.Errorf("String() = %q", got)
		}
	})
}

// A task survives its JSON form (the projection snapshot and API shape).
func TestTask_JSON(t *testing.T) {
	for _, task := range []engine.Task{pending, completed, failed, retried} {
		b, err := json.Marshal(task)
		if err != nil {
			t.Fatal(err)
		}
		var back engine.Task
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, task) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", b, back, task)
		}
	}
}

func TestDecideTask_Accepted(t *testing.T) {
	accept := engine.MarkStarted{ID: "t1", Attempt: 1, Device: "dev-a"}
	runDecideTask(t, []decideTaskTest{
		{name: "scheduled", task: scheduled, cmd: accept, want: evs(events.TaskStarted{Device: "dev-a", Attempt: 1, Accepted: true})},
		{name: "accepted again", task: taskOf(created, sched1, events.TaskStarted{Device: "dev-a", Attempt: 1, Accepted: true}), cmd: accept},
		{name: "after the result", task: early, cmd: accept},
		{name: "from another device", task: scheduled, cmd: engine.MarkStarted{ID: "t1", Attempt: 1, Device: "dev-b"}, wantErr: domain.ErrStale},
		{name: "an old attempt", task: retried, cmd: accept, wantErr: domain.ErrStale},
	})
	if got := taskOf(created, sched1, events.TaskStarted{Device: "dev-a", Attempt: 1, Accepted: true}); !got.Accepted || got.State != engine.TaskRunning {
		t.Fatalf("accepted task = %+v", got)
	}
}

func TestDecideTask_Replace(t *testing.T) {
	replace := engine.ReplaceTask{ID: "t1", Attempt: 1, Device: "dev-b", Reason: "dev-a did not accept"}
	targeted := created
	targeted.TargetDevice = "dev-a"
	runDecideTask(t, []decideTaskTest{
		{name: "scheduled", task: scheduled, cmd: replace, want: evs(
			events.TaskUndelivered{Device: "dev-a", Attempt: 1, Reason: "dev-a did not accept"},
			events.TaskScheduled{Device: "dev-b", Attempt: 2})},
		{name: "no other device", task: scheduled, cmd: engine.ReplaceTask{ID: "t1", Attempt: 1, Reason: "dev-a did not accept"},
			want: evs(events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "dev-a did not accept; no other device can take it"})},
		{name: "the same device", task: scheduled, cmd: engine.ReplaceTask{ID: "t1", Attempt: 1, Device: "dev-a", Reason: "x"},
			want: evs(events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "x; no other device can take it"})},
		{name: "targeted", task: taskOf(targeted, sched1), cmd: replace,
			want: evs(events.TaskFailed{Device: "dev-a", Attempt: 1, Reason: "dev-a did not accept; the task targets that device"})},
		{name: "accepted meanwhile", task: running, cmd: replace},
		{name: "result meanwhile", task: early, cmd: replace},
		{name: "another attempt", task: retried, cmd: replace},
		{name: "unknown", task: none, cmd: replace, wantErr: domain.ErrNotFound},
	})
	moved := taskOf(created, sched1, events.TaskUndelivered{Device: "dev-a", Attempt: 1, Reason: "r"}, events.TaskScheduled{Device: "dev-b", Attempt: 2})
	if moved.State != engine.TaskScheduled || moved.Device != "dev-b" || moved.Attempt != 2 || moved.Error != "" {
		t.Fatalf("moved task = %+v", moved)
	}
	if u := taskOf(created, sched1, events.TaskUndelivered{Device: "dev-a", Attempt: 1, Reason: "r"}); u.State != engine.TaskPending || u.Device != "" || u.Error != "r" {
		t.Fatalf("undelivered task = %+v", u)
	}
}
