package httpapi

import (
	"cmp"
	"encoding/json"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// TaskRequest is the body of POST /tasks: Propeller's task fields plus
// jetprop's limits. Send the module inline in File, give an ImageURL, or
// upload the module later with PUT /tasks/{id}/upload.
type TaskRequest struct {
	Name      string            `json:"name"` // the export to call
	Kind      string            `json:"kind,omitempty"`
	ImageURL  string            `json:"image_url,omitempty"`
	File      []byte            `json:"file,omitempty"` // the module, base64 in JSON
	Inputs    wire.Strings      `json:"inputs,omitempty"`
	CLIArgs   []string          `json:"cli_args,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Daemon    bool              `json:"daemon,omitempty"`
	Latent    bool              `json:"latent,omitempty"`     // deploy on start, run on POST /tasks/{id}/invoke
	PropletID string            `json:"proplet_id,omitempty"` // run on this proplet only
	TimeoutMS int64             `json:"timeout_ms,omitempty"`
	MemoryMiB int               `json:"memory_mib,omitempty"`
	Stdin     []byte            `json:"stdin,omitempty"` // base64 in JSON
	// Retry bounds the attempts made when attempts are lost (the device
	// went offline, the deadline passed, the proplet was interrupted);
	// the shape of a workflow step's retry, max_attempts only.
	Retry *TaskRetry `json:"retry,omitempty"`
	TaskSchemaRequest
	serverOwned
}

// TaskSchemaRequest is the rest of Propeller's task JSON on POST /tasks
// (issue 13): the fields jetprop implements (events.TaskSchema), the
// ones it refuses when set (encrypted, kbs_resource_path,
// hal_storage_path, depends_on: false or empty is accepted) and the ones
// the server owns (accepted and ignored).
type TaskSchemaRequest struct {
	Metadata          map[string]json.RawMessage `json:"metadata,omitempty"`
	Priority          int                        `json:"priority,omitempty"`
	Broadcast         bool                       `json:"broadcast,omitempty"`
	Schedule          string                     `json:"schedule,omitempty"`
	IsRecurring       bool                       `json:"is_recurring,omitempty"`
	Timezone          string                     `json:"timezone,omitempty"`
	RunIf             string                     `json:"run_if,omitempty"`
	MonitoringProfile json.RawMessage            `json:"monitoring_profile,omitempty"`

	Encrypted       bool     `json:"encrypted,omitempty"`
	KBSResourcePath string   `json:"kbs_resource_path,omitempty"`
	HalStoragePath  *string  `json:"hal_storage_path,omitempty"`
	DependsOn       []string `json:"depends_on,omitempty"`

	WorkflowID json.RawMessage `json:"workflow_id,omitempty"`
	JobID      json.RawMessage `json:"job_id,omitempty"`
	NextRun    json.RawMessage `json:"next_run,omitempty"`
}

// TaskRetry is a task's retry policy: attempts counting the first, 0 for
// the engine's default (engine.DefaultTaskMaxAttempts), 1 for none. A
// lost attempt is placed again at once, so there is no backoff.
type TaskRetry struct {
	MaxAttempts int `json:"max_attempts"`
}

// serverOwned are fields of Propeller's task JSON that its SDK sends back
// when it creates a task (it marshals a whole task). The server sets them,
// so a request's values are accepted and ignored.
type serverOwned struct {
	ID         json.RawMessage `json:"id,omitempty"`
	State      json.RawMessage `json:"state,omitempty"`
	Status     json.RawMessage `json:"status,omitempty"`
	Mode       json.RawMessage `json:"mode,omitempty"`
	Results    json.RawMessage `json:"results,omitempty"`
	Error      json.RawMessage `json:"error,omitempty"`
	StartTime  json.RawMessage `json:"start_time,omitempty"`
	FinishTime json.RawMessage `json:"finish_time,omitempty"`
	CreatedAt  json.RawMessage `json:"created_at,omitempty"`
	UpdatedAt  json.RawMessage `json:"updated_at,omitempty"`
}

// Task is a task as the API shows it: Propeller's field names (state is
// Propeller's integer) plus jetprop's own. It never holds module bytes.
type Task struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	State      int               `json:"state"`  // Propeller: 0 pending .. 4 failed, 6 interrupted (stopped)
	Status     string            `json:"status"` // jetprop's state name
	ImageURL   string            `json:"image_url,omitempty"`
	Inputs     []string          `json:"inputs,omitempty"`
	CLIArgs    []string          `json:"cli_args"`
	Env        map[string]string `json:"env,omitempty"`
	Daemon     bool              `json:"daemon"`
	Latent     bool              `json:"latent,omitempty"`
	PropletID  string            `json:"proplet_id,omitempty"`
	Results    json.RawMessage   `json:"results,omitempty"`
	Error      string            `json:"error,omitempty"`
	StartTime  time.Time         `json:"start_time,omitzero"`
	FinishTime time.Time         `json:"finish_time,omitzero"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	Attempt    int               `json:"attempt"`
	Module     string            `json:"module,omitempty"` // sha256 digest
	ModuleSize int64             `json:"module_size,omitempty"`
	TimeoutMS  int64             `json:"timeout_ms,omitempty"`
	MemoryMiB  int               `json:"memory_mib,omitempty"`
	// MaxAttempts is the task's retry policy in effect (its own, or the
	// default); EndedAttempts the attempts that ended without their result
	// (lost or never accepted), with late set when a result of one came
	// afterwards (recorded as task.late_result; it changes nothing).
	MaxAttempts   int                   `json:"max_attempts"`
	EndedAttempts []engine.EndedAttempt `json:"ended_attempts,omitempty"`
	// TaskSchema is Propeller's metadata, priority (with its default),
	// broadcast, schedule, is_recurring, timezone, run_if, kind and
	// monitoring_profile.
	events.TaskSchema
	// Quarantined is set when a stored event of the task cannot be read:
	// the task shows its last good state and refuses commands.
	Quarantined *events.Quarantined `json:"quarantined,omitempty"`
}

// TaskList is a page of tasks.
type TaskList struct {
	Offset int    `json:"offset"`
	Limit  int    `json:"limit"`
	Total  int    `json:"total"`
	Tasks  []Task `json:"tasks"`
}

// Results is the answer of GET /tasks/{id}/results. Results is the result
// JSON the proplet sent: a string for core-module calls and WASI commands.
type Results struct {
	ID      string          `json:"id"`
	Results json.RawMessage `json:"results"`
	Error   string          `json:"error,omitempty"`
	State   int             `json:"state"`
	Status  string          `json:"status"`
	// A broadcast task's last run (its number from 1) and its task on
	// each device; Results then holds each device's result by proplet id.
	Run      int               `json:"run,omitempty"`
	Proplets []BroadcastResult `json:"proplets,omitempty"`
}

// Terminal reports whether the task had finished when the answer was made.
func (r Results) Terminal() bool {
	var s engine.TaskState
	return s.UnmarshalText([]byte(r.Status)) == nil && s.Terminal()
}

// Proplet is a device as the API shows it.
type Proplet struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"` // announced, alive, unreachable or offline
	Alive  bool   `json:"alive"`  // tasks may be placed on it
	// Unreachable says why a connected proplet cannot receive (status
	// unreachable): it did not accept a start in time, or the broker
	// refused its subscription. It takes no tasks meanwhile.
	Unreachable string                `json:"unreachable,omitempty"`
	Namespace   string                `json:"namespace,omitempty"`
	Metadata    events.DeviceMetadata `json:"metadata"`
	TaskCount   int                   `json:"task_count"` // tasks scheduled or running on it
	FirstSeen   time.Time             `json:"first_seen"`
	LastChange  time.Time             `json:"last_change"`
	// Quarantined is set when a stored event of the proplet cannot be
	// read: it shows its last good state and refuses commands.
	Quarantined *events.Quarantined `json:"quarantined,omitempty"`
}

// PropletList is a page of proplets.
type PropletList struct {
	Offset   int       `json:"offset"`
	Limit    int       `json:"limit"`
	Total    int       `json:"total"`
	Proplets []Proplet `json:"proplets"`
}

// Device is a device as the identity routes show it (/devices): its
// provisioning next to what it last said of itself. The key is only in
// the answer of POST /devices.
type Device struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`                // unknown (provisioned, never seen), announced, alive, unreachable or offline
	Unreachable string    `json:"unreachable,omitempty"` // why, when unreachable
	Provisioned bool      `json:"provisioned"`
	Legacy      bool      `json:"legacy,omitempty"`
	Revoked     bool      `json:"revoked,omitempty"`
	OwnTopics   bool      `json:"own_topics"`
	Key         string    `json:"key,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	LastChange  time.Time `json:"last_change"`
}

// DeviceFrom is the API's view of a device.
func DeviceFrom(d engine.Device) Device {
	return Device{ID: d.ID, Status: deviceStatus(d), Unreachable: d.Unreachable, Provisioned: d.Provisioned, Legacy: d.Legacy,
		Revoked: d.Revoked, OwnTopics: d.OwnTopics, FirstSeen: d.FirstSeen, LastChange: d.LastChange}
}

// DeviceList is a page of devices.
type DeviceList struct {
	Offset  int      `json:"offset"`
	Limit   int      `json:"limit"`
	Total   int      `json:"total"`
	Devices []Device `json:"devices"`
}

// ProvisionRequest is the body of POST /devices.
type ProvisionRequest struct {
	ID     string `json:"id"`
	Legacy bool   `json:"legacy,omitempty"` // a Propeller proplet: may use the shared topics
}

// RevokeRequest is the (optional) body of POST /devices/{id}/revoke.
type RevokeRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Health is the answer of GET /health: always 200 while the server
// serves. Status is HealthPass, or HealthDegraded when aggregates are
// quarantined or event streams were found damaged at start (GET
// /events/quarantine has the details).
type Health struct {
	Status      string                 `json:"status"`
	Service     string                 `json:"service"`
	Version     string                 `json:"version"`
	Quarantined int                    `json:"quarantined,omitempty"` // aggregates stopped by a stored message that cannot be read
	Streams     []events.StreamProblem `json:"streams,omitempty"`     // event streams found damaged at start
}

// Health statuses.
const (
	HealthPass     = "pass"
	HealthDegraded = "degraded"
)

// QuarantineReport is the answer of GET /events/quarantine: what the
// server found unreadable in its event streams.
type QuarantineReport struct {
	Quarantined []events.Quarantined   `json:"quarantined"`
	Streams     []events.StreamProblem `json:"streams"`
}

// Problems is the number of quarantined aggregates and damaged streams.
func (r QuarantineReport) Problems() int { return len(r.Quarantined) + len(r.Streams) }

// Error is the body of every error answer. A command refused because its
// aggregate is quarantined (409) also names the message that stops it.
type Error struct {
	Error       string              `json:"error"`
	Quarantined *events.Quarantined `json:"quarantined,omitempty"`
}

// TaskFrom returns the API view of a task.
func TaskFrom(t engine.Task) Task {
	v := Task{
		ID: t.ID, Name: t.Name, State: t.State.PropellerState(), Status: t.State.String(),
		ImageURL: t.ImageURL, Inputs: t.Inputs, CLIArgs: t.CLIArgs, Env: t.Env, Daemon: t.Daemon, Latent: t.Latent,
		PropletID: cmp.Or(t.Device, t.TargetDevice), Results: t.Result, Error: t.Error,
		StartTime: t.StartedAt, FinishTime: t.FinishedAt, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		Attempt: t.Attempt, Module: t.Module, ModuleSize: t.ModuleSize,
		TimeoutMS: t.TimeoutMS, MemoryMiB: t.MemoryMiB,
		MaxAttempts: t.MaxAttempts(), EndedAttempts: t.Ended, TaskSchema: t.TaskSchema,
	}
	v.Priority, v.Kind = t.EffectivePriority(), cmp.Or(t.Kind, engine.KindStandard)
	return v
}

// ResultsFrom returns the results view of a task.
func ResultsFrom(t engine.Task) Results {
	res := t.Result
	if res == nil {
		res = json.RawMessage(`null`)
	}
	return Results{ID: t.ID, Results: res, Error: t.Error, State: t.State.PropellerState(), Status: t.State.String()}
}

// deviceStatus is a device's state as the API names it: "unreachable"
// for one that is up and cannot receive.
func deviceStatus(d engine.Device) string {
	if d.State.Up() && d.Unreachable != "" {
		return "unreachable"
	}
	return d.State.String()
}

// PropletFrom returns the API view of a device with its active task count.
func PropletFrom(d engine.Device, taskCount int) Proplet {
	return Proplet{
		ID: d.ID, Name: d.ID, Status: deviceStatus(d), Alive: d.State.Up() && d.Unreachable == "",
		Unreachable: d.Unreachable, Namespace: d.Namespace, Metadata: d.Metadata, TaskCount: taskCount,
		FirstSeen: d.FirstSeen, LastChange: d.LastChange,
	}
}

// Workflow is a workflow as the API shows it (GET /workflows/{id}): the
// engine's state, spec and steps. A workflow created through Propeller's
// API (Source "job" or "workflow") also lists its steps as Propeller's
// tasks, which is what Propeller's clients read from POST /workflows.
type Workflow struct {
	engine.Workflow
	Tasks []PropellerTask `json:"tasks,omitempty"`
	// Quarantined is set when a stored event of the workflow cannot be
	// read: it shows its last good state and refuses commands.
	Quarantined *events.Quarantined `json:"quarantined,omitempty"`
}

// WorkflowList is a page of workflows, newest first.
type WorkflowList struct {
	Offset    int        `json:"offset"`
	Limit     int        `json:"limit"`
	Total     int        `json:"total"`
	Workflows []Workflow `json:"workflows"`
}

// CancelRequest is the optional body of POST /workflows/{id}/cancel.
type CancelRequest struct {
	Reason string `json:"reason,omitempty"`
}

// WorkflowFrom returns the API view of a workflow.
func WorkflowFrom(w engine.Workflow) Workflow {
	out := Workflow{Workflow: w}
	if w.Source != "" {
		out.Tasks = PropellerTasks(w)
	}
	return out
}

// JobRequest is the body of POST /jobs (Propeller's jobReq): tasks run as
// one held workflow, released by POST /jobs/{id}/start. ExecutionMode is
// "parallel" (every task at once), "sequential" (each task after the one
// before it) or "configurable" (each task after its depends_on; the
// default).
type JobRequest struct {
	Name          string                 `json:"name"`
	Tasks         []PropellerTaskRequest `json:"tasks"`
	ExecutionMode string                 `json:"execution_mode,omitempty"`
}

// PropellerWorkflowRequest is Propeller's body of POST /workflows
// (workflowReq): tasks run as a workflow at once, each after its
// depends_on.
type PropellerWorkflowRequest struct {
	Tasks []PropellerTaskRequest `json:"tasks"`
}

// PropellerTaskRequest is one task of a job or of Propeller's workflow: the
// fields of Propeller's task JSON. ID is the client's name for the task,
// which depends_on of the other tasks of the request refer to (a
// depends_on may also give a task's name when no other task has it). Name
// is the export to call. The module is image_url (a catalog name:tag, a
// digest or an OCI reference), wasm_http_url, or the module inline in file.
type PropellerTaskRequest struct {
	ID          string            `json:"id,omitempty"` // shadows serverOwned.ID: here the client's id counts
	Name        string            `json:"name"`
	Kind        string            `json:"kind,omitempty"`
	ImageURL    string            `json:"image_url,omitempty"`
	WasmHTTPURL string            `json:"wasm_http_url,omitempty"`
	File        []byte            `json:"file,omitempty"` // the module, base64 in JSON
	Inputs      wire.Strings      `json:"inputs,omitempty"`
	CLIArgs     []string          `json:"cli_args,omitempty"` // refused: workflow steps take no arguments
	Env         map[string]string `json:"env,omitempty"`
	Daemon      bool              `json:"daemon,omitempty"` // refused: a step must end
	PropletID   string            `json:"proplet_id,omitempty"`
	Broadcast   bool              `json:"broadcast,omitempty"` // run on every proplet
	DependsOn   []string          `json:"depends_on,omitempty"`
	RunIf       engine.RunIf      `json:"run_if,omitempty"`
	TimeoutMS   int64             `json:"timeout_ms,omitempty"` // jetprop: per attempt
	Priority    int               `json:"priority,omitempty"`   // 0 to 100, accepted and ignored

	// Refused when set: jetprop has no encrypted workloads and no
	// per-task schedules (give a workflow spec a cron instead).
	Encrypted       bool   `json:"encrypted,omitempty"`
	KBSResourcePath string `json:"kbs_resource_path,omitempty"`
	Schedule        string `json:"schedule,omitempty"`
	IsRecurring     bool   `json:"is_recurring,omitempty"`
	Timezone        string `json:"timezone,omitempty"`
	// Refused when set too: a step has no HAL storage, and no metadata
	// of its own (label the job's tasks on POST /tasks instead).
	HalStoragePath *string                    `json:"hal_storage_path,omitempty"`
	Metadata       map[string]json.RawMessage `json:"metadata,omitempty"`

	// Accepted and ignored: the server sets these.
	WorkflowID        json.RawMessage `json:"workflow_id,omitempty"`
	JobID             json.RawMessage `json:"job_id,omitempty"`
	NextRun           json.RawMessage `json:"next_run,omitempty"`
	MonitoringProfile json.RawMessage `json:"monitoring_profile,omitempty"`
	serverOwned
}

// PropellerTask is one step of a workflow as Propeller's task JSON shows
// it. ID is the step's task alias (StepTaskAlias, "<workflow>-<step>-0"):
// GET /tasks/{id} and /results answer it from the step's latest attempt,
// POST /tasks/{id}/start and /stop act on the step. AttemptTaskID is the
// task of the step's current attempt, once it has started. For a job or
// workflow created through Propeller's API the step's name is the id the
// client gave the task, when it gave one that is a valid step name. Step
// always holds the step's name. DependsOn gives the IDs of the tasks the
// step waits for, as this answer reports them.
type PropellerTask struct {
	ID            string            `json:"id"`
	AttemptTaskID string            `json:"attempt_task_id,omitempty"`
	Step          string            `json:"step"`
	Name          string            `json:"name"` // the export to call
	Kind          string            `json:"kind"`
	State         int               `json:"state"`  // Propeller: 0 pending, 2 running, 3 completed, 4 failed, 5 skipped
	Status        string            `json:"status"` // jetprop's step state
	ImageURL      string            `json:"image_url,omitempty"`
	Inputs        []string          `json:"inputs,omitempty"`
	CLIArgs       []string          `json:"cli_args"`
	Env           map[string]string `json:"env,omitempty"`
	Daemon        bool              `json:"daemon"`
	PropletID     string            `json:"proplet_id,omitempty"`
	DependsOn     []string          `json:"depends_on,omitempty"`
	RunIf         engine.RunIf      `json:"run_if,omitempty"`
	WorkflowID    string            `json:"workflow_id,omitempty"`
	JobID         string            `json:"job_id,omitempty"`
	Results       json.RawMessage   `json:"results,omitempty"`
	Error         string            `json:"error,omitempty"`
	Attempt       int               `json:"attempt"`
	StartTime     time.Time         `json:"start_time,omitzero"`
	FinishTime    time.Time         `json:"finish_time,omitzero"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// Job is a workflow created by POST /jobs as Propeller shows a job: the
// fields of its JobResponse and JobSummary (job_id, name, state, tasks,
// times) plus jetprop's own. Message is set by start and stop, as
// Propeller's answers to them have it.
type Job struct {
	JobID         string          `json:"job_id"`
	Name          string          `json:"name,omitempty"`
	State         int             `json:"state"`  // Propeller: 0 pending (held or not begun), 2 running, 3 completed, 4 failed, 6 interrupted (stopped)
	Status        string          `json:"status"` // jetprop's workflow state
	Held          bool            `json:"held"`
	ExecutionMode string          `json:"execution_mode"`
	Message       string          `json:"message,omitempty"`
	Tasks         []PropellerTask `json:"tasks"`
	StartTime     time.Time       `json:"start_time,omitzero"`
	FinishTime    time.Time       `json:"finish_time,omitzero"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	Seq           uint64          `json:"seq"`
}

// JobList is a page of jobs (Propeller's JobPage), newest first.
type JobList struct {
	Offset int   `json:"offset"`
	Limit  int   `json:"limit"`
	Total  int   `json:"total"`
	Jobs   []Job `json:"jobs"`
}

// TokenRequest is the body of POST /tokens.
type TokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"` // viewer, operator or admin
}

// Token is an API token as the API shows it: never its secret, nor the
// secret's hash.
type Token struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Role      domain.Role `json:"role"`
	CreatedAt time.Time   `json:"created_at"`
	CreatedBy string      `json:"created_by,omitempty"` // the id of the token that created it
	Revoked   bool        `json:"revoked"`
	RevokedAt time.Time   `json:"revoked_at,omitzero"`
	RevokedBy string      `json:"revoked_by,omitempty"`
}

// NewToken is the answer of POST /tokens: the token and, this once, its
// secret.
type NewToken struct {
	Token
	Secret string `json:"token"`
}

// TokenList is a page of GET /tokens, oldest first.
type TokenList struct {
	Offset int     `json:"offset"`
	Limit  int     `json:"limit"`
	Total  int     `json:"total"`
	Tokens []Token `json:"tokens"`
}

// TokenFrom returns the API view of a token.
func TokenFrom(t engine.Token) Token {
	return Token{
		ID: t.ID, Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy,
		Revoked: t.Revoked, RevokedAt: t.RevokedAt, RevokedBy: t.RevokedBy,
	}
}
