package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
)

// MaxSpecBody bounds a body of POST /workflows in jetprop's format and of
// POST /workflows/{id}/cancel. Propeller's formats may carry modules
// inline and are bounded by MaxJSONBody.
const MaxSpecBody = 1 << 20

// MaxWorkflowWait is the longest a GET /workflows/{id}?wait= may block.
const MaxWorkflowWait = time.Minute

// workflowBody tells the two bodies POST /workflows takes apart.
type workflowBody struct {
	Steps json.RawMessage `json:"steps"`
	Tasks json.RawMessage `json:"tasks"`
}

// createWorkflow takes jetprop's WorkflowSpec (a body with "steps") or
// Propeller's workflow (a body with "tasks"), which starts at once.
func (a *api) createWorkflow(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, a.jsonLimit())
	if err != nil {
		a.fail(w, r, withHint(err, hintStepModules))
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	wf, replayed, err := a.newWorkflow(r.Context(), body, key)
	a.created(w, r, "/workflows/", wf.ID, replayed, WorkflowFrom(wf), err)
}

func (a *api) newWorkflow(ctx context.Context, body []byte, key service.Key) (engine.Workflow, bool, error) {
	var probe workflowBody // what follows the first value decodeJSON refuses below
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&probe); err != nil {
		return engine.Workflow{}, false, jsonErr(err)
	}
	switch {
	case probe.Steps != nil && probe.Tasks != nil:
		return engine.Workflow{}, false, badRequest(`give "steps" (a jetprop workflow spec) or "tasks" (Propeller's workflow), not both`)
	case probe.Tasks != nil:
		var req PropellerWorkflowRequest
		if err := decodeJSON(bytes.NewReader(body), &req); err != nil {
			return engine.Workflow{}, false, err
		}
		return a.createPropeller(ctx, propellerWorkflowName, engine.ModeDAG, req.Tasks, service.WorkflowOptions{Source: SourceWorkflow, Key: key})
	case probe.Steps == nil:
		return engine.Workflow{}, false, badRequest(`want a workflow spec with "steps", or Propeller's workflow with "tasks"`)
	}
	if limit := min(a.maxBody, MaxSpecBody); int64(len(body)) > limit {
		return engine.Workflow{}, false, tooLarge(limit)
	}
	var spec engine.WorkflowSpec
	if err := decodeJSON(bytes.NewReader(body), &spec); err != nil {
		return engine.Workflow{}, false, err
	}
	return a.svc.CreateWorkflowOnce(ctx, spec, service.WorkflowOptions{Key: key})
}

// readBody reads the whole body, up to limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if err := limitBody(w, r, limit); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, jsonErr(err)
	}
	return b, nil
}

func tooLarge(limit int64) error {
	return fmt.Errorf("request body larger than %d bytes: %w", limit, &http.MaxBytesError{Limit: limit})
}

func (a *api) listWorkflows(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	wfs, total := a.svc.ListWorkflows(p.offset, p.limit)
	out := WorkflowList{Offset: p.offset, Limit: p.limit, Total: total, Workflows: make([]Workflow, 0, len(wfs))}
	for _, wf := range wfs {
		out.Workflows = append(out.Workflows, a.workflow(wf))
	}
	writeJSON(w, http.StatusOK, out)
}

// getWorkflow answers at once, or with ?after=<seq>&wait=<duration> once
// the workflow's seq has passed after, it has ended, or wait (at most
// MaxWorkflowWait) has passed: 200 in every case.
func (a *api) getWorkflow(w http.ResponseWriter, r *http.Request) {
	after, wait, err := parseWatch(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	wf, err := a.watchWorkflow(w, r, r.PathValue("id"), after, wait)
	a.answerWorkflow(w, r, wf, err)
}

func parseWatch(q url.Values) (after uint64, wait time.Duration, err error) {
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, badRequest("after %q: want a whole number >= 0 (the seq of the last answer)", s)
		}
	}
	wait, err = parseWait(q.Get("wait"))
	return after, min(wait, MaxWorkflowWait), err
}

func (a *api) watchWorkflow(w http.ResponseWriter, r *http.Request, id string, after uint64, wait time.Duration) (engine.Workflow, error) {
	if wait == 0 || after == 0 {
		return a.svc.GetWorkflow(id)
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + time.Minute))
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	wf, err := a.svc.WaitWorkflow(ctx, id, after)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return a.svc.GetWorkflow(id)
	}
	return wf, err
}

// cancelWorkflow ends a workflow; the body {"reason": "..."} is optional.
func (a *api) cancelWorkflow(w http.ResponseWriter, r *http.Request) {
	var req CancelRequest
	body, err := readBody(w, r, min(a.maxBody, MaxSpecBody))
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		err = decodeJSON(bytes.NewReader(body), &req)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	wf, err := a.svc.CancelWorkflow(r.Context(), r.PathValue("id"), req.Reason)
	a.answerWorkflow(w, r, wf, err)
}

func (a *api) answerWorkflow(w http.ResponseWriter, r *http.Request, wf engine.Workflow, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.workflow(wf))
}
