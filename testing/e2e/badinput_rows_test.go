package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// badInputs is the table of the bad-input suite (TestBadInput): the
// inputs jetprop refused before issue 12, by the way they come in, then
// the ones issue 12 found it did not refuse.
// A row is self-contained: its input, the status or exit code, the
// message; {name} placeholders are the rig's fixtures (badRig.fixtures).
func badInputs(r *badRig) []badInput {
	var rows []badInput
	for _, part := range [][]badInput{
		apiUnknownIDs(), apiMethods(), apiBodies(), apiTasks(), apiWorkflows(), apiJobs(),
		apiQueries(), apiArtifacts(), apiAccess(), apiAuth(), cliRows(), deviceRows(),
		issue12Rows(), metricsRows(), wasmguardRows(), invokeRows(), apiTaskSchema(), apiTaskFilters(),
		routesRows(), propmgrRows(),
	} {
		rows = append(rows, part...)
	}
	return rows
}

// apiUnknownIDs: every route with an {id} or {ref}, given one nobody made.
func apiUnknownIDs() []badInput {
	var rows []badInput
	for _, rt := range []struct{ method, path, msg string }{
		{"GET", "/tasks/nosuch", `task "nosuch": not found`},
		{"DELETE", "/tasks/nosuch", "task nosuch: not found"},
		{"PUT", "/tasks/nosuch/upload", `task "nosuch": not found`},
		{"POST", "/tasks/nosuch/start", `task "nosuch": not found`},
		{"POST", "/tasks/nosuch/stop", "task nosuch: not found"},
		{"GET", "/tasks/nosuch/results", `task "nosuch": not found`},
		{"GET", "/proplets/nosuch", `proplet "nosuch": not found`},
		{"GET", "/workflows/nosuch", `workflow "nosuch": not found`},
		{"POST", "/workflows/nosuch/cancel", `workflow "nosuch": not found`},
		{"GET", "/jobs/nosuch", `"nosuch": not found`},
		{"POST", "/jobs/nosuch/start", `"nosuch": not found`},
		{"POST", "/jobs/nosuch/stop", `"nosuch": not found`},
		{"GET", "/artifacts/nosuch", "artifact nosuch:latest: not found"},
		{"GET", "/artifacts/nosuch:1/content", "artifact nosuch:1: not found"},
		{"DELETE", "/artifacts/nosuch:1", "artifact nosuch:1: not found"},
		{"GET", "/tokens/nosuch", `token "nosuch": not found`},
		{"DELETE", "/tokens/nosuch", "token nosuch: not found"},
		{"DELETE", "/secrets/nosuch", `secret "nosuch": not found`},
		{"GET", "/devices/nosuch", `"nosuch": not found`},
		{"POST", "/devices/nosuch/revoke", "device nosuch was never provisioned"},
	} {
		rows = append(rows, badInput{name: "api/unknown-id/" + rt.method + strings.ReplaceAll(rt.path, "/", "_"),
			method: rt.method, path: rt.path, want: 404, msg: rt.msg})
	}
	return append(rows,
		badInput{name: "api/unknown-id/export", method: "POST", path: "/artifacts/nosuch:1/export", body: `{"to":"127.0.0.1:1/x:1","plain_http":true}`, want: 404, msg: "artifact nosuch:1: not found"},
		badInput{name: "api/unknown-id/path-traversal", method: "GET", path: "/tasks/..%2f..%2fetc%2fpasswd", want: 404, msg: `task "../../etc/passwd": not found`},
		badInput{name: "api/unknown-id/nul", method: "GET", path: "/tasks/%00", want: 404, msg: "not found"},
		badInput{name: "api/unknown-id/workflow-as-job", method: "GET", path: "/jobs/{wf}", want: 404, msg: "not found"},
		badInput{name: "api/unknown-id/start-workflow-as-job", method: "POST", path: "/jobs/{wf}/start", want: 404, msg: "not found"},
	)
}

// apiMethods: no such endpoint, or a method the path does not take.
func apiMethods() []badInput {
	return []badInput{
		{name: "api/route/unknown-path", method: "GET", path: "/nosuch", want: 404, msg: "no such endpoint: /nosuch"},
		{name: "api/route/propeller-prefix", method: "GET", path: "/api/v1/tasks", want: 404, msg: "no such endpoint"},
		{name: "api/method/PATCH-tasks", method: "PATCH", path: "/tasks", want: 405, msg: "method PATCH not allowed on /tasks"},
		{name: "api/method/DELETE-tasks", method: "DELETE", path: "/tasks", want: 405, msg: "method DELETE not allowed on /tasks"},
		{name: "api/method/PUT-health", method: "PUT", path: "/health", want: 405, msg: "method PUT not allowed on /health"},
		{name: "api/method/POST-workflow", method: "POST", path: "/workflows/{wf}", want: 405, msg: "not allowed"},
		{name: "api/method/GET-start", method: "GET", path: "/tasks/{done}/start", want: 405, msg: "method GET not allowed"},
	}
}

// apiBodies: JSON that is not JSON, not an object, or not only one.
func apiBodies() []badInput {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	return []badInput{
		{name: "api/body/truncated-json", method: "POST", path: "/tasks", body: `{"name":`, want: 400, msg: "invalid JSON body: unexpected EOF"},
		{name: "api/body/empty", method: "POST", path: "/tasks", want: 400, msg: "empty body: want a JSON object"},
		{name: "api/body/array", method: "POST", path: "/tasks", body: `[]`, want: 400, msg: "cannot unmarshal array"},
		{name: "api/body/two-values", method: "POST", path: "/tasks", body: `{"name":"add"} {}`, want: 400, msg: "unexpected data after the JSON body"},
		{name: "api/body/unknown-field", method: "POST", path: "/tasks", body: `{"name":"add","colour":"red"}`, want: 400, msg: `unknown field "colour"`},
		{name: "api/body/wrong-type", method: "POST", path: "/tasks", body: `{"name":1}`, want: 400, msg: "cannot unmarshal number"},
		{name: "api/body/deep-nesting", method: "POST", path: "/tasks", body: deep, want: 400, msg: "invalid JSON body"},
		{name: "api/body/invalid-utf8-name", method: "POST", path: "/tasks", body: "{\"name\":\"\xff\xfe\",\"colour\":1}", want: 400, msg: `unknown field "colour"`},
		{name: "api/body/form-content-type", method: "POST", path: "/tokens", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: "name=x&role=viewer", want: 400, msg: "invalid JSON body"},
		{name: "api/body/workflow-truncated", method: "POST", path: "/workflows", body: `{"steps":[`, want: 400, msg: "invalid JSON body"},
		{name: "api/body/job-empty", method: "POST", path: "/jobs", want: 400, msg: "empty body"},
		{name: "api/body/device-empty", method: "POST", path: "/devices", want: 400, msg: "empty body"},
		{name: "api/body/revoke-wrong-type", method: "POST", path: "/devices/{provisioned}/revoke", body: `{"reason":1}`, want: 400, msg: "cannot unmarshal number"},
		{name: "api/body/cancel-wrong-type", method: "POST", path: "/workflows/{wf}/cancel", body: `{"reason":5}`, want: 400, msg: "cannot unmarshal number"},
		{name: "api/body/import-unknown-field", method: "POST", path: "/artifacts/import", body: `{"ref":"x","colour":1}`, want: 400, msg: `unknown field "colour"`},
		{name: "api/body/secret-unknown-field", method: "PUT", path: "/secrets/s1", body: `{"nope":1}`, want: 400, msg: `unknown field "nope"`},
		{name: "api/body/secret-no-value", method: "PUT", path: "/secrets/s1", body: `{}`, want: 400, msg: `want {"value": "..."}`},
		{name: "api/body/secret-empty-raw", method: "PUT", path: "/secrets/s1", header: map[string]string{"Content-Type": "text/plain"}, want: 400, msg: `secret "s1": the value is empty`},
	}
}

// apiTasks: task specs the API refuses.
func apiTasks() []badInput {
	return []badInput{
		{name: "api/task/empty-name", method: "POST", path: "/tasks", body: `{"name":""}`, want: 400, msg: "name (the function to call) is required"},
		{name: "api/task/blank-name", method: "POST", path: "/tasks", body: `{"name":"  \t"}`, want: 400, msg: "name (the function to call) is required"},
		{name: "api/task/bad-base64", method: "POST", path: "/tasks", body: `{"name":"add","file":"!!!not base64"}`, want: 400, msg: "illegal base64 data"},
		{name: "api/task/invalid-wasm", method: "POST", path: "/tasks", body: `{"name":"add","file":"aGVsbG8="}`, want: 400, msg: "not a wasm module"},
		{name: "api/task/bad-stdin-base64", method: "POST", path: "/tasks", body: `{"name":"add","stdin":"%%%"}`, want: 400, msg: "illegal base64 data"},
		{name: "api/task/kind", method: "POST", path: "/tasks", body: `{"name":"add","kind":"federated"}`, want: 400, msg: `kind "federated" is not supported`},
		{name: "api/task/file-and-image", method: "POST", path: "/tasks", body: `{"name":"add","file":"aGVsbG8=","image_url":"add:1"}`, want: 400, msg: "give file or image_url, not both"},
		{name: "api/task/bad-proplet-id", method: "POST", path: "/tasks", body: `{"name":"add","proplet_id":"a b"}`, want: 400, msg: `invalid id: "a b" contains ' '`},
		{name: "api/task/inputs-not-array", method: "POST", path: "/tasks", body: `{"name":"add","inputs":"1 2"}`, want: 400, msg: "want an array of strings or numbers"},
		{name: "api/task/inputs-object", method: "POST", path: "/tasks", body: `{"name":"add","inputs":[{"a":1}]}`, want: 400, msg: "invalid JSON body"},
		{name: "api/task/env-not-strings", method: "POST", path: "/tasks", body: `{"name":"add","env":{"A":1}}`, want: 400, msg: "cannot unmarshal number"},
		{name: "api/task/negative-memory", method: "POST", path: "/tasks", body: `{"name":"add","memory_mib":-1}`, want: 400, msg: "must not be negative"},
		{name: "api/task/negative-timeout", method: "POST", path: "/tasks", body: `{"name":"add","timeout_ms":-5}`, want: 400, msg: "must not be negative"},
		{name: "api/task/negative-attempts", method: "POST", path: "/tasks", body: `{"name":"add","retry":{"max_attempts":-1}}`, want: 400, msg: "must not be negative"},
		{name: "api/task/memory-overflows-int", method: "POST", path: "/tasks", body: `{"name":"add","memory_mib":99999999999999999999}`, want: 400, msg: "invalid JSON body"},
		{name: "api/task/idempotency-key-too-long", method: "POST", path: "/tasks", header: map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, body: `{"name":"add"}`, want: 400, msg: "Idempotency-Key must be 1 to 255 characters"},
		{name: "api/task/idempotency-key-control", method: "POST", path: "/tasks", header: map[string]string{"Idempotency-Key": "a\tb"}, body: `{"name":"add"}`, want: 400, msg: "Idempotency-Key"},
		{name: "api/task/start-without-module", method: "POST", path: "/tasks/{pending}/start", want: 400, msg: "has no module: upload one or set image_url"},
		{name: "api/task/stop-pending", method: "POST", path: "/tasks/{pending}/stop", want: 409, msg: "is pending, not running"},
		{name: "api/task/start-completed", method: "POST", path: "/tasks/{done}/start", want: 409, msg: "completed"},
		{name: "api/task/upload-text", method: "PUT", path: "/tasks/{pending}/upload", header: map[string]string{"Content-Type": "text/plain"}, body: "x", want: 400, msg: "want a multipart/form-data body"},
		{name: "api/task/upload-invalid-wasm", method: "PUT", path: "/tasks/{pending}/upload", header: map[string]string{"Content-Type": "application/wasm"}, body: "not wasm", want: 400, msg: "not a wasm module"},
		{name: "api/task/upload-multipart-no-file", method: "PUT", path: "/tasks/{pending}/upload", header: map[string]string{"Content-Type": "multipart/form-data; boundary=XX"}, body: "--XX\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--XX--\r\n", want: 400, msg: `multipart body has no "file" field`},
		{name: "api/task/upload-multipart-broken", method: "PUT", path: "/tasks/{pending}/upload", header: map[string]string{"Content-Type": "multipart/form-data; boundary=XX"}, body: "garbage", want: 400, msg: "multipart body"},
	}
}

// apiWorkflows: workflow specs (jetprop's and Propeller's) the API refuses.
func apiWorkflows() []badInput {
	step := `{"name":"a","module":"add:1","function":"add"}`
	wf := func(s string) string { return `{"name":"w",` + s + `}` }
	return []badInput{
		{name: "api/workflow/neither", method: "POST", path: "/workflows", body: `{}`, want: 400, msg: `want a workflow spec with "steps", or Propeller's workflow with "tasks"`},
		{name: "api/workflow/both", method: "POST", path: "/workflows", body: `{"steps":[],"tasks":[]}`, want: 400, msg: "not both"},
		{name: "api/workflow/no-steps", method: "POST", path: "/workflows", body: wf(`"steps":[]`), want: 400, msg: "at least one step is required"},
		{name: "api/workflow/cycle", method: "POST", path: "/workflows", body: wf(`"steps":[{"name":"a","module":"add:1","function":"add","depends_on":["b"]},{"name":"b","module":"add:1","function":"add","depends_on":["a"]}]`), want: 400, msg: "cycle: a → b → a"},
		{name: "api/workflow/self-dependency", method: "POST", path: "/workflows", body: wf(`"steps":[{"name":"a","module":"add:1","function":"add","depends_on":["a"]}]`), want: 400, msg: "cycle"},
		{name: "api/workflow/bad-cron", method: "POST", path: "/workflows", body: wf(`"cron":"not a cron","steps":[` + step + `]`), want: 400, msg: `cron "not a cron": want 5 fields`},
		{name: "api/workflow/cron-out-of-range", method: "POST", path: "/workflows", body: wf(`"cron":"61 * * * *","steps":[` + step + `]`), want: 400, msg: "cron"},
		{name: "api/workflow/bad-timezone", method: "POST", path: "/workflows", body: wf(`"cron":"0 * * * *","timezone":"Mars/Olympus","steps":[` + step + `]`), want: 400, msg: "Mars/Olympus"},
		{name: "api/workflow/empty-name", method: "POST", path: "/workflows", body: `{"name":"","steps":[` + step + `]}`, want: 400, msg: "name is required"},
		{name: "api/workflow/duplicate-step", method: "POST", path: "/workflows", body: wf(`"steps":[` + step + `,` + step + `]`), want: 400, msg: `duplicate step name "a"`},
		{name: "api/workflow/unknown-dependency", method: "POST", path: "/workflows", body: wf(`"steps":[{"name":"a","module":"add:1","function":"add","depends_on":["zz"]}]`), want: 400, msg: `depends_on unknown step "zz"`},
		{name: "api/workflow/unknown-module", method: "POST", path: "/workflows", body: wf(`"steps":[{"name":"a","module":"nosuch:9","function":"add"}]`), want: 400, msg: "image nosuch:9 is not in the catalog"},
		{name: "api/workflow/unknown-step-field", method: "POST", path: "/workflows", body: wf(`"steps":[{"name":"a","module":"add:1","function":"add","colour":1}]`), want: 400, msg: `unknown field "colour"`},
		{name: "api/workflow/bad-mode", method: "POST", path: "/workflows", body: wf(`"mode":"zigzag","steps":[` + step + `]`), want: 400, msg: `mode "zigzag": want dag, sequential or parallel`},
		{name: "api/workflow/bad-timeout", method: "POST", path: "/workflows", body: wf(`"steps":[{"name":"a","module":"add:1","function":"add","timeout":"soon"}]`), want: 400, msg: "soon"},
		{name: "api/workflow/bad-step-name", method: "POST", path: "/workflows", body: wf(`"steps":[{"name":"a b","module":"add:1","function":"add"}]`), want: 400, msg: "a b"},
		{name: "api/workflow/propeller-no-tasks", method: "POST", path: "/workflows", body: `{"tasks":[]}`, want: 400, msg: "tasks: at least one task is required"},
		{name: "api/workflow/propeller-no-name", method: "POST", path: "/workflows", body: `{"tasks":[{"name":""}]}`, want: 400, msg: "task 1: name (the function to call) is required"},
		{name: "api/workflow/propeller-unknown-dep", method: "POST", path: "/workflows", body: `{"tasks":[{"name":"a","depends_on":["x"]}]}`, want: 400, msg: `depends_on "x": no task of this request has this id or name`},
		{name: "api/workflow/propeller-no-module", method: "POST", path: "/workflows", body: `{"tasks":[{"id":"a","name":"a"}]}`, want: 400, msg: "module is required"},
		{name: "api/workflow/propeller-daemon", method: "POST", path: "/workflows", body: `{"tasks":[{"name":"a","daemon":true}]}`, want: 400, msg: "daemon tasks cannot be part of a job or workflow"},
		{name: "api/workflow/propeller-priority", method: "POST", path: "/workflows", body: `{"tasks":[{"name":"a","priority":101}]}`, want: 400, msg: "priority must be between 0 and 100, got 101"},
	}
}

// apiJobs: Propeller's jobs the API refuses.
func apiJobs() []badInput {
	return []badInput{
		{name: "api/job/execution-mode", method: "POST", path: "/jobs", body: `{"execution_mode":"random","tasks":[{"name":"a"}]}`, want: 400, msg: `execution_mode "random": want parallel, sequential or configurable`},
		{name: "api/job/no-tasks", method: "POST", path: "/jobs", body: `{"tasks":[]}`, want: 400, msg: "at least one task is required"},
		{name: "api/job/duplicate-ids", method: "POST", path: "/jobs", body: `{"tasks":[{"id":"a","name":"x"},{"id":"a","name":"y"}]}`, want: 400, msg: `two tasks have the id "a"`},
		{name: "api/job/task-schedule", method: "POST", path: "/jobs", body: `{"tasks":[{"name":"a","schedule":"* * * * *"}]}`, want: 400, msg: "has no schedule of its own"},
		{name: "api/job/encrypted", method: "POST", path: "/jobs", body: `{"tasks":[{"name":"a","encrypted":true}]}`, want: 400, msg: "encrypted workloads are not supported"},
		{name: "api/job/cli-args", method: "POST", path: "/jobs", body: `{"tasks":[{"name":"a","cli_args":["x"]}]}`, want: 400, msg: "cli_args are not supported"},
		{name: "api/job/two-modules", method: "POST", path: "/jobs", body: `{"tasks":[{"name":"a","file":"aGVsbG8=","image_url":"x:1"}]}`, want: 400, msg: "give one of file, image_url and wasm_http_url"},
		{name: "api/job/inline-invalid-wasm", method: "POST", path: "/jobs", body: `{"tasks":[{"name":"a","file":"aGVsbG8="}]}`, want: 400, msg: "inline module: not a wasm module"},
		{name: "api/job/ambiguous-dep", method: "POST", path: "/jobs", body: `{"tasks":[{"name":"a","image_url":"add:1"},{"name":"a","image_url":"add:1"},{"name":"b","image_url":"add:1","depends_on":["a"]}]}`, want: 400, msg: "several tasks have this name"},
	}
}

// apiQueries: query parameters out of range or of the wrong type.
func apiQueries() []badInput {
	var rows []badInput
	for _, list := range []string{"tasks", "proplets", "workflows", "jobs", "artifacts", "tokens", "secrets", "devices"} {
		rows = append(rows,
			badInput{name: "api/query/" + list + "-negative-offset", method: "GET", path: "/" + list + "?offset=-1", want: 400, msg: `offset "-1": want a whole number >= 0`},
			badInput{name: "api/query/" + list + "-limit-0", method: "GET", path: "/" + list + "?limit=0", want: 400, msg: `limit "0": want a whole number from 1 to 1000`},
		)
	}
	return append(rows,
		badInput{name: "api/query/limit-over-max", method: "GET", path: "/tasks?limit=1001", want: 400, msg: "from 1 to 1000"},
		badInput{name: "api/query/limit-not-number", method: "GET", path: "/tasks?limit=abc", want: 400, msg: `limit "abc"`},
		badInput{name: "api/query/offset-float", method: "GET", path: "/tasks?offset=1e3", want: 400, msg: `offset "1e3"`},
		badInput{name: "api/query/offset-over-int64", method: "GET", path: "/tasks?offset=99999999999999999999", want: 400, msg: "want a whole number >= 0"},
		badInput{name: "api/query/wait-negative", method: "GET", path: "/tasks/{done}/results?wait=-1s", want: 400, msg: `wait "-1s" must not be negative`},
		badInput{name: "api/query/wait-word", method: "GET", path: "/tasks/{done}/results?wait=soon", want: 400, msg: `wait "soon": want a duration such as 30s`},
		badInput{name: "api/query/after-word", method: "GET", path: "/workflows/{wf}?after=abc", want: 400, msg: `after "abc"`},
		badInput{name: "api/query/after-negative", method: "GET", path: "/workflows/{wf}?after=-1&wait=1s", want: 400, msg: `after "-1"`},
		badInput{name: "api/query/events-from", method: "GET", path: "/events?from=abc", want: 400, msg: `from "abc": want a stream sequence`},
		badInput{name: "api/query/events-follow", method: "GET", path: "/events?follow=maybe", want: 400, msg: `follow "maybe": want true or false`},
		badInput{name: "api/query/events-kind", method: "GET", path: "/events?kind=nosuch", want: 400, msg: `kind "nosuch": want one of`},
		badInput{name: "api/query/delete-all-word", method: "DELETE", path: "/artifacts/add?all=maybe", want: 400, msg: `"maybe": want true or false`},
	)
}

// apiArtifacts: artifact pushes, refs and imports the API refuses.
func apiArtifacts() []badInput {
	wasm := map[string]string{"Content-Type": "application/wasm"}
	return []badInput{
		{name: "api/artifact/push-no-name", method: "POST", path: "/artifacts", header: wasm, body: "x", want: 400, msg: "name is required"},
		{name: "api/artifact/push-invalid-wasm", method: "POST", path: "/artifacts?name=x", header: wasm, body: "hello", want: 400, msg: "not a wasm module"},
		{name: "api/artifact/push-text", method: "POST", path: "/artifacts?name=x", header: map[string]string{"Content-Type": "text/plain"}, body: "hello", want: 400, msg: "want a multipart/form-data body"},
		{name: "api/artifact/push-bad-name", method: "POST", path: "/artifacts?name=BAD%20NAME", header: wasm, body: "hello", want: 400, msg: `"BAD NAME" contains ' '`},
		{name: "api/artifact/bad-ref", method: "GET", path: "/artifacts/BAD%20REF", want: 400, msg: `"BAD REF" contains ' '`},
		{name: "api/artifact/bad-digest", method: "GET", path: "/artifacts/sha256:xyz", want: 400, msg: "is not a digest"},
		{name: "api/artifact/import-empty-ref", method: "POST", path: "/artifacts/import", body: `{"ref":""}`, want: 400, msg: "give the OCI reference to import"},
		{name: "api/artifact/import-colons", method: "POST", path: "/artifacts/import", body: `{"ref":"::::"}`, want: 400, msg: "is no artifact name:tag"},
	}
}

// apiAccess: tokens, secrets and devices (admin routes, open in dev mode).
func apiAccess() []badInput {
	return []badInput{
		{name: "api/token/bad-role", method: "POST", path: "/tokens", body: `{"name":"t","role":"god"}`, want: 400, msg: `role "god": want viewer, operator or admin`},
		{name: "api/token/empty-name", method: "POST", path: "/tokens", body: `{"name":"","role":"viewer"}`, want: 400, msg: `token name "": want 1 to 64 printable characters`},
		{name: "api/token/unknown-field", method: "POST", path: "/tokens", body: `{"name":"a","role":"viewer","x":1}`, want: 400, msg: `unknown field "x"`},
		{name: "api/secret/bad-name", method: "PUT", path: "/secrets/bad%20name", header: map[string]string{"Content-Type": "text/plain"}, body: "v", want: 400, msg: `secret name "bad name": want 1 to 64 letters`},
		{name: "api/device/empty-id", method: "POST", path: "/devices", body: `{"id":""}`, want: 400, msg: "must be 1 to 128 characters"},
		{name: "api/device/bad-id", method: "POST", path: "/devices", body: `{"id":"a b"}`, want: 400, msg: `invalid id: "a b"`},
		{name: "api/device/unknown-field", method: "POST", path: "/devices", body: `{"id":"x","bogus":1}`, want: 400, msg: `unknown field "bogus"`},
		{name: "api/device/provisioned-twice", method: "POST", path: "/devices", body: `{"id":"{provisioned}"}`, want: 409, msg: "is provisioned already"},
	}
}

// apiAuth: the server with --auth on, asked without a token, with a wrong
// one, or with too small a role.
func apiAuth() []badInput {
	return []badInput{
		{name: "auth/no-token", as: "anonymous", method: "GET", path: "/tasks", want: 401, msg: "token"},
		{name: "auth/wrong-token", as: "wrong-token", method: "GET", path: "/tasks", want: 401, msg: "token"},
		{name: "auth/basic-auth", as: "anonymous", method: "GET", path: "/tasks", header: map[string]string{"Authorization": "Basic YTpi"}, want: 401, msg: "Bearer"},
		{name: "auth/no-token-unknown-path", as: "anonymous", method: "GET", path: "/nosuch", want: 401, msg: "token"},
		{name: "auth/no-token-create", as: "anonymous", method: "POST", path: "/tasks", body: `{"name":"add"}`, want: 401, msg: "token"},
		{name: "auth/viewer-creates-task", as: "viewer", method: "POST", path: "/tasks", body: `{"name":"add"}`, want: 403, msg: "operator"},
		{name: "auth/viewer-lists-tokens", as: "viewer", method: "GET", path: "/tokens", want: 403, msg: "admin"},
		{name: "auth/viewer-sets-secret", as: "viewer", method: "PUT", path: "/secrets/x", header: map[string]string{"Content-Type": "text/plain"}, body: "v", want: 403, msg: "admin"},
		{name: "auth/cli-wrong-token", as: "wrong-token", args: []string{"task", "list"}, want: 1, msg: "401"},
		{name: "auth/mqtt-anonymous", as: "anonymous", custom: mqttConnect("", ""), want: 5, msg: "not Authorized"},
		{name: "auth/mqtt-wrong-key", as: "anonymous", custom: mqttConnect("ghost", "wrong"), want: 5, msg: "not Authorized"},
	}
}

// mqttConnect connects to the auth server's MQTT port as user with
// password and returns the CONNACK's return code (5: not authorised) and
// the error.
func mqttConnect(user, password string) func(context.Context, *badRig, *badServer) (int, string, error) {
	return func(_ context.Context, _ *badRig, s *badServer) (int, string, error) {
		opts := paho.NewClientOptions().AddBroker("tcp://127.0.0.1:" + strconv.Itoa(s.ports.mqtt)).
			SetClientID("badinput-intruder").SetUsername(user).SetPassword(password).
			SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).
			SetProtocolVersion(4) // 3.1.1 only: no fallback to 3.1, which nats-server refuses otherwise
		c := paho.NewClient(opts)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return 0, "", errors.New("MQTT connect: no answer")
		}
		if tok.Error() == nil {
			c.Disconnect(0)
			return 0, "connected", nil
		}
		return int(tok.(*paho.ConnectToken).ReturnCode()), tok.Error().Error(), nil
	}
}

// cliRows: command lines the CLI refuses: usage errors exit 2, failures 1.
func cliRows() []badInput {
	cli := func(name string, want int, msg string, args ...string) badInput {
		return badInput{name: "cli/" + name, args: append([]string{}, args...), want: want, msg: msg}
	}
	return []badInput{
		cli("no-command", 2, "Usage: jetprop <command>"),
		cli("unknown-command", 2, `unknown command "nosuch"`, "nosuch"),
		cli("unknown-subcommand", 2, `unknown command "task nosuch"`, "task", "nosuch"),
		cli("help-unknown", 2, `unknown command "nosuch"`, "help", "nosuch"),
		cli("missing-argument", 2, "missing arguments: want <id>", "task", "get"),
		cli("extra-argument", 2, `unexpected arguments ["b"]`, "task", "get", "a", "b"),
		cli("unknown-flag", 2, "flag provided but not defined: -bogus", "task", "list", "--bogus"),
		cli("flag-not-a-number", 2, `invalid value "abc" for flag -limit`, "task", "list", "--limit", "abc"),
		cli("bad-output", 2, `"yaml": want one of table, json`, "task", "list", "--output", "yaml"),
		cli("flag-before-command", 2, `unknown command "--server"`, "--server", "http://127.0.0.1:1", "task", "list"),
		cli("task-get-unknown", 1, `task "nosuch": not found (HTTP 404)`, "task", "get", "nosuch"),
		cli("task-start-unknown", 1, "not found (HTTP 404)", "task", "start", "nosuch"),
		cli("task-stop-unknown", 1, "not found (HTTP 404)", "task", "stop", "nosuch"),
		cli("task-delete-unknown", 1, "not found (HTTP 404)", "task", "delete", "nosuch"),
		cli("task-results-unknown", 1, "not found (HTTP 404)", "task", "results", "nosuch"),
		cli("task-start-no-module", 1, "has no module", "task", "start", "{pending}"),
		cli("task-create-no-name", 1, "--name is required", "task", "create"),
		cli("task-create-env-no-equals", 2, `"A": want KEY=VALUE`, "task", "create", "--name", "add", "--env", "A"),
		cli("task-create-negative-timeout", 1, "--timeout -1s: want 0 (the proplet's default) or at least 1ms", "task", "create", "--name", "add", "--timeout", "-1s"),
		cli("run-no-arguments", 2, "missing arguments: want <module.wasm> <function>", "run"),
		cli("run-missing-file", 1, "no such file or directory", "run", "{dir}/nosuch.wasm", "add"),
		cli("run-invalid-wasm", 1, "not a wasm module", "run", "{dir}/not.wasm", "add"),
		cli("run-memory-word", 2, `invalid value "abc" for flag -memory`, "run", "--memory", "abc", "{dir}/add.wasm", "add"),
		cli("run-timeout-word", 2, `invalid value "xyz" for flag -timeout`, "run", "--timeout", "xyz", "{dir}/add.wasm", "add"),
		cli("workflow-apply-no-file", 2, "-f FILE is required", "workflow", "apply"),
		cli("workflow-apply-positional", 2, "unexpected arguments", "workflow", "apply", "{dir}/cyclic.yaml"),
		cli("workflow-apply-missing-file", 1, "no such file or directory", "workflow", "apply", "-f", "{dir}/nosuch.yaml"),
		cli("workflow-apply-broken-yaml", 1, "yaml: line 2", "workflow", "apply", "-f", "{dir}/broken.yaml"),
		cli("workflow-apply-cycle", 1, "cycle: a → b → a", "workflow", "apply", "-f", "{dir}/cyclic.yaml"),
		cli("workflow-apply-unknown-field", 1, `unknown field "colour"`, "workflow", "apply", "-f", "{dir}/unknown.yaml"),
		cli("workflow-apply-bad-cron", 1, `cron "every day"`, "workflow", "apply", "-f", "{dir}/badcron.yaml"),
		cli("workflow-apply-no-name", 1, "name is required", "workflow", "apply", "-f", "{dir}/noname.yaml"),
		cli("workflow-apply-empty", 1, "the file is empty", "workflow", "apply", "-f", "{dir}/empty.yaml"),
		cli("workflow-apply-list", 1, "want a mapping (name:, steps:), got a list", "workflow", "apply", "-f", "{dir}/list.yaml"),
		{name: "cli/workflow-apply-empty-stdin", args: []string{"workflow", "apply", "-f", "-"}, stdin: "", want: 1, msg: "<stdin>: the file is empty"},
		cli("workflow-get-unknown", 1, `workflow "nosuch": not found`, "workflow", "get", "nosuch"),
		cli("workflow-watch-unknown", 1, `workflow "nosuch": not found`, "workflow", "watch", "nosuch"),
		cli("artifact-get-unknown", 1, "artifact nosuch:latest: not found", "artifact", "get", "nosuch"),
		cli("artifact-push-no-file", 2, "missing arguments: want <module.wasm>", "artifact", "push"),
		cli("artifact-push-invalid-wasm", 1, "not a wasm module", "artifact", "push", "{dir}/not.wasm", "--name", "x"),
		cli("artifact-rm-unknown", 1, "not found (HTTP 404)", "artifact", "rm", "nosuch"),
		cli("artifact-import-empty", 1, "give the OCI reference to import", "artifact", "import", ""),
		cli("token-bad-role", 2, `"god": want one of`, "token", "create", "--role", "god", "x"),
		cli("device-bad-id", 1, `invalid id: "a b"`, "device", "add", "a b"),
		cli("secret-set-no-name", 2, "missing arguments: want <name>", "secret", "set"),
		cli("events-tail-unknown-flag", 2, "flag provided but not defined: -kind", "events", "tail", "--kind", "x"),
		cli("proplets-get-unknown", 1, `proplet "nosuch": not found`, "proplets", "get", "nosuch"),
		cli("server-unreachable", 1, "connection refused", "task", "list", "--server", "http://127.0.0.1:1", "--retry-for", "0"),
	}
}

// deviceRows: messages a device publishes that the engine drops, each
// counted under its outcome in GET /inbound/stats.
func deviceRows() []badInput {
	dev := func(name, topic, payload, outcome string) badInput {
		return badInput{name: "device/" + name, topic: topic, payload: payload, outcome: outcome}
	}
	const (
		results = "control/proplet/results"
		alive   = "control/proplet/alive"
		create  = "control/proplet/create"
	)
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	return []badInput{
		dev("results-not-json", results, "{", "malformed"),
		dev("results-array", results, "[]", "malformed"),
		dev("results-deep-nesting", results, deep, "malformed"),
		dev("results-no-task-id", results, `{"proplet_id":"ghost","results":"1"}`, "malformed"),
		dev("results-task-id-number", results, `{"task_id":5,"proplet_id":"ghost"}`, "malformed"),
		dev("results-unknown-task", results, `{"task_id":"nosuch","proplet_id":"ghost","results":"1"}`, "ignored:unknown"),
		dev("results-unknown-task-large", results, `{"task_id":"nosuch","proplet_id":"ghost","results":"`+strings.Repeat("x", 200<<10)+`"}`, "ignored:unknown"),
		dev("results-completed-task", results, `{"task_id":"{done}","proplet_id":"ghost","attempt":1,"results":"666"}`, "recorded"), // a no-op: the task keeps its result
		dev("results-other-device-topic", "control/proplet/ghost/results", `{"task_id":"{done}","proplet_id":"{proplet}","results":"666"}`, "malformed"),
		dev("alive-no-proplet-id", alive, `{"status":"alive"}`, "malformed"),
		dev("alive-bad-status", alive, `{"proplet_id":"ghost","status":"dancing"}`, "malformed"),
		dev("alive-unreachable-no-reason", alive, `{"proplet_id":"ghost","status":"unreachable"}`, "malformed"),
		dev("alive-not-json", alive, "hello", "malformed"),
		dev("alive-other-device-topic", "control/proplet/ghost/alive", `{"proplet_id":"{proplet}","status":"offline"}`, "malformed"),
		dev("create-no-proplet-id", create, `{}`, "malformed"),
		dev("create-proplet-id-number", create, `{"proplet_id":7}`, "malformed"),
		dev("create-other-device-topic", "control/proplet/ghost/create", `{"proplet_id":"{proplet}"}`, "malformed"),
		dev("accepted-shared-topic", "control/proplet/accepted", `{"task_id":"{done}","attempt":1}`, "ignored:unhandled"),
		dev("accepted-no-task-id", "control/proplet/ghost/accepted", `{"attempt":1}`, "malformed"),
		dev("accepted-no-attempt", "control/proplet/ghost/accepted", `{"task_id":"{done}"}`, "malformed"),
		dev("unknown-topic", "control/proplet/nosuch", `{}`, "ignored:unhandled"),
		dev("task-metrics-not-json", "control/proplet/task_metrics", "{", "malformed"),
		dev("metrics-string", "control/proplet/metrics", `"metrics"`, "malformed"),
		dev("module-request-empty", "registry/proplet", `{}`, "malformed"),
	}
}

// issue12Rows are the cases issue 12 found not refused (or crashing the
// server), with the answer they get now.
func issue12Rows() []badInput {
	manyInputs := `{"name":"add","inputs":[` + strings.TrimSuffix(strings.Repeat(`"1",`, 1_000_000), ",") + `]}`
	bigFile := `{"name":"add","file":"` + strings.Repeat("A", 24<<20) + `"}`
	return []badInput{
		// bounds: request bodies, inputs, names, env, tags, retries, workflow size, pagination.
		{name: "api/task-json-body-over-bound", method: "POST", path: "/tasks", body: bigFile, want: 413, msg: "/upload"},
		{name: "api/task-million-inputs", method: "POST", path: "/tasks", body: manyInputs, want: 400, msg: "inputs"},
		{name: "api/task-long-name", method: "POST", path: "/tasks", body: `{"name":"` + strings.Repeat("n", 10<<10) + `"}`, want: 400, msg: "name"},
		{name: "api/task-env-count", method: "POST", path: "/tasks", body: `{"name":"add","env":{` + manyEnv(10_000) + `}}`, want: 400, msg: "env"},
		{name: "api/task-env-value-size", method: "POST", path: "/tasks", body: `{"name":"add","env":{"A":"` + strings.Repeat("v", 1<<20) + `"}}`, want: 400, msg: "env"},
		{name: "api/task-retry-attempts", method: "POST", path: "/tasks", body: `{"name":"add","retry":{"max_attempts":1000000000}}`, want: 400, msg: "max_attempts"},
		{name: "api/workflow-retry-attempts", method: "POST", path: "/workflows", body: `{"name":"w","steps":[{"name":"a","module":"add:1","function":"add","retry":{"max_attempts":1000000000,"initial_backoff":"1ms"}}]}`, want: 400, msg: "max_attempts"},
		{name: "api/workflow-retry-backoff", method: "POST", path: "/workflows", body: `{"name":"w","steps":[{"name":"a","module":"add:1","function":"add","retry":{"max_attempts":3,"initial_backoff":"1ns"}}]}`, want: 400, msg: "backoff"},
		{name: "api/workflow-step-count", method: "POST", path: "/workflows", body: manySteps(20_000), want: 400, msg: "steps"},
		{name: "api/jobs-offset-overflow", method: "GET", path: "/jobs?offset=9223372036854775807", want: 200, msg: `"jobs":[]`},
		{name: "api/slow-body", custom: slowBody(time.Second), want: 408, msg: "timeout"},
		// runtime: memory against wasm32's maximum, the timeout the help promises.
		{name: "api/task-memory-over-wasm32", method: "POST", path: "/tasks", body: `{"name":"grow","memory_mib":100000}`, want: 400, msg: "memory"},
		// The host's memory is measured by runtime's own test; here the run must end and change no more than its task.
		{name: "cli/run-grow-to-4GiB", args: []string{"run", "--memory", "4096", "--timeout", "20s", "{dir}/grow.wasm", "grow", "65535"}, want: 0, msg: "1", changes: []string{"tasks", "stream:TASKS"}},
		{name: "cli/run-memory-over-wasm32", args: []string{"run", "--memory", "100000", "{dir}/grow.wasm", "grow", "1"}, want: 1, msg: "memory"},
		// door: refused at create what will certainly fail later.
		{name: "api/task-env-empty-key", method: "POST", path: "/tasks", body: `{"name":"add","env":{"":"v"}}`, want: 400, msg: "env"},
		{name: "api/task-env-key-with-equals", method: "POST", path: "/tasks", body: `{"name":"add","env":{"A=B":"v"}}`, want: 400, msg: "env"},
		{name: "api/task-env-key-nul", method: "POST", path: "/tasks", body: `{"name":"add","env":{"N\u0000":"v"}}`, want: 400, msg: "env"},
		{name: "api/task-unknown-image", method: "POST", path: "/tasks", body: `{"name":"add","image_url":"nosuch:9"}`, want: 400, msg: "image nosuch:9 is not in the catalog"},
		{name: "api/task-function-not-exported", method: "POST", path: "/tasks", body: `{"name":"nosuch","image_url":"add:1"}`, want: 400, msg: "nosuch"},
		{name: "api/workflow-no-function-no-start", method: "POST", path: "/workflows", body: `{"name":"w","steps":[{"name":"a","module":"add:1"}]}`, want: 400, msg: "_start"},
		{name: "api/workflow-function-not-exported", method: "POST", path: "/workflows", body: `{"name":"w","steps":[{"name":"a","module":"add:1","function":"nosuch"}]}`, want: 400, msg: "nosuch"},
		{name: "cli/version", args: []string{"--version"}, want: 0, msg: "jetprop"},
		{name: "cli/server-unreachable-says-where", args: []string{"task", "list", "--server", "http://127.0.0.1:1", "--retry-for", "0"}, want: 1, msg: "--server"},
		{name: "cli/pull-no-overwrite", args: []string{"artifact", "pull", "add:1", "-o", "{dir}/add.wasm"}, want: 1, msg: "--force"},
		// devices: device message bounds per kind.
		{name: "device/discovery-900KB-metadata", topic: "control/proplet/create", payload: `{"proplet_id":"ghost","metadata":{"blob":"` + strings.Repeat("m", 900<<10) + `"}}`, outcome: "ignored:too_large"},
		{name: "device/result-900KB", topic: "control/proplet/results", payload: `{"task_id":"{done}","proplet_id":"ghost","results":"` + strings.Repeat("r", 900<<10) + `"}`, outcome: "ignored:too_large"},
	}
}

func manyEnv(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"K%d":"v"`, i)
	}
	return strings.Join(parts, ",")
}

func manySteps(n int) string {
	steps := make([]string, n)
	for i := range steps {
		steps[i] = fmt.Sprintf(`{"name":"s%d","module":"add:1","function":"add"}`, i)
	}
	return `{"name":"w","steps":[` + strings.Join(steps, ",") + `]}`
}

// slowBody sends POST /tasks's body a byte every pause (a slowloris) and
// returns the status the server answers with, or 0 with "closed" when it
// closes the connection; holding it past the request's timeout is an
// error.
func slowBody(pause time.Duration) func(context.Context, *badRig, *badServer) (int, string, error) {
	return func(ctx context.Context, _ *badRig, s *badServer) (int, string, error) {
		conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.ports.http))
		if err != nil {
			return 0, "", err
		}
		defer conn.Close()
		body := `{"name":"add"}`
		fmt.Fprintf(conn, "POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		type reply struct {
			status int
			body   string
		}
		answer := make(chan reply, 1)
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				answer <- reply{body: "closed"}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			answer <- reply{resp.StatusCode, string(b)}
		}()
		for i := range len(body) {
			select {
			case a := <-answer:
				return a.status, a.body, nil
			case <-time.After(pause):
			case <-ctx.Done():
				return 0, "", fmt.Errorf("connection held %d bytes into the body: %w", i, ctx.Err())
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return 0, "closed", nil
			}
		}
		return 0, "", errors.New("the whole body was taken a byte at a time")
	}
}
