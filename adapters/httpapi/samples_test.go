package httpapi_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/testing/apitest"
)

// Propeller's metrics routes: pages of the window, oldest first, in
// Propeller's shapes; 404 for an unknown proplet or task, 400 for a bad
// page.
func TestAPI_MetricsRoutes(t *testing.T) {
	samples := mqtt.NewSamples(3, 0)
	s := apitest.Start(t, apitest.Config{Options: []httpapi.Option{httpapi.WithSamples(samples)}})
	s.Announce(t, "p1")
	task := createTask(t, s, httpapi.TaskRequest{PropletID: "p1"})
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		samples.AddProplet("p1", wire.PropletMetrics{Namespace: "default", CPU: wire.CPUMetrics{Percent: float64(i)},
			Memory: wire.MemoryMetrics{RSSBytes: wire.Int(i)}}, at.Add(time.Duration(i)*time.Second))
		samples.AddTask(task.ID, wire.TaskMetrics{PropletID: "p1", Metrics: wire.ProcessMetrics{MemoryBytes: wire.Int(i)}}, at)
	}

	status, body := call(t, http.MethodGet, s.URL+"/proplets/p1/metrics?offset=1&limit=5", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	pp := decode[httpapi.PropletMetricsPage](t, body)
	if pp.Total != 3 || pp.Offset != 1 || pp.Limit != 5 || len(pp.Metrics) != 2 ||
		pp.Metrics[0].Memory.RSSBytes != 3 || pp.Metrics[1].CPU.Percent != 4 || pp.Metrics[0].PropletID != "p1" ||
		!pp.Metrics[1].Timestamp.Time.Equal(at.Add(4*time.Second)) {
		t.Fatalf("proplet page %s", body)
	}
	// Propeller's shape: top-level cpu_metrics and memory_metrics, an RFC 3339 time.
	wantFields(t, body, "metrics.0", "proplet_id", "namespace", "timestamp", "cpu_metrics", "memory_metrics")

	status, body = call(t, http.MethodGet, s.URL+"/tasks/"+task.ID+"/metrics", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	tp := decode[httpapi.TaskMetricsPage](t, body)
	if tp.Total != 3 || tp.Limit != httpapi.DefaultLimit || len(tp.Metrics) != 3 || tp.Metrics[0].Metrics.MemoryBytes != 2 || tp.Metrics[0].TaskID != task.ID {
		t.Fatalf("task page %s", body)
	}

	s.Announce(t, "quiet")
	status, body = call(t, http.MethodGet, s.URL+"/proplets/quiet/metrics", "", nil)
	wantStatus(t, status, body, http.StatusOK)
	if p := decode[httpapi.PropletMetricsPage](t, body); p.Total != 0 || p.Metrics == nil {
		t.Fatalf("a proplet without samples: %s, want an empty list", body)
	}

	for _, tc := range []struct{ path string }{{"/proplets/nobody/metrics"}, {"/tasks/no-such-task/metrics"}} {
		status, body := call(t, http.MethodGet, s.URL+tc.path, "", nil)
		wantStatus(t, status, body, http.StatusNotFound)
	}
	status, body = call(t, http.MethodGet, s.URL+"/proplets/p1/metrics?limit=0", "", nil)
	wantStatus(t, status, body, http.StatusBadRequest)
}

// wantFields fails unless the object at path ("metrics.0": the first
// element of metrics) has exactly names.
func wantFields(t *testing.T, body []byte, path string, names ...string) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, _ := strconv.Atoi(p)
			if i >= len(x) {
				t.Fatalf("%s: no element %d", path, i)
			}
			v = x[i]
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is %T, not an object", path, v)
	}
	got := slices.Sorted(maps.Keys(obj))
	if want := slices.Sorted(slices.Values(names)); !slices.Equal(got, want) {
		t.Fatalf("%s has fields %v, want %v", path, got, want)
	}
}
