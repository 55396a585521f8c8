package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/jetprop/jetprop/adapters/metrics"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/replay"
)

var codec = events.DefaultCodec()

// inbound stands in for mqtt.Inbound, which needs a capture stream.
type inbound mqtt.Snapshot

func (s inbound) Stats() mqtt.Snapshot { return mqtt.Snapshot(s) }

// fleet records a small history through a handler over store: two
// devices (one alive, one offline), three tasks (pending, scheduled,
// completed); it returns the read models caught up with it.
func fleet(t *testing.T, store events.Store) (*projections.Tasks, *projections.Devices) {
	t.Helper()
	ctx := t.Context()
	h := service.NewHandler(store, codec, replay.NewFixedClock(time.Unix(0, 0), time.Second), replay.NewSeqIDs("ev-"))
	for _, c := range []engine.DeviceCommand{engine.Heartbeat{ID: "d1"}, engine.Heartbeat{ID: "d2"}, engine.MarkOffline{ID: "d2", Reason: "will"}} {
		if _, err := h.Device(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	spec := events.TaskCreated{Name: "add", Module: "sha256:" + strings.Repeat("0", 64)}
	for _, c := range []engine.TaskCommand{
		engine.CreateTask{ID: "t1", Spec: spec}, engine.CreateTask{ID: "t2", Spec: spec}, engine.CreateTask{ID: "t3", Spec: spec},
		engine.ScheduleTask{ID: "t2", Device: "d1"},
		engine.ScheduleTask{ID: "t3", Device: "d1"}, engine.RecordResult{ID: "t3", Device: "d1", Result: []byte(`"3"`)},
	} {
		if _, err := h.Task(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	tasks, devices := projections.NewTasks(codec), projections.NewDevices(codec)
	for _, p := range []projections.Projection{tasks, devices} {
		if err := projections.Catchup(ctx, store, p); err != nil {
			t.Fatal(err)
		}
	}
	return tasks, devices
}

// scrape serves GET /metrics from h and parses the text exposition.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	return fams
}

// value is the value of the series of name with exactly these labels;
// ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			match = match && labels[l.GetName()] == l.GetValue()
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestRegistry_Scrape(t *testing.T) {
	appends := metrics.CountAppends(events.NewMemory())
	tasks, devices := fleet(t, appends)
	q := events.NewQuarantine()
	q.Add(events.Quarantined{Aggregate: events.TaskAggregate("bad"), Stream: "TASKS", Seq: 99, Reason: "does not decode"})

	// A conflict and a refused append.
	ctx := context.Background()
	stored, err := appends.Load(ctx, events.TaskAggregate("t1"))
	if err != nil || len(stored) == 0 {
		t.Fatalf("load t1: %v", err)
	}
	if _, err := appends.Append(ctx, events.TaskAggregate("t1"), 0, stored[0]); err == nil {
		t.Fatal("an append at a stale sequence succeeded")
	}
	if _, err := appends.Append(ctx, events.TaskAggregate("t1"), 0); err == nil {
		t.Fatal("an append of nothing succeeded")
	}

	reg, err := metrics.New(metrics.Sources{
		Tasks: tasks, Devices: devices, Quarantine: q, Appends: appends,
		Inbound: inbound{Received: 7, Recorded: 4, Malformed: 1, Ignored: 3, Retried: 1, ResultAcks: 3, ResultAckErrors: 2,
			IgnoredBy: mqtt.IgnoredCounts{Stale: 2, NotPlaced: 1}, Refusals: service.Refusals{Confirmed: 3, Overturned: 5}},
	}, metrics.WithVersion("v9.9.9"))
	if err != nil {
		t.Fatal(err)
	}
	reg.ObserveRequest("POST", "POST /tasks", 201, 3*time.Millisecond)
	reg.ObserveRequest("POST", "POST /tasks", 201, 4*time.Millisecond)
	reg.ObserveRequest("GET", "GET /tasks/{id}", 404, time.Millisecond)
	reg.ObserveRequest("BREW", "", 404, time.Millisecond)
	fams := scrape(t, reg)

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"jetprop_tasks", map[string]string{"state": "pending"}, 1},
		{"jetprop_tasks", map[string]string{"state": "scheduled"}, 1},
		{"jetprop_tasks", map[string]string{"state": "completed"}, 1},
		{"jetprop_tasks", map[string]string{"state": "running"}, 0},
		{"jetprop_tasks", map[string]string{"state": "failed"}, 0},
		{"jetprop_devices", map[string]string{"state": "alive"}, 1},
		{"jetprop_devices", map[string]string{"state": "offline"}, 1},
		{"jetprop_devices", map[string]string{"state": "revoked"}, 0},
		{"jetprop_devices", map[string]string{"state": "unknown"}, 0},
		{"jetprop_inbound_messages_received_total", nil, 7},
		{"jetprop_inbound_messages_total", map[string]string{"outcome": "recorded"}, 4},
		{"jetprop_inbound_messages_total", map[string]string{"outcome": "malformed"}, 1},
		{"jetprop_inbound_messages_total", map[string]string{"outcome": "ignored"}, 3},
		{"jetprop_inbound_ignored_total", map[string]string{"reason": "stale"}, 2},
		{"jetprop_inbound_ignored_total", map[string]string{"reason": "not_placed"}, 1},
		{"jetprop_inbound_ignored_total", map[string]string{"reason": "unknown"}, 0},
		{"jetprop_inbound_ignored_total", map[string]string{"reason": "revoked"}, 0},
		{"jetprop_refusals_total", map[string]string{"outcome": "confirmed"}, 3},
		{"jetprop_refusals_total", map[string]string{"outcome": "overturned"}, 5},
		{"jetprop_refusals_total", map[string]string{"outcome": "unconfirmed"}, 0},
		{"jetprop_inbound_messages_total", map[string]string{"outcome": "retried"}, 1},
		{"jetprop_inbound_result_acks_total", map[string]string{"outcome": "sent"}, 3},
		{"jetprop_inbound_result_acks_total", map[string]string{"outcome": "failed"}, 2},
		{"jetprop_quarantined_aggregates", nil, 1},
		{"jetprop_event_streams_damaged", nil, 0},
		{"jetprop_store_appends_total", map[string]string{"kind": "task", "result": "ok"}, 6},
		{"jetprop_store_appends_total", map[string]string{"kind": "task", "result": "conflict"}, 1},
		{"jetprop_store_appends_total", map[string]string{"kind": "task", "result": "error"}, 1},
		{"jetprop_store_appends_total", map[string]string{"kind": "dev", "result": "ok"}, 3},
		{"jetprop_store_appends_total", map[string]string{"kind": "wf", "result": "ok"}, 0},
		{"jetprop_store_appended_events_total", map[string]string{"kind": "task"}, 6},
		{"jetprop_store_appended_events_total", map[string]string{"kind": "dev"}, 3},
		{"jetprop_http_requests_total", map[string]string{"method": "POST", "route": "/tasks", "code": "201"}, 2},
		{"jetprop_http_requests_total", map[string]string{"method": "GET", "route": "/tasks/{id}", "code": "404"}, 1},
		{"jetprop_http_requests_total", map[string]string{"method": "OTHER", "route": "unmatched", "code": "404"}, 1},
		{"jetprop_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/tasks"}, 2},
		{"jetprop_build_info", map[string]string{"version": "v9.9.9"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name+labelString(tc.labels), func(t *testing.T) {
			got, ok := value(fams, tc.name, tc.labels)
			if !ok || got != tc.want {
				t.Fatalf("= %v (found %v), want %v", got, ok, tc.want)
			}
		})
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s: the runtime and process collectors are missing", name)
		}
	}
	for name, f := range fams {
		if !strings.HasPrefix(name, "jetprop_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "promhttp_") {
			t.Errorf("series %s (%s) outside jetprop's, Go's and the process's", name, f.GetHelp())
		}
	}
}

// TestRegistry_NoSources: a registry without sources still serves the
// runtime, the process and the HTTP API's requests.
func TestRegistry_NoSources(t *testing.T) {
	reg, err := metrics.New(metrics.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	reg.ObserveRequest("GET", "GET /health", 200, time.Millisecond)
	fams := scrape(t, reg)
	if fams["jetprop_tasks"] != nil || fams["go_goroutines"] == nil {
		t.Fatalf("families: %v", keys(fams))
	}
	if got, _ := value(fams, "jetprop_http_requests_total", map[string]string{"method": "GET", "route": "/health", "code": "200"}); got != 1 {
		t.Fatalf("GET /health counted %v times", got)
	}
}

func labelString(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	var b strings.Builder
	for _, k := range []string{"state", "outcome", "kind", "result", "method", "route", "code", "version"} {
		if v, ok := l[k]; ok {
			b.WriteString(" " + k + "=" + v)
		}
	}
	return b.String()
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
