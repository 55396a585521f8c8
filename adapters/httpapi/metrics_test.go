package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
)

// recorder is a Metrics that keeps what it is told and serves one line.
type recorder struct {
	mu   sync.Mutex
	seen []observed
}

type observed struct {
	method, pattern string
	status          int
}

const exposition = "jetprop_test 1\n"

func (m *recorder) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = io.WriteString(w, exposition)
}

func (m *recorder) ObserveRequest(method, pattern string, status int, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = append(m.seen, observed{method, pattern, status})
}

// wait waits until the recorder saw want, in that order.
func (m *recorder) wait(t *testing.T, want ...observed) {
	t.Helper()
	natstest.CheckFor(t, apitest.Timeout, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !slices.Equal(m.seen, want) {
			return fmt.Errorf("observed %v, want %v", m.seen, want)
		}
		return nil
	})
}

// TestAPI_MetricsObserved: every request is observed under the route
// pattern it matched, never its path; a request no route matches under
// "". GET /metrics serves the registry's exposition.
func TestAPI_MetricsObserved(t *testing.T) {
	m := &recorder{}
	s := apitest.Start(t, apitest.Config{Options: []httpapi.Option{httpapi.WithMetrics(m)}})
	task := createTask(t, s, httpapi.TaskRequest{})
	status, body := call(t, http.MethodGet, s.URL+"/tasks/"+task.ID, "", nil)
	wantStatus(t, status, body, http.StatusOK)
	status, body = call(t, http.MethodGet, s.URL+"/tasks/nope", "", nil)
	wantStatus(t, status, body, http.StatusNotFound)
	status, body = call(t, http.MethodGet, s.URL+"/no/such/route", "", nil)
	wantStatus(t, status, body, http.StatusNotFound)
	status, body = call(t, http.MethodDelete, s.URL+"/health", "", nil)
	wantStatus(t, status, body, http.StatusMethodNotAllowed)
	status, body = call(t, http.MethodGet, s.URL+"/metrics", "", nil)
	if status != http.StatusOK || string(body) != exposition {
		t.Fatalf("GET /metrics: %d %q", status, body)
	}
	m.wait(t,
		observed{"POST", "POST /tasks", 201},
		observed{"GET", "GET /tasks/{id}", 200},
		observed{"GET", "GET /tasks/{id}", 404},
		observed{"GET", "", 404},
		observed{"DELETE", "", 405},
		observed{"GET", "GET /metrics", 200},
	)
}

// TestAPI_MetricsFollow: a followed event stream is still flushed line by
// line through the status recorder (http.ResponseController unwraps it).
func TestAPI_MetricsFollow(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Options: []httpapi.Option{httpapi.WithMetrics(&recorder{})}})
	first := createTask(t, s, httpapi.TaskRequest{})
	ctx, cancel := context.WithTimeout(t.Context(), apitest.Timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/events?follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() {
		t.Fatalf("no event flushed: %v", lines.Err())
	}
	if e := decode[struct{ Type string }](t, lines.Bytes()); e.Type != "task.created" {
		t.Fatalf("first event %s, want %s's task.created", lines.Bytes(), first.ID)
	}
}

// TestAPI_MetricsAuth: with WithAuth, GET /metrics is a read like the
// others: 401 without a token, served to a viewer; without WithMetrics it
// is a JSON 404.
func TestAPI_MetricsAuth(t *testing.T) {
	m := &recorder{}
	s := apitest.Start(t, apitest.Config{Auth: true, Options: []httpapi.Option{httpapi.WithMetrics(m)}})
	callAs(t, "", http.MethodGet, s.URL+"/metrics", nil).want(t, http.StatusUnauthorized)
	got := callAs(t, s.Token(t, domain.RoleViewer), http.MethodGet, s.URL+"/metrics", nil)
	if got.status != http.StatusOK || string(got.body) != exposition {
		t.Fatalf("viewer: %d %q", got.status, got.body)
	}
	m.wait(t, observed{"GET", "GET /metrics", 401}, observed{"GET", "GET /metrics", 200})

	bare := apitest.Start(t, apitest.Config{})
	status, body := call(t, http.MethodGet, bare.URL+"/metrics", "", nil)
	wantStatus(t, status, body, http.StatusNotFound)
}
