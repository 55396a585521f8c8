package wasmfixtures_test

import (
	"context"
	"testing"

	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/runtime"
)

// TestPadded: the padded module has the size asked for and still runs.
func TestPadded(t *testing.T) {
	rt, err := runtime.NewWazero(context.Background(), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	for _, size := range []int{200, 1000, 1 << 20, 1<<20 + 3, 0} {
		b := wasmfixtures.Padded(wasmfixtures.Add(), size)
		if len(b) != max(size, len(wasmfixtures.Add())+7) {
			t.Errorf("Padded(add, %d): %d bytes", size, len(b))
		}
		out, err := rt.Run(context.Background(), runtime.Job{Module: b, Function: "add", Inputs: []string{"2", "3"}})
		if err != nil || out != "5" {
			t.Fatalf("Padded(add, %d): %q, %v", size, out, err)
		}
	}
}
