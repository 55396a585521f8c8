package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestAPI_UpdateTask replays Propeller's SDK: PUT /tasks/{id} with the
// whole task JSON, only some fields changed.
func TestAPI_UpdateTask(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	task := createTask(t, s, httpapi.TaskRequest{Inputs: []string{"1", "2"}, Env: map[string]string{"A": "1"}})
	// As Propeller's SDK marshals a task: every field, unchanged ones empty.
	body := fmt.Sprintf(`{"id":%q,"name":"add","state":0,"image_url":"","inputs":[5,6],"cli_args":null,"daemon":false,
		"results":null,"start_time":"0001-01-01T00:00:00Z","finish_time":"0001-01-01T00:00:00Z","created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"}`, task.ID)
	status, b := callJSON(t, http.MethodPut, s.URL+"/tasks/"+task.ID, body)
	wantStatus(t, status, b, http.StatusOK)
	got := decode[httpapi.Task](t, b)
	if got.ID != task.ID || strings.Join(got.Inputs, ",") != "5,6" || got.Env["A"] != "1" || got.Module != task.Module || got.Name != "add" {
		t.Fatalf("updated %s", b)
	}
	status, b = call(t, http.MethodGet, s.URL+"/tasks/"+task.ID, "", nil)
	wantStatus(t, status, b, http.StatusOK)
	if got := decode[httpapi.Task](t, b); strings.Join(got.Inputs, ",") != "5,6" {
		t.Fatalf("GET after update %s", b)
	}
	// Propeller's update sets metadata and priority too.
	status, b = callJSON(t, http.MethodPut, s.URL+"/tasks/"+task.ID, `{"metadata":{"site":"lab"},"priority":90}`)
	wantStatus(t, status, b, http.StatusOK)
	if !strings.Contains(string(b), `"site":"lab"`) || !strings.Contains(string(b), `"priority":90`) {
		t.Fatalf("metadata and priority not updated: %s", b)
	}
	// Same body again: nothing to change, the same answer.
	status, b = callJSON(t, http.MethodPut, s.URL+"/tasks/"+task.ID, body)
	wantStatus(t, status, b, http.StatusOK)

	tests := []struct {
		name, id, body string
		want           int
		wantMsg        string
	}{
		{"no such task", "nosuch", `{"name":"add"}`, http.StatusNotFound, "nosuch"},
		{"unknown field", task.ID, `{"nope":1}`, http.StatusBadRequest, "nope"},
		{"file and image", task.ID, `{"file":"AGFzbQEAAAA=","image_url":"x:1"}`, http.StatusBadRequest, "not both"},
		{"function the module lacks", task.ID, `{"name":"nosuchexport"}`, http.StatusBadRequest, "nosuchexport"},
		{"past a bound", task.ID, `{"memory_mib":-5}`, http.StatusBadRequest, "memory"},
		{"kind", task.ID, `{"kind":"federated"}`, http.StatusBadRequest, "federated"},
		{"priority over its bound", task.ID, `{"priority":101}`, http.StatusBadRequest, "priority"},
		{"schedule changed", task.ID, `{"schedule":"@daily"}`, http.StatusBadRequest, "cannot be changed by PUT"},
		{"not json", task.ID, `{`, http.StatusBadRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, b := callJSON(t, http.MethodPut, s.URL+"/tasks/"+tc.id, tc.body)
			wantStatus(t, status, b, tc.want)
			if !strings.Contains(string(b), tc.wantMsg) {
				t.Fatalf("answer %s does not name %q", b, tc.wantMsg)
			}
		})
	}

	// A new module inline replaces the old; a running task is refused.
	s.Announce(t, "p1")
	status, b = callJSON(t, http.MethodPut, s.URL+"/tasks/"+task.ID, httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add()})
	wantStatus(t, status, b, http.StatusOK)
	if _, err := s.Service.StartTask(t.Context(), task.ID); err != nil {
		t.Fatal(err)
	}
	status, b = callJSON(t, http.MethodPut, s.URL+"/tasks/"+task.ID, `{"inputs":[7]}`)
	wantStatus(t, status, b, http.StatusConflict)
}

func TestAPI_DeleteProplet(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	s.Announce(t, "p1")
	s.Announce(t, "p2")
	task := createTask(t, s, httpapi.TaskRequest{PropletID: "p1"})
	if _, err := s.Service.StartTask(t.Context(), task.ID); err != nil {
		t.Fatal(err)
	}
	status, b := call(t, http.MethodDelete, s.URL+"/proplets/p1", "", nil)
	wantStatus(t, status, b, http.StatusConflict) // a task is out on it
	if !strings.Contains(string(b), "active tasks") {
		t.Fatalf("refusal %s", b)
	}

	status, b = call(t, http.MethodDelete, s.URL+"/proplets/p2", "", nil)
	if status != http.StatusNoContent || len(b) != 0 {
		t.Fatalf("delete: %d %s", status, b)
	}
	for _, path := range []string{"/proplets/p2", "/proplets/p2/alive-history"} {
		status, b = call(t, http.MethodGet, s.URL+path, "", nil)
		wantStatus(t, status, b, http.StatusNotFound)
	}
	status, b = call(t, http.MethodDelete, s.URL+"/proplets/p2", "", nil)
	wantStatus(t, status, b, http.StatusNotFound) // gone: as Propeller answers
	status, b = call(t, http.MethodGet, s.URL+"/proplets", "", nil)
	wantStatus(t, status, b, http.StatusOK)
	if page := decode[httpapi.PropletList](t, b); page.Total != 1 || page.Proplets[0].ID != "p1" {
		t.Fatalf("list after delete %s", b)
	}

	// Still connected: it comes back with its next heartbeat.
	if _, err := s.Handler.Device(t.Context(), engine.Heartbeat{ID: "p2"}); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, apitest.Timeout, func() error {
		status, b := call(t, http.MethodGet, s.URL+"/proplets/p2", "", nil)
		if p := decode[httpapi.Proplet](t, b); status != http.StatusOK || !p.Alive {
			return fmt.Errorf("p2 after a heartbeat: %d %s", status, b)
		}
		return nil
	})
}

func TestAPI_AliveHistory(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	s.Announce(t, "p1")
	for _, cmd := range []engine.DeviceCommand{engine.MarkOffline{ID: "p1", Reason: "missed heartbeats"}, engine.Heartbeat{ID: "p1"}} {
		if _, err := s.Handler.Device(t.Context(), cmd); err != nil {
			t.Fatal(err)
		}
	}
	status, b := call(t, http.MethodGet, s.URL+"/proplets/p1/alive-history", "", nil)
	wantStatus(t, status, b, http.StatusOK)
	h := decode[httpapi.AliveHistory](t, b)
	if h.Total != 2 || len(h.History) != 2 || len(h.Events) != 3 || h.Limit != httpapi.DefaultLimit ||
		h.Events[1].Type != "device.offline" || h.Events[1].Alive || h.Events[1].Reason != "missed heartbeats" ||
		!h.Events[2].Alive || !h.History[1].Equal(h.Events[2].At) || h.History[0].After(h.History[1]) {
		t.Fatalf("history %s", b)
	}
	status, b = call(t, http.MethodGet, s.URL+"/proplets/p1/alive-history?offset=1&limit=1", "", nil)
	wantStatus(t, status, b, http.StatusOK)
	if h := decode[httpapi.AliveHistory](t, b); h.Total != 2 || len(h.History) != 1 || h.Offset != 1 || len(h.Events) != 1 || h.Events[0].Type != "device.offline" {
		t.Fatalf("page %s", b)
	}
	status, b = call(t, http.MethodGet, s.URL+"/proplets/p1/alive-history?limit=0", "", nil)
	wantStatus(t, status, b, http.StatusBadRequest)
}

func TestAPI_ListFilters(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	s.Announce(t, "p1")
	s.Announce(t, "p2")
	if _, err := s.Handler.Device(t.Context(), engine.MarkOffline{ID: "p2", Reason: "gone"}); err != nil {
		t.Fatal(err)
	}
	running := createTask(t, s, httpapi.TaskRequest{PropletID: "p1"})
	pending := createTask(t, s, httpapi.TaskRequest{})
	if _, err := s.Service.StartTask(t.Context(), running.ID); err != nil {
		t.Fatal(err)
	}
	status, b := callJSON(t, http.MethodPost, s.URL+"/jobs", jobBody("configurable"))
	wantStatus(t, status, b, http.StatusCreated)
	job := decode[httpapi.Job](t, b)

	natstest.CheckFor(t, apitest.Timeout, func() error {
		if d, _ := s.Devices.Get("p2"); d.State != engine.DeviceOffline {
			return fmt.Errorf("p2 is %s", d.State)
		}
		return nil
	})
	tests := []struct {
		path    string
		want    int
		wantIDs string
	}{
		{"/proplets?status=active", 200, "p1"},
		{"/proplets?status=inactive", 200, "p2"},
		{"/proplets?status=offline", 200, "p2"},
		{"/proplets?status=announced&limit=1", 200, "p1"},
		{"/proplets?status=inactive&offset=1", 200, ""},
		{"/proplets?status=dead", 400, ""},
		{"/tasks?status=pending", 200, pending.ID},
		{"/tasks?status=scheduled", 200, running.ID},
		{"/tasks?status=completed", 200, ""},
		{"/tasks?status=Pending", 400, ""},
		{"/jobs?status=pending", 200, job.JobID},
		{"/jobs?status=running", 200, ""},
		{"/jobs?status=cancelled", 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			status, b := call(t, http.MethodGet, s.URL+tc.path, "", nil)
			wantStatus(t, status, b, tc.want)
			if status != http.StatusOK {
				if !strings.Contains(string(b), "want one of") {
					t.Fatalf("refusal does not list the statuses: %s", b)
				}
				return
			}
			var ids []string
			switch {
			case strings.HasPrefix(tc.path, "/proplets"):
				for _, p := range decode[httpapi.PropletList](t, b).Proplets {
					ids = append(ids, p.ID)
				}
			case strings.HasPrefix(tc.path, "/tasks"):
				for _, p := range decode[httpapi.TaskList](t, b).Tasks {
					ids = append(ids, p.ID)
				}
			default:
				for _, j := range decode[httpapi.JobList](t, b).Jobs {
					ids = append(ids, j.JobID)
				}
			}
			if got := strings.Join(ids, ","); got != tc.wantIDs {
				t.Fatalf("ids %q, want %q", got, tc.wantIDs)
			}
		})
	}
}
