package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// jobBody is a job as Propeller's SDK sends it: ids chosen by the client,
// depends_on naming them.
func jobBody(mode string) string {
	return `{"name":"etl","execution_mode":"` + mode + `","tasks":[
		{"id":"extract","name":"add","image_url":"` + remoteModule + `","inputs":[1,2],"cli_args":null,"daemon":false,"created_at":"0001-01-01T00:00:00Z"},
		{"id":"load","name":"add","image_url":"` + remoteModule + `","inputs":[3,4],"depends_on":["extract"]}
	]}`
}

func TestAPI_Jobs_CreateStartStop(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	status, body, location := postLocation(t, s.URL+"/jobs", jobBody("configurable"))
	wantStatus(t, status, body, http.StatusCreated)
	job := decode[httpapi.Job](t, body)
	if location != "/jobs/"+job.JobID || job.JobID == "" || job.Name != "etl" || !job.Held || job.State != 0 ||
		job.Status != "running" || job.ExecutionMode != "configurable" || job.Message != "" {
		t.Fatalf("created %+v at %q", job, location)
	}
	if len(job.Tasks) != 2 || job.Tasks[0].ID != job.JobID+"-extract-0" || job.Tasks[1].Step != "load" || job.Tasks[1].DependsOn[0] != job.Tasks[0].ID ||
		job.Tasks[1].JobID != job.JobID || job.Tasks[1].WorkflowID != "" || job.Tasks[0].Name != "add" || job.Tasks[0].CLIArgs == nil {
		t.Fatalf("tasks %+v", job.Tasks)
	}

	w, err := s.Service.GetWorkflow(job.JobID)
	if err != nil || !w.Held || w.Source != httpapi.SourceJob || w.Spec.EffectiveMode() != engine.ModeDAG {
		t.Fatalf("workflow %+v %v", w, err)
	}

	status, body = call(t, http.MethodGet, s.URL+"/jobs/"+job.JobID, "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if got := decode[httpapi.Job](t, body); got.JobID != job.JobID || !got.Held || len(got.Tasks) != 2 {
		t.Fatalf("get %+v", got)
	}

	other := createWorkflow(t, s, twoSteps("not-a-job"))
	status, body = call(t, http.MethodGet, s.URL+"/jobs", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if page := decode[httpapi.JobList](t, body); page.Total != 1 || len(page.Jobs) != 1 || page.Jobs[0].JobID != job.JobID || page.Limit != httpapi.DefaultLimit {
		t.Fatalf("list %+v", page)
	}
	status, body = call(t, http.MethodGet, s.URL+"/jobs?offset=5", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if page := decode[httpapi.JobList](t, body); page.Total != 1 || len(page.Jobs) != 0 {
		t.Fatalf("list past the end %+v", page)
	}
	for _, path := range []string{"/jobs/" + other.ID, "/jobs/nosuch"} {
		status, body = call(t, http.MethodGet, s.URL+path, "", nil)
		wantStatus(t, status, body, http.StatusNotFound)
		status, body = call(t, http.MethodPost, s.URL+path+"/start", "", nil)
		wantStatus(t, status, body, http.StatusNotFound)
	}

	status, body = call(t, http.MethodPost, s.URL+"/jobs/"+job.JobID+"/start", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if got := decode[httpapi.Job](t, body); got.Held || got.Message != "job started" || got.JobID != job.JobID {
		t.Fatalf("started %+v", got)
	}
	if w, _ := s.Service.GetWorkflow(job.JobID); w.Held {
		t.Fatalf("still held after start: %+v", w)
	}

	status, body = call(t, http.MethodPost, s.URL+"/jobs/"+job.JobID+"/stop", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if got := decode[httpapi.Job](t, body); got.Status != "cancelled" || got.State != 6 || got.Message != "job stopped" || got.FinishTime.IsZero() {
		t.Fatalf("stopped %+v", got)
	}
	if w, _ := s.Service.GetWorkflow(job.JobID); w.State != engine.WorkflowCancelled {
		t.Fatalf("workflow after stop %+v", w)
	}
}

func TestAPI_Jobs_ExecutionModes(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	for mode, want := range map[string]engine.WorkflowMode{"": engine.ModeDAG, "configurable": engine.ModeDAG, "sequential": engine.ModeSequential} {
		status, body := callJSON(t, http.MethodPost, s.URL+"/jobs", jobBody(mode))
		wantStatus(t, status, body, http.StatusCreated)
		job := decode[httpapi.Job](t, body)
		if w, _ := s.Service.GetWorkflow(job.JobID); w.Spec.EffectiveMode() != want {
			t.Fatalf("mode %q: workflow mode %q", mode, w.Spec.EffectiveMode())
		}
	}
	parallel := `{"name":"p","execution_mode":"parallel","tasks":[{"name":"add","image_url":"` + remoteModule + `"},{"name":"add","image_url":"` + remoteModule + `"}]}`
	status, body := callJSON(t, http.MethodPost, s.URL+"/jobs", parallel)
	wantStatus(t, status, body, http.StatusCreated)
	if job := decode[httpapi.Job](t, body); job.ExecutionMode != "parallel" || job.Tasks[0].Step != "add" || job.Tasks[1].ID != job.JobID+"-add-2-0" {
		t.Fatalf("parallel %+v", job)
	}
}

func TestAPI_Jobs_Refused(t *testing.T) {
	task := func(extra string) string {
		return `{"id":"a","name":"add","image_url":"` + remoteModule + `"` + extra + `}`
	}
	job := func(tasks ...string) string { return `{"name":"j","tasks":[` + strings.Join(tasks, ",") + `]}` }
	tests := []struct {
		name    string
		body    string
		wantMsg string
	}{
		{"no tasks", `{"name":"j","tasks":[]}`, "at least one task"},
		{"bad mode", `{"name":"j","execution_mode":"fast","tasks":[` + task("") + `]}`, `execution_mode "fast"`},
		{"parallel with depends_on", `{"execution_mode":"parallel","tasks":[` + task("") + `,{"name":"b","image_url":"x/y:1","depends_on":["a"]}]}`, "parallel"},
		{"no name", job(`{"image_url":"x/y:1"}`), "name (the function to call) is required"},
		{"no module", job(`{"name":"add"}`), "module is required"},
		{"unknown module", job(`{"name":"add","image_url":"nosuch:1"}`), "image nosuch:1 is not in the catalog"},
		{"two modules", job(task(`,"wasm_http_url":"https://example.com/a.wasm"`)), "give one of"},
		{"daemon", job(task(`,"daemon":true`)), "daemon"},
		{"cli args", job(task(`,"cli_args":["-v"]`)), "cli_args"},
		{"encrypted", job(task(`,"encrypted":true`)), "encrypted"},
		{"schedule", job(task(`,"schedule":"* * * * *"`)), "schedule"},
		{"federated", job(task(`,"kind":"federated"`)), "kind"},
		{"priority", job(task(`,"priority":101`)), "priority"},
		{"bad run_if", job(task(``), `{"id":"b","name":"add","image_url":"x/y:1","depends_on":["a"],"run_if":"sometimes"}`), "run_if"},
		{"negative timeout", job(task(`,"timeout_ms":-5`)), "negative"},
		{"unknown field", job(task(`,"dependson":["b"]`)), "dependson"},
		{"duplicate ids", job(task(""), task("")), `two tasks have the id "a"`},
		{"unknown dependency", job(task(`,"depends_on":["zz"]`)), `depends_on "zz"`},
		{"ambiguous name", job(`{"name":"add","image_url":"x/y:1"}`, `{"name":"add","image_url":"x/y:1"}`, `{"name":"sum","image_url":"x/y:1","depends_on":["add"]}`), "several tasks"},
		{"cycle", job(task(`,"depends_on":["b"]`), `{"id":"b","name":"add","image_url":"x/y:1","depends_on":["a"]}`), "cycle: a → b → a"},
		{"not wasm", job(`{"name":"add","file":"` + b64([]byte("not a module")) + `"}`), "not a wasm module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := apitest.Start(t, apitest.Config{})
			status, body := callJSON(t, http.MethodPost, s.URL+"/jobs", tt.body)
			wantStatus(t, status, body, http.StatusBadRequest)
			msg := decode[httpapi.Error](t, body).Error
			t.Log(msg)
			if !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("error %q, want it to contain %q", msg, tt.wantMsg)
			}
			wantNothingStored(t, s)
		})
	}
}

func b64(b []byte) string {
	s, _ := json.Marshal(b)
	return strings.Trim(string(s), `"`)
}

func TestAPI_Jobs_InlineModule(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	mod := wasmfixtures.Add()
	digest := domain.DigestOf(mod)
	body := `{"name":"inline","tasks":[{"id":"one","name":"add","file":"` + b64(mod) + `"},{"id":"two","name":"add","file":"` + b64(mod) + `","depends_on":["one"]}]}`
	status, b := callJSON(t, http.MethodPost, s.URL+"/jobs", body)
	wantStatus(t, status, b, http.StatusCreated)
	job := decode[httpapi.Job](t, b)
	w, err := s.Service.GetWorkflow(job.JobID)
	if err != nil || w.Spec.Steps[0].Module != digest || w.Spec.Steps[1].Module != digest {
		t.Fatalf("workflow %+v %v", w, err)
	}
	row, err := s.Service.GetArtifact(t.Context(), httpapi.InlineArtifactName+":"+digest[len("sha256:"):])
	if err != nil || row.Digest != digest {
		t.Fatalf("inline artifact %+v %v", row, err)
	}
	if strings.Contains(string(b), b64(mod)) {
		t.Fatal("the answer holds the module")
	}
}

func TestAPI_Jobs_TooLarge(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Options: []httpapi.Option{httpapi.WithMaxBody(1024)}})
	status, body := callJSON(t, http.MethodPost, s.URL+"/jobs", `{"name":"big","tasks":[{"name":"add","file":"`+b64(make([]byte, 2048))+`"}]}`)
	wantStatus(t, status, body, http.StatusRequestEntityTooLarge)
	wantNothingStored(t, s)
}

func TestPropellerSpec_StepNames(t *testing.T) {
	long := strings.Repeat("f", 70)
	tests := []struct {
		name  string
		tasks []httpapi.PropellerTaskRequest
		want  []string
	}{
		{"ids", []httpapi.PropellerTaskRequest{{ID: "x", Name: "add"}, {ID: "y", Name: "add"}}, []string{"x", "y"}},
		{"names made unique", []httpapi.PropellerTaskRequest{{Name: "add"}, {Name: "add"}, {Name: "add"}}, []string{"add", "add-2", "add-3"}},
		{"invalid id falls back to the name", []httpapi.PropellerTaskRequest{{ID: "a.b", Name: "run"}}, []string{"run"}},
		{"names made valid", []httpapi.PropellerTaskRequest{{Name: "my task.v1"}}, []string{"my_task_v1"}},
		{"ids win over names", []httpapi.PropellerTaskRequest{{Name: "b"}, {ID: "b", Name: "c"}}, []string{"b-2", "b"}},
		{"long names cut", []httpapi.PropellerTaskRequest{{Name: long}, {Name: long}}, []string{long[:64], long[:62] + "-2"}},
		{
			"uuid ids", []httpapi.PropellerTaskRequest{{ID: "b1d10738-c5d7-4ff1-8f4d-b9328ce6f040", Name: "add"}},
			[]string{"b1d10738-c5d7-4ff1-8f4d-b9328ce6f040"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.tasks {
				tt.tasks[i].ImageURL = remoteModule
			}
			spec, _, err := httpapi.PropellerSpec("j", engine.ModeDAG, tt.tasks)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range spec.Steps {
				got = append(got, st.Name)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("step names %q, want %q", got, tt.want)
			}
			if err := spec.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
