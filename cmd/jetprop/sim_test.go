package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/fleetsim"
)

func TestCLI_Sim(t *testing.T) {
	dir := t.TempDir()
	a, err := app.Start(t.Context(), app.Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSPort: -1, MQTTPort: -1,
		Tenant: "t1", Channel: "c1", Replicas: 1, MaxModule: 1 << 20, LogLevel: "warn",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ctx := t.Context()
	vars := map[string]string{"JETPROP_SERVER": a.HTTPURL(), "JETPROP_SIM_MQTT_URL": a.MQTTURL(),
		"JETPROP_SIM_TENANT": "t1", "JETPROP_SIM_CHANNEL": "c1", "JETPROP_SIM_DURATION": "0"}

	out := jetprop(ctx, vars, "", "sim", "--devices", "3", "--tasks", "4", "-o", "json").ok(t)
	var r fleetsim.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if r.Devices != 3 || r.Alive.Alive != 3 || r.Reach == nil || r.Reach.Reached != 3 || r.Dispatch == nil || r.Dispatch.Completed != 4 {
		t.Fatalf("report %s", out)
	}
	if f := r.Fleet; f.QoS != 0 || !f.Accept || f.Starts != 7 || f.Accepts != 7 {
		t.Fatalf("fleet %+v: want QoS 0 and an accept for each of 7 starts", f)
	}

	out = jetprop(ctx, vars, "", "sim", "--devices", "2", "--qos", "1", "--accept=false", "-o", "json").ok(t)
	r = fleetsim.Report{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if f := r.Fleet; f.QoS != 1 || f.Accept || f.Starts != 2 || f.Accepts != 0 || r.Reach.Reached != 2 {
		t.Fatalf("before accepts: %s", out)
	}
	jetprop(ctx, vars, "", "sim", "--qos", "2").fails(t, exitError, "--qos 2")

	pwFile := filepath.Join(dir, app.EngineSecretFile)
	out = jetprop(ctx, vars, "", "sim", "--devices", "2", "--reach=false", "--duration", "1500ms", "--heartbeat", "200ms",
		"--nats-url", a.NATSURL(), "--nats-password-file", pwFile, "-o", "json").ok(t)
	r = fleetsim.Report{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if r.Steady == nil || r.Steady.Backlog == nil || r.Steady.Backlog.Samples == 0 || r.Steady.Backlog.Err != "" ||
		r.Fleet.Heartbeats == 0 || r.Steady.Heartbeats.Count != 0 {
		t.Fatalf("steady window without heartbeats or backlog samples, or heartbeats at QoS 0 timed: %s", out)
	}
	out = jetprop(ctx, vars, "", "sim", "--devices", "2", "--reach=false", "--duration", "1500ms", "--heartbeat", "200ms",
		"--heartbeat-qos", "1", "-o", "json").ok(t)
	r = fleetsim.Report{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if r.Fleet.HeartbeatQoS != 1 || r.Steady == nil || r.Steady.Heartbeats.Count == 0 {
		t.Fatalf("--heartbeat-qos 1: the steady window timed no acknowledgement: %s", out)
	}
	jetprop(ctx, vars, "", "sim", "--heartbeat-qos", "2").fails(t, exitError, "--heartbeat-qos 2")
	jetprop(ctx, vars, "", "sim", "--nats-url", a.NATSURL(), "--nats-password-file", filepath.Join(dir, "none")).fails(t, exitError, "--nats-password-file")

	creds := filepath.Join(t.TempDir(), "devices")
	if err := os.WriteFile(creds, []byte("gw-1 k1\ngw-2 k2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	table := jetprop(ctx, vars, "", "sim", "--credentials", creds, "--devices", "0", "--reach=false", "--id-prefix", "x").ok(t)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "| devices |") || !strings.HasPrefix(lines[2], "| 2 | 2 (") {
		t.Fatalf("table:\n%s", table)
	}

	jetprop(ctx, vars, "", "sim", "--pid", strconv.Itoa(os.Getpid())).fails(t, exitError, "run the server as a process of its own")
	jetprop(ctx, vars, "", "sim", "--credentials", filepath.Join(t.TempDir(), "none")).fails(t, exitError, "no such file")
	jetprop(ctx, vars, "", "sim", "--devices", "1", "--server", "http://127.0.0.1:1").fails(t, exitError, "server")
}
