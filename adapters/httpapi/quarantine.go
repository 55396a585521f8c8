package httpapi

import (
	"net/http"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// quarantine answers GET /events/quarantine: the quarantined aggregates,
// each with the message that stops it, and the event streams found damaged
// at start. Always 200; GET /health says whether there is anything.
func (a *api) quarantine(w http.ResponseWriter, _ *http.Request) {
	q := a.svc.Quarantine()
	out := QuarantineReport{Quarantined: q.List(), Streams: q.Streams()}
	if out.Quarantined == nil {
		out.Quarantined = []events.Quarantined{}
	}
	if out.Streams == nil {
		out.Streams = []events.StreamProblem{}
	}
	writeJSON(w, http.StatusOK, out)
}

// quarantined returns the record that quarantines agg, nil when none.
func (a *api) quarantined(agg events.Aggregate) *events.Quarantined {
	if r, ok := a.svc.Quarantine().Get(agg); ok {
		return &r
	}
	return nil
}

// task, proplet and workflow are the API views, marked when quarantined.
func (a *api) task(t engine.Task) Task {
	v := TaskFrom(t)
	v.Quarantined = a.quarantined(events.TaskAggregate(t.ID))
	if t.Broadcast {
		v.withRun(a.svc.Broadcast(t.ID))
	}
	return v
}

func (a *api) proplet(d engine.Device, taskCount int) Proplet {
	v := PropletFrom(d, taskCount)
	v.Quarantined = a.quarantined(events.DeviceAggregate(d.ID))
	return v
}

func (a *api) workflow(wf engine.Workflow) Workflow {
	v := WorkflowFrom(wf)
	v.Quarantined = a.quarantined(events.WorkflowAggregate(wf.ID))
	return v
}
