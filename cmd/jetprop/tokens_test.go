package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
)

// withToken is the client environment of s with token.
func withToken(s *apitest.Stack, token string) map[string]string {
	return map[string]string{"JETPROP_SERVER": s.URL, "JETPROP_TOKEN": token, "JETPROP_DATA": "/nonexistent"}
}

func TestCLI_Token(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	ctx := t.Context()
	admin := withToken(s, s.Token(t, domain.RoleAdmin))

	r := jetprop(ctx, admin, "", "token", "create", "--role", "operator", "--name", "ci")
	secret := strings.TrimSuffix(r.ok(t), "\n")
	if !engine.WellFormedToken(secret) || !strings.Contains(r.stderr, "shown this once") {
		t.Fatalf("token create printed %q, stderr %q", r.stdout, r.stderr)
	}
	tok, err := s.Service.Authenticate(secret)
	if err != nil || tok.Role != domain.RoleOperator || tok.Name != "ci" {
		t.Fatalf("created %+v, %v", tok, err)
	}
	ci := withToken(s, secret)
	jetprop(ctx, ci, "", "task", "create", "--name", "add", "--file", writeModule(t)).ok(t)

	out := jetprop(ctx, admin, "", "token", "ls").ok(t)
	if !regexp.MustCompile(`(?m)^`+tok.ID+` +ci +operator `).MatchString(out) || strings.Contains(out, secret) {
		t.Fatalf("token ls:\n%s", out)
	}
	if out := jetprop(ctx, admin, "", "token", "ls", "-o", "json").ok(t); strings.Contains(out, secret) || !strings.Contains(out, `"role": "operator"`) {
		t.Fatalf("token ls -o json:\n%s", out)
	}
	if out := jetprop(ctx, admin, "", "token", "revoke", tok.ID).ok(t); out != tok.ID+" revoked\n" {
		t.Fatalf("revoke printed %q", out)
	}
	jetprop(ctx, ci, "", "task", "list").fails(t, exitError, "unknown or revoked token (HTTP 401)")

	viewer := withToken(s, s.Token(t, domain.RoleViewer))
	jetprop(ctx, viewer, "", "task", "list").ok(t)
	jetprop(ctx, viewer, "", "task", "create", "--name", "add", "--file", writeModule(t)).fails(t, exitError, "needs operator (HTTP 403)")
	jetprop(ctx, viewer, "", "token", "ls").fails(t, exitError, "HTTP 403")
	jetprop(ctx, withToken(s, ""), "", "task", "list").fails(t, exitError, "missing bearer token")
	flag := map[string]string{"JETPROP_SERVER": s.URL, "JETPROP_DATA": "/nonexistent"}
	jetprop(ctx, flag, "", "task", "list", "--api-token", admin["JETPROP_TOKEN"]).ok(t)

	jetprop(ctx, admin, "", "token", "create", "--name", "x").fails(t, exitUsage, "--name and --role are required")
	jetprop(ctx, admin, "", "token", "create", "--name", "x", "--role", "root").fails(t, exitUsage, "want one of")
}

// TestCLI_LocalAdminToken: without a token, a client command on this
// machine sends the admin token the server bootstrapped, and only to a
// loopback server.
func TestCLI_LocalAdminToken(t *testing.T) {
	s := apitest.Start(t, apitest.Config{Auth: true})
	dir := t.TempDir()
	if err := os.WriteFile(app.AdminTokenPath(dir), []byte(s.Token(t, domain.RoleAdmin)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"JETPROP_SERVER": s.URL, "JETPROP_DATA": dir}
	jetprop(t.Context(), vars, "", "token", "ls").ok(t)
	vars["JETPROP_TOKEN"] = "jpt_wrong"
	jetprop(t.Context(), vars, "", "token", "ls").fails(t, exitError, "malformed token")

	lookup := func(k string) (string, bool) { return map[string]string{"JETPROP_DATA": dir}[k], k == "JETPROP_DATA" }
	for server, want := range map[string]bool{
		"http://127.0.0.1:7070": true, "http://localhost:7070": true, "http://[::1]:7070": true,
		"http://192.0.2.1:7070": false, "http://gateway.lan:7070": false, "://bad": false,
	} {
		if got := localAdminToken(server, lookup) != ""; got != want {
			t.Errorf("localAdminToken(%q) sent: %v, want %v", server, got, want)
		}
	}
}

// serveUntilDone runs `jetprop up` with args (random ports, no proplet)
// until the test ends and returns its stdout once it is ready.
func serveUntilDone(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	args = append([]string{"up", "--http", "127.0.0.1:0", "--nats-port", "-1", "--mqtt-port", "-1", "--proplets", "0", "--log-level", "error"}, args...)
	go func() { done <- jetpropTo(ctx, &stdout, &stderr, nil, "", args...) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("up exited %d: %s", code, stderr.String())
		}
	})
	natstest.CheckFor(t, 2*apitest.Timeout, func() error {
		if !strings.Contains(stdout.String(), " ready\n") || !strings.Contains(stdout.String(), "  topics ") {
			return errors.New("not up yet: " + stderr.String())
		}
		return nil
	})
	return stdout.String()
}

// TestCLI_UpAuth: dev mode says so in one line; --auth on writes an admin
// token the CLI on this machine picks up; a non-loopback address without
// auth is refused, naming the flags, unless --insecure.
func TestCLI_UpAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers")
	}
	t.Run("dev mode", func(t *testing.T) {
		out := serveUntilDone(t, "--data", t.TempDir())
		if !strings.Contains(out, "\n  dev mode: no authentication (loopback only); start with --auth on for tokens and device credentials\n") {
			t.Fatalf("banner:\n%s", out)
		}
	})
	t.Run("auth on", func(t *testing.T) {
		dir := t.TempDir()
		out := serveUntilDone(t, "--data", dir, "--auth", "on")
		path := filepath.Join(dir, "admin.token")
		if !strings.Contains(out, "auth    on: API requests need a token; an admin token is in "+path) {
			t.Fatalf("banner:\n%s", out)
		}
		url := regexp.MustCompile(`http +(http://\S+)`).FindStringSubmatch(out)[1]
		jetprop(t.Context(), map[string]string{"JETPROP_SERVER": url, "JETPROP_DATA": "/nonexistent"}, "", "task", "list").
			fails(t, exitError, "missing bearer token")
		local := map[string]string{"JETPROP_SERVER": url, "JETPROP_DATA": dir}
		jetprop(t.Context(), local, "", "token", "create", "--role", "viewer", "--name", "grafana").ok(t)
		if out := jetprop(t.Context(), local, "", "token", "ls").ok(t); !strings.Contains(out, "bootstrap admin") || !strings.Contains(out, "grafana") {
			t.Fatalf("token ls:\n%s", out)
		}
	})
	t.Run("--host 0.0.0.0 without auth", func(t *testing.T) {
		r := jetprop(t.Context(), nil, "", "up", "--data", t.TempDir(), "--host", "0.0.0.0", "--http", "127.0.0.1:0",
			"--nats-port", "-1", "--mqtt-port", "-1", "--proplets", "0")
		r.fails(t, exitError, "refusing to listen on --host 0.0.0.0 without authentication")
		if !strings.Contains(r.stderr, "--auth on") || !strings.Contains(r.stderr, "--insecure") {
			t.Fatalf("the refusal does not name the flags: %s", r.stderr)
		}
	})
	t.Run("--http on every interface without auth", func(t *testing.T) {
		jetprop(t.Context(), map[string]string{"JETPROP_HTTP": ":0"}, "", "server", "--data", t.TempDir()).
			fails(t, exitError, "refusing to listen on --http :0")
	})
	t.Run("--host 0.0.0.0 --insecure", func(t *testing.T) {
		out := serveUntilDone(t, "--data", t.TempDir(), "--host", "0.0.0.0", "--insecure")
		if !strings.Contains(out, "\n  INSECURE: no authentication on --host 0.0.0.0 (--insecure)") {
			t.Fatalf("banner:\n%s", out)
		}
	})
	t.Run("--host 0.0.0.0 --auth on", func(t *testing.T) {
		out := serveUntilDone(t, "--data", t.TempDir(), "--host", "0.0.0.0", "--auth", "on")
		if !strings.Contains(out, "auth    on:") {
			t.Fatalf("banner:\n%s", out)
		}
	})
	t.Run("bad --auth", func(t *testing.T) {
		jetprop(t.Context(), nil, "", "up", "--auth", "yes").fails(t, exitUsage, `"yes": want on or off`)
		jetprop(t.Context(), map[string]string{"JETPROP_AUTH": "maybe"}, "", "up").fails(t, exitError, "env JETPROP_AUTH")
	})
}
