package client_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/apitest"
)

func spec(name string) engine.WorkflowSpec {
	return engine.WorkflowSpec{Name: name, Steps: []engine.StepSpec{
		{Name: "a", Module: "registry.example:5000/add:1", Function: "add"},
		{Name: "b", Module: "registry.example:5000/add:1", Function: "add", DependsOn: []string{"a"}},
	}}
}

func TestClient_WorkflowRoundTrip(t *testing.T) {
	_, c := start(t, apitest.Config{})
	ctx := t.Context()
	w, err := c.CreateWorkflow(ctx, spec("pipeline"))
	if err != nil || w.ID == "" || w.State != engine.WorkflowRunning || len(w.Steps) != 2 || w.Spec.Name != "pipeline" {
		t.Fatalf("create %+v %v", w, err)
	}
	if got, err := c.GetWorkflow(ctx, w.ID); err != nil || got.ID != w.ID || got.Seq != w.Seq {
		t.Fatalf("get %+v %v", got, err)
	}
	if got, ok := w.Step("b"); !ok || got.State != engine.StepPending {
		t.Fatalf("step b %+v", got)
	}
	page, err := c.ListWorkflows(ctx, 0, 0)
	if err != nil || page.Total != 1 || len(page.Workflows) != 1 || page.Workflows[0].ID != w.ID {
		t.Fatalf("list %+v %v", page, err)
	}

	began := time.Now()
	same, err := c.WatchWorkflow(ctx, w.ID, w.Seq, 200*time.Millisecond)
	if err != nil || same.Seq != w.Seq || time.Since(began) < 200*time.Millisecond {
		t.Fatalf("watch without a change %+v %v after %v", same, err, time.Since(began))
	}
	watched := make(chan error, 1)
	go func() {
		got, err := c.WatchWorkflow(ctx, w.ID, w.Seq, 30*time.Second)
		if err == nil && (got.Seq <= w.Seq || got.State != engine.WorkflowCancelled) {
			err = fmt.Errorf("watch answered without the change: %+v", got)
		}
		watched <- err
	}()
	// Not a wait for a condition: a watch that begins after the cancel
	// answers at once and passes too; the pause makes the wake-up on the
	// change the likely path.
	time.Sleep(100 * time.Millisecond)
	cancelled, err := c.CancelWorkflow(ctx, w.ID, "done here")
	if err != nil || cancelled.State != engine.WorkflowCancelled || cancelled.Reason != "done here" {
		t.Fatalf("cancel %+v %v", cancelled, err)
	}
	select {
	case err := <-watched:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(apitest.Timeout):
		t.Fatal("watch did not return on the change")
	}
	if ended, err := c.WatchWorkflow(ctx, w.ID, cancelled.Seq, 30*time.Second); err != nil || !ended.State.Terminal() {
		t.Fatalf("watch of an ended workflow %+v %v", ended, err)
	}
}

func TestClient_WorkflowErrors(t *testing.T) {
	_, c := start(t, apitest.Config{})
	ctx := t.Context()
	bad := spec("cyclic")
	bad.Steps[0].DependsOn = []string{"b"}
	if _, err := c.CreateWorkflow(ctx, bad); client.StatusCode(err) != http.StatusBadRequest {
		t.Fatalf("create a cycle: %v", err)
	}
	if _, err := c.GetWorkflow(ctx, "nosuch"); client.StatusCode(err) != http.StatusNotFound {
		t.Fatalf("get unknown: %v", err)
	}
	if _, err := c.WatchWorkflow(ctx, "nosuch", 1, time.Second); client.StatusCode(err) != http.StatusNotFound {
		t.Fatalf("watch unknown: %v", err)
	}
	if _, err := c.CancelWorkflow(ctx, "nosuch", ""); client.StatusCode(err) != http.StatusNotFound {
		t.Fatalf("cancel unknown: %v", err)
	}
	if _, err := c.ListWorkflows(ctx, 0, 5000); client.StatusCode(err) != http.StatusBadRequest {
		t.Fatalf("list with too large a limit: %v", err)
	}
}
