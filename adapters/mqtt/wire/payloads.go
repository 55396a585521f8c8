package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
)

// ErrInvalid reports a payload that decoded but misses a required field.
var ErrInvalid = errors.New("wire: invalid payload")

// StartRequest is published by the manager on control/manager/start.
type StartRequest struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	State         int               `json:"state"`
	ImageURL      string            `json:"image_url,omitempty"`
	File          []byte            `json:"file,omitempty"` // base64 on the wire
	Inputs        Strings           `json:"inputs"`
	CLIArgs       []string          `json:"cli_args"`
	Env           map[string]string `json:"env,omitempty"`
	Daemon        bool              `json:"daemon"`
	Latent        bool              `json:"latent,omitempty"`
	Broadcast     bool              `json:"broadcast,omitempty"`
	PropletID     string            `json:"proplet_id,omitempty"`
	ParentResults json.RawMessage   `json:"parent_results,omitempty"`

	// jetprop extensions, ignored by Propeller proplets.
	Digest    string `json:"digest,omitempty"` // sha256 of the module (file or image_url)
	Size      int64  `json:"size,omitempty"`
	Attempt   int    `json:"attempt,omitempty"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
	MemoryMiB int    `json:"memory_mib,omitempty"`
	Stdin     []byte `json:"stdin,omitempty"`
}

// Validate checks the fields a proplet needs.
func (s *StartRequest) Validate() error {
	switch {
	case s.ID == "":
		return fmt.Errorf("%w: start without id", ErrInvalid)
	case s.Name == "":
		return fmt.Errorf("%w: start %s without name", ErrInvalid, s.ID)
	case len(s.File) == 0 && s.ImageURL == "":
		return fmt.Errorf("%w: start %s carries neither file nor image_url", ErrInvalid, s.ID)
	}
	return nil
}

// StopRequest is published by the manager on control/manager/stop.
type StopRequest struct {
	ID        string `json:"id"`
	Broadcast bool   `json:"broadcast,omitempty"`
	PropletID string `json:"proplet_id,omitempty"`

	// jetprop extension: the attempt to stop (0: whichever runs). The
	// engine sends a stop more than once to a proplet on its own topics
	// (QoS 0); the attempt keeps a late copy from stopping a newer one.
	Attempt int `json:"attempt,omitempty"`
}

// InvokeRequest calls a precompiled (latent) task on control/manager/invoke:
// Propeller's manager sends id, proplet_id, invocation_id, inputs, env and
// broadcast false; a proplet runs the task's function with these inputs
// and env (added to the task's) and answers an InvokeResult.
type InvokeRequest struct {
	ID           string            `json:"id"`
	InvocationID string            `json:"invocation_id"`
	Inputs       Strings           `json:"inputs"`
	Env          map[string]string `json:"env,omitempty"`
	PropletID    string            `json:"proplet_id,omitempty"`
	Broadcast    bool              `json:"broadcast,omitempty"`

	// jetprop extensions, ignored by Propeller proplets: the export to
	// call (default: the task's name, its function) and the guest's stdin.
	Function string `json:"function,omitempty"`
	Stdin    []byte `json:"stdin,omitempty"`
	// DeployWaitMS (jetprop extension) is how long a proplet still
	// deploying the task may hold the call, to run it as soon as the
	// module is compiled, before it answers that the task is being
	// deployed: 0 answers at once (Propeller's manager sends none). A
	// proplet holds it MaxDeployWait at most.
	DeployWaitMS int64 `json:"deploy_wait_ms,omitempty"`
}

// MaxDeployWait bounds InvokeRequest.DeployWaitMS: a call held longer is
// answered "being deployed", and the caller calls again.
const MaxDeployWait = 5 * time.Second

// DeployWait is r.DeployWaitMS as a duration, within 0..MaxDeployWait.
func (r InvokeRequest) DeployWait() time.Duration {
	if r.DeployWaitMS <= 0 {
		return 0
	}
	return min(time.Duration(min(r.DeployWaitMS, MaxDeployWait.Milliseconds()))*time.Millisecond, MaxDeployWait)
}

// Discovery is published once by a proplet on control/proplet/create.
type Discovery struct {
	PropletID string   `json:"proplet_id"`
	Namespace string   `json:"namespace"` // always sent, as Propeller's proplet does
	Metadata  Metadata `json:"metadata"`

	// jetprop extension: the proplet answers starts on its own topics with
	// an Accepted, so the engine re-sends a start until it hears one.
	// Propeller's proplets, and jetprop's before accepts, send none; their
	// starts count as taken once the broker has them.
	Accepts bool `json:"accepts,omitempty"`
}

// Metadata describes a proplet; every field is optional. It has the fields
// of domain.DeviceMetadata, and reads total_memory_bytes leniently (a
// number, a float or a string).
type Metadata domain.DeviceMetadata

// UnmarshalJSON decodes the fields, total_memory_bytes as an Int.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	type plain domain.DeviceMetadata
	var v struct {
		plain
		TotalMemoryBytes Int `json:"total_memory_bytes,omitempty"` // shadows plain's
	}
	v.plain = plain(*m)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = Metadata(v.plain)
	m.TotalMemoryBytes = int64(v.TotalMemoryBytes)
	return nil
}

// Alive statuses. StatusUnreachable is jetprop's: a proplet that is
// connected but cannot receive (the broker refused its subscription) says
// so in its heartbeat, with the reason, instead of looking healthy.
const (
	StatusAlive       = "alive"
	StatusOffline     = "offline"
	StatusUnreachable = "unreachable"
)

// Alive is the heartbeat on control/proplet/alive, and the last will.
type Alive struct {
	PropletID string `json:"proplet_id"`
	Status    string `json:"status"`
	Namespace string `json:"namespace"` // always sent, as Propeller's proplet does

	// jetprop extension: why the proplet cannot receive (StatusUnreachable).
	Reason string `json:"reason,omitempty"`
}

// Accepted is jetprop's answer to a start on control/proplet/<id>/accepted:
// the proplet has journaled the attempt and runs it (or ran it already).
// The engine redelivers a start until it is accepted, and places the task
// elsewhere when it is not accepted in time. Propeller's proplets send none.
type Accepted struct {
	TaskID    string `json:"task_id"`
	Attempt   int    `json:"attempt"`
	PropletID string `json:"proplet_id"`
}

// ResultAck is jetprop's answer to a result on
// control/manager/<id>/result_ack: the engine has recorded the result of
// the attempt (or has no use for it: a duplicate, a stale attempt, an
// unknown task), so the proplet stops sending it. A proplet that accepts
// starts keeps each result until its ack arrives; the broker's PUBACK only
// says the broker has it, not that the engine does.
type ResultAck struct {
	TaskID  string `json:"task_id"`
	Attempt int    `json:"attempt"`
}

// Result is published by a proplet on control/proplet/results.
type Result struct {
	TaskID    string          `json:"task_id"`
	PropletID string          `json:"proplet_id"`
	Results   json.RawMessage `json:"results"`
	Error     OptString       `json:"error"`

	// jetprop extension: the attempt the proplet ran (absent from Propeller).
	Attempt int `json:"attempt,omitempty"`
	// jetprop extension: the attempt did not fail, it was cut short by a
	// restart or a shutdown of the proplet (Error says which); the engine
	// gives the task another attempt.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Failed reports whether the result carries an error.
func (r *Result) Failed() bool { return r.Error != "" }

// Text returns the result as text: a JSON string unquoted, anything else as
// its JSON text, "" for null or absent.
func (r *Result) Text() string { return rawText(r.Results) }

// StringResult returns the raw JSON of a string result.
func StringResult(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func rawText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// InvokeResult answers an InvokeRequest on control/proplet/invoke_results:
// results is a string (Propeller's Rust proplet sends the output, "" on
// failure) and error null or the reason.
type InvokeResult struct {
	TaskID       string          `json:"task_id"`
	InvocationID string          `json:"invocation_id"`
	PropletID    string          `json:"proplet_id"`
	Results      json.RawMessage `json:"results"`
	Error        OptString       `json:"error"`
}

// Failed reports whether the invocation failed.
func (r *InvokeResult) Failed() bool { return r.Error != "" }

// NotPrecompiled is what a proplet's error says when the task invoked is
// not deployed there (yet, or any more): Propeller's manager looks for
// this text to deploy again, so it is part of the protocol.
const NotPrecompiled = "has not been precompiled"

// NotDeployed reports whether the invocation failed because the task is
// not deployed on the proplet (its error holds NotPrecompiled).
func (r *InvokeResult) NotDeployed() bool {
	return strings.Contains(string(r.Error), NotPrecompiled)
}

// Deploying is what a jetprop proplet's error adds to NotPrecompiled when
// the task is on its way (its module is being fetched or compiled), as
// opposed to unknown there (a proplet that restarted lost it): the first
// is worth waiting for, the second needs the task deployed again.
// Propeller's proplets do not tell the two apart.
const Deploying = "is being deployed"

// Deploying reports whether the invocation failed because the task is not
// deployed on the proplet yet but on its way (its error holds Deploying).
func (r *InvokeResult) Deploying() bool {
	return r.NotDeployed() && strings.Contains(string(r.Error), Deploying)
}

// Text returns the result as text, as Result.Text does.
func (r *InvokeResult) Text() string { return rawText(r.Results) }

// ModuleRequest asks for a module on registry/proplet. Propeller sends
// only app_name; jetprop proplets add who asks, for which task, and which
// chunks they still miss, so the answer goes to them alone and a resumed
// transfer sends only what is missing.
type ModuleRequest struct {
	AppName string `json:"app_name"`

	// jetprop extensions.
	PropletID string `json:"proplet_id,omitempty"` // answer on registry/server/<proplet_id>
	TaskID    string `json:"task_id,omitempty"`    // fail this task if the module cannot be had
	Chunks    []int  `json:"chunks,omitempty"`     // indexes still missing; empty: all
}

// MaxRequestedChunks bounds the indexes one request may list.
const MaxRequestedChunks = 1 << 16

// Validate checks the request.
func (r *ModuleRequest) Validate() error {
	switch {
	case r.AppName == "":
		return fmt.Errorf("%w: registry request without app_name", ErrInvalid)
	case len(r.Chunks) > MaxRequestedChunks:
		return fmt.Errorf("%w: registry request for %d chunks (max %d)", ErrInvalid, len(r.Chunks), MaxRequestedChunks)
	}
	for _, i := range r.Chunks {
		if i < 0 {
			return fmt.Errorf("%w: registry request for chunk %d", ErrInvalid, i)
		}
	}
	return nil
}

// PropletChunkTopic is the suffix of the topic that carries chunks to one
// jetprop proplet: registry/server/<proplet_id>.
func PropletChunkTopic(propletID string) string { return SuffixChunk + "/" + propletID }

// Chunk carries part of a module on registry/server.
type Chunk struct {
	AppName     string `json:"app_name"`
	ChunkIdx    Int    `json:"chunk_idx"`
	TotalChunks Int    `json:"total_chunks"`
	Data        []byte `json:"data"`

	// jetprop extensions: the module's digest and size, so a proplet can
	// verify what it assembled and cache it by content; or an error saying
	// why the module cannot be delivered (then no data follows).
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Validate checks index bounds (an error chunk has none).
func (c *Chunk) Validate() error {
	switch {
	case c.AppName == "":
		return fmt.Errorf("%w: chunk without app_name", ErrInvalid)
	case c.Error != "":
		return nil // an error chunk carries no data
	case c.TotalChunks <= 0:
		return fmt.Errorf("%w: chunk of %q with total_chunks %d", ErrInvalid, c.AppName, c.TotalChunks)
	case c.ChunkIdx < 0 || c.ChunkIdx >= c.TotalChunks:
		return fmt.Errorf("%w: chunk index %d outside 0..%d", ErrInvalid, c.ChunkIdx, c.TotalChunks-1)
	}
	return nil
}

// CPUMetrics is a proplet's CPU sample, as the Rust proplet's
// metrics.rs and Propeller's pkg/proplet send it: the process's user and
// system CPU seconds since it started, and the host's CPU use in percent
// (100 is one core busy for the Rust proplet's average over its cores).
type CPUMetrics struct {
	UserSeconds   float64 `json:"user_seconds"`
	SystemSeconds float64 `json:"system_seconds"`
	Percent       float64 `json:"percent"`
}

// MemoryMetrics is a proplet's memory sample: the process's resident set,
// its heap (a Go proplet's runtime heap; the Rust proplet sends 0, the
// embedded one its system heap), and, in a container, the cgroup's usage
// and limit (absent outside a cgroup or without a limit).
type MemoryMetrics struct {
	RSSBytes            Int  `json:"rss_bytes"`
	HeapAllocBytes      Int  `json:"heap_alloc_bytes"`
	HeapSysBytes        Int  `json:"heap_sys_bytes"`
	HeapInuseBytes      Int  `json:"heap_inuse_bytes"`
	ContainerUsageBytes *Int `json:"container_usage_bytes,omitempty"`
	ContainerLimitBytes *Int `json:"container_limit_bytes,omitempty"`
}

// ProcessMetrics is one sample of a running task (the Rust proplet's
// monitoring::metrics::ProcessMetrics); fields a sender cannot measure
// are 0.
type ProcessMetrics struct {
	CPUPercent          float64 `json:"cpu_percent"`
	MemoryBytes         Int     `json:"memory_bytes"`
	MemoryPercent       float64 `json:"memory_percent"`
	DiskReadBytes       Int     `json:"disk_read_bytes"`
	DiskWriteBytes      Int     `json:"disk_write_bytes"`
	UptimeSeconds       Int     `json:"uptime_seconds"`
	ThreadCount         Int     `json:"thread_count"`
	FileDescriptorCount Int     `json:"file_descriptor_count,omitempty"`
}

// AggregatedMetrics sums up a task's samples so far (the Rust proplet's
// AggregatedMetrics).
type AggregatedMetrics struct {
	AvgCPUUsage    float64 `json:"avg_cpu_usage"`
	MaxCPUUsage    float64 `json:"max_cpu_usage"`
	AvgMemoryUsage Int     `json:"avg_memory_usage"`
	MaxMemoryUsage Int     `json:"max_memory_usage"`
	TotalDiskRead  Int     `json:"total_disk_read"`
	TotalDiskWrite Int     `json:"total_disk_write"`
	SampleCount    Int     `json:"sample_count"`
}

// TaskMetrics is published on control/proplet/task_metrics: the Rust
// proplet's MetricsMessage, Propeller's storage.TaskMetrics.
type TaskMetrics struct {
	TaskID     string             `json:"task_id"`
	PropletID  string             `json:"proplet_id"`
	Metrics    ProcessMetrics     `json:"metrics"`
	Aggregated *AggregatedMetrics `json:"aggregated,omitempty"`
	Timestamp  Timestamp          `json:"timestamp"`
}

// PropletMetrics is published on control/proplet/metrics: the Rust
// proplet's PropletMetricsMessage, Propeller's storage.PropletMetrics.
type PropletMetrics struct {
	PropletID string        `json:"proplet_id"`
	Namespace string        `json:"namespace"`
	Timestamp Timestamp     `json:"timestamp"`
	CPU       CPUMetrics    `json:"cpu_metrics"`
	Memory    MemoryMetrics `json:"memory_metrics"`
}
