package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func TestConfig_Exposed(t *testing.T) {
	tests := []struct {
		name     string
		change   func(*app.Config)
		wantErr  string // "" for no error
		wantOpen int    // listeners Exposed names
	}{
		{"loopback, dev mode", func(*app.Config) {}, "", 0},
		{"localhost", func(c *app.Config) { c.HTTPAddr, c.Host = "localhost:7070", "localhost" }, "", 0},
		{"IPv6 loopback", func(c *app.Config) { c.HTTPAddr, c.Host = "[::1]:7070", "::1" }, "", 0},
		{"another loopback address", func(c *app.Config) { c.HTTPAddr = "127.0.0.2:7070" }, "", 0},
		{"--host 0.0.0.0", func(c *app.Config) { c.Host = "0.0.0.0" }, "--host 0.0.0.0", 1},
		{"--http on every interface", func(c *app.Config) { c.HTTPAddr = ":7070" }, "--http :7070", 1},
		{"--http on a LAN address", func(c *app.Config) { c.HTTPAddr = "192.168.1.10:7070" }, "--http 192.168.1.10:7070", 1},
		{"a host name", func(c *app.Config) { c.Host = "gateway.lan" }, "--host gateway.lan", 1},
		{"both", func(c *app.Config) { c.HTTPAddr, c.Host = "0.0.0.0:7070", "::" }, "--http 0.0.0.0:7070 and --host ::", 2},
		{"--host 0.0.0.0 with --auth on", func(c *app.Config) { c.Host, c.Auth = "0.0.0.0", true }, "", 1},
		{"--host 0.0.0.0 with --insecure", func(c *app.Config) { c.Host, c.Insecure = "0.0.0.0", true }, "", 1},
		{"an external NATS: --host is not ours", func(c *app.Config) {
			c.Host, c.NATSURL, c.MQTTURL = "0.0.0.0", "nats://nats:4222", "tcp://nats:1883"
		}, "", 0},
		{"--http without a port", func(c *app.Config) { c.HTTPAddr = "127.0.0.1" }, "--http \"127.0.0.1\": want host:port", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir(), 0)
			tc.change(&cfg)
			err := cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			case err != nil && strings.HasPrefix(err.Error(), "refusing") &&
				!(strings.Contains(err.Error(), "--auth on") && strings.Contains(err.Error(), "--insecure")):
				t.Fatalf("the refusal does not name --auth and --insecure: %v", err)
			}
			if got := cfg.Exposed(); len(got) != tc.wantOpen {
				t.Fatalf("Exposed = %q, want %d", got, tc.wantOpen)
			}
		})
	}
}

// TestApp_AuthBootstrap: a server with Auth and no token writes an admin
// token to <data>/admin.token (0600) before it serves; the token works;
// a restart keeps it and makes no other.
func TestApp_AuthBootstrap(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, 0)
	cfg.Auth = true
	a, err := app.Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	path := app.AdminTokenPath(dir)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || !a.AdminTokenFileExists() {
		t.Fatalf("admin token file: %v, %v", fi, err)
	}
	b, _ := os.ReadFile(path)
	secret := strings.TrimSpace(string(b))
	if !engine.WellFormedToken(secret) || string(b) != secret+"\n" {
		t.Fatalf("admin token file holds %q", b)
	}
	ctx := t.Context()
	if _, err := client.New(a.HTTPURL(), nil).ListTasks(ctx, 0, 0); client.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("no token: %v", err)
	}
	admin := client.New(a.HTTPURL(), nil, client.WithToken(string(b)))
	page, err := admin.ListTokens(ctx, 0, 0)
	if err != nil || page.Total != 1 || page.Tokens[0].Role != domain.RoleAdmin {
		t.Fatalf("tokens %+v, %v", page, err)
	}
	if _, err := admin.CreateToken(ctx, "ci", domain.RoleOperator); err != nil {
		t.Fatal(err)
	}
	a.Close()

	a = startApp(t, cfg)
	if again, _ := os.ReadFile(path); string(again) != string(b) {
		t.Fatal("a restart replaced the admin token")
	}
	admin = client.New(a.HTTPURL(), nil, client.WithToken(secret))
	if page, err := admin.ListTokens(ctx, 0, 0); err != nil || page.Total != 2 {
		t.Fatalf("tokens after restart %+v, %v", page, err)
	}
}

// TestApp_DevModeOpen: without Auth, no token is made and none is needed.
func TestApp_DevModeOpen(t *testing.T) {
	dir := t.TempDir()
	a := startApp(t, testConfig(dir, 0))
	if _, err := client.New(a.HTTPURL(), nil).ListTasks(t.Context(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if a.AdminTokenFileExists() {
		t.Fatal("dev mode wrote an admin token")
	}
}

// TestApp_AuthLocalProplet: with --auth on, `up`'s local proplet is a
// provisioned device (local-0) whose key is kept beside its data: it
// connects, runs tasks, and connects again after a restart with that key.
func TestApp_AuthLocalProplet(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, 1)
	cfg.Auth = true
	for round := range 2 {
		a := startApp(t, cfg)
		natstest.CheckFor(t, 20*time.Second, func() error {
			d, _ := a.Devices().Get("local-0")
			if !d.Provisioned || !d.OwnTopics || !d.State.Up() {
				return fmt.Errorf("round %d: local-0 is %+v", round, d)
			}
			return nil
		})
		task, err := a.Service().CreateTask(t.Context(), events.TaskCreated{Name: "add", Inputs: []string{"2", "3"}}, bytes.NewReader(wasmfixtures.Add()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Service().StartTask(t.Context(), task.ID); err != nil {
			t.Fatal(err)
		}
		done, err := a.Service().WaitTask(t.Context(), task.ID)
		if err != nil || string(done.Result) != `"5"` {
			t.Fatalf("round %d: %+v, %v", round, done, err)
		}
		if round == 1 {
			// The key kept beside the proplet's data still admits it: no
			// second provisioning.
			envs, err := a.Store().Load(t.Context(), events.DeviceAggregate("local-0"))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range envs {
				if e.Type == (events.DeviceProvisioned{}).EventType() || e.Type == (events.DeviceRevoked{}).EventType() {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d provisionings and revocations of local-0, want 1", n)
			}
		}
		a.Close()
	}
}
