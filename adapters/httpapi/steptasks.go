package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// A step's task alias names a workflow step for the task routes: the id
// POST /jobs and Propeller's POST /workflows give each task. Attempt 0
// never names a real task (attempts count from 1, engine.StepTaskID), so
// "<workflow>-<step>-0" can mean no real task and no other step's task.

// stepAliasSuffix ends every step's task alias.
const stepAliasSuffix = "-0"

// StepTaskAlias is the id a task of a job or a Propeller workflow is
// given: the step, whatever attempt it is at.
func StepTaskAlias(workflow, step string) string {
	return engine.StepTaskID(workflow, step, 0)
}

// stepAlias resolves a step's task alias: the workflow and the step's
// spec. A workflow id holds no step name, so the first split that names
// an existing workflow and one of its steps is the only one.
func (a *api) stepAlias(id string) (engine.Workflow, engine.StepSpec, bool) {
	base, ok := strings.CutSuffix(id, stepAliasSuffix)
	if !ok || len(id) > maxAliasLen {
		return engine.Workflow{}, engine.StepSpec{}, false
	}
	for i := strings.IndexByte(base, '-'); i > 0; {
		if w, err := a.svc.GetWorkflow(base[:i]); err == nil {
			for _, spec := range w.Spec.Steps {
				if spec.Name == base[i+1:] {
					return w, spec, true
				}
			}
		}
		next := strings.IndexByte(base[i+1:], '-')
		if next < 0 {
			break
		}
		i += next + 1
	}
	return engine.Workflow{}, engine.StepSpec{}, false
}

// maxAliasLen is the longest alias: the longest task id (events.ValidateID).
const maxAliasLen = 128

// stepTask is the alias's step as Propeller's task JSON, with the alias
// as its id.
func stepTask(w engine.Workflow, spec engine.StepSpec) PropellerTask {
	for _, t := range PropellerTasks(w) {
		if t.Step == spec.Name {
			return t
		}
	}
	return PropellerTask{}
}

// byAlias answers a task route for a step's task alias when id names no
// task: ok false when it is no alias either (the caller answers 404).
func (a *api) byAlias(w http.ResponseWriter, r *http.Request, id string, err error, act stepAction) bool {
	if !errors.Is(err, domain.ErrNotFound) {
		return false
	}
	wf, spec, ok := a.stepAlias(id)
	if !ok {
		return false
	}
	t := stepTask(wf, spec)
	if act != nil {
		if err := act(r.Context(), wf, t); err != nil {
			a.fail(w, r, err)
			return true
		}
		if wf, err = a.svc.GetWorkflow(wf.ID); err != nil {
			a.fail(w, r, err)
			return true
		}
		t = stepTask(wf, spec)
	}
	if strings.HasSuffix(r.URL.Path, "/results") {
		writeJSON(w, http.StatusOK, stepResults(t))
	} else {
		writeJSON(w, http.StatusOK, t)
	}
	return true
}

// stepAction acts on an alias's step before it is shown.
type stepAction func(ctx context.Context, wf engine.Workflow, t PropellerTask) error

// startStep is Propeller's start of a workflow's root task: a workflow
// created by Propeller's POST /workflows runs at once, so the start is
// accepted and changes nothing. A held job's steps start with the job.
func (a *api) startStep(_ context.Context, wf engine.Workflow, _ PropellerTask) error {
	if wf.Held {
		return fmt.Errorf("%w: task is a step of held job %s: start the job (POST /jobs/%s/start)", domain.ErrInvalidState, wf.ID, wf.ID)
	}
	return nil
}

// stopStep stops the step's current attempt.
func (a *api) stopStep(ctx context.Context, wf engine.Workflow, t PropellerTask) error {
	if t.AttemptTaskID == "" || t.Status != engine.StepRunning.String() {
		return fmt.Errorf("%w: step %s of workflow %s is %s, not running", domain.ErrInvalidState, t.Step, wf.ID, t.Status)
	}
	_, err := a.svc.StopTask(ctx, t.AttemptTaskID)
	return err
}

// updateStep, uploadStep and deleteStep refuse PUT /tasks/{alias},
// PUT /tasks/{alias}/upload and DELETE /tasks/{alias} (409): a workflow's
// steps are fixed by its spec when it is created, and the process manager
// derives every action from that spec (RATIONALE, "A step's task alias
// cannot be updated or deleted").
func (a *api) updateStep(_ context.Context, wf engine.Workflow, t PropellerTask) error {
	return stepFixed(wf, t, "updated")
}

func (a *api) deleteStep(_ context.Context, wf engine.Workflow, t PropellerTask) error {
	return stepFixed(wf, t, "deleted")
}

// stepFixed says why a step cannot be changed, and what to do instead.
func stepFixed(wf engine.Workflow, t PropellerTask, verb string) error {
	instead := fmt.Sprintf("cancel the workflow (POST /workflows/%s/cancel) and create it again", wf.ID)
	if wf.Held {
		instead = fmt.Sprintf("create the job again with the change (a held job that never starts runs nothing; POST /jobs/%s/stop ends a started one)", wf.ID)
	}
	return fmt.Errorf("%w: task %s is step %s of workflow %s, and a workflow's steps are fixed when it is created: "+
		"a step's task cannot be %s; %s", domain.ErrInvalidState, t.ID, t.Step, wf.ID, verb, instead)
}

// stepResults is GET /tasks/{alias}/results.
func stepResults(t PropellerTask) Results {
	res := t.Results
	if res == nil {
		res = []byte(`null`)
	}
	return Results{ID: t.ID, Results: res, Error: t.Error, State: t.State, Status: t.Status}
}
