package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// LatentRedeployGrace is how long a latent task runs in the engine's view
// before an invocation's "not deployed" answer from a device that cannot
// tell "on its way" from "lost" (Propeller's proplets: the task runs from
// the broker taking its start, before the device compiled it) is taken
// for a lost deployment. jetprop's proplets say which (engine.ErrDeploying).
const LatentRedeployGrace = 5 * time.Second

// LatentLost reports whether err, the failure of an invocation of latent
// task t, says its device does not have the task any more (it restarted),
// so that it must be deployed again (RedeployLatent), as opposed to a
// task still on its way there.
func (s *Service) LatentLost(t engine.Task, err error) bool {
	if !errors.Is(err, engine.ErrNotDeployed) || errors.Is(err, engine.ErrDeploying) {
		return false
	}
	if d, derr := s.GetDevice(t.Device); derr == nil && d.AnswersStarts() {
		return true // a jetprop proplet: it would have said deploying
	}
	return s.h.Now().Sub(t.StartedAt) >= LatentRedeployGrace
}

// RedeployLatent deploys latent task t again after its device answered
// that it does not have it (LatentLost): its attempt ends lost
// (engine.LostNotDeployed) and the next one goes to the same device when
// it may take it, else to another (unless the task targets it); it
// returns once the task runs again, or fails within FunctionDeployTimeout.
// The lost attempt does not count against the task's max_attempts
// (engine.LostNotDeployed). A concurrent
// redeploy of the same attempt (another call, the device's interrupted
// result) makes this one a no-op that waits all the same.
func (s *Service) RedeployLatent(ctx context.Context, t engine.Task) (engine.Task, error) {
	next := s.place(t.Device)
	if next == "" {
		next = s.place(t.TargetDevice)
	}
	if next == "" { // keep the attempt: its device may come back with it
		return t, fmt.Errorf("%w: latent task %s is not deployed on %s any more, and no proplet may take it now", domain.ErrNoDevice, t.ID, t.Device)
	}
	cmd := engine.LoseTask{ID: t.ID, Attempt: t.Attempt, Device: t.Device, Cause: engine.LostNotDeployed, Next: next, Now: s.h.Now()}
	if _, err := s.do(ctx, cmd); err != nil {
		return t, err
	}
	t, _ = s.GetTask(t.ID)
	return s.WaitDeployed(ctx, t)
}

// WaitDeployed waits until latent task t, scheduled (its start on the way
// to a device: just started, or deployed again after its device lost
// it), runs, at most FunctionDeployTimeout; a task in any other state is
// returned as is.
func (s *Service) WaitDeployed(ctx context.Context, t engine.Task) (engine.Task, error) {
	if !t.Latent || t.State != engine.TaskScheduled {
		return t, nil
	}
	ctx, cancel := context.WithTimeout(ctx, FunctionDeployTimeout)
	defer cancel()
	return s.waitRunning(ctx, t.ID)
}
