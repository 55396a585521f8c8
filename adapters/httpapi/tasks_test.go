package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func TestAPI_Health(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Options: []httpapi.Option{httpapi.WithVersion("1.2.3")}})
	status, body := call(t, http.MethodGet, s.URL+"/health", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	// A healthy server answers exactly what it answered before quarantines
	// existed: no new field.
	if want := `{"status":"pass","service":"jetprop","version":"1.2.3"}` + "\n"; string(body) != want {
		t.Fatalf("health %s, want %s", body, want)
	}
}

func TestAPI_CreateTask(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	add := base64.StdEncoding.EncodeToString(wasmfixtures.Add())
	tests := []struct {
		name       string
		body       string
		want       int
		wantInputs []string
	}{
		{"inline file, inputs numbers and strings", `{"name":"add","file":"` + add + `","inputs":[10,"20",1.5]}`, http.StatusCreated, []string{"10", "20", "1.5"}},
		{"image url", `{"name":"add","image_url":"ghcr.io/jetprop/add:1"}`, http.StatusCreated, nil},
		{"no module yet", `{"name":"main"}`, http.StatusCreated, nil},
		{"as Propeller's SDK sends it", `{"name":"add","state":0,"cli_args":null,"start_time":"0001-01-01T00:00:00Z","finish_time":"0001-01-01T00:00:00Z","created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z","kind":"standard","daemon":false,"image_url":"docker.io/jetprop/add:1"}`, http.StatusCreated, nil},
		{"jetprop extras", `{"name":"add","file":"` + add + `","timeout_ms":5000,"memory_mib":16,"stdin":"aGk=","env":{"A":"1"},"proplet_id":"p1"}`, http.StatusCreated, nil},
		{"bad JSON", `{"name":`, http.StatusBadRequest, nil},
		{"not an object", `[1,2]`, http.StatusBadRequest, nil},
		{"empty body", ``, http.StatusBadRequest, nil},
		{"data after the body", `{"name":"add"} {}`, http.StatusBadRequest, nil},
		{"unknown field", `{"name":"add","colour":"blue"}`, http.StatusBadRequest, nil},
		{"no name", `{"image_url":"add:1"}`, http.StatusBadRequest, nil},
		{"file not wasm", `{"name":"add","file":"` + base64.StdEncoding.EncodeToString(wasmfixtures.Invalid()) + `"}`, http.StatusBadRequest, nil},
		{"file not base64", `{"name":"add","file":"%%%"}`, http.StatusBadRequest, nil},
		{"file and image", `{"name":"add","file":"` + add + `","image_url":"add:1"}`, http.StatusBadRequest, nil},
		{"federated kind", `{"name":"add","kind":"federated"}`, http.StatusBadRequest, nil},
		{"bad proplet id", `{"name":"add","proplet_id":"a.b"}`, http.StatusBadRequest, nil},
		{"negative timeout", `{"name":"add","timeout_ms":-1}`, http.StatusBadRequest, nil},
		{"input of the wrong type", `{"name":"add","inputs":[{"a":1}]}`, http.StatusBadRequest, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := callJSON(t, http.MethodPost, s.URL+"/tasks", tc.body)
			wantStatus(t, status, body, tc.want)
			if tc.want != http.StatusCreated {
				return
			}
			task := decode[httpapi.Task](t, body)
			if task.ID == "" || task.Status != "pending" || task.State != 0 {
				t.Fatalf("created %+v", task)
			}
			if fmt.Sprint(task.Inputs) != fmt.Sprint(tc.wantInputs) {
				t.Fatalf("inputs %q, want %q", task.Inputs, tc.wantInputs)
			}
		})
	}
}

func TestAPI_CreateTask_Answer(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	req, _ := json.Marshal(httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add(), TimeoutMS: 1500, MemoryMiB: 8})
	resp, err := http.Post(s.URL+"/tasks", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Location") != "/tasks/"+raw["id"].(string) {
		t.Fatalf("status %d, Location %q, body %v", resp.StatusCode, resp.Header.Get("Location"), raw)
	}
	for _, key := range []string{"id", "name", "state", "status", "daemon", "cli_args", "created_at", "updated_at", "attempt", "module", "module_size", "timeout_ms", "memory_mib"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("task JSON has no %q: %v", key, raw)
		}
	}
	for _, key := range []string{"file", "stdin", "results", "start_time"} {
		if _, ok := raw[key]; ok {
			t.Errorf("task JSON of a new task has %q: %v", key, raw)
		}
	}
	if !strings.HasPrefix(raw["module"].(string), "sha256:") || raw["module_size"].(float64) != float64(len(wasmfixtures.Add())) {
		t.Errorf("module %v size %v", raw["module"], raw["module_size"])
	}
}

func TestAPI_CreateTask_TooLarge(t *testing.T) {
	s := apitest.Start(t, apitest.Config{ModuleMax: 1024, Options: []httpapi.Option{httpapi.WithMaxBody(8 << 10)}})
	big := func(n int) []byte { return wasmfixtures.Padded(wasmfixtures.Add(), len(wasmfixtures.Add())+n) }
	tests := []struct {
		name string
		file []byte
		want int
	}{
		{"fits", big(100), http.StatusCreated},
		{"module over the store's limit", big(2000), http.StatusRequestEntityTooLarge},
		{"body over the limit", big(10 << 10), http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := callJSON(t, http.MethodPost, s.URL+"/tasks", httpapi.TaskRequest{Name: "add", File: tc.file})
			wantStatus(t, status, body, tc.want)
		})
	}
}

func TestAPI_ListTasks(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	var ids []string
	for i := range 3 {
		ids = append(ids, createTask(t, s, httpapi.TaskRequest{Name: fmt.Sprintf("f%d", i), File: wasmfixtures.Fallback()}).ID)
	}
	tests := []struct {
		name    string
		query   string
		want    int
		wantIDs []string
		limit   int
	}{
		{"default page", "", http.StatusOK, ids, httpapi.DefaultLimit},
		{"offset and limit", "?offset=1&limit=1", http.StatusOK, ids[1:2], 1},
		{"offset past the end", "?offset=10", http.StatusOK, nil, httpapi.DefaultLimit},
		{"largest limit", "?limit=1000", http.StatusOK, ids, 1000},
		{"negative offset", "?offset=-1", http.StatusBadRequest, nil, 0},
		{"offset not a number", "?offset=x", http.StatusBadRequest, nil, 0},
		{"zero limit", "?limit=0", http.StatusBadRequest, nil, 0},
		{"limit too large", "?limit=1001", http.StatusBadRequest, nil, 0},
		{"limit not a number", "?limit=1e2", http.StatusBadRequest, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, http.MethodGet, s.URL+"/tasks"+tc.query, "", nil)
			wantStatus(t, status, body, tc.want)
			if tc.want != http.StatusOK {
				return
			}
			page := decode[httpapi.TaskList](t, body)
			var got []string
			for _, task := range page.Tasks {
				got = append(got, task.ID)
			}
			if page.Total != 3 || page.Limit != tc.limit || fmt.Sprint(got) != fmt.Sprint(tc.wantIDs) || page.Tasks == nil {
				t.Fatalf("page %+v, want ids %v", page, tc.wantIDs)
			}
		})
	}
}

func TestAPI_GetTask(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	created := createTask(t, s, httpapi.TaskRequest{Inputs: []string{"1", "2"}})
	tests := []struct {
		name string
		id   string
		want int
	}{
		{"known", created.ID, http.StatusOK},
		{"unknown", "01ARZ3NDEKTSV4RRFFQ69G5FAV", http.StatusNotFound},
		{"not an id", "a.b", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, http.MethodGet, s.URL+"/tasks/"+tc.id, "", nil)
			wantStatus(t, status, body, tc.want)
			if tc.want == http.StatusOK {
				if got := decode[httpapi.Task](t, body); got.ID != created.ID || got.Module != created.Module {
					t.Fatalf("got %+v, want %+v", got, created)
				}
			}
		})
	}
}

func TestAPI_Upload(t *testing.T) {
	s := apitest.Start(t, apitest.Config{ModuleMax: 1024})
	task := createTask(t, s, httpapi.TaskRequest{Name: "add", ImageURL: "ghcr.io/jetprop/placeholder:1"})
	multi := func(field string, content []byte) func() (string, *bytes.Reader) {
		return func() (string, *bytes.Reader) {
			ct, body := multipartBody(t, field, content)
			b := new(bytes.Buffer)
			_, _ = b.ReadFrom(body)
			return ct, bytes.NewReader(b.Bytes())
		}
	}
	raw := func(ct string, content []byte) func() (string, *bytes.Reader) {
		return func() (string, *bytes.Reader) { return ct, bytes.NewReader(content) }
	}
	tests := []struct {
		name string
		id   string
		body func() (string, *bytes.Reader)
		want int
	}{
		{"multipart", task.ID, multi("file", wasmfixtures.Add()), http.StatusOK},
		{"application/wasm", task.ID, raw("application/wasm", wasmfixtures.Add()), http.StatusOK},
		{"not wasm", task.ID, multi("file", wasmfixtures.Invalid()), http.StatusBadRequest},
		{"too large", task.ID, multi("file", append(wasmfixtures.Add(), make([]byte, 2048)...)), http.StatusRequestEntityTooLarge},
		{"no file field", task.ID, multi("module", wasmfixtures.Add()), http.StatusBadRequest},
		{"not multipart", task.ID, raw("text/plain", wasmfixtures.Add()), http.StatusBadRequest},
		{"broken multipart", task.ID, raw("multipart/form-data; boundary=xyz", []byte("garbage")), http.StatusBadRequest},
		{"unknown task", "01ARZ3NDEKTSV4RRFFQ69G5FAV", multi("file", wasmfixtures.Add()), http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := tc.body()
			status, answer := call(t, http.MethodPut, s.URL+"/tasks/"+tc.id+"/upload", ct, body)
			wantStatus(t, status, answer, tc.want)
			if tc.want == http.StatusOK {
				if got := decode[httpapi.Task](t, answer); !strings.HasPrefix(got.Module, "sha256:") || got.ModuleSize != int64(len(wasmfixtures.Add())) {
					t.Fatalf("after upload: %+v", got)
				}
			}
		})
	}
}

func TestAPI_StartStopDelete(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	task := createTask(t, s, httpapi.TaskRequest{})
	noModule := createTask(t, s, httpapi.TaskRequest{Name: "main", File: []byte{}})
	elsewhere := createTask(t, s, httpapi.TaskRequest{PropletID: "p2"})
	url := func(id, action string) string { return s.URL + "/tasks/" + id + action }
	steps := []struct {
		name       string
		method     string
		url        string
		before     func()
		want       int
		wantStatus string
	}{
		{"start without proplets", http.MethodPost, url(task.ID, "/start"), nil, http.StatusConflict, ""},
		{"start without a module", http.MethodPost, url(noModule.ID, "/start"), func() { s.Announce(t, "p1") }, http.StatusBadRequest, ""},
		{"start on a proplet that is not alive", http.MethodPost, url(elsewhere.ID, "/start"), nil, http.StatusConflict, ""},
		{"stop a pending task", http.MethodPost, url(task.ID, "/stop"), nil, http.StatusConflict, ""},
		{"start", http.MethodPost, url(task.ID, "/start"), nil, http.StatusOK, "scheduled"},
		{"start twice", http.MethodPost, url(task.ID, "/start"), nil, http.StatusConflict, ""},
		{"delete running", http.MethodDelete, url(task.ID, ""), nil, http.StatusConflict, ""},
		{"upload to a running task", http.MethodPut, url(task.ID, "/upload"), nil, http.StatusConflict, ""},
		{"stop", http.MethodPost, url(task.ID, "/stop"), nil, http.StatusOK, "stopped"},
		{"stop again", http.MethodPost, url(task.ID, "/stop"), nil, http.StatusOK, "stopped"},
		{"delete", http.MethodDelete, url(task.ID, ""), nil, http.StatusNoContent, ""},
		{"get deleted", http.MethodGet, url(task.ID, ""), nil, http.StatusNotFound, ""},
		{"delete deleted", http.MethodDelete, url(task.ID, ""), nil, http.StatusNotFound, ""},
		{"start unknown", http.MethodPost, url("nope", "/start"), nil, http.StatusNotFound, ""},
		{"stop unknown", http.MethodPost, url("nope", "/stop"), nil, http.StatusNotFound, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before()
			}
			var status int
			var body []byte
			if st.method == http.MethodPut {
				ct, form := multipartBody(t, "file", wasmfixtures.Add())
				status, body = call(t, st.method, st.url, ct, form)
			} else {
				status, body = call(t, st.method, st.url, "", nil)
			}
			wantStatus(t, status, body, st.want)
			if st.wantStatus == "" {
				return
			}
			got := decode[httpapi.Task](t, body)
			if got.Status != st.wantStatus || got.PropletID != "p1" || got.Attempt != 1 {
				t.Fatalf("task %+v, want status %s on p1", got, st.wantStatus)
			}
		})
	}
}

func TestAPI_Results(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	s.Announce(t, "p1")
	start := func(t *testing.T) httpapi.Task {
		task := createTask(t, s, httpapi.TaskRequest{Inputs: []string{"10", "20"}})
		status, body := call(t, http.MethodPost, s.URL+"/tasks/"+task.ID+"/start", "", nil)
		wantStatus(t, status, body, http.StatusOK)
		return task
	}
	results := func(t *testing.T, id, query string) httpapi.Results {
		status, body := call(t, http.MethodGet, s.URL+"/tasks/"+id+"/results"+query, "", nil)
		wantStatus(t, status, body, http.StatusOK)
		return decode[httpapi.Results](t, body)
	}

	t.Run("running", func(t *testing.T) {
		task := start(t)
		got := results(t, task.ID, "")
		if got.Status != "scheduled" || string(got.Results) != "null" || got.Terminal() {
			t.Fatalf("results %+v", got)
		}
	})
	t.Run("wait times out with the current state", func(t *testing.T) {
		task := start(t)
		began := time.Now()
		got := results(t, task.ID, "?wait=200ms")
		if got.Status != "scheduled" || time.Since(began) < 200*time.Millisecond {
			t.Fatalf("after %s: %+v", time.Since(began), got)
		}
	})
	t.Run("wait for a result", func(t *testing.T) {
		task := start(t)
		type answer struct {
			status int
			body   httpapi.Results
			err    error
		}
		done := make(chan answer, 1)
		go func() {
			var a answer
			resp, err := http.Get(s.URL + "/tasks/" + task.ID + "/results?wait=30s")
			if err == nil {
				defer resp.Body.Close()
				a.status, a.err = resp.StatusCode, json.NewDecoder(resp.Body).Decode(&a.body)
			}
			done <- a
		}()
		s.Record(t, task.ID, "30", "")
		a := <-done
		got := a.body
		if a.err != nil || a.status != http.StatusOK || got.Status != "completed" || got.State != 3 || string(got.Results) != `"30"` || !got.Terminal() {
			t.Fatalf("results %+v", got)
		}
	})
	t.Run("failed", func(t *testing.T) {
		task := start(t)
		s.Record(t, task.ID, "", "trap: unreachable")
		got := results(t, task.ID, "?wait=5")
		if got.Status != "failed" || got.State != 4 || got.Error != "trap: unreachable" {
			t.Fatalf("results %+v", got)
		}
		status, body := call(t, http.MethodGet, s.URL+"/tasks/"+task.ID, "", nil)
		wantStatus(t, status, body, http.StatusOK)
		if tk := decode[httpapi.Task](t, body); tk.Error != "trap: unreachable" || tk.FinishTime.IsZero() {
			t.Fatalf("task %+v", tk)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		task := start(t)
		if _, err := s.Service.StopTask(t.Context(), task.ID); err != nil {
			t.Fatal(err)
		}
		if got := results(t, task.ID, "?wait=1s"); got.Status != "stopped" || got.State != 6 {
			t.Fatalf("results %+v", got)
		}
	})
	for _, tc := range []struct {
		name, id, query string
		want            int
	}{
		{"unknown task", "nope", "", http.StatusNotFound},
		{"unknown task, waiting", "nope", "?wait=1s", http.StatusNotFound},
		{"bad wait", "nope", "?wait=soon", http.StatusBadRequest},
		{"negative wait", "nope", "?wait=-1s", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, http.MethodGet, s.URL+"/tasks/"+tc.id+"/results"+tc.query, "", nil)
			wantStatus(t, status, body, tc.want)
		})
	}
}

func TestAPI_ResultsOfARespondingProplet(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	s.Announce(t, "p1")
	s.Respond(t, func(task engine.Task) (engine.RecordResult, bool) {
		return engine.RecordResult{Result: json.RawMessage(`"` + strings.Join(task.Inputs, "+") + `"`)}, true
	})
	task := createTask(t, s, httpapi.TaskRequest{Inputs: []string{"1", "2"}})
	status, body := call(t, http.MethodPost, s.URL+"/tasks/"+task.ID+"/start", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	status, body = call(t, http.MethodGet, s.URL+"/tasks/"+task.ID+"/results?wait=10s", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if got := decode[httpapi.Results](t, body); string(got.Results) != `"1+2"` {
		t.Fatalf("results %+v", got)
	}
}
