package app_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

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
	cfg.OCIPlainHTTP, cfg.OCIUsername, cfg.OCIPassword = true, "jet", "prop"
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
	cfg2.OCIPlainHTTP, cfg2.OCIUsername, cfg2.OCIPassword = true, "jet", "wrong"
	b := startApp(t, cfg2)
	waitDevices(t, b, 1)
	done = runHTTP(t, b, map[string]any{"name": "add", "image_url": reg.Ref("demo/add:v2"), "inputs": []any{2, 3}})
	if done.Status != "failed" || !strings.Contains(strings.ToLower(done.Error), "unauthorized") {
		t.Fatalf("wrong credentials: %s %q", done.Status, done.Error)
	}
}
