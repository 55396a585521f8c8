package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// reply is one HTTP reply.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// post sends v as JSON with headers (name, value, name, value...).
func post(t *testing.T, url string, v any, headers ...string) reply {
	t.Helper()
	b, ok := v.([]byte) // sent as is
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Error(err)
			return reply{}
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Error(err)
		return reply{}
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return reply{}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return reply{resp.StatusCode, resp.Header, body}
}

// remoteTask names a module by a registry reference, which the server
// leaves for the proplet: a create that stores no module.
var remoteTask = httpapi.TaskRequest{Name: "add", ImageURL: "registry.example:5000/add:1", Inputs: []string{"1", "2"}}

func TestCreateTask_IdempotencyKey(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	inline := httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add(), Inputs: []string{"1", "2"}}

	t.Run("the same key twice is one task", func(t *testing.T) {
		for _, req := range []httpapi.TaskRequest{remoteTask, inline} {
			key := "k-" + req.ImageURL
			first := post(t, s.URL+"/tasks", req, httpapi.HeaderIdempotencyKey, key)
			wantStatus(t, first.status, first.body, http.StatusCreated)
			again := post(t, s.URL+"/tasks", req, httpapi.HeaderIdempotencyKey, `"`+key+`"`) // the IETF draft's quoted form
			wantStatus(t, again.status, again.body, http.StatusCreated)
			a, b := decode[httpapi.Task](t, first.body), decode[httpapi.Task](t, again.body)
			if a.ID != b.ID || !strings.HasPrefix(a.ID, service.KeyIDPrefix) {
				t.Fatalf("ids %q and %q, want one id starting %q", a.ID, b.ID, service.KeyIDPrefix)
			}
			if first.header.Get(httpapi.HeaderReplayed) != "" || again.header.Get(httpapi.HeaderReplayed) != "true" {
				t.Fatalf("%s: %q then %q, want none then true", httpapi.HeaderReplayed,
					first.header.Get(httpapi.HeaderReplayed), again.header.Get(httpapi.HeaderReplayed))
			}
			if got := again.header.Get("Location"); got != "/tasks/"+a.ID {
				t.Fatalf("Location %q", got)
			}
			if n := len(load(t, s.Store, a.ID)); n != 1 {
				t.Fatalf("%d events stored, want 1 task.created", n)
			}
		}
	})
	t.Run("another body under a used key is refused, naming the key", func(t *testing.T) {
		post(t, s.URL+"/tasks", remoteTask, httpapi.HeaderIdempotencyKey, "reused")
		other := remoteTask
		other.Inputs = []string{"1", "3"}
		a := post(t, s.URL+"/tasks", other, httpapi.HeaderIdempotencyKey, "reused")
		wantStatus(t, a.status, a.body, http.StatusUnprocessableEntity)
		if e := decode[httpapi.Error](t, a.body); !strings.Contains(e.Error, `"reused"`) {
			t.Fatalf("error %q does not name the key", e.Error)
		}
	})
	t.Run("other keys, or none, are other tasks", func(t *testing.T) {
		ids := map[string]bool{}
		for _, h := range [][]string{{httpapi.HeaderIdempotencyKey, "one"}, {httpapi.HeaderIdempotencyKey, "two"}, nil, nil} {
			a := post(t, s.URL+"/tasks", remoteTask, h...)
			wantStatus(t, a.status, a.body, http.StatusCreated)
			ids[decode[httpapi.Task](t, a.body).ID] = true
		}
		if len(ids) != 4 {
			t.Fatalf("%d tasks, want 4", len(ids))
		}
	})
	t.Run("a key whose task was deleted", func(t *testing.T) {
		a := post(t, s.URL+"/tasks", remoteTask, httpapi.HeaderIdempotencyKey, "deleted")
		status, body := callJSON(t, http.MethodDelete, s.URL+"/tasks/"+decode[httpapi.Task](t, a.body).ID, nil)
		wantStatus(t, status, body, http.StatusNoContent)
		a = post(t, s.URL+"/tasks", remoteTask, httpapi.HeaderIdempotencyKey, "deleted")
		wantStatus(t, a.status, a.body, http.StatusConflict)
	})
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"empty", []string{httpapi.HeaderIdempotencyKey, `""`}},
		{"too long", []string{httpapi.HeaderIdempotencyKey, strings.Repeat("k", httpapi.MaxKeyLength+1)}},
		{"not visible ASCII", []string{httpapi.HeaderIdempotencyKey, "a b"}},
		{"twice", []string{httpapi.HeaderIdempotencyKey, "a", httpapi.HeaderIdempotencyKey, "b"}},
	} {
		t.Run("bad key: "+tc.name, func(t *testing.T) {
			a := post(t, s.URL+"/tasks", remoteTask, tc.headers...)
			wantStatus(t, a.status, a.body, http.StatusBadRequest)
		})
	}
}

func TestCreateWorkflow_IdempotencyKey(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	propeller := func(inputs string) []byte {
		return []byte(`{"tasks":[{"name":"add","image_url":"` + remoteModule + `","inputs":[` + inputs + `]}]}`)
	}
	other := twoSteps("w")
	other.Steps[0].Inputs = []string{"5", "6"}
	for _, tc := range []struct {
		name, path  string
		body, other any
		id          string // the field of the answer that holds the id
	}{
		{"workflow", "/workflows", twoSteps("w"), other, "id"},
		{"Propeller's workflow", "/workflows", propeller("1,2"), propeller("1,3"), "id"},
		{"job", "/jobs", []byte(jobBody("")), []byte(jobBody("sequential")), "job_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "k" + tc.path + "-" + tc.id + strconv.Itoa(len(tc.name))
			_, before := s.Service.ListWorkflows(0, 1)
			first := post(t, s.URL+tc.path, tc.body, httpapi.HeaderIdempotencyKey, key)
			wantStatus(t, first.status, first.body, http.StatusCreated)
			again := post(t, s.URL+tc.path, tc.body, httpapi.HeaderIdempotencyKey, key)
			wantStatus(t, again.status, again.body, http.StatusCreated)
			a, b := decode[map[string]any](t, first.body)[tc.id], decode[map[string]any](t, again.body)[tc.id]
			if a != b || again.header.Get(httpapi.HeaderReplayed) != "true" {
				t.Fatalf("ids %v and %v, replayed %q", a, b, again.header.Get(httpapi.HeaderReplayed))
			}
			if _, total := s.Service.ListWorkflows(0, 1); total != before+1 {
				t.Fatalf("%d workflows more, want 1", total-before)
			}
			refused := post(t, s.URL+tc.path, tc.other, httpapi.HeaderIdempotencyKey, key)
			wantStatus(t, refused.status, refused.body, http.StatusUnprocessableEntity)
		})
	}
}

func TestCreateTask_IdempotencyKeyPerCaller(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	ids := map[string]bool{}
	for _, tok := range []string{s.Token(t, domain.RoleOperator), s.Token(t, domain.RoleOperator)} {
		a := post(t, s.URL+"/tasks", remoteTask, httpapi.HeaderIdempotencyKey, "shared", "Authorization", "Bearer "+tok)
		wantStatus(t, a.status, a.body, http.StatusCreated)
		ids[decode[httpapi.Task](t, a.body).ID] = true
	}
	if len(ids) != 2 {
		t.Fatalf("two callers' one key made %d tasks, want 2 (a key is the caller's)", len(ids))
	}
}

// TestCreateTask_IdempotencyRace sends creates with one key at once to
// two engines (two services with their own handlers and read models) on
// one JetStream: exactly one appends, every reply is that task.
func TestCreateTask_IdempotencyRace(t *testing.T) {
	a := apitest.Start(t, apitest.Config{})
	b := apitest.Start(t, apitest.Config{Server: a.Server})
	for round := range 5 {
		key := "race-" + string(rune('a'+round))
		const n = 8
		answers := make([]reply, n)
		var wg sync.WaitGroup
		for i := range n {
			url := []string{a.URL, b.URL}[i%2]
			wg.Go(func() { answers[i] = post(t, url+"/tasks", remoteTask, httpapi.HeaderIdempotencyKey, key) })
		}
		wg.Wait()
		ids, fresh := map[string]bool{}, 0
		for _, ans := range answers {
			wantStatus(t, ans.status, ans.body, http.StatusCreated)
			ids[decode[httpapi.Task](t, ans.body).ID] = true
			if ans.header.Get(httpapi.HeaderReplayed) == "" {
				fresh++
			}
		}
		if len(ids) != 1 || fresh != 1 {
			t.Fatalf("key %s: %d ids, %d answers not replayed; want 1 and 1", key, len(ids), fresh)
		}
		for id := range ids {
			if n := len(load(t, a.Store, id)); n != 1 {
				t.Fatalf("task %s has %d events, want 1 task.created", id, n)
			}
		}
	}
}

// TestCreateTask_ReadModelBehind: a create whose write is stored but which
// the read model does not show in time answers 202 with the task as
// written, not a failure a client would send again. The tasks read model
// here is caught up once and never follows: a read model that is behind.
func TestCreateTask_ReadModelBehind(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	store, err := events.NewJetStream(t.Context(), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	modules, err := artifacts.New(t.Context(), js, artifacts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	codec := events.DefaultCodec()
	tasks, devices := projections.NewTasks(codec), projections.NewDevices(codec)
	h := service.NewHandler(store, codec, service.SystemClock{}, service.NewULIDs())
	svc := service.New(h, tasks, devices, modules, service.WithReadTimeout(50*time.Millisecond))
	ts := httptest.NewServer(httpapi.New(svc, store))
	t.Cleanup(ts.Close)

	a := post(t, ts.URL+"/tasks", remoteTask)
	wantStatus(t, a.status, a.body, http.StatusAccepted)
	task := decode[httpapi.Task](t, a.body)
	if task.ID == "" || a.header.Get("Location") != "/tasks/"+task.ID {
		t.Fatalf("202 without the task: Location %q, body %s", a.header.Get("Location"), a.body)
	}
	if n := len(load(t, store, task.ID)); n != 1 {
		t.Fatalf("%d events stored, want the task.created", n)
	}
}

// TestAPI_StoreUnavailable turns JetStream off under a running API: writes
// reply 503 with Retry-After, never 500, and reads from the read models
// still reply.
func TestAPI_StoreUnavailable(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	task := createTask(t, s, httpapi.TaskRequest{})
	natstest.DisableJetStream(t, s.Server)
	for _, tc := range []struct {
		name, method, path string
		body               any
	}{
		{"create", http.MethodPost, "/tasks", remoteTask},
		{"create with a module", http.MethodPost, "/tasks", httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add()}},
		{"start", http.MethodPost, "/tasks/" + task.ID + "/start", nil},
		{"delete", http.MethodDelete, "/tasks/" + task.ID, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, s.URL+tc.path, jsonBody(t, tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(httpapi.HeaderIdempotencyKey, "unavailable")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			wantStatus(t, resp.StatusCode, body, http.StatusServiceUnavailable)
			if got := resp.Header.Get("Retry-After"); got != "2" {
				t.Fatalf("Retry-After %q, want 2", got)
			}
		})
	}
	status, body := callJSON(t, http.MethodGet, s.URL+"/tasks/"+task.ID, nil)
	wantStatus(t, status, body, http.StatusOK)
}

func jsonBody(t *testing.T, v any) io.Reader {
	t.Helper()
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func load(t *testing.T, store events.Store, id string) []events.Envelope {
	t.Helper()
	envs, err := store.Load(t.Context(), events.TaskAggregate(id))
	if err != nil {
		t.Fatal(err)
	}
	return envs
}
