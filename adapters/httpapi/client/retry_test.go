package client_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
)

// TestClient_CreateRetriesUntilTheStoreIsBack runs our API over a
// JetStream that is off: the create answers 503 with Retry-After, the
// client waits and sends it again with the same Idempotency-Key, and once
// JetStream is on again (turned on by the server side at the first 503)
// the task is created, once. (The read models' subscriptions take some
// seconds to come back after JetStream does: a short read timeout has the
// create answer 202, stored, instead of waiting for them.)
func TestClient_CreateRetriesUntilTheStoreIsBack(t *testing.T) {
	s := apitest.Start(t, apitest.Config{ReadTimeout: 500 * time.Millisecond})
	enable := natstest.DisableJetStream(t, s.Server)
	var (
		mu       sync.Mutex
		statuses []int
		keys     = map[string]bool{}
	)
	api := httpapi.New(s.Service, s.Store)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w}
		api.ServeHTTP(rec, r)
		mu.Lock()
		defer mu.Unlock()
		statuses, keys[r.Header.Get(httpapi.HeaderIdempotencyKey)] = append(statuses, rec.status), true
		if len(statuses) == 1 {
			if err := enable(); err != nil {
				t.Errorf("enable JetStream: %v", err)
			}
		}
	}))
	t.Cleanup(ts.Close)

	c := client.New(ts.URL, nil, client.WithRetry(10, 30*time.Second))
	task, err := c.CreateTask(t.Context(), remoteTask)
	if err != nil {
		t.Fatalf("create: %v (statuses %v)", err, statuses)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("statuses %v", statuses)
	if statuses[0] != http.StatusServiceUnavailable || len(keys) != 1 || keys[""] {
		t.Fatalf("statuses %v, keys %v: want a 503 first, one key on every attempt", statuses, keys)
	}
	envs, err := s.Store.Load(t.Context(), events.TaskAggregate(task.ID))
	if err != nil || len(envs) != 1 {
		t.Fatalf("task %s: %d events (%v), want its one task.created", task.ID, len(envs), err)
	}
}

var remoteTask = httpapi.TaskRequest{Name: "add", ImageURL: "registry.example:5000/add:1"}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// unavailable is a server that answers every request 503 with retryAfter
// and counts them.
func unavailable(t *testing.T, retryAfter string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", retryAfter)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily unavailable"}`))
	}))
	t.Cleanup(ts.Close)
	return ts, &n
}

func TestClient_RetryIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter string
		opts       []client.Option
		call       func(*client.Client) error
		want       int32
	}{
		{"reads, by attempts", "0", []client.Option{client.WithRetry(3, time.Minute)},
			func(c *client.Client) error { _, err := c.ListTasks(t.Context(), 0, 0); return err }, 3},
		{"creates, by attempts", "0", []client.Option{client.WithRetry(4, time.Minute)},
			func(c *client.Client) error { _, err := c.CreateTask(t.Context(), remoteTask); return err }, 4},
		{"a Retry-After past the time left", "120", []client.Option{client.WithRetry(5, time.Second)},
			func(c *client.Client) error { _, err := c.GetTask(t.Context(), "x"); return err }, 1},
		{"retries off", "0", []client.Option{client.WithRetry(1, 0)},
			func(c *client.Client) error { _, err := c.ListTasks(t.Context(), 0, 0); return err }, 1},
		{"a write without a key is sent once", "0", nil,
			func(c *client.Client) error { _, err := c.StartTask(t.Context(), "x"); return err }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, n := unavailable(t, tc.retryAfter)
			err := tc.call(client.New(ts.URL, nil, tc.opts...))
			if client.StatusCode(err) != http.StatusServiceUnavailable {
				t.Fatalf("err %v, want the last 503", err)
			}
			if got := n.Load(); got != tc.want {
				t.Fatalf("%d requests, want %d", got, tc.want)
			}
		})
	}
}

// TestClient_RetriesConnectionErrors: a server that is not there yet is
// tried again; the read succeeds once it listens.
func TestClient_RetriesConnectionErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens: connections are refused
	s := apitest.Start(t, apitest.Config{})
	var tries atomic.Int32
	var started atomic.Bool
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if tries.Add(1) == 2 && started.CompareAndSwap(false, true) {
			startAt(t, addr, httpapi.New(s.Service, s.Store)) // the server comes up after the first refusal
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := client.New("http://"+addr, hc, client.WithRetry(10, 30*time.Second))
	if _, err := c.ListTasks(t.Context(), 0, 0); err != nil {
		t.Fatalf("list: %v after %d tries", err, tries.Load())
	}
	if tries.Load() < 2 {
		t.Fatalf("%d tries, want a refused one first", tries.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func startAt(t *testing.T, addr string, h http.Handler) {
	var l net.Listener
	natstest.CheckFor(t, 5*time.Second, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	ts := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	ts.Start()
	t.Cleanup(ts.Close)
}
