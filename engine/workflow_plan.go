package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jetprop/jetprop/events"
)

// Plan is what a workflow needs done now, computed from its state alone.
type Plan struct {
	Start  []StepStart  // attempts to hand to tasks, then record with StartStep
	Skip   []StepSkip   // steps that will not run (DecideWorkflow records these itself)
	Stop   []StepStop   // running attempts to stop (fail-fast, cancelled, timed out)
	Retry  []StepRetry  // backoff timers to schedule (idempotent per step and attempt)
	Finish events.Event // the terminal event the workflow has reached, or nil

	offered int // steps that would start, counted instead of listed in Start (next without resolve)
}

// StepStart is an attempt to start, with its inputs resolved.
type StepStart struct {
	Step          string
	Attempt       int
	Spec          StepSpec
	Inputs        []string                   // ${steps.x.result} replaced
	Stdin         []byte                     // the result of Spec.StdinFrom, if set
	ParentResults map[string]json.RawMessage // results of the direct dependencies (Propeller's parent_results)
}

// StepSkip is a step that will not run, and why.
type StepSkip struct{ Step, Reason string }

// StepStop is a running attempt to stop.
type StepStop struct {
	Step    string
	Attempt int
	TaskID  string
}

// StepRetry is a timer to schedule: After from now, fire RetryTimerFired
// for Attempt.
type StepRetry struct {
	Step    string
	Attempt int
	After   time.Duration
}

// Next returns what w needs done now: steps whose dependencies are all
// terminal and whose run_if holds start; those whose run_if cannot hold
// are skipped (in cascade); with fail_fast the first final failure skips
// every step not started and stops the running ones.
func Next(w Workflow) Plan { return next(w, true) }

// next is Next; without resolve, the steps that would start are only
// counted (consequences needs no more): listing thousands of them for
// every decision on a wide fan-out made each decision cost as much as the
// whole workflow's planning.
func next(w Workflow, resolve bool) Plan { return nextWith(w, stepStates(w.Steps), resolve) }

// nextWith is next with the steps' states given apart: states[i] stands
// for w.Steps[i].State (patched gives the states after decided events
// without copying the steps). The rest of a step is read from w.Steps.
func nextWith(w Workflow, states []StepState, resolve bool) Plan {
	var p Plan
	if !w.Exists() || w.Steps == nil {
		return p
	}
	if w.State.Terminal() {
		w.abandon(&p, states, "workflow "+w.State.String())
		return p
	}
	if w.Held || w.Spec.Cron != "" {
		return p // held, or a cron schedule whose runs are workflows of their own
	}
	if i := slices.Index(states, StepFailed); i >= 0 && w.Spec.FailFast {
		reason := fmt.Sprintf("fail_fast: step %s failed", w.Steps[i].Name)
		w.abandon(&p, states, reason)
		p.Finish = events.WorkflowFailed{Reason: reason}
		return p
	}
	eff := slices.Clone(states)
	deps, order := w.graph()
	for _, i := range order {
		w.plan(&p, i, states[i], deps, eff, resolve)
	}
	if p.Finish == nil && len(p.Start) == 0 && p.offered == 0 && !slices.ContainsFunc(eff, func(s StepState) bool { return !s.Terminal() }) {
		p.Finish = finishEvent(w.Steps, eff)
	}
	return p
}

func (w Workflow) abandon(p *Plan, states []StepState, reason string) {
	for i, s := range w.Steps {
		switch states[i] {
		case StepPending, StepBackoff:
			p.Skip = append(p.Skip, StepSkip{Step: s.Name, Reason: reason})
		case StepRunning:
			p.Stop = append(p.Stop, StepStop{Step: s.Name, Attempt: s.Attempt, TaskID: s.TaskID})
		}
	}
}

func (w Workflow) plan(p *Plan, i int, state StepState, deps [][]int, eff []StepState, resolve bool) {
	s, spec := w.Steps[i], w.Spec.Steps[i]
	switch state {
	case StepBackoff:
		p.Retry = append(p.Retry, StepRetry{Step: s.Name, Attempt: s.Attempt + 1, After: retryPolicy(spec).Backoff(s.Attempt)})
	case StepPending:
		ready, run, reason := w.condition(spec.EffectiveRunIf(), deps[i], eff)
		switch {
		case !ready:
		case run:
			if resolve {
				p.Start = append(p.Start, w.start(i, s.Attempt+1, deps[i]))
			} else {
				p.offered++
			}
		default:
			eff[i] = StepSkipped
			p.Skip = append(p.Skip, StepSkip{Step: s.Name, Reason: reason})
		}
	}
}

func retryPolicy(s StepSpec) RetryPolicy {
	if s.Retry == nil {
		return RetryPolicy{}
	}
	return *s.Retry
}

// condition reports whether every dependency is terminal and, if so,
// whether the step runs or why it is skipped.
func (w Workflow) condition(runIf RunIf, deps []int, eff []StepState) (ready, run bool, reason string) {
	firstBad, anyFailed := -1, false
	for _, d := range deps {
		switch eff[d] {
		case StepCompleted:
		case StepFailed:
			anyFailed = true
			firstBad = firstOf(firstBad, d)
		case StepSkipped:
			firstBad = firstOf(firstBad, d)
		default:
			return false, false, ""
		}
	}
	switch runIf {
	case RunIfAlways:
		return true, true, ""
	case RunIfFailure:
		return true, anyFailed, "run_if failure: no dependency failed"
	}
	if firstBad < 0 {
		return true, true, ""
	}
	if eff[firstBad] == StepFailed {
		return true, false, "dependency " + w.Steps[firstBad].Name + " failed"
	}
	return true, false, "dependency " + w.Steps[firstBad].Name + " was skipped"
}

func firstOf(first, d int) int {
	if first < 0 {
		return d
	}
	return first
}

func (w Workflow) start(i, attempt int, deps []int) StepStart {
	spec := w.Spec.Steps[i]
	st := StepStart{Step: spec.Name, Attempt: attempt, Spec: spec}
	for _, in := range spec.Inputs {
		st.Inputs = append(st.Inputs, stepRefRE.ReplaceAllStringFunc(in, func(ref string) string {
			name := stepRefRE.FindStringSubmatch(ref)[1]
			s, _ := w.Step(name)
			return string(resultBytes(s.Result))
		}))
	}
	if spec.StdinFrom != "" {
		s, _ := w.Step(spec.StdinFrom)
		st.Stdin = resultBytes(s.Result)
	}
	if len(deps) > 0 {
		st.ParentResults = make(map[string]json.RawMessage, len(deps))
		for _, d := range deps {
			st.ParentResults[w.Steps[d].Name] = w.Steps[d].Result
		}
	}
	return st
}

// resultBytes is a result as text: a JSON string unquoted, anything else
// as its JSON.
func resultBytes(r json.RawMessage) []byte {
	var s string
	if json.Unmarshal(r, &s) == nil {
		return []byte(s)
	}
	if len(r) == 0 || string(r) == "null" {
		return nil
	}
	return r
}

func finishEvent(steps []Step, eff []StepState) events.Event {
	var failed []string
	for i, s := range eff {
		if s == StepFailed {
			failed = append(failed, steps[i].Name)
		}
	}
	if len(failed) == 0 {
		return events.WorkflowCompleted{}
	}
	return events.WorkflowFailed{Reason: "failed steps: " + strings.Join(failed, ", ")}
}
