package engine_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/replay"
)

// wfRun drives one workflow through DecideWorkflow, folding every event
// through the codec (as a replay would) and checking on the way that
// no step starts before its dependencies are terminal.
type wfRun struct {
	t        testing.TB
	w        engine.Workflow
	seq      uint64
	history  []events.Event
	terminal int // terminal workflow events seen
}

func newRun(t testing.TB, s engine.WorkflowSpec) *wfRun {
	t.Helper()
	r := &wfRun{t: t}
	r.must(engine.CreateWorkflow{ID: "wf1", Spec: s, At: t0})
	return r
}

func (r *wfRun) do(cmd engine.WorkflowCommand) ([]events.Event, error) {
	r.t.Helper()
	evs, err := engine.DecideWorkflow(r.w, cmd)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		r.checkEvent(ev)
		r.seq++
		env, err := events.Wrap(events.Aggregate{Kind: events.KindWorkflow, ID: "wf1"}, fmt.Sprint(r.seq), events.Meta{Time: t0.Add(time.Duration(r.seq) * time.Second)}, ev)
		if err != nil {
			r.t.Fatal(err)
		}
		env.Seq = r.seq
		if r.w, err = engine.Fold(codec, r.w, []events.Envelope{env}); err != nil {
			r.t.Fatal(err)
		}
	}
	r.history = append(r.history, evs...)
	return evs, nil
}

func (r *wfRun) checkEvent(ev events.Event) {
	r.t.Helper()
	switch e := ev.(type) {
	case events.WorkflowStepStarted:
		deps := r.w.Spec.Dependencies()
		i := slices.IndexFunc(r.w.Spec.Steps, func(s engine.StepSpec) bool { return s.Name == e.Step })
		for _, d := range deps[i] {
			if !r.w.Steps[d].State.Terminal() {
				r.t.Fatalf("step %s started while its dependency %s is %s", e.Step, r.w.Steps[d].Name, r.w.Steps[d].State)
			}
		}
		if r.w.State.Terminal() {
			r.t.Fatalf("step %s started in a %s workflow", e.Step, r.w.State)
		}
	case events.WorkflowCompleted, events.WorkflowFailed, events.WorkflowCancelled, events.WorkflowTimedOut:
		if r.terminal++; r.terminal > 1 {
			r.t.Fatalf("second terminal event %s", ev.EventType())
		}
	}
}

func (r *wfRun) must(cmd engine.WorkflowCommand) []events.Event {
	r.t.Helper()
	evs, err := r.do(cmd)
	if err != nil {
		r.t.Fatalf("%T: %v", cmd, err)
	}
	return evs
}

func (r *wfRun) start(step string, attempt int) {
	r.t.Helper()
	r.must(engine.StartStep{ID: "wf1", Step: step, Attempt: attempt, TaskID: taskID(step, attempt)})
}

func (r *wfRun) ok(step, result string) []events.Event {
	r.t.Helper()
	return r.must(engine.StepFinished{ID: "wf1", Step: step, Result: json.RawMessage(result)})
}

func (r *wfRun) fail(step string) []events.Event {
	r.t.Helper()
	return r.must(engine.StepFinished{ID: "wf1", Step: step, Error: "boom"})
}

func (r *wfRun) state(step string) engine.StepState {
	s, _ := r.w.Step(step)
	return s.State
}

func taskID(step string, attempt int) string { return fmt.Sprintf("t-%s-%d", step, attempt) }

func starts(p engine.Plan) []string {
	var names []string
	for _, s := range p.Start {
		names = append(names, fmt.Sprintf("%s#%d", s.Step, s.Attempt))
	}
	return names
}

func evTypes(evs []events.Event) []string {
	var ts []string
	for _, ev := range evs {
		ts = append(ts, ev.EventType())
	}
	return ts
}

func wantStarts(t *testing.T, r *wfRun, want ...string) {
	t.Helper()
	if got := starts(engine.Next(r.w)); !slices.Equal(got, want) {
		t.Fatalf("Next().Start = %v, want %v", got, want)
	}
}

func wantTypes(t *testing.T, got []events.Event, want ...string) {
	t.Helper()
	if g := evTypes(got); !slices.Equal(g, want) {
		t.Fatalf("events = %v, want %v", g, want)
	}
}

func TestDecideWorkflow_Diamond(t *testing.T) {
	b := step("b", "a")
	b.Inputs = []string{"in=${steps.a.result}", "raw=${steps.a.result}!"}
	b.StdinFrom = "a"
	r := newRun(t, spec(step("a"), b, step("c", "a"), step("d", "b", "c")))
	wantStarts(t, r, "a#1")
	r.start("a", 1)
	wantStarts(t, r)
	r.ok("a", `"hello"`)
	p := engine.Next(r.w)
	if got := starts(p); !slices.Equal(got, []string{"b#1", "c#1"}) {
		t.Fatalf("starts = %v", got)
	}
	if want := []string{"in=hello", "raw=hello!"}; !slices.Equal(p.Start[0].Inputs, want) || string(p.Start[0].Stdin) != "hello" {
		t.Fatalf("b starts with inputs %q stdin %q, want %q and hello", p.Start[0].Inputs, p.Start[0].Stdin, want)
	}
	r.start("b", 1)
	r.start("c", 1)
	r.ok("b", `{"n":1}`)
	wantStarts(t, r) // d waits for c
	r.ok("c", `2`)
	p = engine.Next(r.w)
	wantParents := map[string]json.RawMessage{"b": json.RawMessage(`{"n":1}`), "c": json.RawMessage(`2`)}
	if len(p.Start) != 1 || !reflect.DeepEqual(p.Start[0].ParentResults, wantParents) {
		t.Fatalf("d start = %+v, want parent results %s", p.Start, wantParents)
	}
	r.start("d", 1)
	wantTypes(t, r.ok("d", `"done"`), "workflow.step_completed", "workflow.completed")
	if r.w.State != engine.WorkflowCompleted {
		t.Fatalf("state = %s", r.w.State)
	}
}

func TestDecideWorkflow_Sequential(t *testing.T) {
	s := spec(step("one"), step("two"), step("three"))
	s.Mode = engine.ModeSequential
	t.Run("waits for each step", func(t *testing.T) {
		r := newRun(t, s)
		for _, name := range []string{"one", "two", "three"} {
			wantStarts(t, r, name+"#1")
			r.start(name, 1)
			wantStarts(t, r)
			r.ok(name, `null`)
		}
		if r.w.State != engine.WorkflowCompleted {
			t.Fatalf("state = %s", r.w.State)
		}
	})
	t.Run("a failure skips the rest", func(t *testing.T) {
		r := newRun(t, s)
		r.start("one", 1)
		r.ok("one", `1`)
		r.start("two", 1)
		wantTypes(t, r.fail("two"), "workflow.step_failed", "workflow.step_skipped", "workflow.failed")
		if r.state("three") != engine.StepSkipped || r.w.Reason != "failed steps: two" {
			t.Fatalf("three is %s, workflow reason %q", r.state("three"), r.w.Reason)
		}
	})
	t.Run("parallel starts everything", func(t *testing.T) {
		p := s
		p.Mode = engine.ModeParallel
		wantStarts(t, newRun(t, p), "one#1", "two#1", "three#1")
	})
}

func TestDecideWorkflow_FailFast(t *testing.T) {
	// a → c, b → d: a fails while b runs.
	build := func(failFast bool) *wfRun {
		s := spec(step("a"), step("b"), step("c", "a"), step("d", "b"))
		s.FailFast = failFast
		r := newRun(t, s)
		r.start("a", 1)
		r.start("b", 1)
		return r
	}
	t.Run("fail_fast skips and stops", func(t *testing.T) {
		r := build(true)
		wantTypes(t, r.fail("a"), "workflow.step_failed", "workflow.step_skipped", "workflow.step_skipped", "workflow.failed")
		p := engine.Next(r.w)
		if want := []engine.StepStop{{Step: "b", Attempt: 1, TaskID: taskID("b", 1)}}; !reflect.DeepEqual(p.Stop, want) || len(p.Start) != 0 {
			t.Fatalf("Next() = %+v, want stop %v", p, want)
		}
		// b's late result is recorded; the workflow stays failed.
		wantTypes(t, r.ok("b", `1`), "workflow.step_completed")
		if r.w.State != engine.WorkflowFailed || r.state("d") != engine.StepSkipped {
			t.Fatalf("workflow %s, d %s", r.w.State, r.state("d"))
		}
	})
	t.Run("without fail_fast independent branches continue", func(t *testing.T) {
		r := build(false)
		wantTypes(t, r.fail("a"), "workflow.step_failed", "workflow.step_skipped")
		wantStarts(t, r)
		r.ok("b", `1`)
		wantStarts(t, r, "d#1")
		r.start("d", 1)
		wantTypes(t, r.ok("d", `2`), "workflow.step_completed", "workflow.failed")
		if r.w.Reason != "failed steps: a" || r.state("c") != engine.StepSkipped {
			t.Fatalf("reason %q, c %s", r.w.Reason, r.state("c"))
		}
	})
}

func TestDecideWorkflow_RunIf(t *testing.T) {
	build := func() *wfRun {
		onFail, cleanup := step("on_fail", "a"), step("cleanup", "a")
		onFail.RunIf, cleanup.RunIf = engine.RunIfFailure, engine.RunIfAlways
		r := newRun(t, spec(step("a"), step("next", "a"), onFail, cleanup, step("after", "next")))
		r.start("a", 1)
		return r
	}
	t.Run("a fails", func(t *testing.T) {
		r := build()
		r.fail("a")
		wantStarts(t, r, "on_fail#1", "cleanup#1")
		if r.state("next") != engine.StepSkipped || r.state("after") != engine.StepSkipped {
			t.Fatalf("next %s, after %s: want the cascade skipped", r.state("next"), r.state("after"))
		}
		if s, _ := r.w.Step("after"); s.Error != "dependency next was skipped" {
			t.Fatalf("after skipped for %q", s.Error)
		}
	})
	t.Run("a succeeds", func(t *testing.T) {
		r := build()
		r.ok("a", `1`)
		wantStarts(t, r, "next#1", "cleanup#1")
		if s, _ := r.w.Step("on_fail"); s.State != engine.StepSkipped || s.Error != "run_if failure: no dependency failed" {
			t.Fatalf("on_fail %s %q", s.State, s.Error)
		}
	})
}

func TestDecideWorkflow_Retry(t *testing.T) {
	a := step("a")
	a.Retry = &engine.RetryPolicy{MaxAttempts: 3, InitialBackoff: "1s", Multiplier: 3, MaxBackoff: "2s"}
	r := newRun(t, spec(a, step("b", "a")))
	wantBackoff := []time.Duration{time.Second, 2 * time.Second}
	for attempt := 1; attempt <= 2; attempt++ {
		r.start("a", attempt)
		evs := r.fail("a")
		if want := (events.WorkflowStepFailed{Step: "a", Attempt: attempt, Reason: "boom"}); !reflect.DeepEqual(evs, []events.Event{want}) {
			t.Fatalf("attempt %d: events %+v, want %+v", attempt, evs, want)
		}
		p := engine.Next(r.w)
		if want := []engine.StepRetry{{Step: "a", Attempt: attempt + 1, After: wantBackoff[attempt-1]}}; !reflect.DeepEqual(p.Retry, want) || len(p.Start) != 0 {
			t.Fatalf("attempt %d: Next() = %+v, want retry %v", attempt, p, want)
		}
		// A timer for another attempt does nothing.
		wantTypes(t, r.must(engine.RetryTimerFired{ID: "wf1", Step: "a", Attempt: attempt + 2}))
		wantTypes(t, r.must(engine.RetryTimerFired{ID: "wf1", Step: "a", Attempt: attempt + 1}), "workflow.retry_fired")
		wantTypes(t, r.must(engine.RetryTimerFired{ID: "wf1", Step: "a", Attempt: attempt + 1})) // duplicate
		wantStarts(t, r, fmt.Sprintf("a#%d", attempt+1))
	}
	r.start("a", 3)
	wantTypes(t, r.fail("a"), "workflow.step_failed", "workflow.step_skipped", "workflow.failed")
	if last := r.history[len(r.history)-3].(events.WorkflowStepFailed); !last.Final {
		t.Fatalf("last attempt not final: %+v", last)
	}
}

func TestDecideWorkflow_DuplicateAndLateResults(t *testing.T) {
	a := step("a")
	a.Retry = &engine.RetryPolicy{MaxAttempts: 2}
	r := newRun(t, spec(a))
	r.start("a", 1)
	wantTypes(t, r.must(engine.StartStep{ID: "wf1", Step: "a", Attempt: 1, TaskID: taskID("a", 1)})) // duplicate start
	r.fail("a")
	wantTypes(t, r.fail("a")) // duplicate failure
	r.must(engine.RetryTimerFired{ID: "wf1", Step: "a", Attempt: 2})
	r.start("a", 2)

	tests := []struct {
		name    string
		cmd     engine.WorkflowCommand
		want    []string
		wantErr error
	}{
		{"result of the older attempt", engine.StepFinished{ID: "wf1", Step: "a", Attempt: 1, Result: json.RawMessage(`1`)}, nil, nil},
		{"result of the older task", engine.StepFinished{ID: "wf1", Step: "a", TaskID: taskID("a", 1), Result: json.RawMessage(`1`)}, nil, nil},
		{"stale start", engine.StartStep{ID: "wf1", Step: "a", Attempt: 1, TaskID: "t-x"}, nil, domain.ErrStale},
		{"second task for the same attempt", engine.StartStep{ID: "wf1", Step: "a", Attempt: 2, TaskID: "t-other"}, nil, domain.ErrStale},
		{"unknown step", engine.StepFinished{ID: "wf1", Step: "zz"}, nil, domain.ErrInvalid},
		{"current result", engine.StepFinished{ID: "wf1", Step: "a", Attempt: 2, TaskID: taskID("a", 2), Result: json.RawMessage(`2`)}, []string{"workflow.step_completed", "workflow.completed"}, nil},
		{"duplicate current result", engine.StepFinished{ID: "wf1", Step: "a", Attempt: 2, Result: json.RawMessage(`3`)}, nil, nil},
		{"late failure", engine.StepFinished{ID: "wf1", Step: "a", Attempt: 2, Error: "late"}, nil, nil},
		{"cancel after the end", engine.CancelWorkflow{ID: "wf1"}, nil, nil},
		{"deadline after the end", engine.DeadlineExpired{ID: "wf1"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := r.do(tt.cmd)
			checkErr(t, err, tt.wantErr)
			if got := evTypes(evs); !slices.Equal(got, tt.want) {
				t.Fatalf("events = %v, want %v", got, tt.want)
			}
		})
	}
	if s, _ := r.w.Step("a"); string(s.Result) != "2" || s.Attempt != 2 || r.w.State != engine.WorkflowCompleted {
		t.Fatalf("step a = %+v, workflow %s", s, r.w.State)
	}
}

func TestDecideWorkflow_Commands(t *testing.T) {
	diamond := spec(step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c"))
	created := newRun(t, diamond).w
	tests := []struct {
		name    string
		w       engine.Workflow
		cmd     engine.WorkflowCommand
		want    []string
		wantErr error
	}{
		{"create twice", created, engine.CreateWorkflow{ID: "wf1", Spec: diamond}, nil, domain.ErrExists},
		{"invalid spec", engine.Workflow{}, engine.CreateWorkflow{ID: "wf2", Spec: spec(step("a", "a"))}, nil, domain.ErrInvalid},
		{"invalid id", engine.Workflow{}, engine.CreateWorkflow{ID: "a.b", Spec: diamond}, nil, domain.ErrInvalid},
		{"not found", engine.Workflow{}, engine.CancelWorkflow{ID: "nope"}, nil, domain.ErrNotFound},
		{"start before dependencies", created, engine.StartStep{ID: "wf1", Step: "b", Attempt: 1, TaskID: "t"}, nil, domain.ErrInvalidState},
		{"start without task", created, engine.StartStep{ID: "wf1", Step: "a", Attempt: 1}, nil, domain.ErrInvalid},
		{"start of attempt 2 first", created, engine.StartStep{ID: "wf1", Step: "a", Attempt: 2, TaskID: "t"}, nil, domain.ErrInvalidState},
		{"result of a step not started", created, engine.StepFinished{ID: "wf1", Step: "a", Result: json.RawMessage(`1`)}, nil, nil},
		{"cancel", created, engine.CancelWorkflow{ID: "wf1", Reason: "user"}, []string{"workflow.cancelled", "workflow.step_skipped", "workflow.step_skipped", "workflow.step_skipped", "workflow.step_skipped"}, nil},
		{"deadline", created, engine.DeadlineExpired{ID: "wf1"}, []string{"workflow.timed_out", "workflow.step_skipped", "workflow.step_skipped", "workflow.step_skipped", "workflow.step_skipped"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := engine.DecideWorkflow(tt.w, tt.cmd)
			checkErr(t, err, tt.wantErr)
			if got := evTypes(evs); !slices.Equal(got, tt.want) {
				t.Fatalf("events = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecideWorkflow_CancelStopsRunningSteps(t *testing.T) {
	s := spec(step("a"), step("b", "a"))
	s.Deadline = "10m"
	r := newRun(t, s)
	if want := t0.Add(10 * time.Minute); !r.w.DeadlineAt.Equal(want) {
		t.Fatalf("deadline at %v, want %v", r.w.DeadlineAt, want)
	}
	r.start("a", 1)
	wantTypes(t, r.must(engine.CancelWorkflow{ID: "wf1"}), "workflow.cancelled", "workflow.step_skipped")
	p := engine.Next(r.w)
	if len(p.Stop) != 1 || p.Stop[0].Step != "a" || len(p.Start)+len(p.Skip) != 0 || p.Finish != nil {
		t.Fatalf("Next() = %+v, want only a stopped", p)
	}
	_, err := r.do(engine.StartStep{ID: "wf1", Step: "b", Attempt: 1, TaskID: "t"})
	checkErr(t, err, domain.ErrInvalidState)
	// The stopped attempt's report is recorded as its final failure.
	evs := r.must(engine.StepFinished{ID: "wf1", Step: "a", Error: "stopped"})
	if f, ok := evs[0].(events.WorkflowStepFailed); len(evs) != 1 || !ok || !f.Final {
		t.Fatalf("events = %+v", evs)
	}
	if r.w.State != engine.WorkflowCancelled {
		t.Fatalf("state = %s", r.w.State)
	}
}

// TestWorkflow_Property runs random DAGs through a simulated process
// manager that delivers results, timers and stop reports in random order
// with duplicates. wfRun checks that no step starts before its
// dependencies are terminal and that one terminal event is decided.
func TestWorkflow_Property(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			propertyRun(t, rng, replay.RandomSpec(rng))
		})
	}
}

func propertyRun(t *testing.T, rng *rand.Rand, s engine.WorkflowSpec) {
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, s)
	var inbox []engine.WorkflowCommand
	queued := map[string]bool{}
	queue := func(key string, cmd engine.WorkflowCommand) {
		if !queued[key] {
			queued[key] = true
			inbox = append(inbox, cmd)
		}
	}
	for range 100000 {
		p := engine.Next(r.w)
		if p.Finish != nil || len(p.Skip) > 0 {
			t.Fatalf("Next() of a decided state still has %v to decide: %+v", p.Finish, p.Skip)
		}
		for _, st := range p.Start {
			r.start(st.Step, st.Attempt)
			cmd := engine.StepFinished{ID: "wf1", Step: st.Step, Attempt: st.Attempt, TaskID: taskID(st.Step, st.Attempt), Result: json.RawMessage(fmt.Sprintf(`"%s-%d"`, st.Step, st.Attempt))}
			if rng.IntN(3) == 0 {
				cmd.Result, cmd.Error = nil, "boom"
			}
			queue("result "+cmd.TaskID, cmd)
		}
		for _, rt := range p.Retry {
			queue(fmt.Sprintf("timer %s %d", rt.Step, rt.Attempt), engine.RetryTimerFired{ID: "wf1", Step: rt.Step, Attempt: rt.Attempt})
		}
		for _, sp := range p.Stop {
			queue("stop "+sp.TaskID, engine.StepFinished{ID: "wf1", Step: sp.Step, Attempt: sp.Attempt, TaskID: sp.TaskID, Error: "stopped"})
		}
		if rng.IntN(100) == 0 {
			inbox = append(inbox, []engine.WorkflowCommand{engine.CancelWorkflow{ID: "wf1"}, engine.DeadlineExpired{ID: "wf1"}}[rng.IntN(2)])
		}
		if len(inbox) == 0 {
			break
		}
		k := rng.IntN(len(inbox))
		cmd := inbox[k]
		if rng.IntN(4) != 0 { // else deliver it again later: a duplicate
			inbox = slices.Delete(inbox, k, k+1)
		}
		r.must(cmd)
	}
	if len(inbox) != 0 || !r.w.State.Terminal() || r.terminal != 1 {
		t.Fatalf("ended with %d commands undelivered, workflow %s, %d terminal events", len(inbox), r.w.State, r.terminal)
	}
	for _, st := range r.w.Steps {
		if !st.State.Terminal() {
			t.Fatalf("step %s ended %s", st.Name, st.State)
		}
		if st.State == engine.StepCompleted && string(st.Result) != fmt.Sprintf(`"%s-%d"`, st.Name, st.Attempt) {
			t.Fatalf("step %s recorded %s for attempt %d", st.Name, st.Result, st.Attempt)
		}
	}
	// A replay of the history gives the same state.
	replayed := newRunFrom(t, r.history)
	if !reflect.DeepEqual(replayed.Steps, r.w.Steps) || replayed.State != r.w.State {
		t.Fatalf("replay diverged:\n%+v\n%+v", replayed, r.w)
	}
}

func newRunFrom(t *testing.T, history []events.Event) engine.Workflow {
	var w engine.Workflow
	for i, ev := range history {
		env, err := events.Wrap(events.Aggregate{Kind: events.KindWorkflow, ID: "wf1"}, fmt.Sprint(i+1), events.Meta{Time: t0.Add(time.Duration(i+1) * time.Second)}, ev)
		if err != nil {
			t.Fatal(err)
		}
		env.Seq = uint64(i + 1)
		if w, err = engine.Fold(codec, w, []events.Envelope{env}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}
