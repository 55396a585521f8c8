package domain_test

import (
	"context"
	"flag"
	"os"
	"runtime"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/jetprop/jetprop/engine/domain"
)

// What compiling a module CheckModule passes may allocate in wazero's
// interpreter (the compile the module store runs on every Put): at most
// allocPerByte bytes per byte of module plus allocFixed. Real modules take
// 25 per byte (a 6.4 MiB Go program: 157 MiB); the largest per byte come
// from locals (about 130 bytes each): MaxModuleLocals of them in a
// 44-byte module take 17 MiB, hence allocFixed.
const (
	allocPerByte = 64
	allocFixed   = 32 << 20
)

// fuzzAddressSpace caps a fuzz worker's address space (Linux), so that a
// module that still makes wazero allocate gigabytes fails the worker with
// "out of memory", recorded as a crash, instead of taking the machine.
const fuzzAddressSpace = 4 << 30

// compileAlloc compiles b in rt and returns the bytes allocated meanwhile.
func compileAlloc(ctx context.Context, rt wazero.Runtime, b []byte) (uint64, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := rt.CompileModule(ctx, b)
	runtime.ReadMemStats(&after)
	if err == nil {
		_ = m.Close(ctx)
	}
	return after.TotalAlloc - before.TotalAlloc, err
}

// fuzzConfig is wazero's interpreter, or with JETPROP_FUZZ_COMPILER=1 its
// compiler (the proplet's runtime; slower per input).
func fuzzConfig() wazero.RuntimeConfig {
	if os.Getenv("JETPROP_FUZZ_COMPILER") == "1" {
		return wazero.NewRuntimeConfigCompiler().WithDebugInfoEnabled(false)
	}
	return wazero.NewRuntimeConfigInterpreter().WithDebugInfoEnabled(false)
}

func allocBound(n int) uint64 { return allocPerByte*uint64(n) + allocFixed }

// FuzzCheckedCompile: CheckModule never panics, and wazero allocates within
// allocBound for any module CheckModule passes. Run it capped, one fuzzer
// at a time (make fuzz does); every crash it finds is kept under
// testdata/fuzz/FuzzCheckedCompile and named in TestCheckModule_Refuses.
func FuzzCheckedCompile(f *testing.F) {
	for _, m := range fixtures() {
		f.Add(m)
	}
	f.Add(sectionsWasm)
	f.Add(manyLocals(2))
	if w := flag.Lookup("test.fuzzworker"); w != nil && w.Value.String() == "true" {
		capAddressSpace(f, fuzzAddressSpace)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, fuzzConfig())
	f.Cleanup(func() { _ = rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, b []byte) {
		if domain.CheckModule(b) != nil {
			return
		}
		if n, _ := compileAlloc(ctx, rt, b); n > allocBound(len(b)) {
			t.Fatalf("compiling %d bytes allocated %d MiB, the bound is %d MiB", len(b), n>>20, allocBound(len(b))>>20)
		}
	})
}

// TestCheckedCompile_Bound: real modules compile within allocBound, and
// the committed fuzz crashes are refused by CheckModule. JETPROP_BIG_WASM
// names a larger real module to measure too (see docs/limits.md).
func TestCheckedCompile_Bound(t *testing.T) {
	mods := fixtures()
	mods["sections"] = sectionsWasm
	mods["locals"] = manyLocals(1)
	mods["locals at the module's bound"] = manyLocals(domain.MaxModuleLocals / domain.MaxFunctionLocals)
	if p := os.Getenv("JETPROP_BIG_WASM"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		mods[p] = b
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithDebugInfoEnabled(false))
	defer rt.Close(ctx)
	for name, b := range mods {
		if err := domain.CheckModule(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n, err := compileAlloc(ctx, rt, b)
		t.Logf("%s: %d bytes, %d KiB allocated (%.1f per byte), %v", name, len(b), n>>10, float64(n)/float64(len(b)), err)
		if n > allocBound(len(b)) {
			t.Errorf("%s: %d bytes allocated %d MiB, the bound is %d MiB", name, len(b), n>>20, allocBound(len(b))>>20)
		}
	}
}
