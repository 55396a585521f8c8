package engine_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/replay"
)

// TestSettle_PatchedSameAsCopy walks random workflows (random specs, held
// or not, commands picked at random among those that apply: starts,
// successes, failures, timeouts, retries, releases, cancels, deadlines)
// and, for every command that could come at every state, wants the
// consequences settled on the steps the events name to equal those
// settled on a copy of the whole workflow.
func TestSettle_PatchedSameAsCopy(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	decisions := 0
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 11))
		spec := replay.RandomSpec(rng)
		id := fmt.Sprintf("w%d", seed)
		evs, err := engine.DecideWorkflow(engine.Workflow{}, engine.CreateWorkflow{ID: id, Spec: spec, At: at, Held: rng.IntN(4) == 0})
		if err != nil {
			t.Fatal(err)
		}
		var w engine.Workflow
		seq := uint64(0)
		apply := func(evs []events.Event) {
			for _, ev := range evs {
				seq++
				w = w.Apply(events.Envelope{Aggregate: events.WorkflowAggregate(id), Seq: seq, Time: at}, ev)
			}
		}
		apply(evs)
		for range 60 {
			if w.State.Terminal() {
				break
			}
			cmds := candidates(w, id)
			for _, cmd := range cmds {
				patched, copied, err := engine.DecideWorkflowBoth(w, cmd)
				if err != nil {
					continue
				}
				decisions++
				if !reflect.DeepEqual(patched, copied) {
					st, _ := json.Marshal(w)
					t.Fatalf("seed %d: %T %+v\npatched %+v\ncopied  %+v\nstate %s", seed, cmd, cmd, patched, copied, st)
				}
			}
			evs, err := engine.DecideWorkflow(w, cmds[rng.IntN(len(cmds))])
			if err == nil {
				apply(evs)
			}
		}
	}
	if decisions < 3000 {
		t.Fatalf("only %d decisions compared", decisions)
	}
}

// candidates are the commands that may come next for w.
func candidates(w engine.Workflow, id string) []engine.WorkflowCommand {
	cmds := []engine.WorkflowCommand{engine.CancelWorkflow{ID: id, Reason: "no"}, engine.DeadlineExpired{ID: id}, engine.ReleaseWorkflow{ID: id}}
	for _, st := range engine.Next(w).Start {
		cmds = append(cmds, engine.StartStep{ID: id, Step: st.Step, Attempt: st.Attempt, TaskID: id + "-" + st.Step + fmt.Sprint(st.Attempt)})
	}
	for _, s := range w.Steps {
		switch s.State {
		case engine.StepRunning:
			cmds = append(cmds,
				engine.StepFinished{ID: id, Step: s.Name, Attempt: s.Attempt, TaskID: s.TaskID, Result: json.RawMessage(`"7"`)},
				engine.StepFinished{ID: id, Step: s.Name, Attempt: s.Attempt, TaskID: s.TaskID, Error: "boom"},
				engine.AttemptTimedOut{ID: id, Step: s.Name, Attempt: s.Attempt, Reason: "timed out"})
		case engine.StepBackoff:
			cmds = append(cmds, engine.RetryTimerFired{ID: id, Step: s.Name, Attempt: s.Attempt + 1})
		}
	}
	return cmds
}
