package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
)

// Propeller's jobs (POST /jobs, GET /jobs, GET /jobs/{id},
// POST /jobs/{id}/start|stop) and the tasks of Propeller's POST /workflows
// are jetprop workflows: each task a step. A job is created held and runs
// once started; Propeller's workflow runs at once.

// Sources of workflows created through Propeller's API (engine.Workflow.Source).
const (
	SourceJob      = "job"
	SourceWorkflow = "workflow"
)

// Propeller's execution modes of a job.
const (
	ExecutionParallel     = "parallel"
	ExecutionSequential   = "sequential"
	ExecutionConfigurable = "configurable" // each task after its depends_on
)

// InlineArtifactName is the catalog name under which modules sent inline
// in a job's or Propeller workflow's tasks are stored, tagged with their
// sha256 hex digest; the steps name the module by its digest.
const InlineArtifactName = "propeller-inline"

// Workflow names of Propeller's requests that have none.
const (
	propellerJobName      = "job"
	propellerWorkflowName = "workflow"
)

// maxStepName is the length limit of a step's name.
const maxStepName = 64

var executionModes = map[string]engine.WorkflowMode{
	"":                    engine.ModeDAG,
	ExecutionConfigurable: engine.ModeDAG,
	ExecutionParallel:     engine.ModeParallel,
	ExecutionSequential:   engine.ModeSequential,
}

func (a *api) createJob(w http.ResponseWriter, r *http.Request) {
	var req JobRequest
	if err := a.decodeBody(w, r, hintStepModules, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	mode, ok := executionModes[req.ExecutionMode]
	if !ok {
		a.fail(w, r, badRequest("execution_mode %q: want parallel, sequential or configurable", req.ExecutionMode))
		return
	}
	key, err := idempotencyKey(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	opts := service.WorkflowOptions{Held: true, Source: SourceJob, Key: key}
	wf, replayed, err := a.createPropeller(r.Context(), cmp.Or(req.Name, propellerJobName), mode, req.Tasks, opts)
	a.created(w, r, "/jobs/", wf.ID, replayed, JobFrom(wf), err)
}

// listJobs pages through the workflows created by POST /jobs.
func (a *api) listJobs(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status, err := statusFilter(r, slices.Sorted(maps.Keys(jobStatuses)))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	all, _ := a.svc.ListWorkflows(0, 0)
	jobs := slices.DeleteFunc(all, func(wf engine.Workflow) bool {
		return wf.Source != SourceJob || status != "" && jobPropellerState(wf) != jobStatuses[status]
	})
	out := JobList{Offset: p.offset, Limit: p.limit, Total: len(jobs), Jobs: []Job{}}
	start := min(p.offset, len(jobs))
	for _, wf := range jobs[start : start+min(p.limit, len(jobs)-start)] { // no offset+limit: it may overflow
		out.Jobs = append(out.Jobs, JobFrom(wf))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getJob(w http.ResponseWriter, r *http.Request) {
	wf, err := a.job(r.PathValue("id"))
	a.answerJob(w, r, wf, "", err)
}

// startJob releases a held job; starting it again changes nothing.
func (a *api) startJob(w http.ResponseWriter, r *http.Request) {
	wf, err := a.job(r.PathValue("id"))
	if err == nil {
		wf, err = a.svc.StartWorkflow(r.Context(), wf.ID)
	}
	a.answerJob(w, r, wf, "job started", err)
}

// stopJob cancels a job: tasks not started are skipped, running ones stopped.
func (a *api) stopJob(w http.ResponseWriter, r *http.Request) {
	wf, err := a.job(r.PathValue("id"))
	if err == nil {
		wf, err = a.svc.CancelWorkflow(r.Context(), wf.ID, "job stopped")
	}
	a.answerJob(w, r, wf, "job stopped", err)
}

// job returns the workflow id names if POST /jobs created it.
func (a *api) job(id string) (engine.Workflow, error) {
	wf, err := a.svc.GetWorkflow(id)
	if err == nil && wf.Source != SourceJob {
		err = fmt.Errorf("job %q: %w", id, domain.ErrNotFound)
	}
	return wf, err
}

func (a *api) answerJob(w http.ResponseWriter, r *http.Request, wf engine.Workflow, msg string, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	j := JobFrom(wf)
	j.Message = msg
	writeJSON(w, http.StatusOK, j)
}

// createPropeller converts Propeller's tasks to a spec, checks it, stores
// the modules sent inline and creates the workflow. Nothing is stored for
// a spec that is refused.
func (a *api) createPropeller(ctx context.Context, name string, mode engine.WorkflowMode, tasks []PropellerTaskRequest, opts service.WorkflowOptions) (engine.Workflow, bool, error) {
	spec, files, err := PropellerSpec(name, mode, tasks)
	if err != nil {
		return engine.Workflow{}, false, err
	}
	if len(files) > 0 {
		if err := spec.Validate(); err != nil {
			return engine.Workflow{}, false, err
		}
		if err := a.storeInline(ctx, files); err != nil {
			return engine.Workflow{}, false, err
		}
	}
	return a.svc.CreateWorkflowOnce(ctx, spec, opts)
}

// storeInline stores each module under InlineArtifactName:<hex digest>.
func (a *api) storeInline(ctx context.Context, files map[string][]byte) error {
	for digest, b := range files {
		hexDigest := domain.DigestHex(digest)
		row, err := a.svc.PushArtifact(ctx, InlineArtifactName, hexDigest, bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("inline module: %w", err)
		}
		if row.Digest != digest {
			return fmt.Errorf("inline module stored as %s, not %s", row.Digest, digest)
		}
	}
	return nil
}

// PropellerSpec converts the tasks of a job or of Propeller's workflow to
// a workflow spec. Each task becomes a step named by the task's id when
// that is a valid, unused step name, else by its name (the export) made
// valid and unique with a "-2", "-3" … suffix. A depends_on entry names
// another task of the request by its id, or by its name when no other task
// has that name. Modules sent inline are returned by digest, which the
// steps name; the caller stores them.
func PropellerSpec(name string, mode engine.WorkflowMode, tasks []PropellerTaskRequest) (engine.WorkflowSpec, map[string][]byte, error) {
	if len(tasks) == 0 {
		return engine.WorkflowSpec{}, nil, badRequest("tasks: at least one task is required")
	}
	names := stepNames(tasks)
	refs, err := taskRefs(tasks, names)
	if err != nil {
		return engine.WorkflowSpec{}, nil, err
	}
	spec := engine.WorkflowSpec{Name: name, Mode: mode, Steps: make([]engine.StepSpec, len(tasks))}
	files := map[string][]byte{}
	for i, t := range tasks {
		if spec.Steps[i], err = t.step(names[i], refs, files); err != nil {
			return engine.WorkflowSpec{}, nil, badRequest("%s: %v", taskLabel(i, t), err)
		}
	}
	return spec, files, nil
}

func taskLabel(i int, t PropellerTaskRequest) string {
	if label := cmp.Or(t.ID, t.Name); label != "" {
		return fmt.Sprintf("task %d (%q)", i+1, label)
	}
	return fmt.Sprintf("task %d", i+1)
}

// stepNames gives each task a unique step name: first the tasks whose id
// is one, then the others from their names.
func stepNames(tasks []PropellerTaskRequest) []string {
	names := make([]string, len(tasks))
	used := map[string]bool{}
	for i, t := range tasks {
		if t.ID != "" && stepName(t.ID) == t.ID && !used[t.ID] {
			names[i], used[t.ID] = t.ID, true
		}
	}
	for i, t := range tasks {
		if names[i] == "" {
			names[i] = uniqueName(cmp.Or(stepName(t.Name), "task"), used)
			used[names[i]] = true
		}
	}
	return names
}

// stepName keeps letters, digits, '-' and '_' (the others become '_') and
// the first maxStepName bytes.
func stepName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b[:min(len(b), maxStepName)])
}

func uniqueName(base string, used map[string]bool) string {
	name := base
	for n := 2; used[name]; n++ {
		suffix := "-" + strconv.Itoa(n)
		name = base[:min(len(base), maxStepName-len(suffix))] + suffix
	}
	return name
}

// taskRefs maps what a depends_on may say (a task's id, or a name no other
// task has) to step names; a name several tasks share maps to "".
func taskRefs(tasks []PropellerTaskRequest, names []string) (map[string]string, error) {
	byID := map[string]string{}
	byName := map[string]string{}
	for i, t := range tasks {
		if t.ID != "" {
			if _, dup := byID[t.ID]; dup {
				return nil, badRequest("tasks: two tasks have the id %q", t.ID)
			}
			byID[t.ID] = names[i]
		}
		if _, seen := byName[t.Name]; seen {
			byName[t.Name] = ""
		} else {
			byName[t.Name] = names[i]
		}
	}
	for n, step := range byName {
		if _, isID := byID[n]; !isID {
			byID[n] = step
		}
	}
	return byID, nil
}

// step checks what the engine does not and returns the task's step; an
// inline module is added to files. Its errors are the client's mistakes.
func (t PropellerTaskRequest) step(name string, refs map[string]string, files map[string][]byte) (engine.StepSpec, error) {
	if err := t.check(); err != nil {
		return engine.StepSpec{}, err
	}
	deps, err := t.deps(refs)
	if err != nil {
		return engine.StepSpec{}, err
	}
	st := engine.StepSpec{
		Name: name, Module: cmp.Or(t.ImageURL, t.WasmHTTPURL), Function: t.Name,
		Inputs: engine.Inputs(t.Inputs), Env: t.Env, DependsOn: deps, RunIf: t.RunIf,
		Placement: engine.StepPlacement{Device: t.PropletID, Broadcast: t.Broadcast},
	}
	if len(t.File) > 0 {
		st.Module = domain.DigestOf(t.File)
		files[st.Module] = t.File
	}
	if t.TimeoutMS != 0 {
		st.Timeout = (time.Duration(t.TimeoutMS) * time.Millisecond).String()
	}
	return st, nil
}

func (t PropellerTaskRequest) check() error {
	modules := 0
	for _, set := range []bool{len(t.File) > 0, t.ImageURL != "", t.WasmHTTPURL != ""} {
		if set {
			modules++
		}
	}
	switch {
	case strings.TrimSpace(t.Name) == "":
		return fmt.Errorf("name (the function to call) is required")
	case t.Kind != "" && t.Kind != "standard":
		return fmt.Errorf("kind %q is not supported (only \"standard\")", t.Kind)
	case modules > 1:
		return fmt.Errorf("give one of file, image_url and wasm_http_url")
	case t.Daemon:
		return fmt.Errorf("daemon tasks cannot be part of a job or workflow: a step must end")
	case len(t.CLIArgs) > 0:
		return fmt.Errorf("cli_args are not supported in jobs and workflows (pass inputs or env)")
	case t.Encrypted || t.KBSResourcePath != "":
		return fmt.Errorf("encrypted workloads are not supported")
	case t.Schedule != "" || t.IsRecurring || t.Timezone != "":
		return fmt.Errorf("a task of a job or workflow has no schedule of its own (give a workflow spec a cron)")
	case t.HalStoragePath != nil && *t.HalStoragePath != "":
		return fmt.Errorf("hal_storage_path: HAL storage is not supported")
	case len(t.Metadata) > 0:
		return fmt.Errorf("metadata is not supported on the tasks of a job or workflow")
	case t.Priority < 0 || t.Priority > 100:
		return fmt.Errorf("priority must be between 0 and 100, got %d", t.Priority)
	}
	if t.PropletID != "" {
		return events.ValidateID(t.PropletID)
	}
	return nil
}

func (t PropellerTaskRequest) deps(refs map[string]string) ([]string, error) {
	deps := make([]string, 0, len(t.DependsOn))
	for _, d := range t.DependsOn {
		step, ok := refs[d]
		switch {
		case !ok:
			return nil, fmt.Errorf("depends_on %q: no task of this request has this id or name", d)
		case step == "":
			return nil, fmt.Errorf("depends_on %q: several tasks have this name; give the tasks ids and depend on those", d)
		}
		deps = append(deps, step)
	}
	return deps, nil
}

// PropellerTasks returns the workflow's steps as Propeller's tasks.
func PropellerTasks(w engine.Workflow) []PropellerTask {
	ids := make(map[string]string, len(w.Spec.Steps))
	for _, spec := range w.Spec.Steps {
		ids[spec.Name] = StepTaskAlias(w.ID, spec.Name)
	}
	tasks := make([]PropellerTask, 0, len(w.Spec.Steps))
	for _, spec := range w.Spec.Steps {
		st, _ := w.Step(spec.Name)
		tasks = append(tasks, propellerTask(w, spec, st, ids))
	}
	return tasks
}

func propellerTask(w engine.Workflow, spec engine.StepSpec, st engine.Step, ids map[string]string) PropellerTask {
	t := PropellerTask{
		ID: ids[spec.Name], AttemptTaskID: st.TaskID, Step: spec.Name, Name: spec.Function, Kind: "standard",
		State: stepPropellerState(st.State), Status: st.State.String(),
		ImageURL: spec.Module, Inputs: spec.Inputs, CLIArgs: []string{}, Env: spec.Env,
		PropletID: spec.Placement.Device, RunIf: spec.RunIf,
		Results: st.Result, Error: st.Error, Attempt: st.Attempt,
		StartTime: st.StartedAt, FinishTime: st.FinishedAt, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
	}
	for _, d := range spec.DependsOn {
		t.DependsOn = append(t.DependsOn, ids[d])
	}
	if w.Source == SourceJob {
		t.JobID = w.ID
	} else {
		t.WorkflowID = w.ID
	}
	return t
}

// stepPropellerState maps a step's state onto Propeller's task states; a
// step waiting to be tried again is pending.
func stepPropellerState(s engine.StepState) int {
	switch s {
	case engine.StepRunning:
		return 2
	case engine.StepCompleted:
		return 3
	case engine.StepFailed:
		return 4
	case engine.StepSkipped:
		return 5
	}
	return 0
}

// JobFrom returns a workflow as Propeller shows a job.
func JobFrom(w engine.Workflow) Job {
	j := Job{
		JobID: w.ID, Name: w.Spec.Name, State: jobPropellerState(w), Status: w.State.String(),
		Held: w.Held, ExecutionMode: executionMode(w.Spec.EffectiveMode()), Tasks: PropellerTasks(w),
		FinishTime: w.FinishedAt, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, Seq: w.Seq,
	}
	for _, st := range w.Steps {
		if !st.StartedAt.IsZero() && (j.StartTime.IsZero() || st.StartedAt.Before(j.StartTime)) {
			j.StartTime = st.StartedAt
		}
	}
	return j
}

func jobPropellerState(w engine.Workflow) int {
	switch w.State {
	case engine.WorkflowCompleted:
		return 3
	case engine.WorkflowFailed, engine.WorkflowTimedOut:
		return 4
	case engine.WorkflowCancelled:
		return 6
	}
	begun := slices.ContainsFunc(w.Steps, func(s engine.Step) bool { return s.Attempt > 0 || s.State != engine.StepPending })
	if w.Held || !begun {
		return 0
	}
	return 2
}

func executionMode(m engine.WorkflowMode) string {
	switch m {
	case engine.ModeParallel:
		return ExecutionParallel
	case engine.ModeSequential:
		return ExecutionSequential
	}
	return ExecutionConfigurable
}
