package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// TimerStore keeps durable timers: they fire after a restart of the
// process that scheduled them. Scheduling an id again replaces the timer.
type TimerStore interface {
	Schedule(ctx context.Context, id string, at time.Time, payload []byte) error
	Cron(ctx context.Context, id, expr, tz string, payload []byte) error
	Cancel(ctx context.Context, id string) error
}

// DefaultManagerWorkers is how many workflows the process manager
// reconciles at once.
const DefaultManagerWorkers = 4

// retryAfter is how soon a workflow whose actions failed is tried again.
const retryAfter = 500 * time.Millisecond

// WorkflowManager runs the workflow process manager: it reconciles each
// workflow that changed (its events, its tasks' events, device changes,
// timers) and executes the actions Reconcile and Fire return. Every
// engine replica may run one: actions are idempotent and commands are
// checked against the store.
type WorkflowManager struct {
	svc     *Service
	timers  TimerStore
	log     *slog.Logger
	workers int

	mu       sync.Mutex
	dirty    map[string]bool
	queue    []string
	inFlight map[string]bool
	wake     chan struct{}

	tmu       sync.Mutex
	scheduled map[string]map[string]string // workflow -> timer id -> what was stored, to skip storing it again
}

// NewWorkflowManager returns a process manager over the service's
// workflows, tasks and devices. log may be nil.
func NewWorkflowManager(svc *Service, timers TimerStore, log *slog.Logger) *WorkflowManager {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &WorkflowManager{
		svc: svc, timers: timers, log: log, workers: DefaultManagerWorkers,
		dirty: map[string]bool{}, inFlight: map[string]bool{}, wake: make(chan struct{}, 1),
		scheduled: map[string]map[string]string{},
	}
}

// Notify marks workflow id for reconciling.
func (m *WorkflowManager) Notify(id string) {
	m.mu.Lock()
	if !m.dirty[id] {
		m.dirty[id] = true
		m.queue = append(m.queue, id)
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// NotifyTask marks the workflow of task id, if it belongs to one.
func (m *WorkflowManager) NotifyTask(id string) {
	if t, ok := m.svc.tasks.Get(id); ok && t.Workflow != "" {
		m.Notify(t.Workflow)
	}
}

// NotifyAll marks every running workflow (devices changed: a step waiting
// for a device may start now).
func (m *WorkflowManager) NotifyAll() {
	if m.svc.workflows == nil {
		return
	}
	for _, id := range m.svc.workflows.Running() {
		m.Notify(id)
	}
}

// Run reconciles every running workflow, then each one notified, until ctx
// is done.
func (m *WorkflowManager) Run(ctx context.Context) error {
	m.NotifyAll()
	var wg sync.WaitGroup
	for range m.workers {
		wg.Go(func() { m.work(ctx) })
	}
	wg.Wait()
	return nil
}

func (m *WorkflowManager) work(ctx context.Context) {
	for {
		id, ok := m.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-m.wake:
				continue
			}
		}
		err := m.Reconcile(ctx, id)
		m.done(id)
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.Is(err, domain.ErrQuarantined):
			// Retrying cannot help: the workflow waits until an operator
			// acts (`jetprop events doctor` lists what stops it).
			m.log.Warn("workflow: waits on a quarantined aggregate", "workflow", id, "err", err)
		default:
			m.log.Warn("workflow: reconcile failed, will retry", "workflow", id, "err", err)
			time.AfterFunc(retryAfter, func() { m.Notify(id) })
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// next takes a queued workflow no other worker is reconciling.
func (m *WorkflowManager) next() (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, id := range m.queue {
		if m.inFlight[id] {
			continue
		}
		m.queue = append(m.queue[:i:i], m.queue[i+1:]...)
		delete(m.dirty, id)
		m.inFlight[id] = true
		return id, true
	}
	return "", false
}

func (m *WorkflowManager) done(id string) {
	m.mu.Lock()
	delete(m.inFlight, id)
	again := m.dirty[id]
	m.mu.Unlock()
	if again {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// Reconcile runs one pass over workflow id: computes its actions and
// executes them, stopping at the first that fails. A quarantined workflow
// is left alone: its commands would be refused.
func (m *WorkflowManager) Reconcile(ctx context.Context, id string) error {
	if _, held := m.svc.Quarantine().Get(events.WorkflowAggregate(id)); held {
		return nil
	}
	w, err := m.svc.GetWorkflow(id)
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := m.Execute(ctx, w, engine.Reconcile(w, m.observed())); err != nil {
		return err
	}
	if w.State.Terminal() { // the memo holds only running workflows
		m.tmu.Lock()
		delete(m.scheduled, w.ID)
		m.tmu.Unlock()
	}
	return nil
}

// FireTimer handles a durable timer: payload is a TimerFire as JSON, due
// when it was due.
func (m *WorkflowManager) FireTimer(ctx context.Context, payload []byte, due time.Time) error {
	var f engine.TimerFire
	if err := json.Unmarshal(payload, &f); err != nil {
		m.log.Warn("workflow: timer payload does not decode; dropped", "err", err)
		return nil
	}
	err := m.fire(ctx, f, due)
	if errors.Is(err, domain.ErrQuarantined) {
		// Redelivering cannot help. Once the aggregate is repaired, the
		// reconcile after the restart stores the timers still due again.
		m.log.Warn("workflow: timer dropped: a quarantined aggregate refuses it", "workflow", f.Workflow, "timer", f.TimerID(), "err", err)
		return nil
	}
	return err
}

func (m *WorkflowManager) fire(ctx context.Context, f engine.TimerFire, due time.Time) error {
	if err := m.svc.h.quarantine.Check(events.WorkflowAggregate(f.Workflow)); err != nil {
		return err // a cron would create runs of a workflow that is not what it seems
	}
	w, err := m.svc.GetWorkflow(f.Workflow)
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if f.Kind != engine.TimerCron { // a one-shot timer that fired may be stored again
		m.tmu.Lock()
		delete(m.scheduled[f.Workflow], f.TimerID())
		m.tmu.Unlock()
	}
	if err := m.Execute(ctx, w, engine.Fire(w, m.observed(), f, due)); err != nil {
		return err
	}
	m.Notify(f.Workflow)
	return nil
}

func (m *WorkflowManager) observed() engine.Observed {
	return engine.Observed{Task: m.svc.tasks.Get, Devices: m.svc.placeable()}
}

// Execute runs the actions Reconcile or Fire returned for w in order; runs
// of task creations, placements and stops go concurrently. It stops at the
// first action that fails: the next pass computes again what is still
// missing (tests use it to crash the manager between actions).
func (m *WorkflowManager) Execute(ctx context.Context, w engine.Workflow, acts []engine.Action) error {
	for i := 0; i < len(acts); {
		j := i + 1
		if parallel(acts[i]) {
			for j < len(acts) && sameKind(acts[i], acts[j]) {
				j++
			}
		}
		if err := m.runBatch(ctx, w, acts[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

func parallel(a engine.Action) bool {
	switch a.(type) {
	case engine.CreateStepTask, engine.StartStepTask, engine.StopStepTask:
		return true
	}
	return false
}

func sameKind(a, b engine.Action) bool { return reflect.TypeOf(a) == reflect.TypeOf(b) }

// maxParallel bounds the task commands one pass runs at once.
const maxParallel = 16

func (m *WorkflowManager) runBatch(ctx context.Context, w engine.Workflow, acts []engine.Action) error {
	if len(acts) == 1 {
		return m.act(ctx, w, acts[0])
	}
	errs := make([]error, len(acts))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i, a := range acts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = m.act(ctx, w, a)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (m *WorkflowManager) act(ctx context.Context, w engine.Workflow, a engine.Action) error {
	switch a := a.(type) {
	case engine.CreateStepTask:
		_, err := m.svc.CreateStepTask(ctx, a.TaskID, a.Spec)
		return err
	case engine.RecordCommand:
		_, err := m.svc.Workflow(ctx, a.Command)
		if errors.Is(err, domain.ErrStale) || errors.Is(err, domain.ErrInvalidState) {
			// The workflow moved on under us (another replica, or a
			// late event): the next pass decides on the new state.
			m.Notify(w.ID)
			return nil
		}
		return err
	case engine.StartStepTask:
		_, err := m.svc.StartTask(ctx, a.TaskID)
		if errors.Is(err, domain.ErrNoDevice) {
			// Wait for a device: device changes notify every workflow,
			// and schedule_to_start bounds the wait when set.
			m.log.Debug("workflow: no device for step task yet", "workflow", w.ID, "task", a.TaskID, "err", err)
			return nil
		}
		if errors.Is(err, domain.ErrInvalidState) {
			return nil // started already
		}
		return err
	case engine.StopStepTask:
		_, err := m.svc.do(ctx, engine.StopTask{ID: a.TaskID, Reason: a.Reason})
		if errors.Is(err, domain.ErrInvalidState) {
			return nil // ended already
		}
		return err
	case engine.ScheduleTimer:
		return m.timer(w.ID, a.ID, a.At.UTC().Format(time.RFC3339Nano), func() error {
			return m.timers.Schedule(ctx, a.ID, a.At, mustJSON(a.Fire))
		})
	case engine.ScheduleCron:
		return m.timer(w.ID, a.ID, a.Expr+"|"+a.Timezone, func() error {
			return m.timers.Cron(ctx, a.ID, a.Expr, a.Timezone, mustJSON(a.Fire))
		})
	case engine.CancelTimer:
		return m.timer(w.ID, a.ID, "cancelled", func() error { return m.timers.Cancel(ctx, a.ID) })
	case engine.CreateRun:
		_, err := m.svc.Workflow(ctx, a.Command)
		if errors.Is(err, domain.ErrExists) {
			return nil // this run was created before (a timer delivered twice)
		}
		return err
	}
	return fmt.Errorf("workflow: unknown action %T", a)
}

// timer stores a timer unless this process stored the same one already.
func (m *WorkflowManager) timer(wf, id, what string, store func() error) error {
	m.tmu.Lock()
	same := m.scheduled[wf][id] == what
	m.tmu.Unlock()
	if same {
		return nil
	}
	if err := store(); err != nil {
		return err
	}
	m.tmu.Lock()
	if m.scheduled[wf] == nil {
		m.scheduled[wf] = map[string]string{}
	}
	m.scheduled[wf][id] = what
	m.tmu.Unlock()
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // TimerFire always marshals
	}
	return b
}

// ObserveTask is a projection hook: it notifies the workflow of the task
// an envelope of the TASKS stream changed.
func (m *WorkflowManager) ObserveTask(env events.Envelope) { m.NotifyTask(env.Aggregate.ID) }

// ObserveWorkflow is a projection hook for the WORKFLOWS stream.
func (m *WorkflowManager) ObserveWorkflow(env events.Envelope) { m.Notify(env.Aggregate.ID) }

// ObserveDevice is a projection hook for the DEVICES stream.
func (m *WorkflowManager) ObserveDevice(events.Envelope) { m.NotifyAll() }
