package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
)

// snapshot is everything GET /tasks and GET /proplets show.
type snapshot struct {
	Tasks    []httpapi.Task
	Proplets []httpapi.Proplet
}

func takeSnapshot(t *testing.T, c *client.Client) snapshot {
	t.Helper()
	ctx := context.Background()
	var s snapshot
	for {
		page, err := c.ListTasks(ctx, len(s.Tasks), httpapi.MaxLimit)
		if err != nil {
			t.Fatalf("GET /tasks: %v", err)
		}
		s.Tasks = append(s.Tasks, page.Tasks...)
		if len(page.Tasks) == 0 || len(s.Tasks) >= page.Total {
			break
		}
	}
	for {
		page, err := c.ListProplets(ctx, len(s.Proplets), httpapi.MaxLimit)
		if err != nil {
			t.Fatalf("GET /proplets: %v", err)
		}
		s.Proplets = append(s.Proplets, page.Proplets...)
		if len(page.Proplets) == 0 || len(s.Proplets) >= page.Total {
			break
		}
	}
	return s
}

// settledSnapshot returns a snapshot once two taken half a second apart are
// equal: nothing is still in flight (a result, a heartbeat that changes a
// device), so a kill right after it is compared against what was stored.
func settledSnapshot(t *testing.T, c *client.Client) snapshot {
	t.Helper()
	prev := takeSnapshot(t, c)
	for range 20 {
		time.Sleep(500 * time.Millisecond)
		cur := takeSnapshot(t, c)
		if reflect.DeepEqual(cur, prev) {
			return cur
		}
		prev = cur
	}
	t.Fatal("the server's state did not settle within 10s")
	return prev
}

// diffSnapshots lists every difference between two snapshots, by id.
func diffSnapshots(want, got snapshot) []string {
	var diffs []string
	diffs = append(diffs, diffByID("task", want.Tasks, got.Tasks, func(t httpapi.Task) string { return t.ID })...)
	diffs = append(diffs, diffByID("proplet", want.Proplets, got.Proplets, func(p httpapi.Proplet) string { return p.ID })...)
	return diffs
}

func diffByID[T any](kind string, want, got []T, id func(T) string) []string {
	var diffs []string
	if len(want) != len(got) {
		diffs = append(diffs, fmt.Sprintf("%d %ss, want %d", len(got), kind, len(want)))
	}
	gotByID := map[string]T{}
	for _, g := range got {
		gotByID[id(g)] = g
	}
	for i, w := range want {
		g, ok := gotByID[id(w)]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s %s is gone", kind, id(w)))
		case !reflect.DeepEqual(w, g):
			diffs = append(diffs, fmt.Sprintf("%s %s changed:\n  before %s\n  after  %s", kind, id(w), jsonOf(w), jsonOf(g)))
		case i < len(got) && id(got[i]) != id(w):
			diffs = append(diffs, fmt.Sprintf("%s %d is %s, was %s (order changed)", kind, i, id(got[i]), id(w)))
		}
		delete(gotByID, id(w))
	}
	for extra := range gotByID {
		diffs = append(diffs, fmt.Sprintf("%s %s is new: %s", kind, extra, jsonOf(gotByID[extra])))
	}
	return diffs
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// requireSame fails unless got equals want in every field.
func requireSame(t *testing.T, what string, want, got snapshot) {
	t.Helper()
	if diffs := diffSnapshots(want, got); len(diffs) > 0 {
		t.Fatalf("%s: %d differences:\n%s", what, len(diffs), strings.Join(diffs, "\n"))
	}
}

// waitProplet waits until GET /proplets/{id} shows the status and returns it.
func waitProplet(t *testing.T, c *client.Client, id, status string, timeout time.Duration) httpapi.Proplet {
	t.Helper()
	var p httpapi.Proplet
	natstest.CheckFor(t, timeout, func() error {
		var err error
		p, err = c.GetProplet(context.Background(), id)
		if err != nil {
			return err
		}
		if p.Status != status {
			return fmt.Errorf("proplet %s is %s, want %s", id, p.Status, status)
		}
		return nil
	})
	return p
}

// waitUp waits until n proplets are up and returns them.
func waitUp(t *testing.T, c *client.Client, n int) []httpapi.Proplet {
	t.Helper()
	var up []httpapi.Proplet
	natstest.CheckFor(t, 30*time.Second, func() error {
		list, err := c.ListProplets(context.Background(), 0, httpapi.MaxLimit)
		if err != nil {
			return err
		}
		up = up[:0]
		for _, p := range list.Proplets {
			if p.Alive {
				up = append(up, p)
			}
		}
		if len(up) < n {
			return fmt.Errorf("%d proplets up, want %d", len(up), n)
		}
		return nil
	})
	return up
}

// waitStatus waits until the task shows status and returns it.
func waitStatus(t *testing.T, c *client.Client, id, status string, timeout time.Duration) httpapi.Task {
	t.Helper()
	var task httpapi.Task
	natstest.CheckFor(t, timeout, func() error {
		var err error
		task, err = c.GetTask(context.Background(), id)
		if err != nil {
			return err
		}
		if task.Status != status {
			return fmt.Errorf("task %s is %s, want %s (error %q)", id, task.Status, status, task.Error)
		}
		return nil
	})
	return task
}

// create creates a task and fails the test on an error.
func create(t *testing.T, c *client.Client, req httpapi.TaskRequest) httpapi.Task {
	t.Helper()
	task, err := c.CreateTask(context.Background(), req)
	if err != nil {
		t.Fatalf("create %s: %v", req.Name, err)
	}
	return task
}

// run creates and starts a task and returns it once it has ended.
func run(t *testing.T, c *client.Client, req httpapi.TaskRequest) httpapi.Task {
	t.Helper()
	task := create(t, c, req)
	ctx := context.Background()
	if _, err := c.StartTask(ctx, task.ID); err != nil {
		t.Fatalf("start %s: %v", task.ID, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := c.Results(ctx, task.ID, 5*time.Second)
		if err != nil {
			t.Fatalf("results of %s: %v", task.ID, err)
		}
		if r.Terminal() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s (%s) still %s after 30s", task.ID, req.Name, r.Status)
		}
	}
	task, err := c.GetTask(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

// taskEvents returns the types of the events of one task, in order.
func taskEvents(t *testing.T, c *client.Client, id string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var types []string
	err := c.Events(ctx, false, func(env events.Envelope) error {
		if env.Aggregate.ID == id {
			types = append(types, env.Type)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	return types
}
