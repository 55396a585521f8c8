package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/testing/apitest"
)

// propellerTaskJSON is a whole task as Propeller's SDK marshals one
// (pkg/task.Task), every field set to a value jetprop takes.
const propellerTaskJSON = `{
	"id": "", "name": "add", "kind": "standard", "state": 0, "image_url": "ghcr.io/jetprop/add:1",
	"cli_args": null, "inputs": [1, "2"], "env": {"A": "1"}, "daemon": false,
	"encrypted": false, "kbs_resource_path": "", "depends_on": [], "run_if": "success",
	"workflow_id": "", "job_id": "", "results": null, "error": "",
	"monitoring_profile": {"enabled": true, "interval": 10000000000, "collect_cpu": true},
	"start_time": "0001-01-01T00:00:00Z", "finish_time": "0001-01-01T00:00:00Z",
	"created_at": "0001-01-01T00:00:00Z", "updated_at": "0001-01-01T00:00:00Z",
	"mode": "infer", "schedule": "0 */5 * * * *", "next_run": "0001-01-01T00:00:00Z",
	"is_recurring": true, "timezone": "Europe/Belgrade", "broadcast": false,
	"priority": 70, "metadata": {"site": "lab", "floor": 3}, "hal_storage_path": ""
}`

func TestAPI_CreateTask_PropellerSchema(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	tests := []struct {
		name string
		body string
		want int
		msg  string // in the error, or in the created task's JSON
	}{
		{"a whole Propeller task", propellerTaskJSON, 201, `"priority":70`},
		{"metadata", `{"name":"add","metadata":{"site":"lab","n":1.50,"tags":["a"]}}`, 201, `"metadata":{"n":1.50,"site":"lab","tags":["a"]}`},
		{"priority default", `{"name":"add"}`, 201, `"priority":50`},
		{"priority 100", `{"name":"add","priority":100}`, 201, `"priority":100`},
		{"priority 101", `{"name":"add","priority":101}`, 400, "priority must be between 0 and 100, got 101"},
		{"priority negative", `{"name":"add","priority":-1}`, 400, "priority must be between 0 and 100, got -1"},
		{"broadcast", `{"name":"add","broadcast":true}`, 201, `"broadcast":true`},
		{"broadcast and proplet_id", `{"name":"add","broadcast":true,"proplet_id":"p1"}`, 400, "broadcast and proplet_id are mutually exclusive"},
		{"broadcast daemon", `{"name":"add","broadcast":true,"daemon":true}`, 400, "a broadcast task cannot be a daemon"},
		{"schedule", `{"name":"add","schedule":"*/10 * * * *","timezone":"America/New_York"}`, 201, `"schedule":"*/10 * * * *"`},
		{"bad schedule", `{"name":"add","schedule":"every day"}`, 400, `schedule "every day": want 5 fields`},
		{"bad timezone", `{"name":"add","schedule":"* * * * *","timezone":"Mars/Olympus"}`, 400, `timezone "Mars/Olympus"`},
		{"recurring without schedule", `{"name":"add","is_recurring":true}`, 400, "is_recurring and timezone need a schedule"},
		{"run_if failure", `{"name":"add","run_if":"failure"}`, 201, `"run_if":"failure"`},
		{"run_if always", `{"name":"add","run_if":"always"}`, 400, `run_if "always": want "success" or "failure"`},
		{"kind standard", `{"name":"add","kind":"standard"}`, 201, `"kind":"standard"`},
		{"kind federated", `{"name":"add","kind":"federated"}`, 400, `kind "federated" is not supported`},
		{"kind unknown", `{"name":"add","kind":"quantum"}`, 400, `kind "quantum": want "standard" or "federated"`},
		{"monitoring_profile", `{"name":"add","monitoring_profile":{"enabled":true}}`, 201, `"monitoring_profile":{"enabled":true}`},
		{"monitoring_profile not an object", `{"name":"add","monitoring_profile":[1]}`, 400, "monitoring_profile: want a JSON object"},
		{"monitoring_profile too large", `{"name":"add","monitoring_profile":{"x":"` + strings.Repeat("m", 5000) + `"}}`, 400, "monitoring_profile: 5008 bytes, more than the limit of 4096"},
		{"encrypted false", `{"name":"add","encrypted":false,"kbs_resource_path":"","hal_storage_path":""}`, 201, `"name":"add"`},
		{"encrypted true", `{"name":"add","encrypted":true}`, 400, "encrypted: encrypted workloads are not supported"},
		{"kbs_resource_path", `{"name":"add","kbs_resource_path":"default/key/1"}`, 400, "kbs_resource_path: encrypted workloads (a KBS) are not supported"},
		{"hal_storage_path", `{"name":"add","hal_storage_path":"/hal"}`, 400, "hal_storage_path: HAL storage is not supported"},
		{"depends_on", `{"name":"add","depends_on":["x"]}`, 400, "depends_on: not supported on POST /tasks"},
		{"unknown field", `{"name":"add","prioritty":1}`, 400, `unknown field "prioritty"`},
		{"metadata too many keys", `{"name":"add","metadata":{` + metadataKeys(65) + `}}`, 400, "metadata: 65 keys, more than the limit of 64"},
		{"metadata key too long", `{"name":"add","metadata":{"` + strings.Repeat("k", 257) + `":1}}`, 400, "bytes, more than the limit of 256"},
		{"metadata too large", `{"name":"add","metadata":{"a":"` + strings.Repeat("v", 16<<10) + `"}}`, 400, "metadata: 16387 bytes, more than the limit of 16384"},
		{"metadata empty key", `{"name":"add","metadata":{"":1}}`, 400, "metadata: a key must not be empty"},
		{"metadata not an object", `{"name":"add","metadata":["a"]}`, 400, "invalid JSON body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, http.MethodPost, s.URL+"/tasks", "application/json", strings.NewReader(tc.body))
			wantStatus(t, status, body, tc.want)
			text := string(body)
			if status >= 400 {
				text = decode[struct{ Error string }](t, body).Error
			}
			if !strings.Contains(text, tc.msg) {
				t.Fatalf("answer %s, want it to hold %s", body, tc.msg)
			}
			if status == http.StatusCreated {
				task := decode[httpapi.Task](t, body)
				status, got := call(t, http.MethodGet, s.URL+"/tasks/"+task.ID, "", nil)
				if wantStatus(t, status, got, 200); !strings.Contains(string(got), tc.msg) {
					t.Fatalf("GET %s, want it to hold %s", got, tc.msg)
				}
			}
		})
	}
}

func metadataKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strings.Repeat("x", i) + `":1`)
	}
	return b.String()
}

func TestAPI_ListTasks_MetadataFilter(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ids := map[string]string{}
	for _, c := range [][2]string{
		{"lab3", `{"site":"lab","floor":3}`},
		{"lab4", `{"site":"lab","floor":4,"hot":true}`},
		{"field", `{"site":"field"}`},
		{"none", `null`},
	} {
		name, meta := c[0], c[1]
		status, body := call(t, http.MethodPost, s.URL+"/tasks", "application/json", strings.NewReader(`{"name":"add","metadata":`+meta+`}`))
		wantStatus(t, status, body, 201)
		ids[decode[httpapi.Task](t, body).ID] = name
	}
	tests := []struct {
		query string
		want  string // the names of the tasks, sorted
		code  int
	}{
		{"", "field lab3 lab4 none", 200},
		{"?metadata=site:lab", "lab3 lab4", 200},
		{"?metadata=site:lab&metadata=floor:4", "lab4", 200},
		{"?metadata=hot:true", "lab4", 200},
		{"?metadata=site:nowhere", "", 200},
		{`?metadata={"site":"lab","floor":3}`, "lab3", 200},
		{"?metadata=site:lab&limit=1&offset=1", "lab4", 200},
		{"?metadata=nocolon", "", 400},
		{"?metadata={bad", "", 400},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			status, body := call(t, http.MethodGet, s.URL+"/tasks"+strings.ReplaceAll(tc.query, `"`, "%22"), "", nil)
			if wantStatus(t, status, body, tc.code); tc.code != 200 {
				return
			}
			list := decode[httpapi.TaskList](t, body)
			var names []string
			for _, task := range list.Tasks {
				names = append(names, ids[task.ID])
			}
			slices.Sort(names)
			if got := strings.Join(names, " "); got != tc.want {
				t.Fatalf("GET /tasks%s: %q, want %q", tc.query, got, tc.want)
			}
		})
	}
}

// BenchmarkListTasks_Metadata: GET /tasks?metadata=k:v scans every task
// (no index); against one page of the unfiltered list, over about 20,000
// tasks (10,000 devices with 0 to 4 each). Handlers are called in process.
//
//	go test -run '^$' -bench ListTasks_Metadata -benchmem ./adapters/httpapi/
func BenchmarkListTasks_Metadata(b *testing.B) {
	api, _ := listingAPI(b, 10000)
	for _, url := range []string{"/tasks?limit=100", "/tasks?limit=100&metadata=site:lab"} {
		b.Run(url, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				get(b, api, url)
			}
		})
	}
}
