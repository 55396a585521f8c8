package httpapi_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// boundCase is one bad (or edge) request and what the API must answer:
// the status, a substring of the body (the error message naming the
// bound), and no other change (no event, no stored module).
type boundCase struct {
	name   string
	method string
	path   string
	ctype  string           // default application/json
	body   func() io.Reader // nil: no body
	length int64            // > 0: the declared Content-Length; -1: chunked (unknown)
	status int              // want
	want   string           // a substring of the answer
}

// jsonOf marshals v once, when the row runs.
func jsonOf(v any) func() io.Reader {
	return func() io.Reader {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return bytes.NewReader(b)
	}
}

// filler is n bytes of a JSON task whose "file" is n bytes of base64,
// made as it is read: an oversized body costs the test no memory.
func filler(n int64) func() io.Reader {
	return func() io.Reader {
		head := `{"name":"add","file":"`
		return io.MultiReader(strings.NewReader(head), io.LimitReader(repeatByte('A'), n-int64(len(head))-2), strings.NewReader(`"}`))
	}
}

type repeatByte byte

func (b repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

func strs(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Repeat("7", size)
	}
	return out
}

func envOf(n, valLen int) map[string]string {
	env := map[string]string{}
	for i := range n {
		env[fmt.Sprintf("V%d", i)] = strings.Repeat("v", valLen)
	}
	return env
}

func stepsOf(n int, f func(*engine.StepSpec)) engine.WorkflowSpec {
	spec := engine.WorkflowSpec{Name: "wf"}
	for i := range n {
		st := engine.StepSpec{Name: fmt.Sprintf("s%d", i), Module: "ghcr.io/acme/app:1"}
		if f != nil {
			f(&st)
		}
		spec.Steps = append(spec.Steps, st)
	}
	return spec
}

func propellerTasks(n int) []httpapi.PropellerTaskRequest {
	out := make([]httpapi.PropellerTaskRequest, n)
	for i := range out {
		out[i] = httpapi.PropellerTaskRequest{Name: "add", ImageURL: "sha256:" + strings.Repeat("ab", 32)}
	}
	return out
}

const maxInt64 = "9223372036854775807"

var boundCases = []boundCase{
	// Request bodies: JSON is bounded by MaxJSONBody before it costs memory,
	// and the 413 says where a big module goes.
	{name: "task with a 200 MB file, length declared", method: "POST", path: "/tasks", body: filler(200 << 20), length: 200 << 20,
		status: 413, want: "PUT /tasks/{id}/upload"},
	{name: "task with a 130 MB file, chunked", method: "POST", path: "/tasks", body: filler(130 << 20), length: -1,
		status: 413, want: "MaxJSONBody"},
	{name: "task with a module over the inline bound", method: "POST", path: "/tasks",
		body: jsonOf(httpapi.TaskRequest{Name: "add", File: make([]byte, httpapi.MaxInlineModule+256<<10)}), status: 413, want: "request body larger than 4194304 bytes"},
	{name: "task with 1,000,000 inputs (9.9 MB)", method: "POST", path: "/tasks", body: jsonOf(httpapi.TaskRequest{Name: "add", Inputs: strs(1_000_000, 8)}),
		status: 413, want: "MaxJSONBody"},
	{name: "job with a 5 MB body", method: "POST", path: "/jobs", body: filler(5 << 20), length: 5 << 20, status: 413, want: "POST /artifacts?name=NAME:TAG"},
	{name: "propeller workflow with a 5 MB body, chunked", method: "POST", path: "/workflows", body: filler(5 << 20), length: -1, status: 413, want: "POST /artifacts"},
	{name: "workflow spec over MaxSpecBody", method: "POST", path: "/workflows",
		body: jsonOf(stepsOf(1, func(s *engine.StepSpec) { s.Inputs = strs(1, httpapi.MaxSpecBody) })), status: 413, want: "larger than 1048576"},
	{name: "device provisioning with a 5 MB body", method: "POST", path: "/devices", body: filler(5 << 20), length: -1, status: 413, want: "larger than 65536"},
	{name: "artifact push declaring more than the upload limit", method: "POST", path: "/artifacts?name=big:1", ctype: "application/wasm",
		body: filler(200 << 20), length: 200 << 20, status: 413, want: "request body larger than"},

	// Task fields (engine.CheckTaskBounds).
	{name: "task with 2000 inputs", method: "POST", path: "/tasks", body: jsonOf(httpapi.TaskRequest{Name: "add", Inputs: strs(2000, 1)}),
		status: 400, want: "inputs: 2000 inputs, more than the limit of 1024"},
	{name: "task with 300 KB of inputs", method: "POST", path: "/tasks", body: jsonOf(httpapi.TaskRequest{Name: "add", Inputs: strs(100, 3000)}),
		status: 400, want: "inputs, cli_args, env and stdin together: 300000 bytes"},
	{name: "task with a 10 KB name", method: "POST", path: "/tasks", body: jsonOf(httpapi.TaskRequest{Name: strings.Repeat("n", 10<<10)}),
		status: 400, want: "task name (the function to call): 10240 bytes, more than the limit of 256"},
	{name: "task with 129 env variables", method: "POST", path: "/tasks", body: jsonOf(httpapi.TaskRequest{Name: "add", Env: envOf(129, 1)}),
		status: 400, want: "env: 129 variables, more than the limit of 128"},
	{name: "task with a 40 KB env value", method: "POST", path: "/tasks", body: jsonOf(httpapi.TaskRequest{Name: "add", Env: envOf(1, 40<<10)}),
		status: 400, want: `env "V0": 40960 bytes, more than the limit of 32768`},
	{name: "task with a 300 byte env name", method: "POST", path: "/tasks", body: jsonOf(httpapi.TaskRequest{Name: "add", Env: map[string]string{strings.Repeat("K", 300): "v"}}),
		status: 400, want: "bytes, more than the limit of 256"},
	{name: "task with 2000 cli_args", method: "POST", path: "/tasks", body: jsonOf(httpapi.TaskRequest{Name: "add", CLIArgs: strs(2000, 1)}),
		status: 400, want: "cli_args: 2000 arguments"},
	{name: "task with a 3 KB image_url", method: "POST", path: "/tasks", body: jsonOf(httpapi.TaskRequest{Name: "add", ImageURL: "ghcr.io/" + strings.Repeat("x", 3000)}),
		status: 400, want: "image_url: 3008 bytes, more than the limit of 2048"},
	{name: "task with retry max_attempts 1e9", method: "POST", path: "/tasks", body: jsonOf(httpapi.TaskRequest{Name: "add", Retry: &httpapi.TaskRetry{MaxAttempts: 1_000_000_000}}),
		status: 400, want: "retry max_attempts: 1000000000 attempts, more than the limit of 100"},

	// Workflow specs (engine.WorkflowSpec.Validate) and Propeller's jobs.
	{name: "workflow step with max_attempts 1e9 and 1ms backoff", method: "POST", path: "/workflows",
		body: jsonOf(stepsOf(1, func(s *engine.StepSpec) {
			s.Retry = &engine.RetryPolicy{MaxAttempts: 1_000_000_000, InitialBackoff: "1ms"}
		})), status: 400, want: "retry max_attempts: 1000000000 attempts, more than the limit of 100; step \"s0\": retry initial_backoff 1ms: want 100ms to 24h0m0s"},
	{name: "workflow step with a 48h max_backoff", method: "POST", path: "/workflows",
		body: jsonOf(stepsOf(1, func(s *engine.StepSpec) { s.Retry = &engine.RetryPolicy{MaxAttempts: 2, MaxBackoff: "48h"} })), status: 400, want: "retry max_backoff 48h"},
	{name: "workflow with 1001 steps", method: "POST", path: "/workflows", body: jsonOf(stepsOf(1001, nil)), status: 400, want: "steps: 1001 steps, more than the limit of 1000"},
	{name: "workflow with a 10 KB name", method: "POST", path: "/workflows",
		body: jsonOf(func() engine.WorkflowSpec { s := stepsOf(1, nil); s.Name = strings.Repeat("w", 10<<10); return s }()), status: 400, want: "name: 10240 bytes"},
	{name: "workflow step with 129 env variables", method: "POST", path: "/workflows",
		body: jsonOf(stepsOf(1, func(s *engine.StepSpec) { s.Env = envOf(129, 1) })), status: 400, want: "env: 129 variables"},
	{name: "workflow spec over its stored size", method: "POST", path: "/workflows",
		body: jsonOf(stepsOf(20, func(s *engine.StepSpec) { s.Env = envOf(1, 30<<10) })), status: 400, want: "more than the limit of 524288"},
	{name: "job with 1001 tasks", method: "POST", path: "/jobs", body: jsonOf(httpapi.JobRequest{Tasks: propellerTasks(1001)}),
		status: 400, want: "steps: 1001 steps"},
	{name: "job task with a 10 KB name", method: "POST", path: "/jobs",
		body: jsonOf(httpapi.JobRequest{Tasks: []httpapi.PropellerTaskRequest{{Name: strings.Repeat("f", 10<<10), ImageURL: "a:1"}}}), status: 400, want: "function: 10240 bytes"},

	// Pagination: no overflow, no negative values.
	{name: "jobs at the largest offset", method: "GET", path: "/jobs?offset=" + maxInt64, status: 200, want: `"jobs":[]`},
	{name: "jobs at the largest offset and limit", method: "GET", path: "/jobs?limit=1000&offset=" + maxInt64, status: 200, want: `"jobs":[]`},
	{name: "tasks at the largest offset", method: "GET", path: "/tasks?offset=" + maxInt64, status: 200, want: `"tasks":[]`},
	{name: "workflows at the largest offset", method: "GET", path: "/workflows?limit=1000&offset=" + maxInt64, status: 200, want: `"workflows":[]`},
	{name: "proplets at the largest offset", method: "GET", path: "/proplets?limit=1000&offset=" + maxInt64, status: 200, want: `"proplets":[]`},
	{name: "artifacts at the largest offset", method: "GET", path: "/artifacts?limit=1000&offset=" + maxInt64, status: 200, want: `"artifacts":[]`},
	{name: "tokens at the largest offset", method: "GET", path: "/tokens?limit=1000&offset=" + maxInt64, status: 200, want: `"tokens":[]`},
	{name: "secrets at the largest offset", method: "GET", path: "/secrets?limit=1000&offset=" + maxInt64, status: 200, want: `"secrets":[]`},
	{name: "devices at the largest offset", method: "GET", path: "/devices?limit=1000&offset=" + maxInt64, status: 200, want: `"devices":[]`},
	{name: "offset past int64", method: "GET", path: "/jobs?offset=9223372036854775808", status: 400, want: "want a whole number >= 0"},
	{name: "negative offset", method: "GET", path: "/tasks?offset=-1", status: 400, want: "want a whole number >= 0"},
	{name: "limit 0", method: "GET", path: "/workflows?limit=0", status: 400, want: "want a whole number from 1 to 1000"},
	{name: "limit over the bound", method: "GET", path: "/artifacts?limit=1001", status: 400, want: "from 1 to 1000"},
	{name: "negative limit", method: "GET", path: "/jobs?limit=-5", status: 400, want: "from 1 to 1000"},
	{name: "results wait of max int64 seconds", method: "GET", path: "/tasks/nosuch/results?wait=" + maxInt64, status: 404, want: "not found"},
}

// TestAPI_Bounds sends each bad request to a fresh view of one server and
// checks the answer, that the server is still up, and that nothing was
// stored.
func TestAPI_Bounds(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	for _, tc := range boundCases {
		t.Run(tc.name, func(t *testing.T) {
			before := storedState(t, s.Server)
			status, body := send(t, s.URL, tc)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", status, tc.status, body)
			}
			msg := string(body)
			if status >= 400 {
				wantStatus(t, status, body, tc.status) // a JSON {"error": ...}
				msg = decode[httpapi.Error](t, body).Error
			}
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("answer %.500s\nwant it to contain %q", msg, tc.want)
			}
			if after := storedState(t, s.Server); after != before {
				t.Fatalf("stored state changed: %+v → %+v", before, after)
			}
			if st, b := call(t, "GET", s.URL+"/health", "", nil); st != 200 {
				t.Fatalf("health after the request: %d %s", st, b)
			}
		})
	}
}

// send makes the row's request as the row says: with its declared length,
// chunked, or as net/http would.
func send(t *testing.T, base string, tc boundCase) (int, []byte) {
	t.Helper()
	var body io.Reader
	if tc.body != nil {
		body = tc.body()
	}
	req, err := http.NewRequestWithContext(t.Context(), tc.method, base+tc.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", cmp.Or(tc.ctype, "application/json"))
	}
	switch {
	case tc.length > 0:
		req.ContentLength = tc.length
	case tc.length < 0:
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", tc.method, tc.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// stored is what a refused request must not change: the messages and
// bytes of every stream of the account (events and modules).
type stored struct{ streams, msgs, bytes uint64 }

func storedState(t *testing.T, srv *natsserver.Server) stored {
	t.Helper()
	_, js := natstest.Connect(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var st stored
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.streams++
		st.msgs += info.State.Msgs
		st.bytes += info.State.Bytes
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestAPI_PayloadTooLargeIs413: with a broker whose messages are smaller
// than the engine's bounds admit, a create whose event does not fit is
// 413 naming the store's limit, never 500 (a bound the API forgot still
// answers the client).
func TestAPI_PayloadTooLargeIs413(t *testing.T) {
	srv, err := natsserver.Start(context.Background(), natsserver.Config{
		DataDir: t.TempDir(), NATSPort: -1, MQTTPort: -1, MaxStore: 1 << 30, MaxMemory: 64 << 20,
		Ready: 15 * time.Second, Authorize: natstest.OpenDevices, MaxPayload: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	s := apitest.Start(t, apitest.Config{Server: srv})
	req := httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add(), Inputs: strs(10, 10<<10)} // 100 KB: within MaxTaskPayload
	status, body := callJSON(t, http.MethodPost, s.URL+"/tasks", req)
	wantStatus(t, status, body, http.StatusRequestEntityTooLarge)
	if !strings.Contains(string(body), "larger than the largest message the store takes") {
		t.Fatalf("answer %s does not name the store's limit", body)
	}
	wf := stepsOf(1, func(st *engine.StepSpec) { st.Inputs = strs(10, 10<<10) })
	status, body = callJSON(t, http.MethodPost, s.URL+"/workflows", wf)
	wantStatus(t, status, body, http.StatusRequestEntityTooLarge)
}

// TestAPI_LargeModuleByUpload: a module over the inline bound is refused
// inline (413) and goes by upload; the client does that by itself, so the
// CLI's 'run' and 'task create --file' work with any module the store
// takes.
func TestAPI_LargeModuleByUpload(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	inline, err := json.Marshal(httpapi.TaskRequest{Name: "add", File: padModule(t, wasmfixtures.Add(), httpapi.MaxJSONBody*3/4+1)})
	if err != nil {
		t.Fatal(err)
	}
	status, body := call(t, http.MethodPost, s.URL+"/tasks", "application/json", bytes.NewReader(inline))
	wantStatus(t, status, body, http.StatusRequestEntityTooLarge)
	big := padModule(t, wasmfixtures.Add(), httpapi.MaxInlineModule+1)
	task, err := client.New(s.URL, nil).CreateTask(t.Context(), httpapi.TaskRequest{Name: "add", File: big})
	if err != nil {
		t.Fatalf("create with a large module: %v", err)
	}
	if task.ModuleSize != int64(len(big)) || task.Module != domain.DigestOf(big) {
		t.Fatalf("module %s (%d bytes), want %s (%d)", task.Module, task.ModuleSize, domain.DigestOf(big), len(big))
	}
}

// padModule appends a custom section to a wasm module so that it is at
// least n bytes.
func padModule(t *testing.T, mod []byte, n int) []byte {
	t.Helper()
	pad := n - len(mod)
	name := "pad"
	// custom section: id 0, size (LEB128), name length, name, payload
	payload := make([]byte, max(pad, 16))
	content := append([]byte{byte(len(name))}, name...)
	content = append(content, payload...)
	out := append([]byte(nil), mod...)
	out = append(out, 0)
	out = appendLEB(out, uint64(len(content)))
	return append(out, content...)
}

func appendLEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}
