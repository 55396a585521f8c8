package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// doorCase is one create the API refuses (or, with wantStatus 201, takes)
// at the door: a request, the status and a substring of the error. A row
// with module names an upload (a fresh module, never stored before) that
// must not be stored when refused.
type doorCase struct {
	name       string
	method     string // default POST
	path       string
	body       any
	module     []byte // the module of the body's "file", checked not stored when refused
	wantStatus int
	wantMsg    string
}

// doorModule is a module that exports add only, with other bytes (another
// digest) at every call.
func doorModule() []byte { return wasmfixtures.Padded(wasmfixtures.Add(), 4096) }

func doorCases() []doorCase {
	task := func(fields map[string]any) map[string]any {
		body := map[string]any{"name": "add", "image_url": "ghcr.io/jetprop/add:1"}
		for k, v := range fields {
			body[k] = v
		}
		return body
	}
	step := func(fields map[string]any) map[string]any {
		st := map[string]any{"name": "a", "module": "ghcr.io/jetprop/add:1"}
		for k, v := range fields {
			st[k] = v
		}
		return map[string]any{"name": "w", "steps": []any{st}}
	}
	upload, upload2 := doorModule(), doorModule()
	return []doorCase{
		// Env names a runtime cannot set (criterion 3).
		{name: "task env empty key", path: "/tasks", body: task(map[string]any{"env": map[string]string{"": "1"}}), wantStatus: 400, wantMsg: "env: a key is empty"},
		{name: "task env key with =", path: "/tasks", body: task(map[string]any{"env": map[string]string{"A=B": "1"}}), wantStatus: 400, wantMsg: `env: key "A=B" holds '='`},
		{name: "task env key with NUL", path: "/tasks", body: task(map[string]any{"env": map[string]string{"N\x00": "1"}}), wantStatus: 400, wantMsg: `env: key "N\x00" holds a NUL byte`},
		{name: "task env value with NUL", path: "/tasks", body: task(map[string]any{"env": map[string]string{"V": "a\x00b"}}), wantStatus: 400, wantMsg: `the value of "V" holds a NUL byte`},
		{name: "task env key with dash is fine", path: "/tasks", body: task(map[string]any{"env": map[string]string{"my-var": "1"}}), wantStatus: 201},
		{name: "step env key with =", path: "/workflows", body: step(map[string]any{"env": map[string]string{"A=B": "1"}}), wantStatus: 400, wantMsg: `step "a": env: key "A=B" holds '='`},
		{name: "step env empty key", path: "/workflows", body: step(map[string]any{"env": map[string]string{"": "1"}}), wantStatus: 400, wantMsg: `step "a": env: a key is empty`},
		// Images that name the catalog and are not in it.
		{name: "task image not in the catalog", path: "/tasks", body: task(map[string]any{"image_url": "nosuch:9"}), wantStatus: 400,
			wantMsg: "image nosuch:9 is not in the catalog; push it with `jetprop artifact push` or give a full OCI reference registry/repo:tag"},
		{name: "task image without a registry host", path: "/tasks", body: task(map[string]any{"image_url": "demo/add:1"}), wantStatus: 400, wantMsg: "image demo/add:1 is not in the catalog"},
		{name: "task image digest not stored", path: "/tasks", body: task(map[string]any{"image_url": "sha256:" + strings.Repeat("0", 64)}), wantStatus: 400, wantMsg: "no module with this digest is stored"},
		{name: "step module not in the catalog", path: "/workflows", body: step(map[string]any{"module": "nosuch:9"}), wantStatus: 400, wantMsg: `step "a": image nosuch:9 is not in the catalog`},
		{name: "task image with a registry host passes", path: "/tasks", body: task(map[string]any{"image_url": "localhost:5000/demo/add:1"}), wantStatus: 201},
		{name: "task image URL passes", path: "/tasks", body: task(map[string]any{"image_url": "https://example.com/add.wasm"}), wantStatus: 201},
		// Functions the stored module does not export.
		{name: "task function not exported by the catalog image", path: "/tasks", body: task(map[string]any{"name": "ad", "image_url": "door:1"}), wantStatus: 400,
			wantMsg: `function "ad" is not exported by module door:1 (sha256:`},
		{name: "task function not exported by the uploaded module", path: "/tasks", body: map[string]any{"name": "ad", "file": upload}, module: upload, wantStatus: 400,
			wantMsg: `function "ad" is not exported by the uploaded module (nor is main, run or _start, which proplets fall back to); it exports "add"`},
		{name: "task function exported by the uploaded module", path: "/tasks", body: map[string]any{"name": "add", "file": upload2}, wantStatus: 201},
		{name: "task function of a fallback module", path: "/tasks", body: task(map[string]any{"name": "anything", "image_url": "fallback:1"}), wantStatus: 201},
		{name: "step function not exported", path: "/workflows", body: step(map[string]any{"module": "door:1", "function": "ad"}), wantStatus: 400,
			wantMsg: `step "a": function "ad" is not exported by module door:1`},
		{name: "step default function (_start) not exported", path: "/workflows", body: step(map[string]any{"module": "door:1"}), wantStatus: 400,
			wantMsg: `function "_start" is not exported by module door:1`},
		{name: "step default function of a WASI command", path: "/workflows", body: step(map[string]any{"module": "echo:1"}), wantStatus: 201},
		// The API takes the workflow inputs YAML takes (criterion 9).
		{name: "step inputs as numbers", path: "/workflows", body: step(map[string]any{"inputs": []any{1, 2.5, "x", true}}), wantStatus: 201},
		{name: "step inputs as objects", path: "/workflows", body: step(map[string]any{"inputs": []any{map[string]any{}}}), wantStatus: 400, wantMsg: "want a string or number"},
	}
}

func TestDoor(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx := context.Background()
	for name, m := range map[string][]byte{"door": wasmfixtures.Add(), "fallback": wasmfixtures.Fallback(), "echo": wasmfixtures.Echo()} {
		if _, err := s.Service.PushArtifact(ctx, name, "1", bytes.NewReader(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range doorCases() {
		t.Run(tc.name, func(t *testing.T) {
			before := lastSeqs(t, s)
			status, msg := doRequest(t, s.URL, tc)
			if status != tc.wantStatus || !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("%d %q, want %d with %q", status, msg, tc.wantStatus, tc.wantMsg)
			}
			if status < 300 {
				return
			}
			if after := lastSeqs(t, s); after != before {
				t.Fatalf("a refused request changed the streams: %v → %v", before, after)
			}
			if tc.module != nil && s.Modules.Has(ctx, domain.DigestOf(tc.module)) {
				t.Fatal("a refused module was stored")
			}
		})
	}
}

// lastSeqs are the last sequences of the streams a create may write.
func lastSeqs(t *testing.T, s *apitest.Stack) [3]uint64 {
	t.Helper()
	var out [3]uint64
	for i, k := range []events.Kind{events.KindTask, events.KindWorkflow, events.KindArtifact} {
		seq, err := s.Store.LastSeq(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = seq
	}
	return out
}

// doRequest sends tc and returns the status and the error message of a
// failure.
func doRequest(t *testing.T, base string, tc doorCase) (int, string) {
	t.Helper()
	b, err := json.Marshal(tc.body)
	if err != nil {
		t.Fatal(err)
	}
	method := tc.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, base+tc.path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return resp.StatusCode, e.Error
}
