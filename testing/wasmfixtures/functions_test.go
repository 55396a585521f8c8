package wasmfixtures_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/runtime"
)

// TestFunctions: the generated module is about the size asked for, is
// valid (wasm-validate agrees, when wabt is installed), and add answers;
// two calls give two digests.
func TestFunctions(t *testing.T) {
	rt, err := runtime.NewWazero(context.Background(), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	b := wasmfixtures.Functions(1 << 20)
	if len(b) < 1<<20 || len(b) > 1<<20+4096 {
		t.Fatalf("Functions(1 MiB): %d bytes", len(b))
	}
	if runtime.Digest(b) == runtime.Digest(wasmfixtures.Functions(1<<20)) {
		t.Fatal("two calls gave one module")
	}
	t0 := time.Now()
	out, err := rt.Run(context.Background(), runtime.Job{Module: b, Function: "add", Inputs: []string{"2", "3"}})
	if err != nil || out != "5" {
		t.Fatalf("add 2 3: %q, %v", out, err)
	}
	t.Logf("first run (compile included) of %d bytes: %s", len(b), time.Since(t0))
	if _, err := exec.LookPath("wasm-validate"); err != nil {
		t.Log("wasm-validate not installed: checked by wazero only")
		return
	}
	f := filepath.Join(t.TempDir(), "functions.wasm")
	os.WriteFile(f, b, 0o644)
	if out, err := exec.Command("wasm-validate", f).CombinedOutput(); err != nil {
		t.Fatalf("wasm-validate: %v: %s", err, out)
	}
}
