package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
)

func TestAPI_NoRoute(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	tests := []struct {
		name, method, path string
		want               int
		wantAllow          string
	}{
		{"unknown path", http.MethodGet, "/nope", http.StatusNotFound, ""},
		{"unknown task action", http.MethodPost, "/tasks/x/explode", http.StatusNotFound, ""},
		{"wrong method on tasks", http.MethodPatch, "/tasks", http.StatusMethodNotAllowed, "GET, POST"},
		{"patch a task (not offered)", http.MethodPatch, "/tasks/x", http.StatusMethodNotAllowed, "GET, PUT, DELETE"},
		{"get the start action", http.MethodGet, "/tasks/x/start", http.StatusMethodNotAllowed, "POST"},
		{"post to health", http.MethodPost, "/health", http.StatusMethodNotAllowed, "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, s.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e httpapi.Error
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
				t.Fatalf("body is not a JSON error: %v %+v", err, e)
			}
			allow := strings.Join(resp.Header.Values("Allow"), ", ")
			if resp.StatusCode != tc.want || allow != tc.wantAllow || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d Allow %q type %q, want %d %q", resp.StatusCode, allow, resp.Header.Get("Content-Type"), tc.want, tc.wantAllow)
			}
		})
	}
}

func TestAPI_Proplets(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	meta := events.DeviceMetadata{OS: "linux", CPUArch: "arm64", WasmRuntime: "wazero"}
	if _, err := s.Handler.Device(t.Context(), engine.Announce{ID: "p1", Namespace: "lab", Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	s.Announce(t, "p2")
	if _, err := s.Handler.Device(t.Context(), engine.MarkOffline{ID: "p2", Reason: "last will"}); err != nil {
		t.Fatal(err)
	}
	task := createTask(t, s, httpapi.TaskRequest{PropletID: "p1"})
	if _, err := s.Service.StartTask(t.Context(), task.ID); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, apitest.Timeout, func() error {
		if d, _ := s.Devices.Get("p2"); d.State != engine.DeviceOffline {
			return fmt.Errorf("p2 is %s", d.State)
		}
		return nil
	})

	status, body := call(t, http.MethodGet, s.URL+"/proplets", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	page := decode[httpapi.PropletList](t, body)
	if page.Total != 2 || len(page.Proplets) != 2 || page.Limit != httpapi.DefaultLimit {
		t.Fatalf("page %+v", page)
	}
	p1, p2 := page.Proplets[0], page.Proplets[1]
	if p1.ID != "p1" || p1.Name != "p1" || !p1.Alive || p1.Status != "announced" || p1.Namespace != "lab" ||
		p1.Metadata.OS != "linux" || p1.TaskCount != 1 || p1.FirstSeen.IsZero() || p1.LastChange.IsZero() {
		t.Errorf("p1 %+v", p1)
	}
	if p2.ID != "p2" || p2.Alive || p2.Status != "offline" || p2.TaskCount != 0 {
		t.Errorf("p2 %+v", p2)
	}

	tests := []struct {
		name, path string
		want       int
		wantID     string
	}{
		{"get", "/proplets/p1", http.StatusOK, "p1"},
		{"second page", "/proplets?offset=1&limit=1", http.StatusOK, "p2"},
		{"unknown", "/proplets/p9", http.StatusNotFound, ""},
		{"bad limit", "/proplets?limit=-1", http.StatusBadRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, http.MethodGet, s.URL+tc.path, "", nil)
			wantStatus(t, status, body, tc.want)
			if tc.want != http.StatusOK {
				return
			}
			var got httpapi.Proplet
			if strings.Contains(tc.path, "?") {
				page := decode[httpapi.PropletList](t, body)
				if len(page.Proplets) != 1 {
					t.Fatalf("page %+v", page)
				}
				got = page.Proplets[0]
			} else {
				got = decode[httpapi.Proplet](t, body)
			}
			if got.ID != tc.wantID {
				t.Fatalf("got %+v, want %s", got, tc.wantID)
			}
		})
	}
}

// readEvents reads the NDJSON lines of a GET /events answer.
func readEvents(t *testing.T, url string) []events.Envelope {
	t.Helper()
	status, body := call(t, http.MethodGet, url, "", nil)
	wantStatus(t, status, body, http.StatusOK)
	var out []events.Envelope
	for line := range strings.Lines(string(body)) {
		out = append(out, decode[events.Envelope](t, []byte(line)))
	}
	return out
}

func TestAPI_Events(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	s.Announce(t, "p1")
	task := createTask(t, s, httpapi.TaskRequest{})
	if _, err := s.Service.StartTask(t.Context(), task.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		query     string
		want      int
		wantTypes string
	}{
		{"all", "", http.StatusOK, "task.created task.scheduled device.announced"},
		{"from", "?from=2", http.StatusOK, "task.scheduled"},
		{"one kind", "?kind=dev", http.StatusOK, "device.announced"},
		{"two kinds", "?kind=dev,task&follow=false", http.StatusOK, "device.announced task.created task.scheduled"},
		{"bad from", "?from=-1", http.StatusBadRequest, ""},
		{"bad follow", "?follow=maybe", http.StatusBadRequest, ""},
		{"bad kind", "?kind=cats", http.StatusBadRequest, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want != http.StatusOK {
				status, body := call(t, http.MethodGet, s.URL+"/events"+tc.query, "", nil)
				wantStatus(t, status, body, tc.want)
				return
			}
			var types []string
			for _, e := range readEvents(t, s.URL+"/events"+tc.query) {
				if e.Seq == 0 || e.ID == "" || e.Time.IsZero() {
					t.Errorf("envelope %+v", e)
				}
				types = append(types, e.Type)
			}
			if got := strings.Join(types, " "); got != tc.wantTypes {
				t.Fatalf("types %q, want %q", got, tc.wantTypes)
			}
		})
	}
}

func TestAPI_EventsFollow(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	first := createTask(t, s, httpapi.TaskRequest{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/events?follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() events.Envelope {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("stream ended: %v", lines.Err())
		}
		return decode[events.Envelope](t, lines.Bytes())
	}
	if e := next(); e.Aggregate.ID != first.ID || e.Type != "task.created" {
		t.Fatalf("first event %+v", e)
	}
	s.Announce(t, "p1")
	second := createTask(t, s, httpapi.TaskRequest{})
	seen := map[string]bool{}
	for len(seen) < 2 {
		e := next()
		seen[e.Aggregate.String()+" "+e.Type] = true
	}
	if !seen["dev/p1 device.announced"] || !seen["task/"+second.ID+" task.created"] {
		t.Fatalf("followed %v", seen)
	}
}
