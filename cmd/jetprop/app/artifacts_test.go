package app_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestApp_ArtifactRunsOnProplet: a module pushed as vision:1.2 runs on a
// real proplet when a task names it, and the catalog survives a restart
// (rebuilt from the ARTIFACTS stream).
func TestApp_ArtifactRunsOnProplet(t *testing.T) {
	dir := t.TempDir()
	a := startApp(t, testConfig(dir, 1))
	waitDevices(t, a, 1)
	c := client.New(a.HTTPURL(), nil)
	ctx := t.Context()

	pushed, err := c.PushArtifact(ctx, "vision", "1.2", bytes.NewReader(wasmfixtures.Add()), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.CreateTask(ctx, httpapi.TaskRequest{Name: "add", ImageURL: "vision:1.2", Inputs: []string{"10", "20"}})
	if err != nil || task.Module != pushed.Digest {
		t.Fatalf("create %+v %v", task, err)
	}
	if _, err := c.StartTask(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	r, err := c.Results(ctx, task.ID, 15*time.Second)
	if err != nil || r.Status != "completed" || string(r.Results) != `"30"` {
		t.Fatalf("results %+v %v", r, err)
	}

	a.Close()
	b := startApp(t, testConfig(dir, 0))
	got, err := client.New(b.HTTPURL(), nil).GetArtifact(ctx, "vision:1.2")
	if err != nil || got.Digest != pushed.Digest || !got.CreatedAt.Equal(pushed.CreatedAt) {
		t.Fatalf("after a restart: %+v %v, want %+v", got, err, pushed)
	}
}
