package engine

import (
	"fmt"
	"reflect"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// UpdateTask changes a task that is not out on a device (Propeller's PUT
// /tasks/{id}): the fields of Update that are set replace the task's. A
// task that is scheduled or running is refused (stop it first): its
// attempt runs what it was started with. A finished task may be changed
// and started again.
type UpdateTask struct {
	ID     string
	Update events.TaskUpdated
}

func (c UpdateTask) TaskID() string { return c.ID }

// ApplyTaskUpdate returns spec with u's set fields in place.
func ApplyTaskUpdate(spec events.TaskCreated, u events.TaskUpdated) events.TaskCreated {
	if u.Name != "" {
		spec.Name = u.Name
	}
	switch {
	case u.ImageURL != "":
		spec.ImageURL, spec.Module, spec.ModuleSize = u.ImageURL, u.Module, u.ModuleSize
	case u.Module != "":
		spec.ImageURL, spec.Module, spec.ModuleSize = "", u.Module, u.ModuleSize
	}
	if u.Inputs != nil {
		spec.Inputs = u.Inputs
	}
	if u.Env != nil {
		spec.Env = u.Env
	}
	if u.CLIArgs != nil {
		spec.CLIArgs = u.CLIArgs
	}
	if u.Stdin != nil {
		spec.Stdin = u.Stdin
	}
	if u.TimeoutMS != 0 {
		spec.TimeoutMS = u.TimeoutMS
	}
	if u.MemoryMiB != 0 {
		spec.MemoryMiB = u.MemoryMiB
	}
	if u.Metadata != nil {
		spec.Metadata = u.Metadata
	}
	if u.Priority != 0 {
		spec.Priority = u.Priority
	}
	return spec
}

// decideUpdate: an update that changes nothing is satisfied already; the
// task after it must be one a create would take (ValidateTaskSpec).
func decideUpdate(t Task, c UpdateTask) ([]events.Event, error) {
	if t.State.Active() {
		return nil, fmt.Errorf("task %s is %s; stop it before updating it: %w", t.ID, t.State, domain.ErrInvalidState)
	}
	after := ApplyTaskUpdate(t.TaskCreated, c.Update)
	if reflect.DeepEqual(after, t.TaskCreated) {
		return nil, nil
	}
	if err := ValidateTaskSpec(after); err != nil {
		return nil, err
	}
	return one(c.Update), nil
}
