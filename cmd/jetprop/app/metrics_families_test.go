package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/cmd/internal/propletcmd"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

// requiredFamilies are the series issue 13 asks of the server's
// GET /metrics, each with what it must say once a task ran.
var requiredFamilies = []struct{ name, what string }{
	{"jetprop_tasks", "tasks by state"},
	{"jetprop_dispatch_latency_seconds", "dispatch latency"},
	{"jetprop_result_latency_seconds", "result latency"},
	{"jetprop_store_appended_events_total", "events appended per stream"},
	{"jetprop_inbound_ignored_total", "ignored device messages by reason"},
	{"jetprop_devices", "devices alive"},
	{"jetprop_edge_consumer_pending", "EDGE_IN consumer lag"},
	{"jetprop_edge_consumer_ack_pending", "EDGE_IN consumer lag"},
	{"jetprop_projection_lag_events", "event consumer lag"},
	{"jetprop_module_delivery_bytes_total", "module delivery bytes"},
	{"jetprop_invoke_answers_ignored_total", "ignored invoke answers by reason"},
}

// TestApp_MetricsFamilies: after a task runs on the local proplet, every
// required family is in GET /metrics and says so: one dispatch and one
// result observed, the module's bytes sent inline (once a send), both EDGE_IN consumers
// and every read model's lag exposed.
func TestApp_MetricsFamilies(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 1))
	waitDevices(t, a, 1)
	module := wasmfixtures.Add()
	if done := runHTTP(t, a, map[string]any{"name": "add", "file": b64(module), "inputs": []any{3, 4}}); done.Status != "completed" {
		t.Fatalf("task %s: %s %q", done.ID, done.Status, done.Error)
	}
	var s scraped
	natstest.CheckFor(t, 10*time.Second, func() error {
		s, _ = scrapeMetrics(t, a, "")
		if n := histogramCount(s, "jetprop_result_latency_seconds", "outcome", "completed"); n != 1 {
			return fmt.Errorf("%d results observed, want 1", n)
		}
		return nil
	})
	for _, f := range requiredFamilies {
		if s[f.name] == nil {
			t.Errorf("no %s (%s)", f.name, f.what)
		}
	}
	if n := histogramCount(s, "jetprop_dispatch_latency_seconds"); n != 1 {
		t.Errorf("%d dispatches observed, want 1", n)
	}
	// Every send counts: the start may have been sent again before the
	// proplet's accept came (on a loaded box).
	if got, n := s.get("jetprop_module_delivery_bytes_total", "path", "inline"), float64(len(module)); got < n || got != n*float64(int(got/n)) {
		t.Errorf("inline module bytes %v, want a multiple of the module's %d", got, len(module))
	}
	for _, c := range []string{"engine", "engine-liveness"} {
		if len(s["jetprop_edge_consumer_pending"].GetMetric()) != 2 || s.get("jetprop_edge_consumer_ack_pending", "consumer", c) < 0 {
			t.Errorf("EDGE_IN consumer %s: %v", c, s["jetprop_edge_consumer_pending"])
		}
	}
	if len(s["jetprop_projection_lag_events"].GetMetric()) != 6 {
		t.Errorf("read model lags: %v, want one per model", s["jetprop_projection_lag_events"])
	}
	if s.get("jetprop_devices", "state", "alive")+s.get("jetprop_devices", "state", "announced") != 1 {
		t.Error("the local proplet is not counted up")
	}
}

// TestApp_MetricsOff: with MetricsOff no latency is observed; the rest is
// served.
func TestApp_MetricsOff(t *testing.T) {
	cfg := testConfig(t.TempDir(), 1)
	cfg.MetricsOff = true
	a := startApp(t, cfg)
	waitDevices(t, a, 1)
	runHTTP(t, a, map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []any{3, 4}})
	s, _ := scrapeMetrics(t, a, "")
	if s["jetprop_dispatch_latency_seconds"] != nil || s["jetprop_tasks"] == nil {
		t.Fatalf("metrics off: latencies %v, tasks %v", s["jetprop_dispatch_latency_seconds"], s["jetprop_tasks"])
	}
}

// TestApp_GrafanaDashboard: examples/grafana/jetprop.json is valid JSON and
// every metric its queries name is exposed: by the server's GET /metrics,
// or by a proplet's --metrics-addr.
func TestApp_GrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../../examples/grafana/jetprop.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	a := startApp(t, testConfig(t.TempDir(), 0))
	scrapeMetrics(t, a, "") // the request series appear once a request was answered
	server, status := scrapeMetrics(t, a, "")
	if status != http.StatusOK {
		t.Fatal(status)
	}
	reg, _ := propletcmd.NewMetrics(func() proplet.Stats { return proplet.Stats{} })
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{}
	for name := range server {
		exposed[name] = true
	}
	for _, f := range fams {
		exposed[f.GetName()] = true
	}
	metric := regexp.MustCompile(`\b(jetprop_[a-z0-9_]+|process_[a-z0-9_]+|go_[a-z0-9_]+)`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range metric.FindAllString(tg.Expr, -1) {
				n++
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
				if !exposed[name] && !exposed[base] {
					t.Errorf("panel %q: %s is exposed by neither the server nor a proplet", p.Title, name)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("%d metric names in the dashboard", n)
	}
}
