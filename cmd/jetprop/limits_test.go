package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/testing/apitest"
)

// TestCLI_TaskLimits: a memory limit or timeout no proplet can honour is
// refused, by the CLI before it sends anything and by the API with 400
// naming the bound; no task is created either way.
func TestCLI_TaskLimits(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	vars := serverEnv(s)
	module := writeModule(t)
	cli := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"run memory above wasm32", []string{"run", "--memory", "100000", module, "grow"}, exitError, "--memory 100000: want 0 (the proplet's default) to 4096 MiB, wasm32's maximum"},
		{"run negative memory", []string{"run", "--memory", "-1", module, "grow"}, exitError, "--memory -1"},
		{"create memory above wasm32", []string{"task", "create", "--name", "run", "--file", module, "--memory", "4097"}, exitError, "to 4096 MiB"},
		{"run timeout above the maximum", []string{"run", "--timeout", "721h", module, "add"}, exitError, "--timeout 721h0m0s: above the maximum of 720h0m0s"},
		{"run negative timeout", []string{"run", "--timeout", "-1s", module, "add"}, exitError, "--timeout -1s: want 0 (the proplet's default) or at least 1ms"},
		{"run sub-millisecond timeout", []string{"run", "--timeout", "500us", module, "add"}, exitError, "--timeout 500µs: want 0"},
	}
	for _, tc := range cli {
		t.Run(tc.name, func(t *testing.T) {
			jetprop(t.Context(), vars, "", tc.args...).fails(t, tc.wantCode, tc.wantErr)
		})
	}
	api := []struct {
		name       string
		body       string
		wantStatus int
		wantErr    string
	}{
		{"memory_mib above wasm32", `{"name":"grow","file":"AGFzbQEAAAA=","memory_mib":100000}`, http.StatusBadRequest,
			"memory_mib 100000 is above wasm32's maximum of 4096 MiB"},
		{"timeout_ms that would overflow", `{"name":"add","file":"AGFzbQEAAAA=","timeout_ms":9223372036854775807}`, http.StatusBadRequest,
			"timeout_ms 9223372036854775807 is above the maximum of 2592000000"},
	}
	for _, tc := range api {
		t.Run("api "+tc.name, func(t *testing.T) {
			resp, err := http.Post(s.URL+"/tasks", "application/json", bytes.NewBufferString(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != tc.wantStatus || !strings.Contains(body.Error, tc.wantErr) {
				t.Fatalf("%d %q (%v); want %d %q", resp.StatusCode, body.Error, err, tc.wantStatus, tc.wantErr)
			}
		})
	}
	if _, n := s.Tasks.List(0, 10); n != 0 {
		t.Fatalf("%d tasks created, want none", n)
	}
}
