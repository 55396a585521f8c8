package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// A broadcast task (Propeller's broadcast) runs once on every device that
// is placeable when it starts: each start is a run, which creates one
// task per device (engine.BroadcastTaskID, targeting that device, with
// BroadcastOf and BroadcastRun set) and starts it. The broadcast task
// itself is never placed; its state and results are its last run's
// (engine.BroadcastRun), per device.

// Broadcast returns the last run of broadcast task id: its tasks sorted
// by device. It scans the tasks (there is no index of runs).
func (s *Service) Broadcast(id string) engine.BroadcastRun {
	var b engine.BroadcastRun
	all, _ := s.tasks.Filter(func(t engine.Task) bool { return t.BroadcastOf == id }, 0, int(^uint(0)>>1))
	for _, t := range all {
		switch {
		case t.BroadcastRun > b.Run:
			b = engine.BroadcastRun{Run: t.BroadcastRun, Tasks: []engine.Task{t}}
		case t.BroadcastRun == b.Run:
			b.Tasks = append(b.Tasks, t)
		}
	}
	slices.SortFunc(b.Tasks, func(x, y engine.Task) int { return strings.Compare(x.TargetDevice, y.TargetDevice) })
	return b
}

// startBroadcast starts a run of broadcast task t on every placeable
// device. A run still going refuses it.
func (s *Service) startBroadcast(ctx context.Context, t engine.Task) (engine.Task, error) {
	last := s.Broadcast(t.ID)
	if last.State() == engine.TaskRunning {
		return t, fmt.Errorf("broadcast task %s: run %d is still running: %w", t.ID, last.Run, domain.ErrInvalidState)
	}
	if !t.HasModule() {
		return t, fmt.Errorf("%w: task %s has no module: upload one or set image_url", domain.ErrInvalid, t.ID)
	}
	devices := s.placeable()
	if len(devices) == 0 {
		return t, domain.ErrNoDevice
	}
	run := last.Run + 1
	var errs []error
	for _, d := range devices {
		if err := s.startOn(ctx, t, run, d.ID); err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", d.ID, err))
		}
	}
	return t, errors.Join(errs...)
}

// startOn creates and starts the task of run on device.
func (s *Service) startOn(ctx context.Context, t engine.Task, run int, device string) error {
	spec := t.TaskCreated
	spec.Broadcast, spec.TargetDevice, spec.BroadcastOf, spec.BroadcastRun = false, device, t.ID, run
	spec.Schedule, spec.Recurring, spec.Timezone, spec.RequestDigest = "", false, "", ""
	id := engine.BroadcastTaskID(t.ID, run, device)
	if _, err := s.do(ctx, engine.CreateTask{ID: id, Spec: spec}); err != nil && !errors.Is(err, domain.ErrExists) {
		return err
	}
	_, err := s.StartTask(ctx, id)
	return err
}

// stopBroadcast stops the tasks of the last run still scheduled or running.
func (s *Service) stopBroadcast(ctx context.Context, t engine.Task) (engine.Task, error) {
	var errs []error
	stopped := false
	for _, k := range s.Broadcast(t.ID).Tasks {
		if k.State.Active() {
			_, err := s.do(ctx, engine.StopTask{ID: k.ID})
			errs = append(errs, err)
			stopped = stopped || err == nil
		}
	}
	if !stopped && len(errs) == 0 {
		return t, fmt.Errorf("broadcast task %s is not running: %w", t.ID, domain.ErrInvalidState)
	}
	return t, errors.Join(errs...)
}

// deleteBroadcast deletes the tasks of every run, then the broadcast task.
func (s *Service) deleteBroadcast(ctx context.Context, id string) error {
	all, _ := s.tasks.Filter(func(t engine.Task) bool { return t.BroadcastOf == id }, 0, int(^uint(0)>>1))
	for _, k := range all {
		if k.State.Active() {
			return fmt.Errorf("broadcast task %s is running on %s; stop it before deleting: %w", id, k.TargetDevice, domain.ErrInvalidState)
		}
	}
	for _, k := range all {
		if _, err := s.do(ctx, engine.DeleteTask{ID: k.ID}); err != nil {
			return err
		}
	}
	_, err := s.do(ctx, engine.DeleteTask{ID: id})
	return err
}

// WaitBroadcast blocks until the last run of broadcast task id has ended
// (or ctx is done) and returns it.
func (s *Service) WaitBroadcast(ctx context.Context, id string) (engine.BroadcastRun, error) {
	for {
		seq := s.tasks.LastSeq()
		b := s.Broadcast(id)
		if st := b.State(); st.Terminal() || st == engine.TaskPending {
			return b, nil
		}
		if err := s.tasks.WaitFor(ctx, seq+1); err != nil {
			return b, err
		}
	}
}
