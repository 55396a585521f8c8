package service

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// UpdateTask changes a task that is not out on a device (engine.UpdateTask):
// the set fields of u replace the task's. module, when not nil, is stored
// first and becomes the task's module; an image that names a stored module
// is resolved to it, as at create. The task after the update must hold what
// a create would take, its function included.
func (s *Service) UpdateTask(ctx context.Context, id string, u events.TaskUpdated, module io.Reader) (engine.Task, error) {
	t, err := s.GetTask(id)
	if err != nil {
		return engine.Task{}, err
	}
	if t.State.Active() { // before a module is stored for it (the decider checks again)
		return engine.Task{}, fmt.Errorf("task %s is %s; stop it before updating it: %w", id, t.State, domain.ErrInvalidState)
	}
	after := engine.ApplyTaskUpdate(t.TaskCreated, u)
	if err := engine.ValidateTaskSpec(after); err != nil {
		return engine.Task{}, err
	}
	if err := s.checkSecretRefs("task", after.Env); err != nil {
		return engine.Task{}, err
	}
	if u, err = s.updatedModule(ctx, after, u, module); err != nil {
		return engine.Task{}, err
	}
	return s.do(ctx, engine.UpdateTask{ID: id, Update: u})
}

// updatedModule stores the update's module, or resolves its image, and
// checks the function against the module the task will run.
func (s *Service) updatedModule(ctx context.Context, after events.TaskCreated, u events.TaskUpdated, module io.Reader) (events.TaskUpdated, error) {
	var err error
	switch {
	case module != nil:
		u.Module, u.ModuleSize, err = s.putChecked(ctx, after.Name, module)
		return u, err
	case u.ImageURL != "":
		spec := events.TaskCreated{Name: after.Name, ImageURL: u.ImageURL}
		err = s.resolveStored(ctx, &spec)
		u.Module, u.ModuleSize = spec.Module, spec.ModuleSize
		return u, err
	case u.Name != "" && after.Module != "":
		return u, s.checkFunction(ctx, after.Name, after.Module, after.ImageURL)
	}
	return u, nil
}

// RemoveDevice forgets proplet id (engine.RemoveDevice). It is refused
// while tasks are scheduled or running on it, as Propeller refuses it:
// stop them first.
func (s *Service) RemoveDevice(ctx context.Context, id string) error {
	if _, err := s.GetDevice(id); err != nil {
		return err
	}
	if n := s.DeviceLoad(id); n > 0 {
		return fmt.Errorf("proplet %s has %d active tasks; stop them first: %w", id, n, domain.ErrInvalidState)
	}
	d, err := s.h.Device(ctx, engine.RemoveDevice{ID: id})
	if err != nil {
		return err
	}
	return waitView(ctx, s.readTimeout, s.devices, d.Seq)
}

// AliveEvent is a change of a device's liveness as its events record it.
type AliveEvent struct {
	At     time.Time `json:"at"`
	Type   string    `json:"type"`             // the event type: device.announced, device.alive, device.offline …
	Alive  bool      `json:"alive"`            // placeable after it
	Reason string    `json:"reason,omitempty"` // why it went offline or unreachable
}

// DeviceHistory returns the liveness changes of device id, oldest first:
// the events of its stream that came, went or changed its reachability.
// Heartbeats that change nothing are not events, so they are not in it.
func (s *Service) DeviceHistory(ctx context.Context, id string) ([]AliveEvent, error) {
	if _, err := s.GetDevice(id); err != nil {
		return nil, err
	}
	envs, err := s.h.store.Load(ctx, events.DeviceAggregate(id))
	if err != nil {
		return nil, err
	}
	var out []AliveEvent
	d := engine.Device{}
	for _, env := range envs {
		ev, err := s.h.codec.Decode(env)
		if err != nil {
			return nil, err
		}
		d = d.Apply(env, ev)
		if a, ok := aliveEvent(env, ev, d); ok {
			out = append(out, a)
		}
	}
	return out, nil
}

func aliveEvent(env events.Envelope, ev events.Event, d engine.Device) (AliveEvent, bool) {
	a := AliveEvent{At: env.Time, Type: env.Type, Alive: d.Placeable()}
	switch e := ev.(type) {
	case events.DeviceAnnounced, events.DeviceAlive, events.DeviceReachable, events.DeviceRemoved:
	case events.DeviceOffline:
		a.Reason = e.Reason
	case events.DeviceUnreachable:
		a.Reason = e.Reason
	case events.DeviceRevoked:
		a.Reason = e.Reason
	default:
		return a, false
	}
	return a, true
}
