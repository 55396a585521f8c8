package app_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestApp_LargeModuleInChunks runs a module too large for a start message
// on a local proplet: the dispatcher sends its digest, the proplet asks on
// registry/proplet, the chunk server streams it from the object store to
// that proplet alone, recording the transfer in CHUNKS. A second task with
// the same module runs from the proplet's cache: no new transfer event.
func TestApp_LargeModuleInChunks(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 1))
	waitDevices(t, a, 1)
	ctx := context.Background()
	module := wasmfixtures.Padded(wasmfixtures.Add(), 3<<20)
	run := func(name string, body []byte, spec events.TaskCreated) engine.Task {
		t.Helper()
		var r io.Reader // nil: spec names a stored module
		if body != nil {
			r = bytes.NewReader(body)
		}
		spec.Name, spec.Inputs = "add", []string{"2", "3"}
		task, err := a.Service().CreateTask(ctx, spec, r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Service().StartTask(ctx, task.ID); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if task, err = a.Service().WaitTask(wctx, task.ID); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if task.State != engine.TaskCompleted || strings.Trim(string(task.Result), `"`) != "5" {
			t.Fatalf("%s: %s %s %s", name, task.State, task.Result, task.Error)
		}
		return task
	}
	first := run("first", module, events.TaskCreated{})
	agg := events.Aggregate{Kind: events.KindChunk, ID: strings.TrimPrefix(first.Module, "sha256:") + "." + first.Device}
	evs, err := a.Store().Load(ctx, agg)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := engine.Fold(events.DefaultCodec(), engine.Transfer{}, evs)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Completed || tr.Rounds != 1 || tr.SentAll != tr.Total || tr.Total < 2 {
		t.Fatalf("transfer %+v", tr)
	}

	run("again", nil, events.TaskCreated{Module: first.Module, ModuleSize: first.ModuleSize})
	again, err := a.Store().Load(ctx, agg)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != len(evs) {
		t.Fatalf("%d new transfer events for a module the proplet has", len(again)-len(evs))
	}
}
