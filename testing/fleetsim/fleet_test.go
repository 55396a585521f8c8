package fleetsim_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/fleetsim"
)

func testLogger() *slog.Logger {
	if os.Getenv("JETPROP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// startServer starts jetprop in this process, in dev mode, without
// local proplets.
func startServer(t testing.TB) *app.App {
	t.Helper()
	cfg := app.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSPort: -1, MQTTPort: -1,
		Tenant: "sim", Channel: "c1", Replicas: 1, MaxModule: 1 << 20,
		Liveness: 5 * time.Minute, LogLevel: "warn",
	}
	a, err := app.Start(context.Background(), cfg, testLogger())
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// runConfig measures reachability only: generous deadlines, no window.
func runConfig(a *app.App, devices int) fleetsim.RunConfig {
	return fleetsim.RunConfig{
		Fleet: fleetsim.Config{
			URL: a.MQTTURL(), Devices: devices, Tenant: "sim", Channel: "c1",
			ConnectParallel: 64, Heartbeat: 10 * time.Second, Logger: testLogger(),
		},
		API:          client.New(a.HTTPURL(), nil),
		AliveTimeout: 3 * time.Minute, ReachTimeout: 3 * time.Minute,
		Reach: true, Concurrency: 8, Logger: testLogger(),
	}
}

// checkReach fails the test unless every device connected, subscribed,
// showed alive, received its own start and only that, accepted every
// start, and had its result recorded.
func checkReach(t *testing.T, r fleetsim.Report) {
	t.Helper()
	n := r.Devices
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"devices connected", r.Connect.Ready, n},
		{"subscriptions accepted", r.Connect.Subscribed, n},
		{"devices unreachable", r.Connect.Unreachable, 0},
		{"devices the API shows alive", r.Alive.Alive, n},
		{"tasks created and started", r.Reach.Targeted, n},
		{"devices that received their own start", r.Reach.Reached, n},
		{"starts that reached another device", r.Reach.Foreign, 0},
		{"results the API shows recorded", r.Reach.Recorded, n},
		{"starts for another device's topic or proplet_id", int(r.Fleet.Foreign), 0},
		{"invalid starts", int(r.Fleet.StartsInvalid), 0},
		{"accepts sent, one per start received", int(r.Fleet.Accepts), int(r.Fleet.Starts)},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
		}
	}
	if t.Failed() {
		t.Logf("report: %+v", r)
	}
}

func TestRun_Small(t *testing.T) {
	a := startServer(t)
	cfg := runConfig(a, 20)
	cfg.Tasks, cfg.Rounds, cfg.Window, cfg.Fleet.Heartbeat = 20, 2, time.Second, 250*time.Millisecond
	cfg.Fleet.HeartbeatQoS = 1 // acknowledged, so the window times them
	r, err := fleetsim.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkReach(t, r)
	if d := r.Dispatch; d.Completed != 40 || d.Stuck != 0 || d.Errors != 0 || len(d.RoundRates) != 2 ||
		d.PerSecond != (d.RoundRates[0]+d.RoundRates[1])/2 {
		t.Errorf("dispatch, 2 rounds of 20: %+v, want 40 completed and the mean of the two rounds' rates", d)
	}
	if r.Steady == nil || r.Steady.Heartbeats.Count == 0 {
		t.Errorf("steady window: %+v, want heartbeat acknowledgements", r.Steady)
	}
}

// TestRun_Provisioned runs a fleet of provisioned devices against a
// server with --auth on: each connects with its id and key.
func TestRun_Provisioned(t *testing.T) {
	cfg := app.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSPort: -1, MQTTPort: -1,
		Tenant: "sim", Channel: "c1", Replicas: 1, MaxModule: 1 << 20,
		Liveness: 5 * time.Minute, LogLevel: "warn", Auth: true,
	}
	a, err := app.Start(context.Background(), cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	token, err := os.ReadFile(app.AdminTokenPath(cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	api := client.New(a.HTTPURL(), nil, client.WithToken(string(token)))
	var creds []fleetsim.Credential
	for i := range 5 {
		d, err := api.ProvisionDevice(context.Background(), fmt.Sprintf("gw-%d", i), false)
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, fleetsim.Credential{ID: d.ID, Key: d.Key})
	}
	run := runConfig(a, 0)
	run.API, run.Fleet.Credentials = api, creds
	r, err := fleetsim.Run(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	checkReach(t, r)
}

// TestFleet_WrongKey: a device whose key the server refuses keeps
// retrying, and Connect says how far it got when its context ends.
func TestFleet_WrongKey(t *testing.T) {
	cfg := app.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSPort: -1, MQTTPort: -1,
		Tenant: "sim", Channel: "c1", Replicas: 1, MaxModule: 1 << 20, LogLevel: "warn", Auth: true,
	}
	a, err := app.Start(context.Background(), cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	f, err := fleetsim.New(fleetsim.Config{URL: a.MQTTURL(), Tenant: "sim", Channel: "c1",
		Credentials: []fleetsim.Credential{{ID: "nobody", Key: "jpd_wrong"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := f.Connect(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect: %v, want the deadline", err)
	}
	s := f.Stats()
	if s.Ready != 0 || s.ConnectErrors == 0 || s.LastConnectError == "" {
		t.Errorf("stats %+v: want no device ready and the refusal counted", s)
	}
}

// TestRun_Unanswered: devices that receive their starts but do not answer
// in time are reached, and their results not recorded.
func TestRun_Unanswered(t *testing.T) {
	a := startServer(t)
	cfg := runConfig(a, 5)
	cfg.Fleet.AnswerDelay, cfg.ReachTimeout = time.Hour, 2*time.Second
	r, err := fleetsim.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rr := r.Reach; rr.Reached != 5 || rr.Recorded != 0 || rr.Unsent != 0 || rr.MissingSubscribed != 0 || !rr.TimedOut {
		t.Errorf("reach %+v: want 5 reached, none recorded, all sent, timed out", rr)
	}
}
