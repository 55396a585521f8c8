package replaycheck_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/replaycheck"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
)

// TestHistory_LostAttempts replays a task whose attempts were lost in
// every way (device offline, deadline, interrupted) and a late result:
// today's deciders decide the same, and a tampered loss diverges.
func TestHistory_LostAttempts(t *testing.T) {
	lostHistory := func(h *service.Handler) {
		mustTask(t, h, engine.CreateTask{ID: "t", Spec: events.TaskCreated{Name: "f", Module: "sha256:00", TimeoutMS: 1000, MaxAttempts: 4}})
		mustTask(t, h, engine.ScheduleTask{ID: "t", Device: "d1"})
		mustTask(t, h, engine.MarkStarted{ID: "t", Attempt: 1, Device: "d1"})
		mustTask(t, h, engine.LoseTask{ID: "t", Attempt: 1, Device: "d1", Cause: engine.LostOffline, Reason: "device lost: d1 is offline", Next: "d2"})
		mustTask(t, h, engine.MarkStarted{ID: "t", Attempt: 2, Device: "d2"})
		mustTask(t, h, engine.LoseTask{ID: "t", Attempt: 2, Device: "d2", Cause: engine.LostDeadline, Next: "d3",
			Now: t0.Add(time.Hour), Grace: 7 * time.Second})
		mustTask(t, h, engine.RecordResult{ID: "t", Device: "d1", Attempt: 1, Result: json.RawMessage(`"late"`)})
		mustTask(t, h, engine.RecordResult{ID: "t", Device: "d3", Attempt: 3, Error: "interrupted: proplet restarted", Interrupted: true, Next: "d3"})
		mustTask(t, h, engine.RecordResult{ID: "t", Device: "d3", Attempt: 4, Result: json.RawMessage(`"ok"`)})
	}
	envs := recorded(t, events.TaskAggregate("t"), lostHistory)
	want := []string{"task.created", "task.scheduled", "task.started", "task.lost", "task.scheduled", "task.started",
		"task.lost", "task.scheduled", "task.late_result", "task.lost", "task.scheduled", "task.completed"}
	if got := types(envs); !slicesEqual(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	// the deadline's recorded one minute later than its grace allows: diverges
	for i, env := range envs {
		if env.Type != "task.lost" {
			continue
		}
		var e events.TaskLost
		if err := json.Unmarshal(env.Data, &e); err != nil {
			t.Fatal(err)
		}
		if e.Cause != engine.LostDeadline {
			continue
		}
		e.Reason = "timed out: tampered"
		envs[i].Data, _ = json.Marshal(e)
	}
	r, err := replaycheck.History(codec, envs)
	if err != nil || len(r.Divergences) != 1 {
		t.Fatalf("tampered history: %v %+v", err, r.Divergences)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestHistory_Undelivered replays a start no device accepted, placed on
// another device: the check waits for the task.scheduled that names the
// new device (it arrives after the task.undelivered, one event at a time)
// instead of deciding "no other device can take it".
func TestHistory_Undelivered(t *testing.T) {
	envs := recorded(t, events.TaskAggregate("t"), func(h *service.Handler) {
		mustTask(t, h, engine.CreateTask{ID: "t", Spec: events.TaskCreated{Name: "f", Module: "sha256:00"}})
		mustTask(t, h, engine.ScheduleTask{ID: "t", Device: "d1"})
		mustTask(t, h, engine.ReplaceTask{ID: "t", Attempt: 1, Device: "d2", Reason: "proplet d1 did not accept the start"})
		mustTask(t, h, engine.ReplaceTask{ID: "t", Attempt: 2, Reason: "proplet d2 did not accept the start"})
	})
	want := []string{"task.created", "task.scheduled", "task.undelivered", "task.scheduled", "task.failed"}
	if got := types(envs); !slicesEqual(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	r, err := replaycheck.History(codec, envs)
	if err != nil || len(r.Divergences) != 0 {
		t.Fatalf("replay check: %v %+v", err, r.Divergences)
	}
}
