package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func TestCLI_TaskRoundTrip(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	id := strings.TrimSpace(jetprop(ctx, vars, "", "task", "create", "--name", "add", "--file", writeModule(t), "--inputs", "10,20").ok(t))

	created := decodeTask(t, jetprop(ctx, vars, "", "task", "get", id).ok(t))
	if created.ID != id || created.Status != "pending" || strings.Join(created.Inputs, ",") != "10,20" || created.Module == "" {
		t.Fatalf("created %+v", created)
	}
	jetprop(ctx, vars, "", "task", "start", id).fails(t, exitError, "jetprop: no alive proplet")

	s.Announce(t, "p1")
	if out := jetprop(ctx, vars, "", "task", "start", id).ok(t); out != id+" scheduled on p1 (attempt 1)\n" {
		t.Fatalf("start printed %q", out)
	}
	jetprop(ctx, vars, "", "task", "results", id).fails(t, exitError, "is scheduled: no result yet")
	jetprop(ctx, vars, "", "task", "delete", id).fails(t, exitError, "stop it before deleting")

	s.Record(t, id, "30", "")
	if out := jetprop(ctx, vars, "", "task", "results", id, "--wait", "5s").ok(t); out != "30\n" {
		t.Fatalf("results printed %q", out)
	}
	var r httpapi.Results
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "task", "results", "-o", "json", id).ok(t)), &r); err != nil || string(r.Results) != `"30"` {
		t.Fatalf("results JSON %+v %v", r, err)
	}
	if got := decodeTask(t, jetprop(ctx, vars, "", "task", "get", id).ok(t)); got.Status != "completed" || got.State != 3 {
		t.Fatalf("completed %+v", got)
	}
	if out := jetprop(ctx, vars, "", "task", "delete", id).ok(t); out != id+" deleted\n" {
		t.Fatalf("delete printed %q", out)
	}
	jetprop(ctx, vars, "", "task", "get", id).fails(t, exitError, "not found (HTTP 404)")
}

func decodeTask(t *testing.T, out string) httpapi.Task {
	t.Helper()
	var task httpapi.Task
	if err := json.Unmarshal([]byte(out), &task); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	return task
}

func TestCLI_TaskFailedAndStopped(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	s.Announce(t, "p1")
	create := func() string {
		return strings.TrimSpace(jetprop(ctx, vars, "", "task", "create", "--name", "add", "--file", writeModule(t)).ok(t))
	}
	failed, stopped := create(), create()
	jetprop(ctx, vars, "", "task", "start", failed).ok(t)
	jetprop(ctx, vars, "", "task", "start", stopped).ok(t)
	s.Record(t, failed, "", "wasm trap: unreachable")
	jetprop(ctx, vars, "", "task", "results", failed).fails(t, exitError, "task "+failed+" failed: wasm trap: unreachable")
	if out := jetprop(ctx, vars, "", "task", "stop", stopped).ok(t); out != stopped+" stopped\n" {
		t.Fatalf("stop printed %q", out)
	}
	jetprop(ctx, vars, "", "task", "results", stopped).fails(t, exitError, "was stopped")
	jetprop(ctx, vars, "", "task", "stop", failed).fails(t, exitError, "not running")
}

func TestCLI_TaskCreateOptions(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	vars["JETPROP_TASK_CREATE_MEMORY"] = "16"
	id := strings.TrimSpace(jetprop(ctx, vars, "stdin text", "task", "create", "--name", "_start", "--image", "ghcr.io/x/echo:1",
		"--env", "A=1", "--env", "B=2", "--daemon", "--proplet", "p7", "--timeout", "1500ms", "--stdin", "-", "--cli-args", "-v,-x").ok(t))
	got, ok := s.Tasks.Get(id)
	want := "_start ghcr.io/x/echo:1 map[A:1 B:2] true p7 1500 16 stdin text [-v -x]"
	if have := fmt.Sprint(got.Name, " ", got.ImageURL, " ", got.Env, " ", got.Daemon, " ", got.TargetDevice, " ",
		got.TimeoutMS, " ", got.MemoryMiB, " ", string(got.Stdin), " ", got.CLIArgs); !ok || have != want {
		t.Fatalf("task %q, want %q", have, want)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no name", []string{"--image", "x:1"}, "--name is required"},
		{"missing file", []string{"--name", "add", "--file", "/nonexistent.wasm"}, "no such file"},
		{"not wasm", []string{"--name", "add", "--file", "cli_test.go"}, "not a wasm module: missing the \\0asm header"},
		{"file and image", []string{"--name", "add", "--file", writeModule(t), "--image", "x:1"}, "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jetprop(ctx, vars, "", append([]string{"task", "create"}, tc.args...)...).fails(t, exitError, tc.want)
		})
	}
}

func TestCLI_TaskList(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	var ids []string
	for _, name := range []string{"add", "mul"} {
		ids = append(ids, strings.TrimSpace(jetprop(ctx, vars, "", "task", "create", "--name", name, "--image", "ghcr.io/jetprop/x:1").ok(t)))
	}

	table := jetprop(ctx, vars, "", "task", "list").ok(t)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "ID NAME STATUS PROPLET ATTEMPT UPDATED" {
		t.Fatalf("table:\n%s", table)
	}
	for i, id := range ids {
		if f := strings.Fields(lines[i+1]); len(f) != 6 || f[0] != id || f[2] != "pending" || f[3] != "-" || f[4] != "0" {
			t.Fatalf("row %d: %q", i, lines[i+1])
		}
	}

	var page httpapi.TaskList
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "task", "list", "-o", "json").ok(t)), &page); err != nil || page.Total != 2 || len(page.Tasks) != 2 {
		t.Fatalf("json page %+v %v", page, err)
	}
	vars["JETPROP_OUTPUT"] = "json"
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "task", "list", "--offset", "1").ok(t)), &page); err != nil || len(page.Tasks) != 1 || page.Tasks[0].ID != ids[1] {
		t.Fatalf("json page from env %+v %v", page, err)
	}
	delete(vars, "JETPROP_OUTPUT")
	if out := jetprop(ctx, vars, "", "task", "list", "--limit", "1").ok(t); !strings.Contains(out, "(1 of 2 tasks; more with --offset 1)") {
		t.Fatalf("first page:\n%s", out)
	}
	jetprop(ctx, vars, "", "task", "list", "--limit", "5000").fails(t, exitError, "limit")
}

func TestCLI_TaskUpload(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	id := strings.TrimSpace(jetprop(ctx, vars, "", "task", "create", "--name", "add").ok(t))
	out := jetprop(ctx, vars, "", "task", "upload", id, writeModule(t)).ok(t)
	if !strings.HasPrefix(out, id+" sha256:") || !strings.HasSuffix(out, " bytes)\n") {
		t.Fatalf("upload printed %q", out)
	}
	jetprop(ctx, vars, "", "task", "upload", id, "cli_test.go").fails(t, exitError, "not a wasm module")
	jetprop(ctx, vars, "", "task", "upload", "nope", writeModule(t)).fails(t, exitError, "not found")
}

// respondAdd plays a proplet that runs add: it returns the sum of the
// inputs, fails for the function "trap", and never answers "hang". It
// checks that the environment and stdin arrived.
func respondAdd(task engine.Task) (engine.RecordResult, bool) {
	switch {
	case task.Name == "hang":
		return engine.RecordResult{}, false
	case task.Name == "trap":
		return engine.RecordResult{Error: "wasm error: unreachable"}, true
	case task.Env["MODE"] != "test" || string(task.Stdin) != "input":
		return engine.RecordResult{Error: fmt.Sprintf("env %v, stdin %q", task.Env, task.Stdin)}, true
	}
	sum := 0
	for _, in := range task.Inputs {
		n, err := strconv.Atoi(in)
		if err != nil {
			return engine.RecordResult{Error: err.Error()}, true
		}
		sum += n
	}
	return engine.RecordResult{Result: json.RawMessage(strconv.Quote(strconv.Itoa(sum)))}, true
}

func TestCLI_Run(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	s.Announce(t, "p1")
	s.Respond(t, respondAdd)
	vars := serverEnv(s)
	vars["JETPROP_RUN_ENV"] = "MODE=test"
	module := writeModule(t)
	// trap and hang are no exports of add: the module that exports main
	// and run takes any name (proplets fall back to those).
	fallback := filepath.Join(t.TempDir(), "fallback.wasm")
	if err := os.WriteFile(fallback, wasmfixtures.Fallback(), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		want     string
		wantCode int
		wantErr  string
	}{
		{"add", []string{module, "add", "10", "20"}, "30\n", exitOK, ""},
		{"flags after arguments, negative input", []string{module, "add", "-5", "3", "--proplet", "p1", "--timeout", "5s"}, "-2\n", exitOK, ""},
		{"failed", []string{fallback, "trap"}, "", exitError, "failed: wasm error: unreachable"},
		{"gives up waiting", []string{"--wait", "300ms", fallback, "hang"}, "", exitError, "is scheduled: no result yet"},
		{"proplet not alive", []string{"--proplet", "p9", module, "add"}, "", exitError, "proplet \"p9\" is not alive"},
		{"missing module", []string{"/nonexistent.wasm", "add"}, "", exitError, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--stdin", "-"}, tc.args...)
			r := jetprop(t.Context(), vars, "input", args...)
			if r.code != tc.wantCode || r.stdout != tc.want || !strings.Contains(r.stderr, tc.wantErr) {
				t.Fatalf("exit %d stdout %q stderr %q; want %d %q %q", r.code, r.stdout, r.stderr, tc.wantCode, tc.want, tc.wantErr)
			}
		})
	}
}

func TestCLI_RunInterrupted(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	s.Announce(t, "p1")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	module, done := writeModule(t), make(chan result, 1)
	go func() { done <- jetprop(ctx, serverEnv(s), "", "run", module, "add") }()

	var id string
	natstest.CheckFor(t, apitest.Timeout, func() error {
		if active := s.Tasks.Active(); len(active) == 1 {
			id = active[0].ID
			return nil
		}
		return errors.New("no task scheduled yet")
	})
	cancel()
	(<-done).fails(t, exitError, "interrupted; task "+id+" stopped")
	natstest.CheckFor(t, apitest.Timeout, func() error {
		if task, _ := s.Tasks.Get(id); task.State != engine.TaskStopped {
			return fmt.Errorf("task is %s", task.State)
		}
		return nil
	})
}
