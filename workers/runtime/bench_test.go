package runtime_test

import (
	"context"
	"testing"

	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/runtime"
)

// interruptible names the two settings of Options.DisableCloseOnContextDone.
var interruptible = []struct {
	name string
	opts runtime.Options
}{
	{name: "interruptible", opts: runtime.Options{}},
	{name: "uninterruptible", opts: runtime.Options{DisableCloseOnContextDone: true}},
}

// BenchmarkWazero_AddWarm is one warm call of a cached module: a fresh
// instance, the call, and the result formatted (results in doc.go).
func BenchmarkWazero_AddWarm(b *testing.B) {
	for _, c := range interruptible {
		b.Run(c.name, func(b *testing.B) {
			benchRun(b, c.opts, runtime.Job{Module: wasmfixtures.Add(), Function: "add", Inputs: []string{"10", "20"}}, "30")
		})
	}
}

// BenchmarkWazero_Sum is a CPU-bound guest loop of 10 million iterations:
// what interruptibility costs guest code (results in doc.go).
func BenchmarkWazero_Sum(b *testing.B) {
	for _, c := range interruptible {
		b.Run(c.name, func(b *testing.B) {
			benchRun(b, c.opts, runtime.Job{Module: wasmfixtures.Loop(), Function: "sum", Inputs: []string{"10000000"}}, "49999995000000")
		})
	}
}

func benchRun(b *testing.B, opts runtime.Options, job runtime.Job, want string) {
	w := newWazero(b, opts)
	job.Digest = runtime.Digest(job.Module)
	ctx := context.Background()
	if _, err := w.Run(ctx, job); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := w.Run(ctx, job)
		if err != nil || got != want {
			b.Fatalf("%q, %v", got, err)
		}
	}
}
