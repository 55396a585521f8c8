package engine

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// TaskState is jetprop's own task state. Propeller's integer states are a
// view of it (PropellerState).
type TaskState int

// Task states.
const (
	TaskPending TaskState = iota
	TaskScheduled
	TaskRunning
	TaskCompleted
	TaskFailed
	TaskStopped
)

var taskStateNames = [...]string{"pending", "scheduled", "running", "completed", "failed", "stopped"}

func (s TaskState) String() string {
	if int(s) < len(taskStateNames) {
		return taskStateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// MarshalText writes the state's name.
func (s TaskState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *TaskState) UnmarshalText(b []byte) error {
	for i, n := range taskStateNames {
		if n == string(b) {
			*s = TaskState(i)
			return nil
		}
	}
	return fmt.Errorf("unknown task state %q", b)
}

// Terminal reports whether the task has finished.
func (s TaskState) Terminal() bool { return s >= TaskCompleted }

// Active reports whether an attempt is out on a device.
func (s TaskState) Active() bool { return s == TaskScheduled || s == TaskRunning }

// PropellerState maps onto Propeller's API integers: 0 Pending, 1 Scheduled,
// 2 Running, 3 Completed, 4 Failed, 6 Interrupted (our Stopped).
func (s TaskState) PropellerState() int {
	if s == TaskStopped {
		return 6
	}
	return int(s)
}

// Task is the state of one task, folded from its events.
type Task struct {
	ID string `json:"id"`
	events.TaskCreated
	State      TaskState       `json:"state"`
	Device     string          `json:"device,omitempty"`
	Attempt    int             `json:"attempt"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	StartedAt  time.Time       `json:"started_at,omitzero"`
	Accepted   bool            `json:"accepted,omitempty"` // the device answered the start (TaskStarted.Accepted)
	FinishedAt time.Time       `json:"finished_at,omitzero"`
	Deleted    bool            `json:"deleted,omitempty"`
	// Lost counts the attempts lost in a row (task.lost) since a user
	// started the task; the retry policy allows MaxAttempts()-1 of them.
	Lost int `json:"lost,omitempty"`
	// Ended is the attempts that ended without their result (lost or
	// undelivered), oldest first: a result of one of them is late.
	Ended []EndedAttempt `json:"ended,omitempty"`
	Seq   uint64         `json:"seq"` // stream sequence of the last event applied
}

// Exists reports whether the task was created and not deleted.
func (t Task) Exists() bool { return t.Seq != 0 && !t.Deleted }

// HasModule reports whether the task can be run.
func (t Task) HasModule() bool { return t.Module != "" || t.ImageURL != "" }

// Apply folds one event into the task.
func (t Task) Apply(env events.Envelope, ev events.Event) Task {
	t.Seq = env.Seq
	t.UpdatedAt = env.Time
	switch e := ev.(type) {
	case events.TaskCreated:
		t.ID, t.TaskCreated, t.State, t.CreatedAt = env.Aggregate.ID, e, TaskPending, env.Time
	case events.TaskModuleAttached:
		t.Module, t.ModuleSize = e.Module, e.ModuleSize
	case events.TaskScheduled:
		t.State, t.Device, t.Attempt, t.Lost = TaskScheduled, e.Device, e.Attempt, e.Lost
		t.Result, t.Error, t.StartedAt, t.FinishedAt, t.Accepted = nil, "", time.Time{}, time.Time{}, false
	case events.TaskStarted:
		t.State, t.StartedAt, t.Accepted = TaskRunning, env.Time, e.Accepted
	case events.TaskUndelivered:
		t.State, t.Device, t.Error = TaskPending, "", e.Reason
		t.Ended = appendEnded(t.Ended, EndedAttempt{Attempt: e.Attempt, Device: e.Device, Reason: e.Reason})
	case events.TaskLost:
		t.Error, t.Lost = e.Reason, t.Lost+1
		t.Ended = appendEnded(t.Ended, EndedAttempt{Attempt: e.Attempt, Device: e.Device, Reason: e.Reason})
	case events.TaskLateResult:
		t.Ended = markLate(t.Ended, e.Attempt)
	case events.TaskCompleted:
		t.State, t.Result, t.FinishedAt = TaskCompleted, e.Result, env.Time
	case events.TaskFailed:
		t.State, t.Error, t.FinishedAt = TaskFailed, e.Reason, env.Time
	case events.TaskStopped:
		t.State, t.Error, t.FinishedAt = TaskStopped, e.Reason, env.Time
	case events.TaskDeleted:
		t.Deleted = true
	case events.TaskUpdated:
		t.TaskCreated = ApplyTaskUpdate(t.TaskCreated, e)
	}
	return t
}

// Task commands.
type (
	// CreateTask creates a pending task.
	CreateTask struct {
		ID   string
		Spec events.TaskCreated
	}
	// AttachModule sets the module of a task that is not running.
	AttachModule struct {
		ID     string
		Module string
		Size   int64
	}
	// ScheduleTask places the next attempt on Device (chosen by Place).
	ScheduleTask struct {
		ID     string
		Device string
	}
	// MarkStarted records that the attempt is out on its device. Device
	// empty: the engine handed the start to the broker (a device that does
	// not answer starts). Device set: that device accepted the start; it
	// must be the attempt's device.
	MarkStarted struct {
		ID      string
		Attempt int
		Device  string
	}
	// ReplaceTask ends an attempt whose device never accepted its start
	// and places the task on Device instead (a new attempt). Device empty,
	// or the same device, or a task that targets its device: the task
	// fails, since no other device can take it.
	ReplaceTask struct {
		ID      string
		Attempt int
		Device  string
		Reason  string
	}
	// RecordResult records what a device reported. Attempt 0 means the
	// sender did not say (Propeller proplets): the current attempt.
	// Interrupted: the device says the attempt was cut short by its restart
	// or shutdown (Error says which); the attempt is lost, and Next is the
	// device of the next attempt, as for LoseTask.
	RecordResult struct {
		ID          string
		Device      string
		Attempt     int
		Result      json.RawMessage
		Error       string
		Interrupted bool
		Next        string
	}
	// FailTask fails the current attempt for a reason of the engine's own
	// (a module that cannot be delivered, say). Attempt 0 means the current one.
	FailTask struct {
		ID      string
		Attempt int
		Reason  string
	}
	// StopTask stops the current attempt at a user's request.
	StopTask struct {
		ID     string
		Reason string
	}
	// DeleteTask removes a task that is not running.
	DeleteTask struct{ ID string }
)

// TaskCommand is any of the task commands.
type TaskCommand interface{ TaskID() string }

func (c CreateTask) TaskID() string   { return c.ID }
func (c AttachModule) TaskID() string { return c.ID }
func (c ScheduleTask) TaskID() string { return c.ID }
func (c MarkStarted) TaskID() string  { return c.ID }
func (c ReplaceTask) TaskID() string  { return c.ID }
func (c RecordResult) TaskID() string { return c.ID }
func (c FailTask) TaskID() string     { return c.ID }
func (c StopTask) TaskID() string     { return c.ID }
func (c DeleteTask) TaskID() string   { return c.ID }
func (c LoseTask) TaskID() string     { return c.ID }

// DecideTask returns the events cmd causes on t. No events and no error
// means the command is already satisfied (a redelivery, a duplicate).
func DecideTask(t Task, cmd TaskCommand) ([]events.Event, error) {
	if c, ok := cmd.(CreateTask); ok {
		return decideCreate(t, c)
	}
	if !t.Exists() {
		return nil, fmt.Errorf("task %s: %w", cmd.TaskID(), domain.ErrNotFound)
	}
	switch c := cmd.(type) {
	case AttachModule:
		return decideAttach(t, c)
	case ScheduleTask:
		return decideSchedule(t, c)
	case MarkStarted:
		return decideStarted(t, c)
	case ReplaceTask:
		return decideReplace(t, c), nil
	case RecordResult:
		return decideResult(t, c)
	case FailTask:
		if t.State.Active() && (c.Attempt == t.Attempt || c.Attempt == 0) {
			return one(events.TaskFailed{Device: t.Device, Attempt: t.Attempt, Reason: c.Reason}), nil
		}
		return nil, nil
	case StopTask:
		return decideStop(t, c)
	case LoseTask:
		return decideLose(t, c)
	case UpdateTask:
		return decideUpdate(t, c)
	case DeleteTask:
		if t.State.Active() {
			return nil, fmt.Errorf("task %s is %s; stop it before deleting: %w", t.ID, t.State, domain.ErrInvalidState)
		}
		return one(events.TaskDeleted{}), nil
	}
	return nil, fmt.Errorf("%w: %T", domain.ErrInvalid, cmd)
}

func one(e events.Event) []events.Event { return []events.Event{e} }

func decideCreate(t Task, c CreateTask) ([]events.Event, error) {
	if t.Seq != 0 {
		return nil, fmt.Errorf("task %s: %w", c.ID, domain.ErrExists)
	}
	if err := events.ValidateID(c.ID); err != nil {
		return nil, fmt.Errorf("%w: task id: %v", domain.ErrInvalid, err)
	}
	if err := ValidateTaskSpec(c.Spec); err != nil {
		return nil, err
	}
	return one(c.Spec), nil
}

// ValidateTaskSpec checks what a task's creation must hold on its own: a
// name (the function to call), limits a proplet can give (checkTaskLimits),
// every field within its bound (CheckTaskBounds), an env a runtime can set
// (EnvProblems). The service calls it before it stores anything, so a
// refused create leaves no module behind; decideCreate calls it again.
func ValidateTaskSpec(spec events.TaskCreated) error {
	if spec.Name == "" {
		return fmt.Errorf("%w: task name (the function to call) is required", domain.ErrInvalid)
	}
	if err := checkTaskLimits(spec); err != nil {
		return err
	}
	if err := CheckTaskBounds(spec); err != nil {
		return err
	}
	if err := CheckTaskSchema(spec); err != nil {
		return err
	}
	if p := EnvProblems(spec.Env); len(p) > 0 {
		return fmt.Errorf("%w: %s", domain.ErrInvalid, strings.Join(p, "; "))
	}
	return nil
}

func decideAttach(t Task, c AttachModule) ([]events.Event, error) {
	if t.State.Active() {
		return nil, fmt.Errorf("task %s is %s: %w", t.ID, t.State, domain.ErrInvalidState)
	}
	if c.Module == "" {
		return nil, fmt.Errorf("%w: empty module digest", domain.ErrInvalid)
	}
	if t.Module == c.Module {
		return nil, nil
	}
	return one(events.TaskModuleAttached{Module: c.Module, ModuleSize: c.Size}), nil
}

func decideSchedule(t Task, c ScheduleTask) ([]events.Event, error) {
	switch {
	case t.State.Active():
		return nil, fmt.Errorf("task %s is already %s: %w", t.ID, t.State, domain.ErrInvalidState)
	case t.State == TaskCompleted && t.Schedule == "": // a cron task runs again at its next time
		return nil, fmt.Errorf("task %s has completed: %w", t.ID, domain.ErrInvalidState)
	case !t.HasModule():
		return nil, fmt.Errorf("%w: task %s has no module: upload one or set image_url", domain.ErrInvalid, t.ID)
	case c.Device == "":
		return nil, domain.ErrNoDevice
	}
	return one(events.TaskScheduled{Device: c.Device, Attempt: t.Attempt + 1}), nil
}

func decideStarted(t Task, c MarkStarted) ([]events.Event, error) {
	if c.Device != "" && (c.Attempt != t.Attempt || c.Device != t.Device) {
		return nil, fmt.Errorf("accept of task %s attempt %d from %q, current attempt %d on %q: %w",
			t.ID, c.Attempt, c.Device, t.Attempt, t.Device, domain.ErrStale)
	}
	if t.State == TaskScheduled && c.Attempt == t.Attempt {
		return one(events.TaskStarted{Device: t.Device, Attempt: t.Attempt, Accepted: c.Device != ""}), nil
	}
	return nil, nil
}

// decideReplace: only an attempt still waiting for its accept is replaced;
// anything else means the accept (or a result, or a stop) came first.
func decideReplace(t Task, c ReplaceTask) []events.Event {
	if t.State != TaskScheduled || c.Attempt != t.Attempt {
		return nil
	}
	if c.Device == "" || c.Device == t.Device || t.TargetDevice != "" {
		reason := c.Reason + "; no other device can take it"
		if t.TargetDevice != "" {
			reason = c.Reason + "; the task targets that device"
		}
		return one(events.TaskFailed{Device: t.Device, Attempt: t.Attempt, Reason: reason})
	}
	return []events.Event{
		events.TaskUndelivered{Device: t.Device, Attempt: t.Attempt, Reason: c.Reason},
		events.TaskScheduled{Device: c.Device, Attempt: t.Attempt + 1, Lost: t.Lost},
	}
}

func decideResult(t Task, c RecordResult) ([]events.Event, error) {
	attempt := c.Attempt
	if attempt == 0 {
		attempt = t.Attempt
	}
	if late, ok := t.ended(attempt, c.Device); ok {
		return decideLate(late, c), nil
	}
	if !t.State.Active() {
		if t.State.Terminal() && attempt == t.Attempt {
			return nil, nil // a duplicate of the result already recorded, or a late one after a stop
		}
		return nil, fmt.Errorf("task %s is %s: %w", t.ID, t.State, domain.ErrStale)
	}
	if attempt != t.Attempt || c.Device != t.Device {
		return nil, fmt.Errorf("result for task %s attempt %d from %q, current attempt %d on %q: %w",
			t.ID, attempt, c.Device, t.Attempt, t.Device, domain.ErrStale)
	}
	if c.Interrupted {
		reason := cmp.Or(c.Error, "interrupted")
		return decideLost(t, c.Next, events.TaskLost{Device: t.Device, Attempt: t.Attempt, Cause: LostInterrupted, Reason: reason}), nil
	}
	if c.Error != "" {
		return one(events.TaskFailed{Device: t.Device, Attempt: t.Attempt, Reason: c.Error}), nil
	}
	result := c.Result
	if len(result) == 0 {
		result = json.RawMessage(`null`)
	}
	return one(events.TaskCompleted{Device: t.Device, Attempt: t.Attempt, Result: result}), nil
}

func decideStop(t Task, c StopTask) ([]events.Event, error) {
	if t.State == TaskStopped {
		return nil, nil
	}
	if !t.State.Active() {
		return nil, fmt.Errorf("task %s is %s, not running: %w", t.ID, t.State, domain.ErrInvalidState)
	}
	reason := c.Reason
	if reason == "" {
		reason = "stopped by request"
	}
	return one(events.TaskStopped{Device: t.Device, Attempt: t.Attempt, Reason: reason}), nil
}

// LastSeq is the sequence of the last event applied.
func (t Task) LastSeq() uint64 { return t.Seq }
