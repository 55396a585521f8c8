package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// scraped is one scrape of GET /metrics, parsed.
type scraped map[string]*dto.MetricFamily

// scrapeMetrics scrapes GET /metrics with token ("" for none) and parses
// the text exposition; status is what the server answered, and an error
// answer must be JSON.
func scrapeMetrics(t *testing.T, a *app.App, token string) (scraped, int) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, a.HTTPURL()+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			t.Fatalf("GET /metrics: %d without a JSON error: %s", resp.StatusCode, b)
		}
		return nil, resp.StatusCode
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	return fams, resp.StatusCode
}

// get is the value of the series of name whose labels include these.
func (s scraped) get(name string, labels ...string) float64 {
	var sum float64
	for _, m := range s[name].GetMetric() {
		if has(m, labels) {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

// has reports whether m has every label=value pair of kv.
func has(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			found = found || l.GetName() == kv[i] && l.GetValue() == kv[i+1]
		}
		if !found {
			return false
		}
	}
	return true
}

// TestApp_Metrics: a real `jetprop up` (dev mode: open) runs one task and
// leaves another pending; GET /metrics, parsed as Prometheus text, counts
// them by state, the local proplet up, the requests under their route
// patterns (never a task's id), the device messages recorded, the appends,
// and carries Go's and the process's series.
func TestApp_Metrics(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 1))
	waitDevices(t, a, 1)
	call(t, "POST", a.HTTPURL()+"/tasks", map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []any{1, 2}}, http.StatusCreated)
	done := runHTTP(t, a, map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []any{3, 4}})
	if done.Status != "completed" {
		t.Fatalf("task %s: %s %q", done.ID, done.Status, done.Error)
	}

	var s scraped
	natstest.CheckFor(t, 10*time.Second, func() error {
		s, _ = scrapeMetrics(t, a, "")
		if got := s.get("jetprop_tasks"); got != 2 {
			return fmt.Errorf("jetprop_tasks adds up to %v, want the 2 tasks created", got)
		}
		if got := s.get("jetprop_inbound_messages_total", "outcome", "recorded"); got < 1 {
			return fmt.Errorf("%v device messages recorded", got)
		}
		return nil
	})
	checks := []struct {
		name  string
		value float64
		want  func(float64) bool
		rule  string
	}{
		{"tasks pending", s.get("jetprop_tasks", "state", "pending"), eq(1), "1"},
		{"tasks completed", s.get("jetprop_tasks", "state", "completed"), eq(1), "1"},
		{"devices up", s.get("jetprop_devices", "state", "alive") + s.get("jetprop_devices", "state", "announced"), eq(1), "the local proplet"},
		{"devices", s.get("jetprop_devices"), eq(1), "1"},
		{"POST /tasks 201", s.get("jetprop_http_requests_total", "method", "POST", "route", "/tasks", "code", "201"), eq(2), "2"},
		{"POST /tasks/{id}/start 200", s.get("jetprop_http_requests_total", "method", "POST", "route", "/tasks/{id}/start", "code", "200"), eq(1), "1"},
		{"GET /tasks/{id}", s.get("jetprop_http_requests_total", "method", "GET", "route", "/tasks/{id}"), ge(1), ">= 1"},
		{"inbound received", s.get("jetprop_inbound_messages_received_total"), ge(s.get("jetprop_inbound_messages_total", "outcome", "recorded")), ">= recorded"},
		{"inbound malformed", s.get("jetprop_inbound_messages_total", "outcome", "malformed"), eq(0), "0"},
		{"task appends", s.get("jetprop_store_appends_total", "kind", "task", "result", "ok"), ge(4), ">= 4 (2 created, scheduled, completed)"},
		{"task events", s.get("jetprop_store_appended_events_total", "kind", "task"), ge(s.get("jetprop_store_appends_total", "kind", "task", "result", "ok")), ">= task appends"},
		{"append errors", s.get("jetprop_store_appends_total", "result", "error"), eq(0), "0"},
		{"quarantined", s.get("jetprop_quarantined_aggregates"), eq(0), "0"},
		{"build info", s.get("jetprop_build_info", "version", app.Version), eq(1), "1"},
	}
	for _, c := range checks {
		if !c.want(c.value) {
			t.Errorf("%s = %v, want %s", c.name, c.value, c.rule)
		}
	}
	if h := histogramCount(s, "jetprop_http_request_duration_seconds", "method", "POST", "route", "/tasks"); h != 2 {
		t.Errorf("POST /tasks durations: %d observations, want 2", h)
	}
	for _, m := range s["jetprop_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), done.ID) {
				t.Errorf("a task id in a label: %s=%s", l.GetName(), l.GetValue())
			}
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if s[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

// TestApp_MetricsAuth: with --auth on, GET /metrics is a read like the
// others: 401 (JSON, with the bearer challenge) without a token, served
// to a viewer token, and the refused scrape is counted.
func TestApp_MetricsAuth(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, 0)
	cfg.Auth = true
	a := startApp(t, cfg)
	if _, status := scrapeMetrics(t, a, ""); status != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", status)
	}
	adminTok, err := os.ReadFile(app.AdminTokenPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := client.New(a.HTTPURL(), nil, client.WithToken(string(adminTok))).CreateToken(t.Context(), "prometheus", domain.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		s, status := scrapeMetrics(t, a, viewer.Secret)
		if status != http.StatusOK {
			return fmt.Errorf("viewer token: %d", status)
		}
		if got := s.get("jetprop_http_requests_total", "method", "GET", "route", "/metrics", "code", "401"); got != 1 {
			return fmt.Errorf("%v refused scrapes counted, want 1", got)
		}
		return nil
	})
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func ge(min float64) func(float64) bool  { return func(v float64) bool { return v >= min } }

// histogramCount is the number of observations of the histogram name
// whose labels include these.
func histogramCount(s scraped, name string, labels ...string) uint64 {
	var n uint64
	for _, m := range s[name].GetMetric() {
		if has(m, labels) {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}
