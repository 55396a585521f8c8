package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// wasmguardRows: modules whose declared counts wazero would allocate before
// reading them (one took 14 GB, another asks for 32 GiB at once and kills
// the process) are refused by domain.CheckModule on every way in, naming
// the section and the count: at the module store (400), and at the
// proplet for a module it fetches itself (the task fails, the proplet
// lives); the suite then checks the server is up.
func wasmguardRows() []badInput {
	wasm := map[string]string{"Content-Type": "application/wasm"}
	file := func(b []byte) string {
		return `{"name":"run","file":"` + base64.StdEncoding.EncodeToString(b) + `"}`
	}
	return []badInput{
		{name: "api/task-file-export-count-bomb", method: "POST", path: "/tasks", body: file(wasmfixtures.ExportBomb()), want: 400,
			msg: "invalid wasm module: section export ends inside its exports count"},
		{name: "api/task-file-locals-bomb", method: "POST", path: "/tasks", body: file(wasmfixtures.LocalsBomb()), want: 400,
			msg: "invalid wasm module: section code declares 4294967295 locals in function body 0, the bound is 50000"},
		{name: "api/artifact/push-export-count-bomb", method: "POST", path: "/artifacts?name=bomb:1", header: wasm, body: string(wasmfixtures.ExportBomb()), want: 400,
			msg: "invalid wasm module: section export ends inside its exports count"},
		{name: "api/artifact/push-locals-bomb", method: "POST", path: "/artifacts?name=bomb:1", header: wasm, body: string(wasmfixtures.LocalsBomb()), want: 400,
			msg: "section code declares 4294967295 locals"},
		{name: "proplet/http-image-url-locals-bomb", custom: fetchedBomb(wasmfixtures.LocalsBomb()), want: 200,
			msg: "runtime: invalid wasm module: section code declares 4294967295 locals in function body 0", changes: []string{"tasks", "stream:TASKS"}},
	}
}

// fetchedBomb creates and starts a task whose module the proplet fetches
// from a URL serving module, and answers 200 and the task's error once it
// failed.
func fetchedBomb(module []byte) func(context.Context, *badRig, *badServer) (int, string, error) {
	return func(ctx context.Context, r *badRig, s *badServer) (int, string, error) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(module) }))
		defer srv.Close()
		status, b, err := r.send(ctx, s, "", "POST", "/tasks", nil, `{"name":"run","image_url":"`+srv.URL+`/bomb.wasm"}`)
		var task httpapi.Task
		if err != nil || status != http.StatusCreated || json.Unmarshal(b, &task) != nil {
			return status, string(b), err
		}
		if status, b, err = r.send(ctx, s, "", "POST", "/tasks/"+task.ID+"/start", nil, ""); err != nil || status >= 300 {
			return status, string(b), err
		}
		return waitFailed(ctx, r, s, task.ID)
	}
}

// waitFailed polls a task until it failed and answers 200 and its error.
func waitFailed(ctx context.Context, r *badRig, s *badServer, id string) (int, string, error) {
	for {
		_, b, err := r.send(ctx, s, "", "GET", "/tasks/"+id, nil, "")
		var task httpapi.Task
		if err == nil && json.Unmarshal(b, &task) == nil && task.Status == "failed" {
			return http.StatusOK, task.Error, nil
		}
		select {
		case <-ctx.Done():
			return 0, string(b), fmt.Errorf("task %s did not fail: %w", id, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
