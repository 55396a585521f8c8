package events

import (
	"encoding/json"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
)

// Task events (stream TASKS, subject jp.evt.task.<id>).

// TaskCreated records a new task. Module bytes are never in events: the
// module is referenced by its sha256 digest in the MODULES object store, or
// by an image reference.
type TaskCreated struct {
	Name       string            `json:"name"` // the export to call
	Module     string            `json:"module,omitempty"`
	ModuleSize int64             `json:"module_size,omitempty"`
	ImageURL   string            `json:"image_url,omitempty"`
	Inputs     []string          `json:"inputs,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	CLIArgs    []string          `json:"cli_args,omitempty"`
	Stdin      []byte            `json:"stdin,omitempty"`
	Daemon     bool              `json:"daemon,omitempty"`
	// Latent (Propeller's field): a start deploys the module on its
	// device, compiled and kept warm, and runs nothing; each invocation
	// (POST /tasks/{id}/invoke) runs it, with TimeoutMS and MemoryMiB as
	// its limits. The task runs until stopped.
	Latent       bool   `json:"latent,omitempty"`
	TimeoutMS    int64  `json:"timeout_ms,omitempty"`
	MemoryMiB    int    `json:"memory_mib,omitempty"`
	TargetDevice string `json:"target_device,omitempty"`
	// MaxAttempts bounds the attempts a task makes when its attempts are
	// lost (device offline, deadline passed, interrupted), counting the
	// first: 0 is the engine's default (engine.Task.MaxAttempts), 1 no
	// retry.
	MaxAttempts int `json:"max_attempts,omitempty"`

	// Set on tasks a workflow runs: the workflow, the step and its
	// attempt, and the results of the step's direct dependencies
	// (Propeller's parent_results, sent to the proplet as is).
	Workflow      string                     `json:"workflow_id,omitempty"`
	Step          string                     `json:"step,omitempty"`
	StepAttempt   int                        `json:"step_attempt,omitempty"`
	ParentResults map[string]json.RawMessage `json:"parent_results,omitempty"`

	// Propeller's task schema (issue 13): free-form labels, the order
	// among starts, one attempt per device, a cron schedule, the
	// condition on dependencies, the kind and a monitoring profile. All
	// optional: histories from before them fold as before.
	TaskSchema

	// RequestDigest is the "sha256:<hex>" of the create request of a task
	// created with an idempotency key (its id derives from the key): the
	// same key with another request is refused (domain.ErrKeyReused).
	RequestDigest string `json:"request_digest,omitempty"`
}

// TaskSchema holds the fields of Propeller's task JSON that jetprop
// implements beyond running a module (engine.CheckTaskSchema checks them).
type TaskSchema struct {
	// Metadata is the task's labels: compact JSON values by key
	// (GET /tasks?metadata=k:v filters on them).
	Metadata map[string]json.RawMessage `json:"metadata,omitempty"`
	// Priority orders starts that wait for the same thing (0 to 100;
	// 0 means the default, engine.DefaultPriority): higher first.
	Priority int `json:"priority,omitempty"`
	// Broadcast runs one attempt on every placeable device.
	Broadcast bool `json:"broadcast,omitempty"`
	// Schedule is a cron expression: the task starts at its times, every
	// time when Recurring, else once. Timezone is an IANA zone ("" UTC).
	Schedule  string `json:"schedule,omitempty"`
	Recurring bool   `json:"is_recurring,omitempty"`
	Timezone  string `json:"timezone,omitempty"`
	// RunIf is Propeller's condition on a task's dependencies ("success"
	// or "failure"); a task without dependencies always runs.
	RunIf string `json:"run_if,omitempty"`
	// Kind is Propeller's task kind ("standard").
	Kind string `json:"kind,omitempty"`
	// MonitoringProfile is Propeller's monitoring profile, kept as given.
	MonitoringProfile json.RawMessage `json:"monitoring_profile,omitempty"`
	// BroadcastOf is set on the task a broadcast task runs on one device:
	// the broadcast task, and which of its runs (from 1).
	BroadcastOf  string `json:"broadcast_of,omitempty"`
	BroadcastRun int    `json:"broadcast_run,omitempty"`
}

// TaskModuleAttached records a module uploaded after the task was created.
type TaskModuleAttached struct {
	Module     string `json:"module"`
	ModuleSize int64  `json:"module_size"`
}

// TaskScheduled records the placement of an attempt on a device.
type TaskScheduled struct {
	Device  string `json:"device"`
	Attempt int    `json:"attempt"`
	// Lost counts the attempts lost in a row before this one (task.lost):
	// 0 for a start by a user.
	Lost int `json:"lost,omitempty"`
}

// TaskStarted records that the attempt is out on its device: the device
// accepted the start (Accepted: a jetprop proplet on its own topics), or,
// for a device that does not answer starts (Propeller's proplets), the
// broker took the start message for it.
type TaskStarted struct {
	Device   string `json:"device"`
	Attempt  int    `json:"attempt"`
	Accepted bool   `json:"accepted,omitempty"`
}

// TaskUndelivered records that the attempt's device did not accept its
// start in time: the attempt is over before it began, and the task is
// placed again (a task.scheduled follows in the same append) or fails.
type TaskUndelivered struct {
	Device  string `json:"device"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
}

// TaskLost records that an attempt ended without its result: its device
// went offline (Cause "device_offline"), its deadline passed ("deadline",
// with the Deadline), or its device reported it interrupted by a restart
// or a shutdown ("interrupted"). A task.scheduled (the next attempt) or a
// task.failed follows in the same append.
type TaskLost struct {
	Device   string    `json:"device"`
	Attempt  int       `json:"attempt"`
	Cause    string    `json:"cause"`
	Reason   string    `json:"reason"`
	Deadline time.Time `json:"deadline,omitzero"`
}

// TaskLateResult records a result of an attempt that had already ended
// without it (lost or undelivered), from the device it ran on. It is kept
// for the record and changes nothing else: the task's own result is its
// current attempt's.
type TaskLateResult struct {
	Device  string          `json:"device"`
	Attempt int             `json:"attempt"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// TaskCompleted records a successful result.
type TaskCompleted struct {
	Device  string          `json:"device"`
	Attempt int             `json:"attempt"`
	Result  json.RawMessage `json:"result"`
}

// TaskFailed records a failed attempt.
type TaskFailed struct {
	Device  string `json:"device,omitempty"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
}

// TaskStopped records a stop requested by a user.
type TaskStopped struct {
	Device  string `json:"device,omitempty"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason,omitempty"`
}

// TaskDeleted removes a task from every view.
type TaskDeleted struct{}

func (TaskCreated) EventType() string        { return "task.created" }
func (TaskModuleAttached) EventType() string { return "task.module_attached" }
func (TaskScheduled) EventType() string      { return "task.scheduled" }
func (TaskStarted) EventType() string        { return "task.started" }
func (TaskUndelivered) EventType() string    { return "task.undelivered" }
func (TaskLost) EventType() string           { return "task.lost" }
func (TaskLateResult) EventType() string     { return "task.late_result" }
func (TaskCompleted) EventType() string      { return "task.completed" }
func (TaskFailed) EventType() string         { return "task.failed" }
func (TaskStopped) EventType() string        { return "task.stopped" }
func (TaskDeleted) EventType() string        { return "task.deleted" }

// Device events (stream DEVICES, subject jp.evt.dev.<id>).

// DeviceMetadata is what a device announces about itself.
type DeviceMetadata = domain.DeviceMetadata

// DeviceAnnounced records a discovery message (the device is alive).
type DeviceAnnounced struct {
	Namespace string         `json:"namespace,omitempty"`
	Metadata  DeviceMetadata `json:"metadata"`
	// OwnTopics: the device announced itself on its own topics
	// (.../control/proplet/<id>/create) and listens on them; otherwise on
	// Propeller's shared topics.
	OwnTopics bool `json:"own_topics,omitempty"`
	// Accepts: on its own topics it answers every start with an accept.
	Accepts bool `json:"accepts,omitempty"`
}

// DeviceAlive records a transition to alive from offline, or a first
// heartbeat from a device that never announced itself.
type DeviceAlive struct {
	Namespace string `json:"namespace,omitempty"`
	OwnTopics bool   `json:"own_topics,omitempty"` // as in DeviceAnnounced
}

// DeviceOffline records a transition to offline.
type DeviceOffline struct {
	Reason string `json:"reason"`
	// LastWill: the broker published the device's last will (its
	// connection dropped), not missed heartbeats; a device whose node died
	// may be reconnecting to another.
	LastWill bool `json:"last_will,omitempty"`
}

// DeviceUnreachable records that a device that is up cannot receive: it
// did not accept a start in time, or it said the broker refused its
// subscription. It is not placeable until it announces itself again or
// accepts a start (DeviceReachable).
type DeviceUnreachable struct {
	Reason string `json:"reason"`
}

// DeviceReachable records that an unreachable device accepted a start: it
// receives again.
type DeviceReachable struct{}

// DeviceProvisioned records that a device may connect with the key whose
// hash it carries (domain.HashSecret); the key itself is never stored.
// Legacy devices (Propeller's proplets) may use the shared topics.
type DeviceProvisioned struct {
	KeyHash string `json:"key_hash"`
	Legacy  bool   `json:"legacy,omitempty"`
}

// DeviceRevoked records that a device may no longer connect.
type DeviceRevoked struct {
	Reason string `json:"reason,omitempty"`
}

func (DeviceAnnounced) EventType() string   { return "device.announced" }
func (DeviceAlive) EventType() string       { return "device.alive" }
func (DeviceOffline) EventType() string     { return "device.offline" }
func (DeviceUnreachable) EventType() string { return "device.unreachable" }
func (DeviceReachable) EventType() string   { return "device.reachable" }
func (DeviceProvisioned) EventType() string { return "device.provisioned" }
func (DeviceRevoked) EventType() string     { return "device.revoked" }

// Artifact events (stream ARTIFACTS, subject jp.evt.art.<name>). An artifact
// is a name whose tags point at modules; the module bytes stay in the MODULES
// object store, referenced by digest.

// ArtifactStored records that a module was stored under the artifact's
// name: the first time this digest appears in it.
type ArtifactStored struct {
	Digest    string `json:"digest"` // "sha256:<hex>", the key in MODULES
	Size      int64  `json:"size"`
	MediaType string `json:"media_type,omitempty"`
	Source    string `json:"source,omitempty"` // "upload", or the reference it was imported from
}

// ArtifactTagged records that a tag now points at a digest; Previous is the
// digest it pointed at before ("" for a new tag).
type ArtifactTagged struct {
	Tag      string `json:"tag"`
	Digest   string `json:"digest"`
	Previous string `json:"previous,omitempty"`
}

// ArtifactUntagged records the removal of a tag (which pointed at Digest).
type ArtifactUntagged struct {
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
}

// ArtifactDeleted records that the artifact has no tags left: the name
// disappears from every view and may be used again.
type ArtifactDeleted struct{}

func (ArtifactStored) EventType() string   { return "artifact.stored" }
func (ArtifactTagged) EventType() string   { return "artifact.tagged" }
func (ArtifactUntagged) EventType() string { return "artifact.untagged" }
func (ArtifactDeleted) EventType() string  { return "artifact.deleted" }

// All returns a sample of every event type, for NewCodec.
func All() []Event {
	return []Event{
		TaskCreated{}, TaskModuleAttached{}, TaskScheduled{}, TaskStarted{}, TaskUndelivered{},
		TaskLost{}, TaskLateResult{}, TaskCompleted{Result: json.RawMessage(`null`)}, TaskFailed{}, TaskStopped{}, TaskDeleted{}, TaskUpdated{},
		DeviceAnnounced{}, DeviceAlive{}, DeviceOffline{}, DeviceUnreachable{}, DeviceReachable{}, DeviceProvisioned{}, DeviceRevoked{}, DeviceRemoved{},
		TransferRequested{}, TransferSent{}, TransferCompleted{}, TransferFailed{},
		ArtifactStored{}, ArtifactTagged{}, ArtifactUntagged{}, ArtifactDeleted{},
		TokenCreated{}, TokenRevoked{},
		SecretSet{}, SecretDeleted{},
		WorkflowCreated{}, WorkflowReleased{}, WorkflowStepStarted{}, WorkflowShardFinished{}, WorkflowStepCompleted{}, WorkflowStepFailed{}, WorkflowRetryFired{}, WorkflowStepSkipped{}, WorkflowCompleted{}, WorkflowFailed{}, WorkflowCancelled{}, WorkflowTimedOut{},
	}
}

// DefaultCodec registers every jetprop event type.
func DefaultCodec() *Codec {
	r, err := NewCodec(All()...)
	if err != nil {
		panic(err) // a programming error in this package, caught by its tests
	}
	return r
}
