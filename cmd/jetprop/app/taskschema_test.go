package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
)

// createHTTP creates a task through the API and returns its id.
func createHTTP(t *testing.T, url string, body map[string]any) string {
	t.Helper()
	var created apiTask
	if err := json.Unmarshal(call(t, "POST", url+"/tasks", body, http.StatusCreated), &created); err != nil {
		t.Fatal(err)
	}
	return created.ID
}

// TestApp_TaskCron: a recurring cron task (Propeller's schedule,
// is_recurring, timezone) runs at every time, on a proplet; one that is not
// recurring runs once, at the first.
func TestApp_TaskCron(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 1))
	waitDevices(t, a, 1)
	pushFixtures(t, a)
	every := createHTTP(t, a.HTTPURL(), map[string]any{"name": "add", "image_url": "add:1", "inputs": []int{2, 3},
		"schedule": "* * * * * *", "is_recurring": true, "timezone": "Asia/Tokyo"})
	once := createHTTP(t, a.HTTPURL(), map[string]any{"name": "add", "image_url": "add:1", "inputs": []int{1, 1},
		"schedule": "* * * * * *"})
	natstest.CheckFor(t, 20*time.Second, func() error {
		tk, _ := a.Service().GetTask(every)
		if tk.Attempt < 3 || tk.State != engine.TaskCompleted {
			return fmt.Errorf("recurring task: attempt %d, %s", tk.Attempt, tk.State)
		}
		return nil
	})
	tk, _ := a.Service().GetTask(once)
	if tk.Attempt != 1 || tk.State != engine.TaskCompleted || string(tk.Result) != `"2"` {
		t.Fatalf("one-shot task: attempt %d, %s, result %s; want one run with 2", tk.Attempt, tk.State, tk.Result)
	}
	if tk, _ := a.Service().GetTask(every); string(tk.Result) != `"5"` {
		t.Fatalf("recurring task result %s, want 5", tk.Result)
	}
}

// TestApp_TaskPriority: firings that wait for a device start highest
// priority first, then oldest, when a device comes up.
func TestApp_TaskPriority(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 0))
	pushFixtures(t, a)
	ids := map[string]string{}
	for _, c := range []struct {
		name     string
		priority int
	}{{"low", 10}, {"default", 0}, {"high", 90}, {"mid", 50}} {
		id := createHTTP(t, a.HTTPURL(), map[string]any{"name": "add", "image_url": "add:1", "inputs": []int{1, 2},
			"schedule": "* * * * * *", "priority": c.priority})
		ids[id] = c.name
	}
	names := func(order []string) []string {
		var out []string
		for _, id := range order {
			out = append(out, ids[id])
		}
		return out
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		if w := a.TaskCron().Waiting(); len(w) != 4 {
			return fmt.Errorf("waiting %v", names(w))
		}
		return nil
	})
	want := []string{"high", "default", "mid", "low"} // default is 50 and older than mid
	if got := names(a.TaskCron().Waiting()); !slices.Equal(got, want) {
		t.Fatalf("waiting %v, want %v", got, want)
	}
	startProplet(t, a.MQTTURL(), "t1", "c1", t.TempDir())
	natstest.CheckFor(t, 15*time.Second, func() error {
		if got := scheduledOrder(t, a); len(got) != 4 {
			return fmt.Errorf("scheduled %v", names(got))
		}
		return nil
	})
	if got := names(scheduledOrder(t, a)); !slices.Equal(got, want) {
		t.Fatalf("placed in the order %v, want %v", got, want)
	}
}

// scheduledOrder is the tasks in the order of their first task.scheduled
// in the TASKS stream.
func scheduledOrder(t *testing.T, a interface{ Store() events.Store }) []string {
	t.Helper()
	var order []string
	err := a.Store().Replay(t.Context(), events.KindTask, 1, func(env events.Envelope) error {
		if env.Type == "task.scheduled" && !slices.Contains(order, env.Aggregate.ID) {
			order = append(order, env.Aggregate.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return order
}
