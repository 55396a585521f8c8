package domain_test

import (
	"bytes"
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
// 25 per byte (a 6.4 MiB Go program: 157 MiB). The most per byte, measured
// by TestCheckedCompile_Bound's shapes: a million empty functions (67 per
// byte), a million element indexes (72); function types would take 174
// but MaxTypes of them take 34 MiB, and MaxModuleLocals locals 24 MiB,
// hence allocFixed.
const (
	allocPerByte = 96
	allocFixed   = 64 << 20
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

// TestCheckedCompile_Bound: real modules, and the shapes that cost wazero
// the most per byte, compile within allocBound. JETPROP_BIG_WASM names a
// larger real module to measure too (see docs/limits.md).
func TestCheckedCompile_Bound(t *testing.T) {
	mods := fixtures()
	mods["sections"] = sectionsWasm
	for name, m := range shapes(200_000) {
		mods[name] = m
	}
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

// shapes are modules of n entries (or as many as the bound allows) that
// cost wazero the most per byte.
func shapes(n int) map[string][]byte {
	elems := func(prefix uint64, unit ...byte) []byte {
		return mod(funcType, oneFunc, sec(4, uleb(1), []byte{0x70, 0}, uleb(uint64(n))),
			sec(9, uleb(1), uleb(prefix), i32Offset, uleb(uint64(n)), bytes.Repeat(unit, n)), sec(10, uleb(1), body(0, 0x0b)))
	}
	return map[string][]byte{
		"locals of one function":     manyLocals(1),
		"locals at the module bound": manyLocals(domain.MaxModuleLocals / domain.MaxFunctionLocals),
		"types at the bound":         repeated(1, domain.MaxTypes, 0x60, 0, 0),
		"empty functions": mod(funcType, sec(3, uleb(uint64(n)), make([]byte, n)),
			sec(10, uleb(uint64(n)), bytes.Repeat([]byte{2, 0, 0x0b}, n))),
		"element indexes":     elems(0, 0),
		"element expressions": elems(4, 0xd2, 0, 0x0b),
		"globals":             repeated(6, n, 0x7f, 0, 0x41, 0, 0x0b),
		"tables":              repeated(4, n, 0x70, 0, 0),
	}
}

// FuzzCheckedCompileRepeated is FuzzCheckedCompile on modules of one
// section holding n copies of unit, between the sections of head and tail:
// the shapes whose counts cost a decoder the most, which byte mutations
// of small modules seldom reach.
func FuzzCheckedCompileRepeated(f *testing.F) {
	code := sec(10, uleb(1), body(0, 0x0b))
	f.Add([]byte{}, byte(1), uint32(1000), []byte{0x60, 0, 0}, []byte{})
	f.Add(funcType, byte(3), uint32(1000), []byte{0}, []byte{})
	f.Add([]byte{}, byte(6), uint32(1000), []byte{0x7f, 0, 0x41, 0, 0x0b}, []byte{})
	f.Add(cat(funcType, oneFunc), byte(9), uint32(1000), []byte{4, 0x41, 0, 0x0b, 1, 0xd2, 0, 0x0b}, code)
	f.Add(cat(funcType, oneFunc), byte(10), uint32(1), []byte{4, 1, 0xd0, 0x86, 0x03, 0x7f, 0x0b}, []byte{})
	if w := flag.Lookup("test.fuzzworker"); w != nil && w.Value.String() == "true" {
		capAddressSpace(f, fuzzAddressSpace)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, fuzzConfig())
	f.Cleanup(func() { _ = rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, head []byte, id byte, n uint32, unit, tail []byte) {
		if len(head) > 256 || len(tail) > 256 || len(unit) == 0 || len(unit) > 16 {
			return
		}
		n %= 1 << 18
		b := mod(head, sec(id, uleb(uint64(n)), bytes.Repeat(unit, int(n))), tail)
		if domain.CheckModule(b) != nil {
			return
		}
		if a, _ := compileAlloc(ctx, rt, b); a > allocBound(len(b)) {
			t.Fatalf("compiling %d bytes allocated %d MiB, the bound is %d MiB", len(b), a>>20, allocBound(len(b))>>20)
		}
	})
}
