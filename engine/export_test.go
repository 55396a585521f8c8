package engine

import (
	"slices"

	"github.com/jetprop/jetprop/events"
)

// DecideWorkflowBoth decides cmd on w, its consequences settled once on
// the steps the events name (settle) and once on a copy of every step
// (settleCopy).
func DecideWorkflowBoth(w Workflow, cmd WorkflowCommand) (patched, copied []events.Event, err error) {
	evs, err := decideWorkflowCmd(w, cmd)
	if err != nil || len(evs) == 0 {
		return nil, nil, err
	}
	return settle(w, slices.Clip(slices.Clone(evs))), settleCopy(w, slices.Clip(slices.Clone(evs))), nil
}
