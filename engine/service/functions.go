package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Functions by catalog name: a call of name:tag runs on a latent task of
// the module the tag points at, created and started by the first call.
const (
	// FunctionDeployTimeout bounds how long a first call waits for the
	// latent task of its module to run on a device.
	FunctionDeployTimeout = 20 * time.Second
	// MaxFunctionGenerations bounds the latent tasks one digest of one
	// name:tag may have had: a task that ended (stopped, failed, deleted)
	// is followed by the next generation, at most this many times.
	MaxFunctionGenerations = 16
	// functionCaller scopes the idempotency keys of function tasks; it
	// holds a NUL, so no API token's id is it.
	functionCaller = "\x00functions"
)

// FunctionTaskID is the id of the latent task serving generation gen of
// digest under name:tag: an idempotency key's id, so that concurrent
// first calls, on any replica, create one task.
func FunctionTaskID(name, tag, digest string, gen int) string {
	return functionKey(name, tag, digest, gen).ID()
}

func functionKey(name, tag, digest string, gen int) Key {
	return Key{Caller: functionCaller, Value: fmt.Sprintf("%s:%s@%s#%d", name, tag, digest, gen)}
}

// DeployFunction returns the latent task that serves the catalog module
// ref (name:tag, or name for its latest tag) once it runs on a device:
// the first call for the tag's digest creates and starts it; a call after
// the tag moved (a new push) deploys the new digest and stops the task of
// the digest before. It waits at most FunctionDeployTimeout.
func (s *Service) DeployFunction(ctx context.Context, ref string) (engine.Task, error) {
	row, err := s.GetArtifact(ctx, ref)
	if err != nil {
		return engine.Task{}, err
	}
	t, err := s.functionTask(ctx, row)
	if err != nil {
		return t, err
	}
	if t.State != engine.TaskRunning {
		ctx, cancel := context.WithTimeout(ctx, FunctionDeployTimeout)
		defer cancel()
		if t, err = s.waitRunning(ctx, t.ID); err != nil {
			return t, err
		}
	}
	s.retirePrevious(ctx, row)
	return t, nil
}

// functionTask finds the live generation of row's function task, or
// creates and starts the next one.
func (s *Service) functionTask(ctx context.Context, row engine.ArtifactTag) (engine.Task, error) {
	for gen := range MaxFunctionGenerations {
		id := FunctionTaskID(row.Name, row.Tag, row.Digest, gen)
		if t, err := s.GetTask(id); err == nil && !t.State.Terminal() && t.State != engine.TaskPending {
			return t, nil
		}
		t, err := s.createFunctionTask(ctx, row, gen)
		if errors.Is(err, domain.ErrExists) || (err == nil && t.State.Terminal()) {
			continue // deleted or ended: the next generation
		}
		if err != nil || t.State != engine.TaskPending {
			return t, err
		}
		return s.startFunctionTask(ctx, t.ID)
	}
	return engine.Task{}, fmt.Errorf("%w: function %s:%s: its %d latent tasks for %s all ended; push the module again", domain.ErrInvalidState, row.Name, row.Tag, MaxFunctionGenerations, row.Digest)
}

func (s *Service) createFunctionTask(ctx context.Context, row engine.ArtifactTag, gen int) (engine.Task, error) {
	fn, err := s.defaultFunction(ctx, row)
	if err != nil {
		return engine.Task{}, err
	}
	spec := events.TaskCreated{Name: fn, ImageURL: row.Digest, Latent: true}
	t, _, err := s.CreateTaskOnce(ctx, functionKey(row.Name, row.Tag, row.Digest, gen), spec, nil)
	return t, err
}

// startFunctionTask starts a pending function task; a concurrent first
// call may have started it already, which is not an error.
func (s *Service) startFunctionTask(ctx context.Context, id string) (engine.Task, error) {
	t, err := s.StartTask(ctx, id)
	if err == nil {
		return t, nil
	}
	if now, gerr := s.GetTask(id); gerr == nil && now.State.Active() {
		return now, nil
	}
	return t, err
}

// defaultFunction is the function a module's task calls when an
// invocation names none: the artifact's name when exported, else a
// fallback proplets call (main, run, _start), else its first export.
func (s *Service) defaultFunction(ctx context.Context, row engine.ArtifactTag) (string, error) {
	ex, ok, err := s.exportsOf(ctx, row.Digest)
	if err != nil || !ok || len(ex) == 0 || slices.Contains(ex, row.Name) {
		return row.Name, err
	}
	for _, f := range []string{"main", "run", "_start"} {
		if slices.Contains(ex, f) {
			return f, nil
		}
	}
	return slices.Min(ex), nil
}

// waitRunning waits until task id runs on a device; a task that ends
// first is an error.
func (s *Service) waitRunning(ctx context.Context, id string) (engine.Task, error) {
	for {
		seq := s.tasks.LastSeq()
		t, err := s.GetTask(id)
		switch {
		case err != nil:
			return t, err
		case t.State == engine.TaskRunning && t.Device != "":
			return t, nil
		case t.State.Terminal():
			return t, fmt.Errorf("%w: latent task %s %s before it was deployed: %s", domain.ErrInvalidState, id, t.State, t.Error)
		}
		if err := s.tasks.WaitFor(ctx, seq+1); err != nil {
			return t, fmt.Errorf("%w: latent task %s is %s after %s (no proplet took it)", domain.ErrTimeout, id, t.State, FunctionDeployTimeout)
		}
	}
}

// retirePrevious stops the task of the digest the tag pointed at before
// its last push, once the new one runs (reload in place: calls of the
// name go to the new module, the old one is unloaded). A failed stop is
// left for the next call to repeat.
func (s *Service) retirePrevious(ctx context.Context, row engine.ArtifactTag) {
	if len(row.History) == 0 {
		return
	}
	prev := row.History[len(row.History)-1].Previous
	if prev == "" || prev == row.Digest {
		return
	}
	for gen := range MaxFunctionGenerations {
		t, err := s.GetTask(FunctionTaskID(row.Name, row.Tag, prev, gen))
		if err != nil {
			return
		}
		if t.State.Active() {
			_, _ = s.StopTask(ctx, t.ID) // an error here is the next call's to retry
		}
	}
}
