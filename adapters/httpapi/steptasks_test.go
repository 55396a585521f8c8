package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/replay"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestAPI_PropellerWorkflow_CreateThenStartRoots replays Propeller's flow:
// POST /workflows, then POST /tasks/{id}/start for each root, then GET
// /tasks/{id} and /results of every id the answer gave.
func TestAPI_PropellerWorkflow_CreateThenStartRoots(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	runWorkflows(t, s)
	s.Announce(t, "p1")
	s.Respond(t, func(task engine.Task) (engine.RecordResult, bool) {
		return engine.RecordResult{Result: json.RawMessage(`"` + strings.Join(task.Inputs, "+") + `"`)}, true
	})
	file := base64.StdEncoding.EncodeToString(wasmfixtures.Add())
	body := fmt.Sprintf(`{"tasks":[
		{"name":"add","file":%q,"inputs":[1,2]},
		{"name":"add","file":%q,"inputs":[3,4],"depends_on":["first"],"id":"second"},
		{"id":"first","name":"add","file":%q,"inputs":[5,6]}]}`, file, file, file)
	status, b := callJSON(t, http.MethodPost, s.URL+"/workflows", body)
	wantStatus(t, status, b, http.StatusCreated)
	w := decode[httpapi.Workflow](t, b)
	if len(w.Tasks) != 3 || w.Tasks[1].DependsOn[0] != w.Tasks[2].ID {
		t.Fatalf("tasks %+v", w.Tasks)
	}
	for _, root := range []httpapi.PropellerTask{w.Tasks[0], w.Tasks[2]} {
		for range 2 { // a start is accepted, and again
			status, b = call(t, http.MethodPost, s.URL+"/tasks/"+root.ID+"/start", "", nil)
			wantStatus(t, status, b, http.StatusOK)
			if got := decode[httpapi.PropellerTask](t, b); got.ID != root.ID || got.WorkflowID != w.ID {
				t.Fatalf("start %s: %+v", root.ID, got)
			}
		}
	}
	for _, task := range w.Tasks {
		natstest.CheckFor(t, apitest.Timeout, func() error {
			status, b := call(t, http.MethodGet, s.URL+"/tasks/"+task.ID, "", nil)
			got := decode[httpapi.PropellerTask](t, b)
			if status != http.StatusOK || got.ID != task.ID || got.State != 3 || got.AttemptTaskID == "" {
				return fmt.Errorf("GET /tasks/%s: %d %s", task.ID, status, b)
			}
			return nil
		})
		status, b = call(t, http.MethodGet, s.URL+"/tasks/"+task.ID+"/results", "", nil)
		wantStatus(t, status, b, http.StatusOK)
		want := `"` + strings.Join(task.Inputs, "+") + `"`
		if got := decode[httpapi.Results](t, b); got.ID != task.ID || string(got.Results) != want || got.State != 3 {
			t.Fatalf("results of %s: %s, want %s", task.ID, b, want)
		}
		status, b = call(t, http.MethodPost, s.URL+"/tasks/"+task.ID+"/stop", "", nil)
		wantStatus(t, status, b, http.StatusConflict) // completed: nothing to stop
	}
	for _, id := range []string{w.ID + "-nosuch-0", w.ID + "-first-1x", w.ID + "-first", "x-first-0"} {
		status, b = call(t, http.MethodGet, s.URL+"/tasks/"+id, "", nil)
		wantStatus(t, status, b, http.StatusNotFound)
	}
}

// runWorkflows runs a workflow manager over the stack until cleanup, as
// the server does.
func runWorkflows(t *testing.T, s *apitest.Stack) {
	pm := service.NewWorkflowManager(s.Service, replay.NewTimers(), nil)
	s.Tasks.Observe(pm.ObserveTask)
	s.Workflows.Observe(pm.ObserveWorkflow)
	s.Devices.Observe(pm.ObserveDevice)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = pm.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// TestAPI_Jobs_TaskIDsResolve: the ids of a job's tasks answer GET
// /tasks/{id} before the job starts; a start of one is refused while the
// job is held (the job starts as a whole).
func TestAPI_Jobs_TaskIDsResolve(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	status, b := callJSON(t, http.MethodPost, s.URL+"/jobs", jobBody("configurable"))
	wantStatus(t, status, b, http.StatusCreated)
	job := decode[httpapi.Job](t, b)
	for _, task := range job.Tasks {
		status, b = call(t, http.MethodGet, s.URL+"/tasks/"+task.ID, "", nil)
		wantStatus(t, status, b, http.StatusOK)
		if got := decode[httpapi.PropellerTask](t, b); got.ID != task.ID || got.JobID != job.JobID || got.State != 0 || got.AttemptTaskID != "" {
			t.Fatalf("GET /tasks/%s: %s", task.ID, b)
		}
		status, b = call(t, http.MethodPost, s.URL+"/tasks/"+task.ID+"/start", "", nil)
		wantStatus(t, status, b, http.StatusConflict)
		if !strings.Contains(string(b), "/jobs/"+job.JobID+"/start") {
			t.Fatalf("start of a held job's task: %s", b)
		}
	}
}

// TestAPI_StepAlias_UpdateDeleteRefused: PUT /tasks/{alias}, its upload
// and DELETE /tasks/{alias} are 409 with the reason (a workflow's steps
// are fixed at its create) and what to do instead, for a held job's step
// and a running workflow's; nothing changes. An id that is no alias stays
// 404.
func TestAPI_StepAlias_UpdateDeleteRefused(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	status, b := callJSON(t, http.MethodPost, s.URL+"/jobs", jobBody("configurable"))
	wantStatus(t, status, b, http.StatusCreated)
	job := decode[httpapi.Job](t, b)
	status, b = callJSON(t, http.MethodPost, s.URL+"/workflows", fmt.Sprintf(`{"tasks":[{"id":"a","name":"add","file":%q,"inputs":[1,2]}]}`,
		base64.StdEncoding.EncodeToString(wasmfixtures.Add())))
	wantStatus(t, status, b, http.StatusCreated)
	wf := decode[httpapi.Workflow](t, b)
	for _, c := range []struct {
		alias, instead string
	}{
		{job.Tasks[0].ID, "create the job again"},
		{wf.Tasks[0].ID, "POST /workflows/" + wf.ID + "/cancel"},
	} {
		for _, req := range []struct {
			method, path, ctype, body, verb string
		}{
			{http.MethodPut, "", "application/json", `{"inputs":["7","8"]}`, "updated"},
			{http.MethodPut, "/upload", "application/wasm", string(wasmfixtures.Add()), "updated"},
			{http.MethodDelete, "", "", "", "deleted"},
		} {
			status, b := call(t, req.method, s.URL+"/tasks/"+c.alias+req.path, req.ctype, strings.NewReader(req.body))
			wantStatus(t, status, b, http.StatusConflict)
			var e struct{ Error string }
			if json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, "steps are fixed") ||
				!strings.Contains(e.Error, "cannot be "+req.verb) || !strings.Contains(e.Error, c.instead) {
				t.Fatalf("%s /tasks/%s%s: %s", req.method, c.alias, req.path, b)
			}
		}
		status, b = call(t, http.MethodGet, s.URL+"/tasks/"+c.alias, "", nil)
		wantStatus(t, status, b, http.StatusOK)
		if got := decode[httpapi.PropellerTask](t, b); strings.Join(got.Inputs, ",") == "7,8" {
			t.Fatalf("the refused update changed the step: %s", b)
		}
	}
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		status, b = call(t, method, s.URL+"/tasks/"+wf.ID+"-nosuch-0", "application/json", strings.NewReader(`{"inputs":["1"]}`))
		wantStatus(t, status, b, http.StatusNotFound)
	}
}
