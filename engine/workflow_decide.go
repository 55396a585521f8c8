package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Workflow commands.
type (
	// CreateWorkflow creates a workflow from a spec; At is the creation
	// time (the deadline counts from it).
	CreateWorkflow struct {
		ID     string
		Spec   WorkflowSpec
		At     time.Time
		Held   bool   // start nothing until ReleaseWorkflow
		Source string // what created it, shown in views ("job", "workflow")
		// RequestDigest is the digest of the request of a create under
		// an idempotency key (events.WorkflowCreated's).
		RequestDigest string
	}
	// Batch decides commands in order as one: their events, and what
	// follows from all of them, are appended in one write. An error of any
	// command fails the batch.
	Batch struct {
		ID       string
		Commands []WorkflowCommand
	}
	// Settle records the consequences the stored state calls for and
	// lacks (after a write cut short, or a decider that changed).
	Settle struct{ ID string }
	// ReleaseWorkflow lets a held workflow start its steps.
	ReleaseWorkflow struct{ ID string }
	// StartStep records that an attempt of a step (one Next offered) was
	// handed to task TaskID.
	StartStep struct {
		ID      string
		Step    string
		Attempt int
		TaskID  string         // a step on one device
		Shards  []events.Shard // a fan-out step: one task per device
	}
	// StepFinished reports the outcome of an attempt: an Error, or a
	// Result. Attempt 0 means the current attempt.
	StepFinished struct {
		ID      string
		Step    string
		Attempt int
		TaskID  string
		Result  json.RawMessage
		Error   string
	}
	// CancelWorkflow ends the workflow at a user's request.
	CancelWorkflow struct {
		ID     string
		Reason string
	}
	// DeadlineExpired ends the workflow that passed its deadline.
	DeadlineExpired struct{ ID string }
	// RetryTimerFired reports that the backoff before Attempt ended.
	RetryTimerFired struct {
		ID      string
		Step    string
		Attempt int
	}
	// AttemptTimedOut fails a running attempt (every device of a fan-out
	// step) that passed its timeout or its schedule_to_start.
	AttemptTimedOut struct {
		ID      string
		Step    string
		Attempt int
		Reason  string
	}
)

// WorkflowCommand is any workflow command.
type WorkflowCommand interface{ WorkflowID() string }

func (c CreateWorkflow) WorkflowID() string  { return c.ID }
func (c StartStep) WorkflowID() string       { return c.ID }
func (c ReleaseWorkflow) WorkflowID() string { return c.ID }
func (c Batch) WorkflowID() string           { return c.ID }
func (c Settle) WorkflowID() string          { return c.ID }
func (c StepFinished) WorkflowID() string    { return c.ID }
func (c CancelWorkflow) WorkflowID() string  { return c.ID }
func (c DeadlineExpired) WorkflowID() string { return c.ID }
func (c RetryTimerFired) WorkflowID() string { return c.ID }
func (c AttemptTimedOut) WorkflowID() string { return c.ID }

// DecideWorkflow returns the events cmd causes on w. The consequences that
// need no outside action (skipped steps, the terminal event) are decided in
// the same batch. No events and no error means the command is already
// satisfied or stale (a duplicate, a result of an older attempt).
func DecideWorkflow(w Workflow, cmd WorkflowCommand) ([]events.Event, error) {
	if c, ok := cmd.(CreateWorkflow); ok {
		return decideCreateWorkflow(w, c)
	}
	if !w.Exists() {
		return nil, fmt.Errorf("workflow %s: %w", cmd.WorkflowID(), domain.ErrNotFound)
	}
	switch c := cmd.(type) {
	case Batch:
		return decideBatch(w, c)
	case Settle:
		return consequences(w), nil
	}
	evs, err := decideWorkflowCmd(w, cmd)
	if err != nil || len(evs) == 0 {
		return nil, err
	}
	return settle(w, evs), nil
}

func decideBatch(w Workflow, b Batch) ([]events.Event, error) {
	work := w.Clone()
	var all []events.Event
	for _, c := range b.Commands {
		if c.WorkflowID() != b.ID {
			return nil, fmt.Errorf("%w: batch for workflow %s holds a command for %s", domain.ErrInvalid, b.ID, c.WorkflowID())
		}
		switch c.(type) {
		case Batch, CreateWorkflow:
			return nil, fmt.Errorf("%w: %T in a batch", domain.ErrInvalid, c)
		}
		evs, err := decideWorkflowCmd(work, c)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			continue
		}
		// Each command's consequences follow it, as if decided alone: a
		// batch is the concatenation of its commands' decisions.
		work.applyDecided(evs)
		all = append(all, evs...)
		if mayFollow(work, evs) {
			cons := consequences(work)
			work.applyDecided(cons)
			all = append(all, cons...)
		}
	}
	return all, nil
}

func decideWorkflowCmd(w Workflow, cmd WorkflowCommand) ([]events.Event, error) {
	switch c := cmd.(type) {
	case StartStep:
		return decideStartStep(w, c)
	case StepFinished:
		return decideStepFinished(w, c)
	case AttemptTimedOut:
		s, err := w.mustStep(c.Step)
		if err != nil || s.State != StepRunning || c.Attempt != s.Attempt {
			return nil, err
		}
		return one(w.stepFailed(c.Step, c.Attempt, c.Reason)), nil
	case RetryTimerFired:
		s, err := w.mustStep(c.Step)
		if err != nil || w.State.Terminal() || s.State != StepBackoff || c.Attempt != s.Attempt+1 {
			return nil, err
		}
		return one(events.WorkflowRetryFired{Step: c.Step, Attempt: c.Attempt}), nil
	case ReleaseWorkflow:
		if !w.Held || w.State.Terminal() {
			return nil, nil
		}
		return one(events.WorkflowReleased{}), nil
	case CancelWorkflow:
		if w.State.Terminal() {
			return nil, nil
		}
		return one(events.WorkflowCancelled{Reason: c.Reason}), nil
	case DeadlineExpired:
		if w.State.Terminal() {
			return nil, nil
		}
		return one(events.WorkflowTimedOut{}), nil
	}
	return nil, fmt.Errorf("%w: %T", domain.ErrInvalid, cmd)
}

func (w Workflow) mustStep(name string) (Step, error) {
	s, ok := w.Step(name)
	if !ok {
		return s, fmt.Errorf("%w: workflow %s has no step %q", domain.ErrInvalid, w.ID, name)
	}
	return s, nil
}

func decideCreateWorkflow(w Workflow, c CreateWorkflow) ([]events.Event, error) {
	if w.Exists() {
		return nil, fmt.Errorf("workflow %s: %w", c.ID, domain.ErrExists)
	}
	if err := events.ValidateID(c.ID); err != nil {
		return nil, fmt.Errorf("%w: workflow id: %v", domain.ErrInvalid, err)
	}
	if err := c.Spec.Validate(); err != nil {
		return nil, err
	}
	spec, err := json.Marshal(c.Spec)
	if err != nil {
		return nil, fmt.Errorf("%w: workflow spec: %v", domain.ErrInvalid, err)
	}
	if len(spec) > MaxWorkflowSpec {
		return nil, fmt.Errorf("%w: workflow %q: spec: %d bytes as stored, more than the limit of %d", domain.ErrInvalid, clipName(c.Spec.Name), len(spec), MaxWorkflowSpec)
	}
	ev := events.WorkflowCreated{Spec: spec, Held: c.Held, Source: c.Source, RequestDigest: c.RequestDigest}
	if c.Spec.Deadline != "" && c.Spec.Cron == "" {
		ev.DeadlineAt = c.At.Add(durationOr(c.Spec.Deadline, 0)).UTC()
	}
	w.ID = c.ID
	return settle(w, one(ev)), nil
}

func decideStartStep(w Workflow, c StartStep) ([]events.Event, error) {
	s, err := w.mustStep(c.Step)
	switch {
	case err != nil:
		return nil, err
	case s.State == StepRunning && s.Attempt == c.Attempt && slices.Equal(s.TaskIDs(), c.taskIDs()):
		return nil, nil // a duplicate
	case c.Attempt <= s.Attempt:
		return nil, fmt.Errorf("step %q attempt %d (now at %d): %w", c.Step, c.Attempt, s.Attempt, domain.ErrStale)
	case w.State.Terminal():
		return nil, fmt.Errorf("workflow %s is %s: %w", w.ID, w.State, domain.ErrInvalidState)
	case !w.offers(c.Step, c.Attempt):
		return nil, fmt.Errorf("step %q attempt %d is not ready to start (%s): %w", c.Step, c.Attempt, s.State, domain.ErrInvalidState)
	}
	if err := checkShards(w.Spec.Steps[w.stepIndex(c.Step)], c); err != nil {
		return nil, err
	}
	return one(events.WorkflowStepStarted{Step: c.Step, Attempt: c.Attempt, TaskID: c.TaskID, Shards: c.Shards}), nil
}

func (c StartStep) taskIDs() []string {
	return Step{TaskID: c.TaskID, Shards: shardStates(c.Shards)}.TaskIDs()
}

func shardStates(shs []events.Shard) []Shard {
	out := make([]Shard, len(shs))
	for i, sh := range shs {
		out[i] = Shard{TaskID: sh.TaskID, Device: sh.Device, State: StepRunning}
	}
	return out
}

func checkShards(spec StepSpec, c StartStep) error {
	if !spec.Placement.FanOut() {
		if c.TaskID == "" || len(c.Shards) > 0 {
			return fmt.Errorf("%w: step %q runs as one task: give a task id and no shards", domain.ErrInvalid, c.Step)
		}
		return nil
	}
	if c.TaskID != "" || len(c.Shards) == 0 {
		return fmt.Errorf("%w: fan-out step %q starts with one shard per device and no task id", domain.ErrInvalid, c.Step)
	}
	seen := make(map[string]bool, len(c.Shards))
	for _, sh := range c.Shards {
		if sh.TaskID == "" || sh.Device == "" || seen[sh.TaskID] {
			return fmt.Errorf("%w: step %q: shards need distinct task ids and a device each", domain.ErrInvalid, c.Step)
		}
		seen[sh.TaskID] = true
	}
	if need := spec.Placement.Quorum(len(c.Shards)); need > len(c.Shards) {
		return fmt.Errorf("%w: step %q needs %d successes from %d devices", domain.ErrInvalid, c.Step, need, len(c.Shards))
	}
	return nil
}

func (w Workflow) offers(step string, attempt int) bool {
	i := w.stepIndex(step)
	if i < 0 || !w.Exists() || w.State.Terminal() || w.Held || w.Spec.Cron != "" {
		return false
	}
	s := w.Steps[i]
	if s.State != StepPending || attempt != s.Attempt+1 {
		return false
	}
	if w.Spec.FailFast && slices.ContainsFunc(w.Steps, func(s Step) bool { return s.State == StepFailed }) {
		return false
	}
	// The stored state holds every skip that follows from it (settle
	// records them with their cause), so the states as they are decide.
	deps, _ := w.graph()
	eff := make([]StepState, len(w.Steps))
	for _, d := range deps[i] {
		eff[d] = w.Steps[d].State
	}
	ready, run, _ := w.condition(w.Spec.Steps[i].EffectiveRunIf(), deps[i], eff)
	return ready && run
}

func decideStepFinished(w Workflow, c StepFinished) ([]events.Event, error) {
	s, err := w.mustStep(c.Step)
	if err != nil {
		return nil, err
	}
	attempt := c.Attempt
	if attempt == 0 {
		attempt = s.Attempt
	}
	if s.State != StepRunning || attempt != s.Attempt {
		return nil, nil // a duplicate, or a result of an older attempt
	}
	if len(s.Shards) > 0 {
		return w.shardFinished(s, c, attempt), nil
	}
	if c.TaskID != "" && c.TaskID != s.TaskID {
		return nil, nil // a task of an older attempt
	}
	if c.Error == "" {
		return one(events.WorkflowStepCompleted{Step: c.Step, Attempt: attempt, Result: c.Result}), nil
	}
	return one(w.stepFailed(c.Step, attempt, c.Error)), nil
}

func (w Workflow) stepFailed(step string, attempt int, reason string) events.Event {
	spec := w.Spec.Steps[w.stepIndex(step)]
	final := w.State.Terminal() || attempt >= spec.MaxAttempts()
	return events.WorkflowStepFailed{Step: step, Attempt: attempt, Reason: reason, Final: final}
}

// shardFinished records one device's outcome and, once the quorum is met
// or can no longer be met, the step's: its result is the JSON list of the
// successful devices' results, in shard order.
func (w Workflow) shardFinished(s Step, c StepFinished, attempt int) []events.Event {
	i := s.shard(c.TaskID)
	if i < 0 || s.Shards[i].State != StepRunning {
		return nil
	}
	ev := events.WorkflowShardFinished{Step: c.Step, Attempt: attempt, TaskID: c.TaskID, Result: c.Result, Error: c.Error}
	evs := one(ev)
	s.finishShard(ev) // s is a copy: now as the fold will leave it
	var ok, running int
	var firstErr string
	results := make([]json.RawMessage, 0, len(s.Shards))
	for _, sh := range s.Shards {
		switch sh.State {
		case StepCompleted:
			ok++
			results = append(results, rawOrNull(sh.Result))
		case StepRunning:
			running++
		default:
			if firstErr == "" {
				firstErr = sh.Device + ": " + sh.Error
			}
		}
	}
	need := w.Spec.Steps[w.stepIndex(c.Step)].Placement.Quorum(len(s.Shards))
	switch {
	case ok >= need:
		list, _ := json.Marshal(results)
		evs = append(evs, events.WorkflowStepCompleted{Step: c.Step, Attempt: attempt, Result: list})
	case ok+running < need:
		reason := fmt.Sprintf("%d of %d devices succeeded, %d needed (first error: %s)", ok, len(s.Shards), need, firstErr)
		evs = append(evs, w.stepFailed(c.Step, attempt, reason))
	}
	return evs
}

func rawOrNull(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return json.RawMessage("null")
	}
	return r
}

// settle appends to evs what follows from them without outside action:
// skipped steps and the workflow's terminal event.
func settle(w Workflow, evs []events.Event) []events.Event {
	after, states, ok := w.patched(evs)
	if !ok {
		return settleCopy(w, evs)
	}
	return append(evs, consequencesWith(after, states)...)
}

// settleCopy is settle on a copy of every step: the way for events
// patched does not know.
func settleCopy(w Workflow, evs []events.Event) []events.Event {
	after := w.Clone()
	after.applyDecided(evs)
	return append(evs, consequences(after)...)
}

// patched folds evs into copies of only the steps they name and returns
// the workflow after them (its own fields; its steps still w's) with the
// state of every step after them. Consequences need no more, and a copy
// of every step made each decision on a workflow of n steps cost n. It
// reports false for an event it does not know the step of.
func (w Workflow) patched(evs []events.Event) (Workflow, []StepState, bool) {
	mini := w
	mini.Steps, mini.index, mini.ownSteps = nil, map[string]int{}, false
	var at []int // at[j]: the index in w.Steps of mini.Steps[j]
	for _, ev := range evs {
		name, ok := stepOf(ev)
		if !ok {
			return w, nil, false
		}
		if _, seen := mini.index[name]; name == "" || seen {
			continue
		}
		if i := w.stepIndex(name); i >= 0 {
			mini.index[name] = len(mini.Steps)
			mini.Steps = append(mini.Steps, w.Steps[i])
			at = append(at, i)
		}
	}
	mini.applyDecided(evs)
	states := stepStates(w.Steps)
	for j, i := range at {
		states[i] = mini.Steps[j].State
	}
	mini.Steps, mini.index = w.Steps, w.index
	return mini, states, true
}

// stepOf returns the step a decided event names ("" for an event of the
// whole workflow); false for an event it does not know.
func stepOf(ev events.Event) (string, bool) {
	switch e := ev.(type) {
	case events.WorkflowStepStarted:
		return e.Step, true
	case events.WorkflowShardFinished:
		return e.Step, true
	case events.WorkflowStepCompleted:
		return e.Step, true
	case events.WorkflowStepFailed:
		return e.Step, true
	case events.WorkflowRetryFired:
		return e.Step, true
	case events.WorkflowStepSkipped:
		return e.Step, true
	case events.WorkflowReleased, events.WorkflowCompleted, events.WorkflowFailed, events.WorkflowCancelled, events.WorkflowTimedOut:
		return "", true
	}
	return "", false
}

func stepStates(steps []Step) []StepState {
	states := make([]StepState, len(steps))
	for i, s := range steps {
		states[i] = s.State
	}
	return states
}

// mayFollow reports whether evs, applied to w, may have consequences: only
// an attempt's final outcome or the workflow's end can make steps skipped
// or the workflow terminal (the state before evs had none pending). It is
// a cheap filter in front of consequences, for batches of many commands.
func mayFollow(w Workflow, evs []events.Event) bool {
	ended := false
	for _, ev := range evs {
		switch e := ev.(type) {
		case events.WorkflowStepCompleted, events.WorkflowCancelled, events.WorkflowTimedOut:
			ended = true
		case events.WorkflowStepFailed:
			ended = ended || e.Final
		}
	}
	if !ended {
		return false
	}
	if w.State.Terminal() || w.Spec.FailFast {
		return true
	}
	deps, _ := w.graph()
	allDone := true
	for i, s := range w.Steps {
		if !s.State.Terminal() {
			allDone = false
		}
		if s.State != StepPending {
			continue
		}
		ready := true
		for _, d := range deps[i] {
			if !w.Steps[d].State.Terminal() {
				ready = false
				break
			}
		}
		if ready {
			return true // its run_if decides: it may be skipped
		}
	}
	return allDone
}

// consequences are the events that follow from the state alone: skipped
// steps and the terminal event.
func consequences(w Workflow) []events.Event { return consequencesWith(w, stepStates(w.Steps)) }

// consequencesWith is consequences with the steps' states given apart
// (patched): only those, the steps' names and the workflow's own fields
// are read.
func consequencesWith(w Workflow, states []StepState) []events.Event {
	p := nextWith(w, states, false)
	var evs []events.Event
	for _, s := range p.Skip {
		evs = append(evs, events.WorkflowStepSkipped{Step: s.Step, Reason: s.Reason})
	}
	if p.Finish != nil {
		evs = append(evs, p.Finish)
	}
	return evs
}

// applyDecided folds events a decider just decided into w in place (the
// caller owns w's steps): envelopes are not stored yet, so the next
// sequence and the last time stand in.
func (w *Workflow) applyDecided(evs []events.Event) {
	env := events.Envelope{Aggregate: events.Aggregate{Kind: events.KindWorkflow, ID: w.ID}, Seq: w.Seq + 1, Time: w.UpdatedAt}
	for _, ev := range evs {
		w.apply(env, ev)
	}
}
