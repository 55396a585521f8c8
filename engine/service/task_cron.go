package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// TaskCronPrefix starts the timer id of a task's schedule; the rest is the
// task's id.
const TaskCronPrefix = "taskcron-"

// TaskCron starts tasks that have a schedule (Propeller's schedule,
// is_recurring and timezone) at their cron times, on the durable timers
// workflows use: a recurring task at every time, another once, at the
// first. A firing does not start its task at once: it joins the starts
// waiting for a device, which TaskCron makes highest priority first, then
// oldest (engine.ByPriority), as soon as a device may take them. So
// firings that fall due together, or that wait for a device together,
// start in priority order (Propeller orders its due tasks the same way).
type TaskCron struct {
	svc    *Service
	timers TimerStore
	log    *slog.Logger

	mu         sync.Mutex
	dirty      map[string]bool   // tasks whose schedule to look at again
	registered map[string]string // task id -> the schedule stored for it
	waiting    map[string]bool   // fired, not started yet
	all        bool              // look at every task (at start)
	wake       chan struct{}
}

// NewTaskCron returns the scheduler of the service's cron tasks. log may
// be nil.
func NewTaskCron(svc *Service, timers TimerStore, log *slog.Logger) *TaskCron {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &TaskCron{
		svc: svc, timers: timers, log: log, dirty: map[string]bool{}, registered: map[string]string{},
		waiting: map[string]bool{}, all: true, wake: make(chan struct{}, 1),
	}
}

// ObserveTask is a projection hook for the TASKS stream: a created or
// deleted task's schedule is looked at again, and an attempt that ended
// frees a slot on its device (WithTaskSlots) for a waiting firing.
func (c *TaskCron) ObserveTask(env events.Envelope) {
	switch env.Type {
	case "task.created", "task.deleted":
		c.mu.Lock()
		c.dirty[env.Aggregate.ID] = true
		c.mu.Unlock()
		c.kick()
	case "task.completed", "task.failed", "task.stopped", "task.lost", "task.undelivered":
		c.ObserveDevice(env)
	}
}

// ObserveDevice is a projection hook for the DEVICES stream: a device
// may take the waiting starts now.
func (c *TaskCron) ObserveDevice(events.Envelope) {
	c.mu.Lock()
	waiting := len(c.waiting) > 0
	c.mu.Unlock()
	if waiting {
		c.kick()
	}
}

func (c *TaskCron) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run stores the schedules of the tasks and starts the fired ones until
// ctx is done. The first pass looks at every task.
func (c *TaskCron) Run(ctx context.Context) error {
	c.kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
		}
		if err := c.pass(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("task cron: pass failed; will try again on the next change", "err", err)
		}
	}
}

func (c *TaskCron) pass(ctx context.Context) error {
	err := c.register(ctx)
	c.startWaiting(ctx)
	return err
}

// register stores (or cancels) the timers of the tasks looked at.
func (c *TaskCron) register(ctx context.Context) error {
	c.mu.Lock()
	ids, all := c.dirty, c.all
	c.dirty, c.all = map[string]bool{}, false
	c.mu.Unlock()
	if all {
		scheduled, _ := c.svc.tasks.Filter(func(t engine.Task) bool { return t.Schedule != "" }, 0, int(^uint(0)>>1))
		for _, t := range scheduled {
			ids[t.ID] = true
		}
	}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if err := c.registerOne(ctx, id); err != nil {
			c.mu.Lock()
			c.dirty[id] = true // tried again on the next pass
			c.mu.Unlock()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *TaskCron) registerOne(ctx context.Context, id string) error {
	t, ok := c.svc.tasks.Get(id)
	want := ""
	if ok && t.Exists() && t.Schedule != "" && (t.Recurring || t.Attempt == 0) {
		want = t.Schedule + "|" + t.Timezone
	}
	c.mu.Lock()
	have := c.registered[id]
	c.mu.Unlock()
	switch {
	case want == have:
		return nil
	case want == "":
		if err := c.timers.Cancel(ctx, TaskCronPrefix+id); err != nil {
			return err
		}
	default:
		if err := c.timers.Cron(ctx, TaskCronPrefix+id, engine.CronSchedule(t.Schedule), t.Timezone, nil); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.registered[id] = want
	if want == "" {
		delete(c.registered, id)
	}
	c.mu.Unlock()
	return nil
}

// Fire handles the firing of timer id (TaskCronPrefix and a task id):
// the task joins the waiting starts. A task that is not recurring has its
// timer cancelled: it fires once.
func (c *TaskCron) Fire(ctx context.Context, timerID string) error {
	id := strings.TrimPrefix(timerID, TaskCronPrefix)
	t, ok := c.svc.tasks.Get(id)
	if !ok || !t.Exists() || t.Schedule == "" {
		return c.timers.Cancel(ctx, timerID)
	}
	if !t.Recurring {
		if err := c.timers.Cancel(ctx, timerID); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.waiting[id] = true
	c.mu.Unlock()
	c.kick()
	return nil
}

// Waiting returns the ids of the fired tasks not started yet, in the
// order they will start.
func (c *TaskCron) Waiting() []string {
	tasks := c.waitingTasks()
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.ID
	}
	return ids
}

func (c *TaskCron) waitingTasks() []engine.Task {
	c.mu.Lock()
	ids := slices.Collect(maps.Keys(c.waiting))
	c.mu.Unlock()
	tasks := make([]engine.Task, 0, len(ids))
	for _, id := range ids {
		if t, ok := c.svc.tasks.Get(id); ok {
			tasks = append(tasks, t)
		}
	}
	slices.SortFunc(tasks, engine.ByPriority)
	return tasks
}

// startWaiting starts the waiting tasks in priority order until no
// device may take the next one (a task that targets a device waits for
// it without holding up the others). A task still running from its last
// firing skips this one.
func (c *TaskCron) startWaiting(ctx context.Context) {
	for _, t := range c.waitingTasks() {
		_, err := c.svc.StartTask(ctx, t.ID)
		switch {
		case errors.Is(err, domain.ErrNoDevice) && t.TargetDevice != "":
			continue // its device is down; the others may start
		case errors.Is(err, domain.ErrNoDevice):
			return
		}
		if err != nil {
			c.log.Info("task cron: firing not started", "task", t.ID, "err", err)
		}
		c.mu.Lock()
		delete(c.waiting, t.ID)
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}
