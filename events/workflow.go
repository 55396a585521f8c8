package events

import (
	"encoding/json"
	"time"
)

// Workflow events (stream WORKFLOWS, subject jp.evt.wf.<id>). Attempts are
// numbered from 1 per step.

// WorkflowCreated records a new workflow. Spec is the engine's validated
// WorkflowSpec as JSON (the engine owns its schema); DeadlineAt is the
// creation time plus the spec's deadline, zero when there is none.
type WorkflowCreated struct {
	Spec       json.RawMessage `json:"spec"`
	DeadlineAt time.Time       `json:"deadline_at,omitzero"`
	Held       bool            `json:"held,omitempty"` // nothing starts until workflow.released (Propeller's jobs)
	Source     string          `json:"source,omitempty"`
	// RequestDigest is the "sha256:<hex>" of the create request of a
	// workflow created with an idempotency key (see TaskCreated's).
	RequestDigest string `json:"request_digest,omitempty"`
}

// WorkflowReleased records that a held workflow may start its steps.
type WorkflowReleased struct{}

// WorkflowStepStarted records that an attempt of a step was handed to a
// task, or (a fan-out step) to one task per device in Shards.
type WorkflowStepStarted struct {
	Step    string  `json:"step"`
	Attempt int     `json:"attempt"`
	TaskID  string  `json:"task_id,omitempty"`
	Shards  []Shard `json:"shards,omitempty"`
}

// Shard is the task of one device in a fan-out step.
type Shard struct {
	TaskID string `json:"task_id"`
	Device string `json:"device"`
}

// WorkflowShardFinished records the outcome of one device's task in a
// fan-out step: a Result, or an Error.
type WorkflowShardFinished struct {
	Step    string          `json:"step"`
	Attempt int             `json:"attempt"`
	TaskID  string          `json:"task_id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// WorkflowStepCompleted records a step's result.
type WorkflowStepCompleted struct {
	Step    string          `json:"step"`
	Attempt int             `json:"attempt"`
	Result  json.RawMessage `json:"result"`
}

// WorkflowStepFailed records a failed attempt; Final when no retry follows.
type WorkflowStepFailed struct {
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
	Final   bool   `json:"final,omitempty"`
}

// WorkflowRetryFired records that the backoff before Attempt ended: the
// step may start again.
type WorkflowRetryFired struct {
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
}

// WorkflowStepSkipped records a step that will not run.
type WorkflowStepSkipped struct {
	Step   string `json:"step"`
	Reason string `json:"reason"`
}

// WorkflowCompleted records that every step ended and none failed.
type WorkflowCompleted struct{}

// WorkflowFailed records a workflow ended by a failed step.
type WorkflowFailed struct {
	Reason string `json:"reason"`
}

// WorkflowCancelled records a cancellation by a user.
type WorkflowCancelled struct {
	Reason string `json:"reason,omitempty"`
}

// WorkflowTimedOut records a workflow that passed its deadline.
type WorkflowTimedOut struct{}

func (WorkflowCreated) EventType() string       { return "workflow.created" }
func (WorkflowReleased) EventType() string      { return "workflow.released" }
func (WorkflowStepStarted) EventType() string   { return "workflow.step_started" }
func (WorkflowShardFinished) EventType() string { return "workflow.shard_finished" }
func (WorkflowStepCompleted) EventType() string { return "workflow.step_completed" }
func (WorkflowStepFailed) EventType() string    { return "workflow.step_failed" }
func (WorkflowRetryFired) EventType() string    { return "workflow.retry_fired" }
func (WorkflowStepSkipped) EventType() string   { return "workflow.step_skipped" }
func (WorkflowCompleted) EventType() string     { return "workflow.completed" }
func (WorkflowFailed) EventType() string        { return "workflow.failed" }
func (WorkflowCancelled) EventType() string     { return "workflow.cancelled" }
func (WorkflowTimedOut) EventType() string      { return "workflow.timed_out" }
