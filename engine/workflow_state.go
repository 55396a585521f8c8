package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

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
	// RequestDigest is the digest of the create request under an
	// idempotency key (events.WorkflowCreated's).
	RequestDigest string    `json:"request_digest,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	FinishedAt    time.Time `json:"finished_at,omitzero"`
	Seq           uint64    `json:"seq"`

	ownSteps bool // ApplyOwned may write Steps in place: no copy of w shares them

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

// Apply folds one event into the workflow. The steps are copied, so
// earlier states stay valid.
func (w Workflow) Apply(env events.Envelope, ev events.Event) Workflow {
	return w.ApplyAll([]events.Envelope{env}, []events.Event{ev})
}

// ApplyAll folds events into the workflow, copying the steps once (Fold
// uses it for a batch of events).
func (w Workflow) ApplyAll(envs []events.Envelope, evs []events.Event) Workflow {
	w = w.Clone()
	for i, ev := range evs {
		w.apply(envs[i], ev)
	}
	return w
}

// ApplyOwned folds one event into w in place: the caller owns w's steps
// (no copy of w shares them). Read models use it, and copy on read.
func (w *Workflow) ApplyOwned(env events.Envelope, ev events.Event) {
	if !w.ownSteps {
		w.Steps = slices.Clone(w.Steps)
		w.ownSteps = true
	}
	w.apply(env, ev)
}

// Clone returns a copy of w that shares no mutable state with it.
func (w Workflow) Clone() Workflow {
	w.Steps = slices.Clone(w.Steps)
	w.ownSteps = false
	return w
}

// apply folds ev into w, writing to w.Steps in place: every fold entry
// point above owns the steps it hands here.
func (w *Workflow) apply(env events.Envelope, ev events.Event) {
	w.Seq, w.UpdatedAt = env.Seq, env.Time
	switch e := ev.(type) {
	case events.WorkflowCreated:
		w.applyCreated(env, e)
	case events.WorkflowReleased:
		w.Held = false
	case events.WorkflowStepStarted:
		w.updateStep(e.Step, func(s *Step) {
			*s = Step{Name: s.Name, State: StepRunning, Attempt: e.Attempt, TaskID: e.TaskID, StartedAt: env.Time}
			if len(e.Shards) > 0 {
				s.Shards = shardStates(e.Shards)
			}
		})
	case events.WorkflowShardFinished:
		w.updateAttempt(e.Step, e.Attempt, func(s *Step) { s.finishShard(e) })
	case events.WorkflowStepCompleted:
		w.updateAttempt(e.Step, e.Attempt, func(s *Step) {
			s.State, s.Result, s.FinishedAt = StepCompleted, e.Result, env.Time
		})
	case events.WorkflowStepFailed:
		w.updateAttempt(e.Step, e.Attempt, func(s *Step) {
			s.State, s.Error, s.FinishedAt = StepBackoff, e.Reason, env.Time
			if e.Final {
				s.State = StepFailed
			}
		})
	case events.WorkflowRetryFired:
		w.updateAttempt(e.Step, e.Attempt-1, func(s *Step) {
			if s.State == StepBackoff {
				s.State = StepPending
			}
		})
	case events.WorkflowStepSkipped:
		w.updateStep(e.Step, func(s *Step) { s.State, s.Error, s.FinishedAt = StepSkipped, e.Reason, env.Time })
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

// Reindexed returns w with what Apply derives from its spec when it is
// created (the step index and the dependency graph) computed again: a
// workflow read back from JSON (a read model's snapshot) lacks them. It
// is not an UnmarshalJSON method, which types embedding Workflow (the
// API's) would inherit for their whole JSON.
func (w Workflow) Reindexed() Workflow {
	w.derive()
	return w
}

// derive computes the index and the graph from the spec.
func (w *Workflow) derive() {
	w.index = make(map[string]int, len(w.Spec.Steps))
	for i, s := range w.Spec.Steps {
		w.index[s.Name] = i
	}
	w.deps = w.Spec.Dependencies()
	w.order = topoOrder(w.deps)
}

func (w *Workflow) applyCreated(env events.Envelope, e events.WorkflowCreated) {
	w.ID, w.CreatedAt, w.DeadlineAt, w.State = env.Aggregate.ID, env.Time, e.DeadlineAt, WorkflowRunning
	w.Held, w.Source, w.RequestDigest = e.Held, e.Source, e.RequestDigest
	if err := json.Unmarshal(e.Spec, &w.Spec); err != nil {
		w.State, w.Reason = WorkflowFailed, "stored spec does not decode: "+err.Error()
		return
	}
	w.Steps = make([]Step, len(w.Spec.Steps))
	for i, s := range w.Spec.Steps {
		w.Steps[i].Name = s.Name
	}
	w.derive()
}

func (w *Workflow) updateStep(name string, f func(*Step)) {
	if i := w.stepIndex(name); i >= 0 {
		f(&w.Steps[i])
	}
}

// updateAttempt updates the step only if attempt is its current one: a
// result of an older attempt never touches a newer one.
func (w *Workflow) updateAttempt(name string, attempt int, f func(*Step)) {
	if s, ok := w.Step(name); ok && s.Attempt == attempt {
		w.updateStep(name, f)
	}
}

func (w *Workflow) finish(env events.Envelope, s WorkflowState, reason string) {
	if w.State.Terminal() {
		return
	}
	w.State, w.Reason, w.FinishedAt = s, reason, env.Time
}
