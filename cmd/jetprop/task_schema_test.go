package main

import (
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/apitest"
)

// TestCLI_TaskSchemaFlags: task create's flags for Propeller's fields
// reach the task, and task list --metadata filters on them.
func TestCLI_TaskSchemaFlags(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	id := strings.TrimSpace(jetprop(ctx, vars, "", "task", "create", "--name", "add", "--image", "ghcr.io/x/add:1",
		"--metadata", "site=lab", "--metadata", "floor=3", "--priority", "80", "--broadcast",
		"--schedule", "*/5 * * * *", "--timezone", "Europe/Paris", "--recurring", "--run-if", "failure").ok(t))
	other := strings.TrimSpace(jetprop(ctx, vars, "", "task", "create", "--name", "add", "--metadata", "site=field").ok(t))
	got := decodeTask(t, jetprop(ctx, vars, "", "task", "get", id).ok(t))
	if string(got.Metadata["site"]) != `"lab"` || string(got.Metadata["floor"]) != `"3"` || got.Priority != 80 || !got.Broadcast ||
		got.Schedule != "*/5 * * * *" || got.Timezone != "Europe/Paris" || !got.Recurring || got.RunIf != "failure" {
		t.Fatalf("created %+v", got.TaskSchema)
	}
	if out := jetprop(ctx, vars, "", "task", "list", "--metadata", "site=lab").ok(t); !strings.Contains(out, id) || strings.Contains(out, other) {
		t.Fatalf("list --metadata site=lab:\n%s", out)
	}
	jetprop(ctx, vars, "", "task", "create", "--name", "add", "--priority", "101").fails(t, exitError, "priority must be between 0 and 100, got 101")
	jetprop(ctx, vars, "", "task", "create", "--name", "add", "--recurring").fails(t, exitError, "is_recurring and timezone need a schedule")
}

// TestCLI_TaskBroadcast: task start of a broadcast task says so, and task
// results prints each proplet's result by proplet id.
func TestCLI_TaskBroadcast(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	id := strings.TrimSpace(jetprop(ctx, vars, "", "task", "create", "--name", "add", "--file", writeModule(t), "--broadcast").ok(t))
	jetprop(ctx, vars, "", "task", "start", id).fails(t, exitError, "no alive proplet")
	s.Announce(t, "p1")
	s.Announce(t, "p2")
	if out := jetprop(ctx, vars, "", "task", "start", id).ok(t); out != id+" running on every alive proplet (run 1)\n" {
		t.Fatalf("start printed %q", out)
	}
	s.Record(t, engine.BroadcastTaskID(id, 1, "p1"), "3", "")
	s.Record(t, engine.BroadcastTaskID(id, 1, "p2"), "4", "")
	if out := jetprop(ctx, vars, "", "task", "results", id, "--wait", "5s").ok(t); !strings.Contains(out, `"p1":"3"`) || !strings.Contains(out, `"p2":"4"`) {
		t.Fatalf("results printed %q", out)
	}
}
