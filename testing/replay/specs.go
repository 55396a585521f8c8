package replay

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// RandomSpec returns a valid random workflow of 1 to 10 steps: any mode,
// random dependencies, run_if conditions and retries, steps declared in a
// shuffled order.
func RandomSpec(rng *rand.Rand) engine.WorkflowSpec {
	s := engine.WorkflowSpec{Name: "random", FailFast: rng.IntN(3) == 0}
	s.Mode = []engine.WorkflowMode{engine.ModeDAG, engine.ModeDAG, engine.ModeSequential, engine.ModeParallel}[rng.IntN(4)]
	n := 1 + rng.IntN(10)
	for i := range n {
		st := engine.StepSpec{Name: fmt.Sprintf("s%d", i), Module: "app:v1", Function: "main"}
		for j := range i {
			if s.Mode == engine.ModeDAG && rng.IntN(3) == 0 {
				st.DependsOn = append(st.DependsOn, fmt.Sprintf("s%d", j))
			}
		}
		if len(st.DependsOn) > 0 || s.Mode == engine.ModeSequential && i > 0 {
			st.RunIf = []engine.RunIf{engine.RunIfSuccess, engine.RunIfSuccess, engine.RunIfFailure, engine.RunIfAlways}[rng.IntN(4)]
		}
		if rng.IntN(2) == 0 {
			st.Retry = &engine.RetryPolicy{MaxAttempts: 1 + rng.IntN(3)}
		}
		s.Steps = append(s.Steps, st)
	}
	// Shuffle declaration order (dependencies are by name).
	rng.Shuffle(len(s.Steps), func(i, j int) { s.Steps[i], s.Steps[j] = s.Steps[j], s.Steps[i] })
	if s.Mode == engine.ModeSequential {
		s.Steps[0].RunIf = ""
	}
	return s
}

// FanOutSpec is a fan-out/fan-in DAG of n steps: a root, n-2 steps on it,
// a sink on all of them.
func FanOutSpec(n int) engine.WorkflowSpec {
	spec := engine.WorkflowSpec{Name: "bench", Steps: []engine.StepSpec{{Name: "root", Module: "m:1", Inputs: []string{"1"}}}}
	var mid []string
	for i := range n - 2 {
		name := fmt.Sprintf("s%d", i)
		mid = append(mid, name)
		spec.Steps = append(spec.Steps, engine.StepSpec{Name: name, Module: "m:1", Inputs: []string{"${steps.root.result}"}, DependsOn: []string{"root"}})
	}
	spec.Steps = append(spec.Steps, engine.StepSpec{Name: "sink", Module: "m:1", DependsOn: mid})
	return spec
}

// DriveWorkflow runs one workflow of spec to its end through the pure
// decider, the way the process manager does (starts and results in
// batches, every step succeeding), and returns its events.
func DriveWorkflow(tb testing.TB, id string, spec engine.WorkflowSpec, at time.Time) []events.Event {
	var w engine.Workflow
	var all []events.Event
	seq := uint64(0)
	do := func(cmd engine.WorkflowCommand) {
		evs, err := engine.DecideWorkflow(w, cmd)
		if err != nil {
			tb.Fatal(err)
		}
		envs := make([]events.Envelope, len(evs))
		for i := range evs {
			seq++
			envs[i] = events.Envelope{Aggregate: events.WorkflowAggregate(id), Seq: seq, Time: at}
		}
		w = w.ApplyAll(envs, evs)
		all = append(all, evs...)
	}
	do(engine.CreateWorkflow{ID: id, Spec: spec, At: at})
	for !w.State.Terminal() {
		p := engine.Next(w)
		var starts, results []engine.WorkflowCommand
		for _, st := range p.Start {
			starts = append(starts, engine.StartStep{ID: id, Step: st.Step, Attempt: st.Attempt, TaskID: id + "-" + st.Step})
		}
		if len(starts) > 0 {
			do(engine.Batch{ID: id, Commands: starts})
		}
		for _, s := range w.Steps {
			if s.State == engine.StepRunning {
				results = append(results, engine.StepFinished{ID: id, Step: s.Name, Attempt: s.Attempt, Result: json.RawMessage(`"7"`)})
			}
		}
		if len(results) > 0 {
			do(engine.Batch{ID: id, Commands: results})
		}
	}
	return all
}
