package httpapi

import (
	"cmp"
	"encoding/json"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
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
	PropletID string            `json:"proplet_id,omitempty"` // run on this proplet only
	TimeoutMS int64             `json:"timeout_ms,omitempty"`
	MemoryMiB int               `json:"memory_mib,omitempty"`
	Stdin     []byte            `json:"stdin,omitempty"` // base64 in JSON
	serverOwned
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
}

// Terminal reports whether the task had finished when the answer was made.
func (r Results) Terminal() bool {
	var s engine.TaskState
	return s.UnmarshalText([]byte(r.Status)) == nil && s.Terminal()
}

// Proplet is a device as the API shows it.
type Proplet struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Status     string                `json:"status"` // announced, alive or offline
	Alive      bool                  `json:"alive"`
	Namespace  string                `json:"namespace,omitempty"`
	Metadata   events.DeviceMetadata `json:"metadata"`
	TaskCount  int                   `json:"task_count"` // tasks scheduled or running on it
	FirstSeen  time.Time             `json:"first_seen"`
	LastChange time.Time             `json:"last_change"`
}

// PropletList is a page of proplets.
type PropletList struct {
	Offset   int       `json:"offset"`
	Limit    int       `json:"limit"`
	Total    int       `json:"total"`
	Proplets []Proplet `json:"proplets"`
}

// Health is the answer of GET /health.
type Health struct {
	Status  string `json:"status"`
	Service string `json:"service"`
	Version string `json:"version"`
}

// Error is the body of every error answer.
type Error struct {
	Error string `json:"error"`
}

// TaskFrom returns the API view of a task.
func TaskFrom(t engine.Task) Task {
	return Task{
		ID: t.ID, Name: t.Name, State: t.State.PropellerState(), Status: t.State.String(),
		ImageURL: t.ImageURL, Inputs: t.Inputs, CLIArgs: t.CLIArgs, Env: t.Env, Daemon: t.Daemon,
		PropletID: cmp.Or(t.Device, t.TargetDevice), Results: t.Result, Error: t.Error,
		StartTime: t.StartedAt, FinishTime: t.FinishedAt, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		Attempt: t.Attempt, Module: t.Module, ModuleSize: t.ModuleSize,
		TimeoutMS: t.TimeoutMS, MemoryMiB: t.MemoryMiB,
	}
}

// ResultsFrom returns the results view of a task.
func ResultsFrom(t engine.Task) Results {
	res := t.Result
	if res == nil {
		res = json.RawMessage(`null`)
	}
	return Results{ID: t.ID, Results: res, Error: t.Error, State: t.State.PropellerState(), Status: t.State.String()}
}

// PropletFrom returns the API view of a device with its active task count.
func PropletFrom(d engine.Device, taskCount int) Proplet {
	return Proplet{
		ID: d.ID, Name: d.ID, Status: d.State.String(), Alive: d.State.Up(),
		Namespace: d.Namespace, Metadata: d.Metadata, TaskCount: taskCount,
		FirstSeen: d.FirstSeen, LastChange: d.LastChange,
	}
}
