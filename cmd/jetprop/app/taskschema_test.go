package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
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

// TestApp_TaskPriority_BusyDevice: with one proplet and one slot on it
// (--task-slots 1), a running task keeps it busy; cron firings wait, and
// once the slot frees they run one at a time, highest priority first.
func TestApp_TaskPriority_BusyDevice(t *testing.T) {
	cfg := testConfig(t.TempDir(), 1)
	cfg.TaskSlots = 1
	a := startApp(t, cfg)
	waitDevices(t, a, 1)
	pushFixtures(t, a)
	busy := createHTTP(t, a.HTTPURL(), map[string]any{"name": "loop", "image_url": "loop:1", "timeout_ms": 60000})
	call(t, "POST", a.HTTPURL()+"/tasks/"+busy+"/start", nil, http.StatusOK)
	other := createHTTP(t, a.HTTPURL(), map[string]any{"name": "add", "image_url": "add:1", "inputs": []int{1, 2}})
	if body := call(t, "POST", a.HTTPURL()+"/tasks/"+other+"/start", nil, http.StatusConflict); !strings.Contains(string(body), "every alive proplet is busy") {
		t.Fatalf("start on a busy fleet: %s", body)
	}
	ids := map[string]string{busy: "busy"}
	for _, c := range []struct {
		name     string
		priority int
	}{{"low", 10}, {"default", 0}, {"high", 90}, {"mid", 50}} {
		ids[createHTTP(t, a.HTTPURL(), map[string]any{"name": "add", "image_url": "add:1", "inputs": []int{1, 2},
			"schedule": "* * * * * *", "priority": c.priority})] = c.name
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
	call(t, "POST", a.HTTPURL()+"/tasks/"+busy+"/stop", nil, http.StatusOK)
	natstest.CheckFor(t, 15*time.Second, func() error {
		for id, name := range ids {
			if tk, _ := a.Service().GetTask(id); name != "busy" && tk.State != engine.TaskCompleted {
				return fmt.Errorf("%s is %s", name, tk.State)
			}
		}
		return nil
	})
	want := []string{"busy", "high", "default", "mid", "low"}
	if got := names(scheduledOrder(t, a)); !slices.Equal(got, want) {
		t.Fatalf("placed in the order %v, want %v", got, want)
	}
	if n := maxLoad(t, a); n > 1 {
		t.Fatalf("%d tasks at once on the proplet, more than its one slot", n)
	}
}

// maxLoad is the most tasks scheduled or running at once on one device,
// from the TASKS stream.
func maxLoad(t *testing.T, a interface{ Store() events.Store }) int {
	t.Helper()
	active, most := map[string]bool{}, 0
	err := a.Store().Replay(t.Context(), events.KindTask, 1, func(env events.Envelope) error {
		switch env.Type {
		case "task.scheduled":
			active[env.Aggregate.ID] = true
		case "task.completed", "task.failed", "task.stopped", "task.lost", "task.undelivered":
			delete(active, env.Aggregate.ID)
		}
		most = max(most, len(active))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return most
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

// TestApp_TaskBroadcast: a broadcast task runs once on each of three
// proplets; its results are per device, and a second start is a second run.
func TestApp_TaskBroadcast(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 3))
	waitDevices(t, a, 3)
	pushFixtures(t, a)
	id := createHTTP(t, a.HTTPURL(), map[string]any{"name": "add", "image_url": "add:1", "inputs": []int{2, 3}, "broadcast": true})
	type results struct {
		Results  map[string]json.RawMessage `json:"results"`
		State    int                        `json:"state"`
		Run      int                        `json:"run"`
		Proplets []struct {
			PropletID string          `json:"proplet_id"`
			TaskID    string          `json:"task_id"`
			Results   json.RawMessage `json:"results"`
		} `json:"proplets"`
	}
	for run := 1; run <= 2; run++ {
		call(t, "POST", a.HTTPURL()+"/tasks/"+id+"/start", nil, http.StatusOK)
		var res results
		natstest.CheckFor(t, 15*time.Second, func() error {
			res = results{}
			json.Unmarshal(call(t, "GET", a.HTTPURL()+"/tasks/"+id+"/results?wait=5s", nil, http.StatusOK), &res)
			if res.State != 3 || res.Run != run {
				return fmt.Errorf("run %d, state %d", res.Run, res.State)
			}
			return nil
		})
		devices := map[string]bool{}
		for _, d := range a.Devices().Up() {
			devices[d.ID] = true
		}
		if len(res.Proplets) != 3 || len(res.Results) != 3 {
			t.Fatalf("run %d: %d proplets, results %v; want one per device", run, len(res.Proplets), res.Results)
		}
		for _, p := range res.Proplets {
			if !devices[p.PropletID] || string(p.Results) != `"5"` || string(res.Results[p.PropletID]) != `"5"` {
				t.Fatalf("run %d: proplet %+v, results %v", run, p, res.Results)
			}
			if tk, _ := a.Service().GetTask(p.TaskID); tk.Device != p.PropletID || tk.BroadcastOf != id {
				t.Fatalf("run %d: task %s ran on %s for %q", run, p.TaskID, tk.Device, tk.BroadcastOf)
			}
		}
	}
	var view struct {
		State   int                        `json:"state"`
		Results map[string]json.RawMessage `json:"results"`
	}
	json.Unmarshal(call(t, "GET", a.HTTPURL()+"/tasks/"+id, nil, http.StatusOK), &view)
	if view.State != 3 || len(view.Results) != 3 {
		t.Fatalf("GET /tasks/%s: state %d, results %v", id, view.State, view.Results)
	}
	call(t, "DELETE", a.HTTPURL()+"/tasks/"+id, nil, http.StatusNoContent)
	if n, _ := a.Service().FilterTasks(func(tk engine.Task) bool { return tk.BroadcastOf == id }, 0, 100); len(n) != 0 {
		t.Fatalf("%d tasks of the broadcast left after its delete", len(n))
	}
}
