package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
)

// Propeller's routes that change or forget what exists: PUT /tasks/{id},
// DELETE /proplets/{id}, and GET /proplets/{id}/alive-history.

// updateTask is Propeller's PUT /tasks/{id}: the body is a task as POST
// /tasks takes it (Propeller's SDK sends the whole task); the fields that
// are set replace the task's (updateOf says which), the others are left
// as they are. A task out on a device is refused (409): stop it first.
func (a *api) updateTask(w http.ResponseWriter, r *http.Request) {
	var req TaskRequest
	if err := a.decodeBody(w, r, hintTaskModule, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	u, err := req.updateOf()
	if err == nil {
		err = a.scheduleKept(r.PathValue("id"), req.TaskSchemaRequest)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var module io.Reader
	if len(req.File) > 0 {
		module = bytes.NewReader(req.File)
	}
	id := r.PathValue("id")
	t, err := a.svc.UpdateTask(r.Context(), id, u, module)
	if !a.byAlias(w, r, id, err, a.updateStep) {
		a.answerTask(w, r, t, err)
	}
}

// updateOf is the update a PUT body asks for: name, image_url (or file),
// inputs, env, cli_args, stdin, timeout_ms, memory_mib, metadata and
// priority when set (an empty list or map is not set: Propeller's SDK
// sends them empty when unchanged). daemon, proplet_id, retry, broadcast,
// run_if, kind and the rest are the task's from its create (Propeller's
// update leaves them too); the server-owned fields are ignored, as at
// create. A schedule is not changed by an update (scheduleKept).
func (req TaskRequest) updateOf() (events.TaskUpdated, error) {
	switch {
	case req.Kind != "" && req.Kind != "standard":
		return events.TaskUpdated{}, badRequest("kind %q is not supported (only \"standard\")", req.Kind)
	case len(req.File) > 0 && req.ImageURL != "":
		return events.TaskUpdated{}, badRequest("give file or image_url, not both")
	}
	u := events.TaskUpdated{
		Name: strings.TrimSpace(req.Name), ImageURL: req.ImageURL, Stdin: req.Stdin,
		TimeoutMS: req.TimeoutMS, MemoryMiB: req.MemoryMiB,
	}
	if len(req.Inputs) > 0 {
		u.Inputs = req.Inputs
	}
	if len(req.Env) > 0 {
		u.Env = req.Env
	}
	if len(req.CLIArgs) > 0 {
		u.CLIArgs = req.CLIArgs
	}
	if len(req.Metadata) > 0 {
		u.Metadata = req.Metadata
	}
	u.Priority = req.Priority
	return u, nil
}

// scheduleKept refuses a PUT that would change a task's cron schedule:
// Propeller's update moves the schedule, jetprop's cron timers are armed
// from the task's creation. The same schedule sent back (Propeller's SDK
// sends the whole task) is accepted; an unknown task is left to the
// update's 404.
func (a *api) scheduleKept(id string, req TaskSchemaRequest) error {
	t, err := a.svc.GetTask(id)
	if err != nil {
		return nil
	}
	switch {
	case req.Schedule != "" && req.Schedule != t.Schedule,
		req.Timezone != "" && req.Timezone != t.Timezone,
		req.IsRecurring && !t.Recurring:
		return badRequest("schedule, is_recurring and timezone cannot be changed by PUT /tasks/{id}: " +
			"delete the task and create it with the new schedule")
	}
	return nil
}

// deleteProplet is Propeller's DELETE /proplets/{id}: the proplet is
// forgotten (204), refused while tasks are out on it (409). A connected
// proplet comes back with its next heartbeat; to keep it out, revoke it
// (POST /devices/{id}/revoke).
func (a *api) deleteProplet(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.RemoveDevice(r.Context(), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// MaxAliveHistory bounds the liveness changes GET
// /proplets/{id}/alive-history considers: the newest ones.
const MaxAliveHistory = 1000

// AliveHistory is the answer of GET /proplets/{id}/alive-history:
// Propeller's page (offset, limit, total, history: the times the proplet
// was seen come alive, oldest first) plus jetprop's Events, every change
// of its liveness on the page's span, with its type and reason. jetprop
// records a change, not each heartbeat (a heartbeat that changes nothing
// is no event), so History holds the times it came alive (announced,
// alive again, reachable again), not every heartbeat as Propeller's does.
type AliveHistory struct {
	Offset  int                  `json:"offset"`
	Limit   int                  `json:"limit"`
	Total   int                  `json:"total"`
	History []time.Time          `json:"history"`
	Events  []service.AliveEvent `json:"events"`
}

func (a *api) aliveHistory(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	evs, err := a.svc.DeviceHistory(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, aliveHistoryPage(evs, p))
}

func aliveHistoryPage(evs []service.AliveEvent, p page) AliveHistory {
	evs = evs[max(0, len(evs)-MaxAliveHistory):]
	alive := slices.DeleteFunc(slices.Clone(evs), func(e service.AliveEvent) bool { return !e.Alive })
	out := AliveHistory{Offset: p.offset, Limit: p.limit, Total: len(alive), History: []time.Time{}, Events: []service.AliveEvent{}}
	start := min(p.offset, len(alive))
	for _, e := range alive[start : start+min(p.limit, len(alive)-start)] {
		out.History = append(out.History, e.At)
	}
	start = min(p.offset, len(evs))
	out.Events = append(out.Events, evs[start:start+min(p.limit, len(evs)-start)]...)
	return out
}

// Statuses ?status= takes on GET /proplets: Propeller's "active" (tasks
// may be placed on it) and "inactive", or a jetprop status (Proplet.Status).
var propletStatuses = []string{"active", "inactive", "announced", "alive", "unreachable", "offline", "unknown"}

func propletMatches(d engine.Device, status string) bool {
	alive := d.State.Up() && d.Unreachable == "" // Proplet.Alive
	switch status {
	case "active":
		return alive
	case "inactive":
		return !alive
	}
	return deviceStatus(d) == status
}

// Statuses ?status= takes on GET /jobs: Propeller's job statuses, matched
// on the job's Propeller state.
var jobStatuses = map[string]int{"pending": 0, "running": 2, "completed": 3, "failed": 4}

// statusFilter reads ?status= and checks it against allowed.
func statusFilter(r *http.Request, allowed []string) (string, error) {
	s := r.URL.Query().Get("status")
	if s != "" && !slices.Contains(allowed, s) {
		return "", badRequest("status %q: want one of %s", s, strings.Join(allowed, ", "))
	}
	return s, nil
}

// taskStatuses are jetprop's task states (Task.Status), which ?status=
// on GET /tasks takes.
func taskStatuses() []string {
	var out []string
	for s := engine.TaskPending; s <= engine.TaskStopped; s++ {
		out = append(out, s.String())
	}
	return out
}

// pageOf is the page p of all.
func pageOf[T any](all []T, p page) []T {
	start := min(p.offset, len(all))
	return all[start : start+min(p.limit, len(all)-start)] // no offset+limit: it may overflow
}

// tasksWith is a page of the tasks in state status ("" for any) whose
// metadata matches meta (nil for any), and their total. A filter reads
// every task: O(tasks).
func (a *api) tasksWith(status string, meta map[string]string, p page) ([]engine.Task, int) {
	if status == "" && meta == nil {
		return a.svc.ListTasks(p.offset, p.limit)
	}
	return a.svc.FilterTasks(func(t engine.Task) bool {
		return (status == "" || t.State.String() == status) && (meta == nil || t.MetadataMatches(meta))
	}, p.offset, p.limit)
}

// propletsWith is a page of the proplets that match status: O(proplets).
func (a *api) propletsWith(status string, p page) PropletList {
	match := slices.DeleteFunc(a.svc.ListDevices(), func(d engine.Device) bool { return !propletMatches(d, status) })
	out := PropletList{Offset: p.offset, Limit: p.limit, Total: len(match), Proplets: []Proplet{}}
	for _, d := range pageOf(match, p) {
		out.Proplets = append(out.Proplets, a.proplet(d, a.svc.DeviceLoad(d.ID)))
	}
	return out
}
