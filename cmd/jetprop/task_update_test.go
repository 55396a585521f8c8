package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestCLI_TaskUpdate: task update sends only the flags given (the rest of
// the task stays), is refused while the task is out on a proplet, and
// lets a failed task run again with what it now holds; a module above
// the inline limit goes by the upload route.
func TestCLI_TaskUpdate(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	id := strings.TrimSpace(jetprop(ctx, vars, "", "task", "create", "--name", "add", "--file", writeModule(t),
		"--inputs", "10,20", "--env", "A=1", "--timeout", "2s").ok(t))

	vars["JETPROP_TASK_UPDATE_PRIORITY"] = "90" // the flags' variables count as given
	if out := jetprop(ctx, vars, "", "task", "update", id, "--inputs", "5,6", "--metadata", "team=edge").ok(t); out != id+" updated (pending)\n" {
		t.Fatalf("update printed %q", out)
	}
	delete(vars, "JETPROP_TASK_UPDATE_PRIORITY")
	got, _ := s.Tasks.Get(id)
	if have, want := fmt.Sprint(got.Name, got.Inputs, got.Env, got.TimeoutMS, got.Priority, string(got.Metadata["team"])),
		`add[5 6] map[A:1] 2000 90"edge"`; have != want {
		t.Fatalf("after update %q, want %q", have, want)
	}

	s.Announce(t, "p1")
	jetprop(ctx, vars, "", "task", "start", id).ok(t)
	jetprop(ctx, vars, "", "task", "update", id, "--inputs", "1,2").fails(t, exitError, "stop it before updating it")
	s.Record(t, id, "", "wasm trap: unreachable")
	out := jetprop(ctx, vars, "", "task", "update", id, "-o", "json", "--inputs", "1,2", "--memory", "32").ok(t)
	if task := decodeTask(t, out); strings.Join(task.Inputs, ",") != "1,2" || task.MemoryMiB != 32 || task.Status != "failed" {
		t.Fatalf("update -o json %+v", task)
	}
	if out := jetprop(ctx, vars, "", "task", "start", id).ok(t); out != id+" scheduled on p1 (attempt 2)\n" {
		t.Fatalf("start after the update printed %q", out)
	}
	s.Record(t, id, "3", "")

	big := filepath.Join(t.TempDir(), "big.wasm")
	if err := os.WriteFile(big, wasmfixtures.Padded(wasmfixtures.Add(), httpapi.MaxInlineModule+1), 0o644); err != nil {
		t.Fatal(err)
	}
	jetprop(ctx, vars, "", "task", "update", id, "--file", big, "--name", "add").ok(t)
	if got, _ := s.Tasks.Get(id); got.ModuleSize != httpapi.MaxInlineModule+1 {
		t.Fatalf("module after a large update: %d bytes", got.ModuleSize)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing", []string{id}, "nothing to update"},
		{"no id", []string{"--inputs", "1"}, "usage"},
		{"file and image", []string{id, "--file", writeModule(t), "--image", "x:1"}, "not both"},
		{"timeout", []string{id, "--timeout", "1000h"}, "above the maximum"},
		{"memory", []string{id, "--memory", "5000"}, "--memory 5000"},
		{"priority", []string{id, "--priority", "101"}, "priority"},
		{"missing file", []string{id, "--file", "/nonexistent.wasm"}, "no such file"},
		{"unknown", []string{"nope", "--inputs", "1"}, "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := jetprop(ctx, vars, "", append([]string{"task", "update"}, tc.args...)...)
			if r.code == exitOK || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want a failure with %q", r.code, r.stderr, tc.want)
			}
		})
	}
}
