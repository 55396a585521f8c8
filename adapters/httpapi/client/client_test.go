package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func start(t *testing.T, cfg apitest.Config) (*apitest.Stack, *client.Client) {
	t.Helper()
	s := apitest.Start(t, cfg)
	return s, client.New(s.URL+"/", nil)
}

func TestClient_TaskRoundTrip(t *testing.T) {
	s, c := start(t, apitest.Config{Options: []httpapi.Option{httpapi.WithVersion("v9")}})
	ctx := t.Context()
	if h, err := c.Health(ctx); err != nil || h.Status != "pass" || h.Version != "v9" {
		t.Fatalf("health %+v %v", h, err)
	}
	task, err := c.CreateTask(ctx, httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add(), Inputs: []string{"10", "20"}})
	if err != nil || task.Status != "pending" || task.Module == "" {
		t.Fatalf("create %+v %v", task, err)
	}
	if got, err := c.GetTask(ctx, task.ID); err != nil || got.ID != task.ID || strings.Join(got.Inputs, ",") != "10,20" {
		t.Fatalf("get %+v %v", got, err)
	}
	if page, err := c.ListTasks(ctx, 0, 0); err != nil || page.Total != 1 || page.Tasks[0].ID != task.ID {
		t.Fatalf("list %+v %v", page, err)
	}
	s.Announce(t, "p1")
	if got, err := c.StartTask(ctx, task.ID); err != nil || got.Status != "scheduled" || got.PropletID != "p1" {
		t.Fatalf("start %+v %v", got, err)
	}
	if r, err := c.Results(ctx, task.ID, 0); err != nil || r.Terminal() || string(r.Results) != "null" {
		t.Fatalf("results while running %+v %v", r, err)
	}
	s.Record(t, task.ID, "30", "")
	if r, err := c.Results(ctx, task.ID, 5*time.Second); err != nil || !r.Terminal() || string(r.Results) != `"30"` {
		t.Fatalf("results %+v %v", r, err)
	}
	if err := c.DeleteTask(ctx, task.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = c.GetTask(ctx, task.ID)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || !strings.Contains(apiErr.Message, "not found") {
		t.Fatalf("get deleted: %v", err)
	}
}

func TestClient_Errors(t *testing.T) {
	_, c := start(t, apitest.Config{})
	ctx := t.Context()
	pending, err := c.CreateTask(ctx, httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want int
	}{
		{"get unknown task", func() error { _, err := c.GetTask(ctx, "nope"); return err }, http.StatusNotFound},
		{"create without a name", func() error { _, err := c.CreateTask(ctx, httpapi.TaskRequest{ImageURL: "a:1"}); return err }, http.StatusBadRequest},
		{"start without proplets", func() error { _, err := c.StartTask(ctx, pending.ID); return err }, http.StatusConflict},
		{"stop a pending task", func() error { _, err := c.StopTask(ctx, pending.ID); return err }, http.StatusConflict},
		{"list with a huge limit", func() error { _, err := c.ListTasks(ctx, 0, 5000); return err }, http.StatusBadRequest},
		{"results of an unknown task", func() error { _, err := c.Results(ctx, "nope", time.Second); return err }, http.StatusNotFound},
		{"get unknown proplet", func() error { _, err := c.GetProplet(ctx, "nope"); return err }, http.StatusNotFound},
		{"delete unknown task", func() error { return c.DeleteTask(ctx, "nope") }, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := client.StatusCode(err); got != tc.want {
				t.Fatalf("err %v (status %d), want status %d", err, got, tc.want)
			}
		})
	}
}

func TestClient_ErrorFromAnotherServer(t *testing.T) {
	c := client.New("http://127.0.0.1:1", nil)
	_, err := c.Health(t.Context())
	if err == nil || client.StatusCode(err) != 0 {
		t.Fatalf("err %v", err)
	}
}

// failingReader fails after its data, as a file read error would.
type failingReader struct{ r io.Reader }

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("disk read failed")
	}
	return n, err
}

func TestClient_UploadModule(t *testing.T) {
	_, c := start(t, apitest.Config{ModuleMax: 64 << 10})
	ctx := t.Context()
	task, err := c.CreateTask(ctx, httpapi.TaskRequest{Name: "add"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		id         string
		module     io.Reader
		wantStatus int
		wantErr    bool
	}{
		{"module", task.ID, bytes.NewReader(wasmfixtures.Add()), 0, false},
		{"not wasm", task.ID, bytes.NewReader(wasmfixtures.Invalid()), http.StatusBadRequest, true},
		{"too large", task.ID, io.MultiReader(bytes.NewReader(wasmfixtures.Add()), bytes.NewReader(make([]byte, 1<<20))), http.StatusRequestEntityTooLarge, true},
		{"unknown task", "nope", bytes.NewReader(make([]byte, 4<<20)), http.StatusNotFound, true},
		{"read error", task.ID, failingReader{bytes.NewReader(wasmfixtures.Add())}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.UploadModule(ctx, tc.id, tc.module)
			if (err != nil) != tc.wantErr || client.StatusCode(err) != tc.wantStatus {
				t.Fatalf("err %v (status %d), want status %d", err, client.StatusCode(err), tc.wantStatus)
			}
			if err == nil && (got.ModuleSize != int64(len(wasmfixtures.Add())) || got.Module == "") {
				t.Fatalf("task %+v", got)
			}
		})
	}
}

func TestClient_Proplets(t *testing.T) {
	s, c := start(t, apitest.Config{})
	ctx := t.Context()
	s.Announce(t, "p1")
	s.Announce(t, "p2")
	page, err := c.ListProplets(ctx, 1, 1)
	if err != nil || page.Total != 2 || len(page.Proplets) != 1 || page.Proplets[0].ID != "p2" {
		t.Fatalf("list %+v %v", page, err)
	}
	if p, err := c.GetProplet(ctx, "p1"); err != nil || !p.Alive || p.Name != "p1" {
		t.Fatalf("get %+v %v", p, err)
	}
}

func TestClient_Events(t *testing.T) {
	s, c := start(t, apitest.Config{})
	ctx := t.Context()
	task, err := c.CreateTask(ctx, httpapi.TaskRequest{Name: "add", File: wasmfixtures.Add()})
	if err != nil {
		t.Fatal(err)
	}
	s.Announce(t, "p1")

	var types []string
	collect := func(e events.Envelope) error { types = append(types, e.Type); return nil }
	if err := c.Events(ctx, false, collect); err != nil || strings.Join(types, " ") != "task.created device.announced" {
		t.Fatalf("events %v %v", types, err)
	}
	types = nil
	if err := c.EventsFrom(ctx, 2, false, collect); err != nil || len(types) != 0 {
		t.Fatalf("events from 2: %v %v", types, err)
	}

	t.Run("follow until fn stops", func(t *testing.T) {
		stop := errors.New("seen enough")
		var seen []string
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			if _, err := c.StartTask(ctx, task.ID); err != nil {
				t.Errorf("start: %v", err)
			}
		})
		err := c.Events(ctx, true, func(e events.Envelope) error {
			seen = append(seen, e.Type)
			if e.Type == "task.scheduled" {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || !strings.Contains(strings.Join(seen, " "), "task.created") {
			t.Fatalf("err %v, seen %v", err, seen)
		}
	})
	t.Run("follow until ctx is done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		err := c.Events(ctx, true, func(events.Envelope) error { cancel(); return nil })
		if err != nil {
			t.Fatalf("err %v", err)
		}
	})
}
