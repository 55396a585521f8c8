package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

func (a *api) createTask(w http.ResponseWriter, r *http.Request) {
	var req TaskRequest
	if err := a.decodeBody(w, r, hintTaskModule, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	spec, err := req.spec()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var module io.Reader
	if len(req.File) > 0 {
		module = bytes.NewReader(req.File)
	}
	t, replayed, err := a.svc.CreateTaskOnce(r.Context(), key, spec, module)
	a.created(w, r, "/tasks/", t.ID, replayed, TaskFrom(t), err)
}

// spec checks what the engine does not and returns the task's creation event.
func (req TaskRequest) spec() (events.TaskCreated, error) {
	switch {
	case strings.TrimSpace(req.Name) == "": // checked before the module is stored
		return events.TaskCreated{}, badRequest("name (the function to call) is required")
	case len(req.File) > 0 && req.ImageURL != "":
		return events.TaskCreated{}, badRequest("give file or image_url, not both")
	}
	if req.PropletID != "" {
		if err := events.ValidateID(req.PropletID); err != nil {
			return events.TaskCreated{}, err
		}
	}
	spec := events.TaskCreated{
		Name: req.Name, ImageURL: req.ImageURL, Inputs: req.Inputs, Env: req.Env,
		CLIArgs: req.CLIArgs, Stdin: req.Stdin, Daemon: req.Daemon, Latent: req.Latent,
		TimeoutMS: req.TimeoutMS, MemoryMiB: req.MemoryMiB, TargetDevice: req.PropletID,
	}
	if req.Retry != nil {
		spec.MaxAttempts = req.Retry.MaxAttempts
	}
	schema, err := req.schema(req.Kind)
	spec.TaskSchema = schema
	return spec, err
}

func (a *api) listTasks(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status, err := statusFilter(r, taskStatuses())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	meta, err := metadataFilter(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tasks, total := a.tasksWith(status, meta, p)
	out := TaskList{Offset: p.offset, Limit: p.limit, Total: total, Tasks: make([]Task, 0, len(tasks))}
	for _, t := range tasks {
		out.Tasks = append(out.Tasks, a.task(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := a.svc.GetTask(id)
	if !a.byAlias(w, r, id, err, nil) {
		a.answerTask(w, r, t, err)
	}
}

func (a *api) startTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := a.svc.StartTask(r.Context(), id)
	if !a.byAlias(w, r, id, err, a.startStep) {
		a.answerTask(w, r, t, err)
	}
}

func (a *api) stopTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := a.svc.StopTask(r.Context(), id)
	if !a.byAlias(w, r, id, err, a.stopStep) {
		a.answerTask(w, r, t, err)
	}
}

func (a *api) answerTask(w http.ResponseWriter, r *http.Request, t engine.Task, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.task(t))
}

func (a *api) deleteTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.svc.DeleteTask(r.Context(), id); err != nil {
		if !a.byAlias(w, r, id, err, a.deleteStep) {
			a.fail(w, r, err)
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// uploadModule streams the module into the store: from the multipart field
// "file" (Propeller's form), or from the whole body when it is sent as
// application/wasm or application/octet-stream.
func (a *api) uploadModule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.svc.GetTask(id); err != nil {
		if !a.byAlias(w, r, id, err, a.updateStep) {
			a.fail(w, r, err)
		}
		return
	}
	if err := limitBody(w, r, a.maxBody); err != nil {
		a.fail(w, r, err)
		return
	}
	t, err := a.upload(r, id)
	a.answerTask(w, r, t, err)
}

func (a *api) upload(r *http.Request, id string) (engine.Task, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/wasm" || ct == "application/octet-stream" {
		return a.svc.UploadModule(r.Context(), id, r.Body)
	}
	part, err := filePart(r)
	if err != nil {
		return engine.Task{}, err
	}
	defer part.Close()
	return a.svc.UploadModule(r.Context(), id, part)
}

// filePart returns the multipart part named "file" without reading the
// parts before it into memory.
func filePart(r *http.Request) (*multipart.Part, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, badRequest("want a multipart/form-data body with a \"file\" field, or an application/wasm body: %v", err)
	}
	for {
		part, err := mr.NextPart()
		var tooBig *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return nil, badRequest("multipart body has no \"file\" field")
		case errors.As(err, &tooBig), errors.Is(err, errBodyTimeout):
			return nil, err
		case err != nil:
			return nil, badRequest("multipart body: %v", err)
		case part.FormName() == "file":
			return part, nil
		}
		part.Close()
	}
}

// MaxWait is the longest a GET /tasks/{id}/results?wait= may block.
const MaxWait = 5 * time.Minute

func (a *api) results(w http.ResponseWriter, r *http.Request) {
	wait, err := parseWait(r.URL.Query().Get("wait"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id := r.PathValue("id")
	t, err := a.waitTask(w, r, id, wait)
	if a.byAlias(w, r, id, err, nil) {
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if t.Broadcast {
		writeJSON(w, http.StatusOK, BroadcastResultsFrom(t.ID, a.waitBroadcast(w, r, t.ID, wait)))
		return
	}
	writeJSON(w, http.StatusOK, ResultsFrom(t))
}

// parseWait reads a duration ("30s", "2m") or a number of seconds, capped
// at MaxWait.
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return 0, badRequest("wait %q: want a duration such as 30s", s)
		}
		d = time.Duration(min(n, int(MaxWait/time.Second))) * time.Second // no overflow
	}
	if d < 0 {
		return 0, badRequest("wait %q must not be negative", s)
	}
	return min(d, MaxWait), nil
}

// waitTask returns the task once it is terminal or wait has passed.
func (a *api) waitTask(w http.ResponseWriter, r *http.Request, id string, wait time.Duration) (engine.Task, error) {
	if t, err := a.svc.GetTask(id); wait == 0 || err != nil || t.Broadcast {
		return t, err
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + time.Minute))
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	t, err := a.svc.WaitTask(ctx, id)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return a.svc.GetTask(id)
	}
	return t, err
}

// waitBroadcast returns the last run of broadcast task id once it has
// ended or wait has passed.
func (a *api) waitBroadcast(w http.ResponseWriter, r *http.Request, id string, wait time.Duration) engine.BroadcastRun {
	if wait == 0 {
		return a.svc.Broadcast(id)
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + time.Minute))
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	b, _ := a.svc.WaitBroadcast(ctx, id) // at the deadline: the run as it is
	return b
}
