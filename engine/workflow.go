package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// StepState is the state of one workflow step.
type StepState int

// Step states. Completed, failed and skipped are terminal.
const (
	StepPending   StepState = iota // waiting for its dependencies, or for a retry to start
	StepRunning                    // an attempt is out as a task
	StepBackoff                    // an attempt failed; the next one waits for its backoff
	StepCompleted                  // succeeded
	StepFailed                     // its last attempt failed
	StepSkipped                    // will not run
)

var stepStateNames = [...]string{"pending", "running", "backoff", "completed", "failed", "skipped"}

func (s StepState) String() string {
	if int(s) < len(stepStateNames) {
		return stepStateNames[s]
	}
	return fmt.Sprintf("step_state(%d)", int(s))
}

// MarshalText writes the state's name.
func (s StepState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *StepState) UnmarshalText(b []byte) error {
	if i := slices.Index(stepStateNames[:], string(b)); i >= 0 {
		*s = StepState(i)
		return nil
	}
	return fmt.Errorf("unknown step state %q", b)
}

// Terminal reports whether the step has ended.
func (s StepState) Terminal() bool { return s >= StepCompleted }

// WorkflowState is the state of a workflow.
type WorkflowState int

// Workflow states. Every state but running is terminal, reached once.
const (
	WorkflowRunning WorkflowState = iota
	WorkflowCompleted
	WorkflowFailed
	WorkflowCancelled
	WorkflowTimedOut
)

var workflowStateNames = [...]string{"running", "completed", "failed", "cancelled", "timed_out"}

func (s WorkflowState) String() string {
	if int(s) < len(workflowStateNames) {
		return workflowStateNames[s]
	}
	return fmt.Sprintf("workflow_state(%d)", int(s))
}

// MarshalText writes the state's name.
func (s WorkflowState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *WorkflowState) UnmarshalText(b []byte) error {
	if i := slices.Index(workflowStateNames[:], string(b)); i >= 0 {
		*s = WorkflowState(i)
		return nil
	}
	return fmt.Errorf("unknown workflow state %q", b)
}

// Terminal reports whether the workflow has ended.
func (s WorkflowState) Terminal() bool { return s != WorkflowRunning }

// Step is the state of one step of a workflow.
type Step struct {
	Name       string          `json:"name"`
	State      StepState       `json:"state"`
	Attempt    int             `json:"attempt"` // the last attempt started (0: none yet)
	TaskID     string          `json:"task_id,omitempty"`
	Shards     []Shard         `json:"shards,omitempty"` // fan-out steps: the current attempt's task per device
	Result     json.RawMessage `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"` // why the last attempt failed, or why the step was skipped
	StartedAt  time.Time       `json:"started_at,omitzero"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
}

// Shard is one device's task in the current attempt of a fan-out step.
type Shard struct {
	TaskID string          `json:"task_id"`
	Device string          `json:"device"`
	State  StepState       `json:"state"` // running, completed or failed
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// TaskIDs are the tasks of the step's current attempt.
func (s Step) TaskIDs() []string {
	if len(s.Shards) == 0 {
		if s.TaskID == "" {
			return nil
		}
		return []string{s.TaskID}
	}
	ids := make([]string, len(s.Shards))
	for i, sh := range s.Shards {
		ids[i] = sh.TaskID
	}
	return ids
}

// finishShard records a device's outcome on its running shard. The shards
// are copied on write: copies of the step keep theirs.
func (s *Step) finishShard(e events.WorkflowShardFinished) {
	i := s.shard(e.TaskID)
	if i < 0 || s.Shards[i].State != StepRunning {
		return
	}
	s.Shards = slices.Clone(s.Shards)
	sh := &s.Shards[i]
	sh.State, sh.Result, sh.Error = StepCompleted, e.Result, e.Error
	if e.Error != "" {
		sh.State = StepFailed
	}
}

func (s Step) shard(taskID string) int {
	return slices.IndexFunc(s.Shards, func(sh Shard) bool { return sh.TaskID == taskID })
}

// Workflow is the state of one workflow, folded from its events. Steps are
// in declaration order.
type Workflow struct {
	ID         string        `json:"id"`
	Spec       WorkflowSpec  `json:"spec"`
	State      WorkflowState `json:"state"`
	Reason     string        `json:"reason,omitempty"`
	Steps      []Step        `json:"steps"`
	DeadlineAt time.Time     `json:"deadline_at,omitzero"`
	Held       bool          `json:"held,omitempty"`   // created held: no step starts until released
	Source     string        `json:"source,omitempty"` // "job" or "workflow" when created through Propeller's API
	CreatedAt  time.Time     `json:"created_at"`
	UpdatedAt  time.Time     `json:"updated_at"`
	FinishedAt time.Time     `json:"finished_at,omitzero"`
	Seq        uint64        `json:"seq"`

	ownSteps bool // Steps may be written in place (see ApplyOwned)

	// Derived from Spec when created; shared between copies, never written.
	deps  [][]int
	order []int
	index map[string]int
}

// Exists reports whether the workflow was created.
func (w Workflow) Exists() bool { return w.Seq != 0 }

// LastSeq is the sequence of the last event applied.
func (w Workflow) LastSeq() uint64 { return w.Seq }

// Step returns the state of the step called name.
func (w Workflow) Step(name string) (Step, bool) {
	if i := w.stepIndex(name); i >= 0 {
		return w.Steps[i], true
	}
	return Step{}, false
}

func (w Workflow) stepIndex(name string) int {
	if w.index != nil {
		if i, ok := w.index[name]; ok {
			return i
		}
		return -1
	}
	return slices.IndexFunc(w.Steps, func(s Step) bool { return s.Name == name })
}

func (w Workflow) graph() (deps [][]int, order []int) {
	if w.deps != nil {
		return w.deps, w.order
	}
	deps = w.Spec.Dependencies()
	return deps, topoOrder(deps)
}

// Apply folds one event into the workflow. Steps are copied on write, so
// earlier states stay valid.
func (w Workflow) Apply(env events.Envelope, ev events.Event) Workflow {
	w.apply(env, ev, false)
	return w
}

// ApplyAll folds events into the workflow, copying the steps once (Fold
// uses it for a batch of events).
func (w Workflow) ApplyAll(envs []events.Envelope, evs []events.Event) Workflow {
	w.Steps = slices.Clone(w.Steps)
	for i, ev := range evs {
		w.apply(envs[i], ev, true)
	}
	return w
}

// ApplyOwned folds one event into w in place: the caller owns w's steps
// (no copy of w shares them). Read models use it, and copy on read.
func (w *Workflow) ApplyOwned(env events.Envelope, ev events.Event) {
	if w.Steps != nil && !w.ownSteps {
		w.Steps = slices.Clone(w.Steps)
	}
	w.apply(env, ev, true)
	w.ownSteps = true
}

// Clone returns a copy of w that shares no mutable state with it.
func (w Workflow) Clone() Workflow {
	w.Steps = slices.Clone(w.Steps)
	w.ownSteps = false
	return w
}

// apply folds ev into w; inPlace writes to w.Steps, which the caller owns.
func (w *Workflow) apply(env events.Envelope, ev events.Event, inPlace bool) {
	w.Seq, w.UpdatedAt = env.Seq, env.Time
	switch e := ev.(type) {
	case events.WorkflowCreated:
		w.applyCreated(env, e)
	case events.WorkflowReleased:
		w.Held = false
	case events.WorkflowStepStarted:
		w.updateStep(inPlace, e.Step, func(s *Step) {
			*s = Step{Name: s.Name, State: StepRunning, Attempt: e.Attempt, TaskID: e.TaskID, StartedAt: env.Time}
			if len(e.Shards) > 0 {
				s.Shards = shardStates(e.Shards)
			}
		})
	case events.WorkflowShardFinished:
		w.updateAttempt(inPlace, e.Step, e.Attempt, func(s *Step) { s.finishShard(e) })
	case events.WorkflowStepCompleted:
		w.updateAttempt(inPlace, e.Step, e.Attempt, func(s *Step) {
			s.State, s.Result, s.FinishedAt = StepCompleted, e.Result, env.Time
		})
	case events.WorkflowStepFailed:
		w.updateAttempt(inPlace, e.Step, e.Attempt, func(s *Step) {
			s.State, s.Error, s.FinishedAt = StepBackoff, e.Reason, env.Time
			if e.Final {
				s.State = StepFailed
			}
		})
	case events.WorkflowRetryFired:
		w.updateAttempt(inPlace, e.Step, e.Attempt-1, func(s *Step) {
			if s.State == StepBackoff {
				s.State = StepPending
			}
		})
	case events.WorkflowStepSkipped:
		w.updateStep(inPlace, e.Step, func(s *Step) { s.State, s.Error, s.FinishedAt = StepSkipped, e.Reason, env.Time })
	case events.WorkflowCompleted:
		w.finish(env, WorkflowCompleted, "")
	case events.WorkflowFailed:
		w.finish(env, WorkflowFailed, e.Reason)
	case events.WorkflowCancelled:
		w.finish(env, WorkflowCancelled, e.Reason)
	case events.WorkflowTimedOut:
		w.finish(env, WorkflowTimedOut, "deadline passed")
	}
}

func (w *Workflow) applyCreated(env events.Envelope, e events.WorkflowCreated) {
	w.ID, w.CreatedAt, w.DeadlineAt, w.State = env.Aggregate.ID, env.Time, e.DeadlineAt, WorkflowRunning
	w.Held, w.Source = e.Held, e.Source
	if err := json.Unmarshal(e.Spec, &w.Spec); err != nil {
		w.State, w.Reason = WorkflowFailed, "stored spec does not decode: "+err.Error()
		return
	}
	w.Steps = make([]Step, len(w.Spec.Steps))
	w.index = make(map[string]int, len(w.Steps))
	for i, s := range w.Spec.Steps {
		w.Steps[i].Name = s.Name
		w.index[s.Name] = i
	}
	w.deps = w.Spec.Dependencies()
	w.order = topoOrder(w.deps)
}

func (w *Workflow) updateStep(inPlace bool, name string, f func(*Step)) {
	i := w.stepIndex(name)
	if i < 0 {
		return
	}
	if !inPlace {
		w.Steps = slices.Clone(w.Steps)
	}
	f(&w.Steps[i])
}

// updateAttempt updates the step only if attempt is its current one: a
// result of an older attempt never touches a newer one.
func (w *Workflow) updateAttempt(inPlace bool, name string, attempt int, f func(*Step)) {
	if s, ok := w.Step(name); ok && s.Attempt == attempt {
		w.updateStep(inPlace, name, f)
	}
}

func (w *Workflow) finish(env events.Envelope, s WorkflowState, reason string) {
	if w.State.Terminal() {
		return
	}
	w.State, w.Reason, w.FinishedAt = s, reason, env.Time
}

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
	work := w
	work.Steps = slices.Clone(w.Steps)
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
		applyOwned(&work, evs)
		all = append(all, evs...)
		if mayFollow(work, evs) {
			cons := consequences(work)
			applyOwned(&work, cons)
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
	ev := events.WorkflowCreated{Spec: spec, Held: c.Held, Source: c.Source}
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
	return append(evs, consequences(applyAll(w, evs))...)
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
func consequences(w Workflow) []events.Event {
	p := next(w, false)
	var evs []events.Event
	for _, s := range p.Skip {
		evs = append(evs, events.WorkflowStepSkipped{Step: s.Step, Reason: s.Reason})
	}
	if p.Finish != nil {
		evs = append(evs, p.Finish)
	}
	return evs
}

// applyAll applies evs to a copy of w, copying the steps once.
func applyAll(w Workflow, evs []events.Event) Workflow {
	w.Steps = slices.Clone(w.Steps)
	applyOwned(&w, evs)
	return w
}

// applyOwned applies evs to w, whose steps the caller owns.
func applyOwned(w *Workflow, evs []events.Event) {
	env := events.Envelope{Aggregate: events.Aggregate{Kind: events.KindWorkflow, ID: w.ID}, Seq: w.Seq + 1, Time: w.UpdatedAt}
	for _, ev := range evs {
		w.apply(env, ev, true)
	}
}

// Plan is what a workflow needs done now, computed from its state alone.
type Plan struct {
	Start  []StepStart  // attempts to hand to tasks, then record with StartStep
	Skip   []StepSkip   // steps that will not run (DecideWorkflow records these itself)
	Stop   []StepStop   // running attempts to stop (fail-fast, cancelled, timed out)
	Retry  []StepRetry  // backoff timers to schedule (idempotent per step and attempt)
	Finish events.Event // the terminal event the workflow has reached, or nil
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

// next is Next; without resolve, starts carry no inputs, stdin or parent
// results (a cheaper answer to "is this step offered").
func next(w Workflow, resolve bool) Plan {
	var p Plan
	if !w.Exists() || w.Steps == nil {
		return p
	}
	if w.State.Terminal() {
		w.abandon(&p, "workflow "+w.State.String())
		return p
	}
	if w.Held || w.Spec.Cron != "" {
		return p // held, or a cron schedule whose runs are workflows of their own
	}
	if i := slices.IndexFunc(w.Steps, func(s Step) bool { return s.State == StepFailed }); i >= 0 && w.Spec.FailFast {
		reason := fmt.Sprintf("fail_fast: step %s failed", w.Steps[i].Name)
		w.abandon(&p, reason)
		p.Finish = events.WorkflowFailed{Reason: reason}
		return p
	}
	eff := make([]StepState, len(w.Steps))
	for i, s := range w.Steps {
		eff[i] = s.State
	}
	deps, order := w.graph()
	for _, i := range order {
		w.plan(&p, i, deps, eff, resolve)
	}
	if p.Finish == nil && len(p.Start) == 0 && !slices.ContainsFunc(eff, func(s StepState) bool { return !s.Terminal() }) {
		p.Finish = finishEvent(w.Steps, eff)
	}
	return p
}

func (w Workflow) abandon(p *Plan, reason string) {
	for _, s := range w.Steps {
		switch s.State {
		case StepPending, StepBackoff:
			p.Skip = append(p.Skip, StepSkip{Step: s.Name, Reason: reason})
		case StepRunning:
			p.Stop = append(p.Stop, StepStop{Step: s.Name, Attempt: s.Attempt, TaskID: s.TaskID})
		}
	}
}

func (w Workflow) plan(p *Plan, i int, deps [][]int, eff []StepState, resolve bool) {
	s, spec := w.Steps[i], w.Spec.Steps[i]
	switch s.State {
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
				p.Start = append(p.Start, StepStart{Step: s.Name, Attempt: s.Attempt + 1})
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
