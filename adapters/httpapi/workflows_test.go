package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
)

// remoteModule is a module reference the engine accepts without storing it.
const remoteModule = "registry.example:5000/add:1"

func twoSteps(name string) engine.WorkflowSpec {
	return engine.WorkflowSpec{Name: name, Steps: []engine.StepSpec{
		{Name: "a", Module: remoteModule, Function: "add", Inputs: []string{"1", "2"}},
		{Name: "b", Module: remoteModule, Function: "add", Inputs: []string{"${steps.a.result}", "3"}, DependsOn: []string{"a"}},
	}}
}

func createWorkflow(t *testing.T, s *apitest.Stack, body any) httpapi.Workflow {
	t.Helper()
	status, b := callJSON(t, http.MethodPost, s.URL+"/workflows", body)
	wantStatus(t, status, b, http.StatusCreated)
	return decode[httpapi.Workflow](t, b)
}

// wantNothingStored fails if a workflow event was stored.
func wantNothingStored(t *testing.T, s *apitest.Stack) {
	t.Helper()
	seq, err := s.Store.LastSeq(t.Context(), events.KindWorkflow)
	if err != nil || seq != 0 {
		t.Fatalf("WORKFLOWS stream last seq %d (%v), want nothing stored", seq, err)
	}
	if _, total := s.Service.ListWorkflows(0, 0); total != 0 {
		t.Fatalf("%d workflows listed, want none", total)
	}
}

func TestAPI_Workflows_CreateGetListCancel(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	spec, _ := json.Marshal(twoSteps("pipeline"))
	status, body, location := postLocation(t, s.URL+"/workflows", string(spec))
	wantStatus(t, status, body, http.StatusCreated)
	w := decode[httpapi.Workflow](t, body)
	if location != "/workflows/"+w.ID {
		t.Fatalf("location %q", location)
	}
	if w.ID == "" || w.State != engine.WorkflowRunning || w.Held || w.Source != "" || len(w.Steps) != 2 || w.Spec.Name != "pipeline" || w.Tasks != nil {
		t.Fatalf("created %+v", w)
	}

	status, body = call(t, http.MethodGet, s.URL+"/workflows/"+w.ID, "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if got := decode[httpapi.Workflow](t, body); got.ID != w.ID || got.Seq != w.Seq || got.Spec.Steps[1].DependsOn[0] != "a" {
		t.Fatalf("get %+v", got)
	}

	second := createWorkflow(t, s, twoSteps("second"))
	status, body = call(t, http.MethodGet, s.URL+"/workflows?offset=0&limit=1", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	page := decode[httpapi.WorkflowList](t, body)
	if page.Total != 2 || page.Limit != 1 || len(page.Workflows) != 1 || page.Workflows[0].ID != second.ID {
		t.Fatalf("list %+v", page)
	}
	status, body = call(t, http.MethodGet, s.URL+"/workflows?limit=0", "", nil)
	wantStatus(t, status, body, http.StatusBadRequest)

	status, body = callJSON(t, http.MethodPost, s.URL+"/workflows/"+w.ID+"/cancel", httpapi.CancelRequest{Reason: "enough"})
	wantStatus(t, status, body, http.StatusOK)
	if got := decode[httpapi.Workflow](t, body); got.State != engine.WorkflowCancelled || got.Reason != "enough" || got.FinishedAt.IsZero() {
		t.Fatalf("cancelled %+v", got)
	}
	status, body = callJSON(t, http.MethodPost, s.URL+"/workflows/"+second.ID+"/cancel", nil)
	wantStatus(t, status, body, http.StatusOK)
	if got := decode[httpapi.Workflow](t, body); got.State != engine.WorkflowCancelled || got.Reason == "" {
		t.Fatalf("cancelled without a body %+v", got)
	}
	status, body = callJSON(t, http.MethodPost, s.URL+"/workflows/"+second.ID+"/cancel", `{"reason":"x","why":"y"}`)
	wantStatus(t, status, body, http.StatusBadRequest)
}

func TestAPI_Workflows_Refused(t *testing.T) {
	withSteps := func(edit func(*engine.WorkflowSpec)) engine.WorkflowSpec {
		spec := twoSteps("refused")
		edit(&spec)
		return spec
	}
	tests := []struct {
		name    string
		body    any
		wantMsg string
	}{
		{"cycle", withSteps(func(s *engine.WorkflowSpec) { s.Steps[0].DependsOn = []string{"b"} }), "cycle: a → b → a"},
		{"unknown dependency", withSteps(func(s *engine.WorkflowSpec) { s.Steps[1].DependsOn = []string{"nope"} }), `depends_on unknown step "nope"`},
		{"duplicate names", withSteps(func(s *engine.WorkflowSpec) { s.Steps[1].Name = "a"; s.Steps[1].DependsOn = nil }), `duplicate step name "a"`},
		{"bad cron", withSteps(func(s *engine.WorkflowSpec) { s.Cron = "61 * * * *" }), "cron"},
		{"unknown module", withSteps(func(s *engine.WorkflowSpec) { s.Steps[0].Module = "nosuch:1" }), "image nosuch:1 is not in the catalog"},
		{"negative timeout", withSteps(func(s *engine.WorkflowSpec) { s.Steps[0].Timeout = "-1s" }), "is negative"},
		{"no steps", `{"name":"x","steps":[]}`, "at least one step"},
		{"unknown field", `{"name":"x","steps":[{"name":"a","module":"` + remoteModule + `","dependson":["b"]}]}`, "dependson"},
		{"steps and tasks", `{"steps":[],"tasks":[]}`, "not both"},
		{"neither", `{"name":"x"}`, `"steps"`},
		{"not JSON", `{"name":`, "invalid JSON"},
		{"empty body", "", "empty body"},
		{"two values", `{"name":"x","steps":[]} {}`, "after the JSON body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := apitest.Start(t, apitest.Config{})
			status, body := callJSON(t, http.MethodPost, s.URL+"/workflows", tt.body)
			wantStatus(t, status, body, http.StatusBadRequest)
			if msg := decode[httpapi.Error](t, body).Error; !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("error %q, want it to contain %q", msg, tt.wantMsg)
			}
			wantNothingStored(t, s)
		})
	}
}

func TestAPI_Workflows_TooLarge(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	spec := twoSteps("big")
	spec.Steps[0].Env = map[string]string{"PAD": strings.Repeat("x", httpapi.MaxSpecBody)}
	status, body := callJSON(t, http.MethodPost, s.URL+"/workflows", spec)
	wantStatus(t, status, body, http.StatusRequestEntityTooLarge)
	wantNothingStored(t, s)

	small := apitest.Start(t, apitest.Config{Options: []httpapi.Option{httpapi.WithMaxBody(512)}})
	spec.Steps[0].Env = map[string]string{"PAD": strings.Repeat("x", 600)}
	status, body = callJSON(t, http.MethodPost, small.URL+"/workflows", spec)
	wantStatus(t, status, body, http.StatusRequestEntityTooLarge)
	wantNothingStored(t, small)
}

func TestAPI_Workflows_NotFound(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/workflows/nosuch"},
		{http.MethodGet, "/workflows/nosuch?after=1&wait=1s"},
		{http.MethodPost, "/workflows/nosuch/cancel"},
	} {
		status, body := call(t, r.method, s.URL+r.path, "", nil)
		wantStatus(t, status, body, http.StatusNotFound)
	}
}

func TestAPI_Workflows_Watch(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	w := createWorkflow(t, s, twoSteps("watched"))
	url := func(after uint64, wait string) string {
		return s.URL + "/workflows/" + w.ID + "?after=" + jsonNumber(after) + "&wait=" + wait
	}

	t.Run("times out", func(t *testing.T) {
		began := time.Now()
		status, body := call(t, http.MethodGet, url(w.Seq, "300ms"), "", nil)
		wantStatus(t, status, body, http.StatusOK)
		if got := decode[httpapi.Workflow](t, body); got.Seq != w.Seq || time.Since(began) < 300*time.Millisecond {
			t.Fatalf("answered after %v with seq %d, want the same seq after the wait", time.Since(began), got.Seq)
		}
	})
	t.Run("bad query", func(t *testing.T) {
		for _, q := range []string{"?after=x&wait=1s", "?after=-1", "?after=1&wait=soon", "?after=1&wait=-1s"} {
			status, body := call(t, http.MethodGet, s.URL+"/workflows/"+w.ID+q, "", nil)
			wantStatus(t, status, body, http.StatusBadRequest)
		}
	})
	t.Run("returns on change", func(t *testing.T) {
		type answer struct {
			w       httpapi.Workflow
			elapsed time.Duration
		}
		done := make(chan answer, 1)
		began := time.Now()
		go func() {
			_, body := call(t, http.MethodGet, url(w.Seq, "30s"), "", nil)
			var got httpapi.Workflow
			_ = json.Unmarshal(body, &got)
			done <- answer{got, time.Since(began)}
		}()
		// Not a wait for a condition: a watch that begins after the cancel
		// answers at once and passes too; the pause makes the wake-up on a
		// change (the path this subtest is for) the likely one.
		time.Sleep(100 * time.Millisecond)
		if _, err := s.Service.CancelWorkflow(t.Context(), w.ID, "changed"); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-done:
			if a.w.Seq <= w.Seq || a.w.State != engine.WorkflowCancelled || a.elapsed > 10*time.Second {
				t.Fatalf("answer %+v after %v", a.w, a.elapsed)
			}
		case <-time.After(apitest.Timeout):
			t.Fatal("watch did not return on the change")
		}
	})
	t.Run("ended returns at once", func(t *testing.T) {
		cur, err := s.Service.GetWorkflow(w.ID)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		began := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url(cur.Seq+10, "30s"), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || time.Since(began) > 3*time.Second {
			t.Fatalf("status %d after %v", resp.StatusCode, time.Since(began))
		}
	})
}

func jsonNumber(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestAPI_PropellerWorkflow(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	body := `{"tasks":[
		{"id":"fetch","name":"add","image_url":"` + remoteModule + `","inputs":[1,2],"state":0,"start_time":"0001-01-01T00:00:00Z"},
		{"id":"sum","name":"add","image_url":"` + remoteModule + `","inputs":[3,4],"depends_on":["fetch"],"run_if":"success","env":{"K":"v"}},
		{"name":"cleanup","image_url":"` + remoteModule + `","depends_on":["sum"],"run_if":"failure","workflow_id":"ignored"},
		{"name":"report","image_url":"` + remoteModule + `","depends_on":["cleanup","fetch"],"proplet_id":"p1"}
	]}`
	status, b, location := postLocation(t, s.URL+"/workflows", body)
	wantStatus(t, status, b, http.StatusCreated)
	w := decode[httpapi.Workflow](t, b)
	if location != "/workflows/"+w.ID {
		t.Fatalf("location %q", location)
	}
	if w.Source != httpapi.SourceWorkflow || w.Held || w.Spec.EffectiveMode() != engine.ModeDAG || len(w.Spec.Steps) != 4 {
		t.Fatalf("created %+v", w)
	}
	steps := w.Spec.Steps
	want := []struct {
		name  string
		deps  string
		runIf engine.RunIf
	}{{"fetch", "", ""}, {"sum", "fetch", "success"}, {"cleanup", "sum", "failure"}, {"report", "cleanup,fetch", ""}}
	for i, ws := range want {
		if steps[i].Name != ws.name || strings.Join(steps[i].DependsOn, ",") != ws.deps || steps[i].RunIf != ws.runIf {
			t.Fatalf("step %d: %+v, want %+v", i, steps[i], ws)
		}
	}
	if strings.Join(steps[1].Inputs, ",") != "3,4" || steps[1].Env["K"] != "v" || steps[1].Function != "add" || steps[3].Placement.Device != "p1" {
		t.Fatalf("steps %+v", steps)
	}
	if len(w.Tasks) != 4 || w.Tasks[1].ID != w.ID+"-sum-0" || w.Tasks[1].DependsOn[0] != w.ID+"-fetch-0" || w.Tasks[1].WorkflowID != w.ID ||
		w.Tasks[1].State != 0 || w.Tasks[2].RunIf != engine.RunIfFailure || w.Tasks[3].Step != "report" {
		t.Fatalf("tasks %+v", w.Tasks)
	}
}

// postLocation posts body as JSON and returns the status, the body and the
// Location header.
func postLocation(t *testing.T, url, body string) (int, []byte, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header.Get("Location")
}
