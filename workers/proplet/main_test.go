package proplet_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/workers/proplet"
)

func TestMain_Help(t *testing.T) {
	var out bytes.Buffer
	if err := proplet.Main(context.Background(), []string{"-h"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Usage: proplet", "PROPLET_MQTT_ADDRESS", "PROPLET_MEMORY_LIMIT_MIB", "control/manager/start"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestMain_Errors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "bad config", args: []string{"-tenant", "", "-channel", "c"}, wantErr: "tenant id is empty"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined"},
		{name: "stray argument", args: []string{"-tenant", "t", "-channel", "c", "extra"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PROPLET_TENANT_ID", "")
			err := proplet.Main(context.Background(), tc.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestMain_RunsUntilCancelled starts the command against a real broker and
// stops it with its context, as a signal would.
func TestMain_RunsUntilCancelled(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	args := []string{"-mqtt-address", s.MQTTURL(), "-tenant", topics.Tenant, "-channel", topics.Channel,
		"-data-dir", t.TempDir(), "-qos", "1", "-log-level", "warn"}
	go func() { done <- proplet.Main(ctx, args, &logs) }()
	m.waitDiscoveries(1)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
