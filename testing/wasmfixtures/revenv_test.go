package wasmfixtures_test

import (
	"context"
	"testing"

	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/runtime"
)

// TestRevEnv: each environment entry comes out reversed, one a line.
func TestRevEnv(t *testing.T) {
	rt, err := runtime.NewWazero(context.Background(), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	out, err := rt.Run(context.Background(), runtime.Job{Module: wasmfixtures.RevEnv(), Function: "_start",
		Env: map[string]string{"A": "xyz", "KEY": "s3cret"}})
	if err != nil || out != "zyx=A\nterc3s=YEK\n" {
		t.Fatalf("RevEnv: %q, %v", out, err)
	}
}
