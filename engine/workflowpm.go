package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// The workflow process manager turns a workflow's state, and the states of
// the tasks its steps run as, into actions: create and start tasks, record
// what happened to them, stop what is no longer needed, and keep durable
// timers for backoffs, timeouts, deadlines and cron schedules.
//
// Reconcile and Fire are pure: the same states give the same actions, in
// the same order. They are level-triggered: every action is idempotent and
// computed from state alone, so a process manager that crashes anywhere
// and starts again computes what is still missing and nothing twice.

// Action is one thing the process manager does.
type Action interface{ action() }

// Actions of the process manager.
type (
	// CreateStepTask creates the task of a step attempt (one per device
	// for a fan-out step) under a deterministic id.
	CreateStepTask struct {
		TaskID string             `json:"task_id"`
		Spec   events.TaskCreated `json:"spec"`
	}
	// RecordCommand executes a workflow command.
	RecordCommand struct {
		Command WorkflowCommand `json:"command"`
	}
	// StartStepTask places a created task on a device.
	StartStepTask struct {
		TaskID string `json:"task_id"`
	}
	// StopStepTask stops a task that is out on a device.
	StopStepTask struct {
		TaskID string `json:"task_id"`
		Reason string `json:"reason"`
	}
	// ScheduleTimer stores a durable one-shot timer (scheduling the same
	// id again replaces it).
	ScheduleTimer struct {
		ID   string    `json:"id"`
		At   time.Time `json:"at"`
		Fire TimerFire `json:"fire"`
	}
	// ScheduleCron stores a durable repeating timer.
	ScheduleCron struct {
		ID       string    `json:"id"`
		Expr     string    `json:"expr"`
		Timezone string    `json:"timezone,omitempty"`
		Fire     TimerFire `json:"fire"`
	}
	// CancelTimer removes a timer that is no longer needed.
	CancelTimer struct {
		ID string `json:"id"`
	}
	// CreateRun creates one run of a cron workflow.
	CreateRun struct {
		Command CreateWorkflow `json:"command"`
	}
)

func (CreateStepTask) action() {}
func (RecordCommand) action()  {}
func (StartStepTask) action()  {}
func (StopStepTask) action()   {}
func (ScheduleTimer) action()  {}
func (ScheduleCron) action()   {}
func (CancelTimer) action()    {}
func (CreateRun) action()      {}

// Timer kinds of workflows.
const (
	TimerDeadline        = "deadline"
	TimerRetry           = "retry"
	TimerTimeout         = "timeout"
	TimerScheduleToStart = "schedule_to_start"
	TimerCron            = "cron"
)

// TimerFire is what a workflow timer carries; it comes back to Fire.
type TimerFire struct {
	Kind     string `json:"kind"`
	Workflow string `json:"workflow"`
	Step     string `json:"step,omitempty"`
	Attempt  int    `json:"attempt,omitempty"`
}

// TimerID is the durable timer id of f: one per workflow, step, attempt
// and kind, a valid subject token.
func (f TimerFire) TimerID() string {
	id := "wf_" + f.Workflow + "_" + f.Kind
	if f.Step != "" {
		id += "_" + f.Step + "_" + strconv.Itoa(f.Attempt)
	}
	return id
}

// StepTaskID is the task id of a step attempt, the same every time it is
// computed, so creating it again after a crash finds the existing task.
func StepTaskID(workflow, step string, attempt int) string {
	return fmt.Sprintf("%s-%s-%d", workflow, step, attempt)
}

// ShardTaskID is the task id of one device of a fan-out step attempt.
func ShardTaskID(workflow, step string, attempt int, device string) string {
	id := StepTaskID(workflow, step, attempt) + "@" + device
	if len(id) > 128 {
		sum := sha256.Sum256([]byte(device))
		id = StepTaskID(workflow, step, attempt) + "@" + hex.EncodeToString(sum[:8])
	}
	return id
}

// Observed is what the process manager knows outside the workflow: its
// tasks and the devices that are up (sorted by id). Devices may be a
// snapshot shared with other readers: Reconcile and MatchDevices only read
// it, and no caller may modify it.
type Observed struct {
	Task    func(id string) (Task, bool)
	Devices []Device
}

// Reconcile returns what w needs done now, given the observed tasks and
// devices.
func Reconcile(w Workflow, o Observed) []Action {
	if !w.Exists() {
		return nil
	}
	if w.Spec.Cron != "" {
		return reconcileSchedule(w)
	}
	var acts []Action
	var finished []WorkflowCommand
	if !w.DeadlineAt.IsZero() {
		f := TimerFire{Kind: TimerDeadline, Workflow: w.ID}
		if w.State.Terminal() {
			acts = append(acts, CancelTimer{ID: f.TimerID()}) // ended first: the deadline is moot
		} else {
			acts = append(acts, ScheduleTimer{ID: f.TimerID(), At: w.DeadlineAt, Fire: f})
		}
	}
	for i, s := range w.Steps {
		acts, finished = reconcileStep(acts, finished, w, w.Spec.Steps[i], s, o)
	}
	p := Next(w)
	if len(p.Skip) > 0 || p.Finish != nil {
		// The stored state lacks consequences it calls for (a write cut
		// short): record them first.
		acts = append([]Action{RecordCommand{Command: Settle{ID: w.ID}}}, acts...)
	}
	for _, r := range p.Retry {
		s, _ := w.Step(r.Step)
		f := TimerFire{Kind: TimerRetry, Workflow: w.ID, Step: r.Step, Attempt: r.Attempt}
		acts = append(acts, ScheduleTimer{ID: f.TimerID(), At: s.FinishedAt.Add(r.After), Fire: f})
	}
	var creates, starts []Action
	var started []WorkflowCommand
	for _, st := range p.Start {
		creates, started, starts = startStep(creates, started, starts, w, st, o)
	}
	// Outcomes first, in one write; then the new attempts: their tasks,
	// one write recording them all, and their placement.
	out := make([]Action, 0, len(acts)+len(creates)+len(starts)+2)
	if len(finished) > 0 {
		out = append(out, record(w.ID, finished))
	}
	out = append(out, acts...)
	out = append(out, creates...)
	if len(started) > 0 {
		out = append(out, record(w.ID, started))
	}
	return append(out, starts...)
}

// record is one command, or a batch of several.
func record(id string, cmds []WorkflowCommand) RecordCommand {
	if len(cmds) == 1 {
		return RecordCommand{Command: cmds[0]}
	}
	return RecordCommand{Command: Batch{ID: id, Commands: cmds}}
}

// reconcileStep keeps the tasks of a step's current attempt in line with
// it: record what they did, start the ones created, stop the ones no
// longer needed, and keep the attempt's timers.
func reconcileStep(acts []Action, finished []WorkflowCommand, w Workflow, spec StepSpec, s Step, o Observed) ([]Action, []WorkflowCommand) {
	running := s.State == StepRunning
	for _, id := range s.TaskIDs() {
		t, ok := o.Task(id)
		if !ok {
			continue
		}
		if running && shardRunning(s, id) {
			switch {
			case t.State.Terminal():
				finished = append(finished, stepFinished(w.ID, s, t))
				continue
			case t.State == TaskPending && !w.State.Terminal():
				acts = append(acts, StartStepTask{TaskID: id})
				continue
			case t.State == TaskPending:
				// Never placed, and now never will be: end the attempt.
				finished = append(finished, StepFinished{
					ID: w.ID, Step: s.Name, Attempt: s.Attempt, TaskID: id, Error: "not started: workflow " + w.State.String(),
				})
				continue
			}
		}
		if t.State.Active() && (w.State.Terminal() || !running || !shardRunning(s, id)) {
			acts = append(acts, StopStepTask{TaskID: id, Reason: stopReason(w, s)})
		}
	}
	if !running || w.State.Terminal() {
		return acts, finished
	}
	if d := durationOr(spec.Timeout, 0); d > 0 {
		f := TimerFire{Kind: TimerTimeout, Workflow: w.ID, Step: s.Name, Attempt: s.Attempt}
		acts = append(acts, ScheduleTimer{ID: f.TimerID(), At: s.StartedAt.Add(d), Fire: f})
	}
	if d := durationOr(spec.ScheduleToStart, 0); d > 0 && !allStarted(s, o) {
		f := TimerFire{Kind: TimerScheduleToStart, Workflow: w.ID, Step: s.Name, Attempt: s.Attempt}
		acts = append(acts, ScheduleTimer{ID: f.TimerID(), At: s.StartedAt.Add(d), Fire: f})
	}
	return acts, finished
}

func shardRunning(s Step, taskID string) bool {
	if len(s.Shards) == 0 {
		return true
	}
	i := s.shard(taskID)
	return i >= 0 && s.Shards[i].State == StepRunning
}

func stopReason(w Workflow, s Step) string {
	switch {
	case w.State.Terminal():
		return "workflow " + w.ID + " " + w.State.String()
	case s.State == StepRunning:
		return "step " + s.Name + " no longer needs this device"
	}
	return "step " + s.Name + " is " + s.State.String()
}

// allStarted reports whether every task of the step's attempt has reached
// a device (running or ended).
func allStarted(s Step, o Observed) bool {
	for _, id := range s.TaskIDs() {
		t, ok := o.Task(id)
		if !ok || t.State < TaskRunning {
			return false
		}
	}
	return true
}

// stepFinished is the command that records the outcome of task t.
func stepFinished(wf string, s Step, t Task) StepFinished {
	c := StepFinished{ID: wf, Step: s.Name, Attempt: s.Attempt, TaskID: t.ID}
	switch t.State {
	case TaskCompleted:
		c.Result = t.Result
	case TaskStopped:
		c.Error = "task stopped"
		if t.Error != "" {
			c.Error += ": " + t.Error
		}
	default:
		c.Error = t.Error
		if c.Error == "" {
			c.Error = "task failed"
		}
	}
	return c
}

// startStep creates the tasks of an attempt, records the start and then
// places them. A fan-out step waits while fewer devices match than its
// quorum (device changes wake the process manager again).
func startStep(creates []Action, started []WorkflowCommand, starts []Action, w Workflow, st StepStart, o Observed) ([]Action, []WorkflowCommand, []Action) {
	spec := taskSpec(w, st)
	if !st.Spec.Placement.FanOut() {
		id := StepTaskID(w.ID, st.Step, st.Attempt)
		return append(creates, CreateStepTask{TaskID: id, Spec: spec}),
			append(started, StartStep{ID: w.ID, Step: st.Step, Attempt: st.Attempt, TaskID: id}),
			append(starts, StartStepTask{TaskID: id})
	}
	devs := MatchDevices(o.Devices, st.Spec.Placement)
	if len(devs) == 0 || len(devs) < st.Spec.Placement.MinSuccess {
		return creates, started, starts
	}
	shards := make([]events.Shard, len(devs))
	for i, d := range devs {
		shards[i] = events.Shard{TaskID: ShardTaskID(w.ID, st.Step, st.Attempt, d.ID), Device: d.ID}
		sp := spec
		sp.TargetDevice = d.ID
		creates = append(creates, CreateStepTask{TaskID: shards[i].TaskID, Spec: sp})
		starts = append(starts, StartStepTask{TaskID: shards[i].TaskID})
	}
	return creates, append(started, StartStep{ID: w.ID, Step: st.Step, Attempt: st.Attempt, Shards: shards}), starts
}

// DefaultStepFunction is the export a step calls when it names none: a
// WASI command's entry point (proplets fall back to main and run).
const DefaultStepFunction = "_start"

func taskSpec(w Workflow, st StepStart) events.TaskCreated {
	fn := st.Spec.Function
	if fn == "" {
		fn = DefaultStepFunction
	}
	t := events.TaskCreated{
		Name: fn, ImageURL: st.Spec.Module, Inputs: st.Inputs, Env: maps.Clone(st.Spec.Env),
		Stdin: st.Stdin, TargetDevice: st.Spec.Placement.Device,
		Workflow: w.ID, Step: st.Step, StepAttempt: st.Attempt, ParentResults: st.ParentResults,
	}
	if strings.HasPrefix(st.Spec.Module, domain.DigestPrefix) {
		t.ImageURL, t.Module = "", st.Spec.Module
	}
	if d := durationOr(st.Spec.Timeout, 0); d > 0 {
		t.TimeoutMS = max(d.Milliseconds(), 1)
	}
	return t
}

// MatchDevices returns the devices a fan-out placement runs on, in id
// order: every device when the selector is empty, else those matching
// every selector entry (see DeviceMatches).
func MatchDevices(devs []Device, p StepPlacement) []Device {
	var out []Device
	for _, d := range devs {
		if DeviceMatches(d, p.Selector) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// DeviceMatches reports whether d matches every entry of sel. An entry
// key=value matches a tag "key=value", a tag "value" when key is "tag",
// the device id for "id", or the metadata field of that name (namespace,
// location, os, cpu_arch, environment, hostname, wasm_runtime).
func DeviceMatches(d Device, sel map[string]string) bool {
	for k, v := range sel {
		if !deviceHas(d, k, v) {
			return false
		}
	}
	return true
}

func deviceHas(d Device, k, v string) bool {
	if slices.Contains(d.Metadata.Tags, k+"="+v) || k == "tag" && slices.Contains(d.Metadata.Tags, v) {
		return true
	}
	m := d.Metadata
	fields := map[string]string{
		"id": d.ID, "namespace": d.Namespace, "location": m.Location, "os": m.OS, "cpu_arch": m.CPUArch,
		"environment": m.Environment, "hostname": m.Hostname, "wasm_runtime": m.WasmRuntime,
	}
	f, ok := fields[k]
	return ok && f == v
}

// reconcileSchedule keeps the cron timer of a cron workflow while it runs
// and removes it once the workflow is cancelled.
func reconcileSchedule(w Workflow) []Action {
	f := TimerFire{Kind: TimerCron, Workflow: w.ID}
	if w.State.Terminal() {
		return []Action{CancelTimer{ID: f.TimerID()}}
	}
	if w.Held {
		return nil
	}
	return []Action{ScheduleCron{ID: f.TimerID(), Expr: CronSchedule(w.Spec.Cron), Timezone: w.Spec.Timezone, Fire: f}}
}

// Fire returns what a fired timer asks of w. at is the time the timer was
// due (a cron run is named after it).
func Fire(w Workflow, o Observed, f TimerFire, at time.Time) []Action {
	if !w.Exists() || w.State.Terminal() {
		return nil
	}
	s, _ := w.Step(f.Step)
	switch f.Kind {
	case TimerDeadline:
		return []Action{RecordCommand{Command: DeadlineExpired{ID: w.ID}}}
	case TimerRetry:
		return []Action{RecordCommand{Command: RetryTimerFired{ID: w.ID, Step: f.Step, Attempt: f.Attempt}}}
	case TimerTimeout:
		spec := w.Spec.Steps[max(w.stepIndex(f.Step), 0)]
		reason := fmt.Sprintf("attempt %d timed out after %s", f.Attempt, spec.Timeout)
		return []Action{RecordCommand{Command: AttemptTimedOut{ID: w.ID, Step: f.Step, Attempt: f.Attempt, Reason: reason}}}
	case TimerScheduleToStart:
		if s.State != StepRunning || s.Attempt != f.Attempt || allStarted(s, o) {
			return nil
		}
		spec := w.Spec.Steps[w.stepIndex(f.Step)]
		reason := fmt.Sprintf("attempt %d did not start within %s", f.Attempt, spec.ScheduleToStart)
		return []Action{RecordCommand{Command: AttemptTimedOut{ID: w.ID, Step: f.Step, Attempt: f.Attempt, Reason: reason}}}
	case TimerCron:
		if w.Spec.Cron == "" || w.Held {
			return nil
		}
		run := w.Spec
		run.Cron, run.Timezone = "", ""
		return []Action{CreateRun{Command: CreateWorkflow{
			ID: CronRunID(w.ID, at), Spec: run, At: at, Source: "cron:" + w.ID,
		}}}
	}
	return nil
}

// CronRunID names the run of cron workflow id due at at, so a timer
// delivered twice creates the run once.
func CronRunID(id string, at time.Time) string {
	return id + "-" + at.UTC().Format("20060102T150405Z")
}

// MarshalJSON writes the command with its type, so recorded actions read
// well in golden files.
func (a RecordCommand) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Type    string          `json:"type"`
		Command WorkflowCommand `json:"command"`
	}{fmt.Sprintf("%T", a.Command), a.Command})
}
