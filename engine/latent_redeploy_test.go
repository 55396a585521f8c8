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
		{name: "again on the same device", task: runningLatent, cmd: lose(1, "dev-a"), want: evs(lost, events.TaskScheduled{Device: "dev-a", Attempt: 2, Lost: 1})},
		{name: "on another", task: runningLatent, cmd: lose(1, "dev-b"), want: evs(lost, events.TaskScheduled{Device: "dev-b", Attempt: 2, Lost: 1})},
		{name: "another attempt: no-op", task: runningLatent, cmd: lose(2, "dev-a")},
		{name: "not latent: no-op", task: running, cmd: lose(1, "dev-a")},
		{name: "scheduled, not running: no-op", task: taskOf(latent, sched1), cmd: lose(1, "dev-a")},
	})
}
