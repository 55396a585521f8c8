package main

import (
	"strings"
	"testing"
)

func TestCLI_ServeUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"up help", []string{"up", "--help"}, exitOK, "--proplets int", ""},
		{"server help", []string{"server", "-h"}, exitOK, "--nats-url string", ""},
		{"proplet help", []string{"proplet", "-h"}, exitOK, "", "Usage: proplet"},
		{"unknown flag", []string{"server", "--bogus"}, exitUsage, "", "Run 'jetprop server --help'"},
		{"argument", []string{"up", "extra"}, exitUsage, "", `unexpected arguments ["extra"]`},
		{"bad log level", []string{"up", "--log-level", "loud"}, exitUsage, "", "--log-level"},
		{"invalid config", []string{"server", "--replicas", "9"}, exitError, "", "jetprop: --replicas 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := jetprop(t.Context(), nil, "", tc.args...)
			if r.code != tc.wantCode || !strings.Contains(r.stdout, tc.wantOut) || !strings.Contains(r.stderr, tc.wantErr) {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
	help := jetprop(t.Context(), nil, "", "up", "--help").stdout
	for _, want := range []string{"Usage: jetprop up [flags]", "--data string", "env JETPROP_DATA", "--http string", "env JETPROP_HTTP"} {
		if !strings.Contains(help, want) {
			t.Errorf("up --help lacks %q:\n%s", want, help)
		}
	}
}

// TestCLI_UpAndRun runs `jetprop up` with a local proplet and `jetprop run`
// against it: the whole path through MQTT and a real wasm runtime.
func TestCLI_UpAndRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole server")
	}
	vars := startUp(t) // checks at cleanup that up exits cleanly
	if out := jetprop(t.Context(), vars, "", "run", "../../examples/add/add.wasm", "add", "10", "20").ok(t); out != "30\n" {
		t.Fatalf("run printed %q", out)
	}
}
