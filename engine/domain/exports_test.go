package domain_test

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/tetratelabs/wazero"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func fixtures() map[string][]byte {
	return map[string][]byte{
		"add": wasmfixtures.Add(), "fallback": wasmfixtures.Fallback(), "loop": wasmfixtures.Loop(),
		"grow": wasmfixtures.GrowMemory(), "bigmem": wasmfixtures.BigMemory(), "f64": wasmfixtures.F64(),
		"i64": wasmfixtures.I64(), "uppercase": wasmfixtures.Uppercase(), "echo": wasmfixtures.Echo(),
		"revenv": wasmfixtures.RevEnv(), "fail": wasmfixtures.Fail(),
	}
}

func TestReadExports(t *testing.T) {
	header := domain.WasmHeader
	tests := []struct {
		name    string
		module  []byte
		want    []string
		wantErr bool
	}{
		{name: "add", module: wasmfixtures.Add(), want: []string{"add"}},
		{name: "memory is no function", module: wasmfixtures.Echo(), want: []string{"_start"}},
		{name: "two", module: wasmfixtures.Fallback(), want: []string{"main", "run"}},
		{name: "padded after the exports", module: wasmfixtures.Padded(wasmfixtures.Add(), 1<<20), want: []string{"add"}},
		{name: "header only: no export section", module: header, want: nil},
		{name: "code section first: exports nothing", module: append(slices.Clone(header), 10, 1, 0), want: nil},
		{name: "not wasm", module: wasmfixtures.Invalid(), wantErr: true},
		{name: "empty", module: nil, wantErr: true},
		{name: "truncated section", module: append(slices.Clone(header), 7, 5, 1), wantErr: true},
		{name: "size not a u32", module: append(slices.Clone(header), 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), wantErr: true},
		{name: "export section over the bound", module: append(slices.Clone(header), 7, 0x80, 0x80, 0x80, 0x04), wantErr: true},
		{name: "name past the section", module: append(slices.Clone(header), 7, 3, 1, 9, 'a'), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domain.ReadExports(bytes.NewReader(tc.module))
			if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Fatalf("ReadExports = %q, %v; want %q, error %t", got, err, tc.want, tc.wantErr)
			}
			one, err1 := domain.ReadExports(iotest.OneByteReader(bytes.NewReader(tc.module)))
			if !slices.Equal(one, got) || (err1 != nil) != (err != nil) {
				t.Fatalf("byte by byte: %q, %v; whole: %q, %v", one, err1, got, err)
			}
		})
	}
}

// TestReadExports_AgreesWithWazero checks the scanner against wazero's
// decoder on every fixture.
func TestReadExports_AgreesWithWazero(t *testing.T) {
	for name, m := range fixtures() {
		t.Run(name, func(t *testing.T) {
			checkAgainstWazero(t, m)
		})
	}
}

// checkAgainstWazero fails when wazero compiles m and its exported
// functions differ from ReadExports'.
func checkAgainstWazero(t *testing.T, m []byte) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, m)
	if err != nil {
		return // not a module wazero takes: nothing to compare
	}
	want := slices.Sorted(maps.Keys(cm.ExportedFunctions()))
	got, err := domain.ReadExports(bytes.NewReader(m))
	slices.Sort(got)
	if err != nil || !slices.Equal(slices.Compact(got), want) {
		t.Fatalf("ReadExports = %q, %v; wazero: %q", got, err, want)
	}
}

// FuzzReadExports: no panic on any input, and the same answer whatever
// the read sizes. wazero is no oracle here: on some 22-byte inputs (an
// export count of 2^32-1) its decoder allocates for ~10 s and 14 GB.
func FuzzReadExports(f *testing.F) {
	for _, m := range fixtures() {
		f.Add(m)
	}
	f.Add(append(slices.Clone(domain.WasmHeader), 7, 3, 1, 9, 'a'))
	f.Fuzz(func(t *testing.T, m []byte) {
		got, err := domain.ReadExports(bytes.NewReader(m))
		one, err1 := domain.ReadExports(iotest.OneByteReader(bytes.NewReader(m)))
		if !slices.Equal(one, got) || (err1 != nil) != (err != nil) {
			t.Fatalf("byte by byte: %q, %v; whole: %q, %v", one, err1, got, err)
		}
	})
}

// BenchmarkExports compares reading a module's exports with the scanner
// and with wazero's compiler (interpreter: validation, no machine code).
func BenchmarkExports(b *testing.B) {
	for _, size := range []int{0, 8 << 20} {
		m := wasmfixtures.Add()
		if size > 0 {
			m = wasmfixtures.Padded(m, size)
		}
		b.Run("scanner/"+byteSize(len(m)), func(b *testing.B) {
			for b.Loop() {
				if _, err := domain.ReadExports(bytes.NewReader(m)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("wazero/"+byteSize(len(m)), func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
			defer rt.Close(ctx)
			for b.Loop() {
				cm, err := rt.CompileModule(ctx, m)
				if err != nil {
					b.Fatal(err)
				}
				_ = cm.ExportedFunctions()
				_ = cm.Close(ctx)
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return itoa(n>>20) + "MiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string { return string(strconv.AppendInt(nil, int64(n), 10)) }
