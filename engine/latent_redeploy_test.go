package engine_test

import (
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// TestDecideTask_LoseNotDeployed: a latent task running whose device said
// it does not have it is deployed again (same device allowed); anything
// else is a no-op.
func TestDecideTask_LoseNotDeployed(t *testing.T) {
	latent := created
	latent.Latent = true
	runningLatent := taskOf(latent, sched1, started1)
	lose := func(attempt int, next string) engine.LoseTask {
		return engine.LoseTask{ID: "t1", Attempt: attempt, Device: "dev-a", Cause: engine.LostNotDeployed, Next: next}
	}
	lost := events.TaskLost{Device: "dev-a", Attempt: 1, Cause: engine.LostNotDeployed,
		Reason: "not deployed: dev-a answered an invocation that it does not have the latent task"}
	runDecideTask(t, []decideTaskTest{
		{name: "again on the same device", task: runningLatent, cmd: lose(1, "dev-a"), want: evs(lost, events.TaskScheduled{Device: "dev-a", Attempt: 2})},
		{name: "on another", task: runningLatent, cmd: lose(1, "dev-b"), want: evs(lost, events.TaskScheduled{Device: "dev-b", Attempt: 2})},
		{name: "another attempt: no-op", task: runningLatent, cmd: lose(2, "dev-a")},
		{name: "not latent: no-op", task: running, cmd: lose(1, "dev-a")},
		{name: "scheduled, not running: no-op", task: taskOf(latent, sched1), cmd: lose(1, "dev-a")},
	})
}

// TestDecideTask_NotDeployedDoesNotCount: a latent task deployed again
// after each of many proplet restarts (LostNotDeployed) never uses up its
// max_attempts, and keeps the count of its other losses; a loss of
// another cause still counts, and fails the task at the limit.
func TestDecideTask_NotDeployedDoesNotCount(t *testing.T) {
	latent := created
	latent.Latent = true
	task := taskOf(latent, sched1, started1)
	for restart := range 3 * engine.DefaultTaskMaxAttempts {
		evs, err := engine.DecideTask(task, engine.LoseTask{ID: "t1", Attempt: task.Attempt, Device: "dev-a", Cause: engine.LostNotDeployed, Next: "dev-a"})
		if err != nil || len(evs) != 2 {
			t.Fatalf("restart %d: %v, %v", restart, evs, err)
		}
		sched, ok := evs[1].(events.TaskScheduled)
		if !ok || sched.Lost != 0 {
			t.Fatalf("restart %d: %#v, want a new attempt with nothing lost", restart, evs[1])
		}
		task = foldTask(task, evs[0], sched, events.TaskStarted{Device: "dev-a", Attempt: sched.Attempt})
	}
	if task.State != engine.TaskRunning || task.Lost != 0 {
		t.Fatalf("after %d redeploys: %s, %d lost", task.Attempt-1, task.State, task.Lost)
	}
	for k := range engine.DefaultTaskMaxAttempts {
		next := []string{"dev-b", "dev-a"}[k%2]
		evs, err := engine.DecideTask(task, engine.LoseTask{ID: "t1", Attempt: task.Attempt, Device: task.Device, Cause: engine.LostOffline, Next: next})
		if err != nil {
			t.Fatal(err)
		}
		task = foldTask(task, evs...)
		if task.State == engine.TaskScheduled {
			task = foldTask(task, events.TaskStarted{Device: task.Device, Attempt: task.Attempt})
		}
	}
	if task.State != engine.TaskFailed {
		t.Fatalf("%d offline losses: %s, want failed", engine.DefaultTaskMaxAttempts, task.State)
	}
}

// foldTask applies evs to t, each one sequence after the last.
func foldTask(t engine.Task, evs ...events.Event) engine.Task {
	for _, ev := range evs {
		t = t.Apply(events.Envelope{Type: ev.EventType(), Aggregate: events.TaskAggregate("t1"), Time: t0, Seq: t.Seq + 1}, ev)
	}
	return t
}
