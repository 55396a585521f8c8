package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"

	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/registrytest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestApp_OCIImage runs a task whose image is an OCI reference: the engine
// imports it from a real registry before dispatch, and registry errors are
// the task's failure reason instead of a silent timeout.
func TestApp_OCIImage(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("jet", "prop"))
	push, err := oci.New(oci.WithPlainHTTP(true), oci.WithBasicAuth("jet", "prop"))
	if err != nil {
		t.Fatal(err)
	}
	mod := wasmfixtures.Add()
	digest := domain.DigestOf(mod)
	if _, err := push.Push(context.Background(), reg.Ref("demo/add:v2"), bytes.NewReader(mod), int64(len(mod)), digest); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t.TempDir(), 1)
	cfg.OCIPlainHTTP, cfg.OCIUsername, cfg.OCIPassword, cfg.OCIRegistryHosts = true, "jet", "prop", reg.Host
	a := startApp(t, cfg)
	waitDevices(t, a, 1)

	done := runHTTP(t, a, map[string]any{"name": "add", "image_url": reg.Ref("demo/add:v2"), "inputs": []any{2, 3}})
	if done.Status != "completed" || string(done.Results) != `"5"` {
		t.Fatalf("task from OCI: %s %s %q", done.Status, done.Results, done.Error)
	}
	done = runHTTP(t, a, map[string]any{"name": "add", "image_url": reg.Ref("demo/add:v9"), "inputs": []any{2, 3}})
	if done.Status != "failed" || !strings.Contains(done.Error, "v9") || !strings.Contains(done.Error, "not found") {
		t.Fatalf("unknown tag: %s %q", done.Status, done.Error)
	}

	cfg2 := testConfig(t.TempDir(), 1)
	cfg2.OCIPlainHTTP, cfg2.OCIUsername, cfg2.OCIPassword, cfg2.OCIRegistryHosts = true, "jet", "wrong", reg.Host
	b := startApp(t, cfg2)
	waitDevices(t, b, 1)
	done = runHTTP(t, b, map[string]any{"name": "add", "image_url": reg.Ref("demo/add:v2"), "inputs": []any{2, 3}})
	if done.Status != "failed" || !strings.Contains(strings.ToLower(done.Error), "unauthorized") {
		t.Fatalf("wrong credentials: %s %q", done.Status, done.Error)
	}
}

// TestApp_OCICredentialsStayWithTheirHosts gives the server credentials for
// a real registry (--oci-registry-hosts) and has users name another one, a
// server that records every Authorization header it gets and asks for a
// token the way registries do: the server's credentials reach the
// registry they are for (an import succeeds) and never the other one, by
// import, export or task image.
func TestApp_OCICredentialsStayWithTheirHosts(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("jet", "prop"))
	mod := wasmfixtures.Add()
	pushTo(t, reg, "demo/add:v2", mod)
	other := newRecordingRegistry(t)

	cfg := testConfig(t.TempDir(), 1)
	cfg.OCIPlainHTTP, cfg.OCIUsername, cfg.OCIPassword, cfg.OCIRegistryHosts = true, "jet", "prop", reg.Host
	a := startApp(t, cfg)
	c := client.New(a.HTTPURL(), nil)
	ctx := t.Context()
	if _, err := c.ImportArtifact(ctx, httpapi.ImportRequest{Ref: reg.Ref("demo/add:v2")}); err != nil {
		t.Fatalf("import from the configured registry with the server's credentials: %v", err)
	}
	if _, err := c.ImportArtifact(ctx, httpapi.ImportRequest{Ref: other.host + "/x:1"}); client.StatusCode(err) != http.StatusBadGateway {
		t.Fatalf("import from the other registry: %v, want 502", err)
	}
	if _, err := c.ExportArtifact(ctx, "add:v2", httpapi.ExportRequest{To: other.host + "/x:1"}); client.StatusCode(err) != http.StatusBadGateway {
		t.Fatalf("export to the other registry: %v, want 502", err)
	}
	waitDevices(t, a, 1)
	if done := runHTTP(t, a, map[string]any{"name": "add", "image_url": other.host + "/x:1", "inputs": []any{2, 3}}); done.Status != "failed" {
		t.Fatalf("task from the other registry: %s %q", done.Status, done.Error)
	}
	seen := other.seen()
	if len(seen) == 0 {
		t.Fatal("the other registry was never asked: the test proves nothing")
	}
	for _, h := range seen {
		if h != "" {
			t.Fatalf("the other registry got Authorization %q; requests: %q", h, seen)
		}
	}
}

// recordingRegistry answers every request as a registry that wants a
// token would (401 with a Bearer challenge whose realm is itself, and
// 401 from the realm too) and records the Authorization header of each.
type recordingRegistry struct {
	host string
	mu   sync.Mutex
	auth []string
}

func newRecordingRegistry(t *testing.T) *recordingRegistry {
	r := &recordingRegistry{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.mu.Unlock()
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="other",scope="repository:x:pull,push"`, req.Host))
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *recordingRegistry) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.auth)
}
