package runtime_test

import (
	"testing"

	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/runtime"
)

func TestDeclaredMinPages(t *testing.T) {
	header := "\x00asm\x01\x00\x00\x00"
	tests := []struct {
		name   string
		module []byte
		want   uint32
		wantOK bool
	}{
		{name: "bigmem", module: wasmfixtures.BigMemory(), want: 64, wantOK: true},
		{name: "grow", module: wasmfixtures.GrowMemory(), want: 1, wantOK: true},
		{name: "no memory", module: wasmfixtures.Add(), wantOK: false},
		{name: "imports before memory", module: wasmfixtures.Uppercase(), want: 1, wantOK: true},
		{name: "not wasm", module: wasmfixtures.Invalid(), wantOK: false},
		{name: "header only", module: []byte(header), wantOK: false},
		{name: "min and max", module: []byte(header + "\x05\x04\x01\x01\x80\x01\xff"), want: 128, wantOK: false},
		{name: "min and max exact", module: []byte(header + "\x05\x05\x01\x01\x80\x01\x7f"), want: 128, wantOK: true},
		{name: "two memories", module: []byte(header + "\x05\x05\x02\x00\x03\x00\x09"), want: 9, wantOK: true},
		{name: "section longer than module", module: []byte(header + "\x05\x09\x01\x00\x03"), wantOK: false},
		{name: "endless leb", module: []byte(header + "\x05\xff\xff\xff\xff\xff\xff"), wantOK: false},
		{name: "truncated limits", module: []byte(header + "\x05\x02\x01\x01"), wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := runtime.DeclaredMinPages(tc.module)
			if ok != tc.wantOK || (ok && got != tc.want) {
				t.Fatalf("got %d, %v; want %d, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func FuzzDeclaredMinPages(f *testing.F) {
	for _, m := range [][]byte{wasmfixtures.BigMemory(), wasmfixtures.GrowMemory(), wasmfixtures.Uppercase(), wasmfixtures.Add()} {
		f.Add(m)
	}
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x05\x05\x02\x00\x03\x00\x09"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pages, ok := runtime.DeclaredMinPages(b)
		if !ok && pages != 0 {
			t.Fatalf("pages %d without ok", pages)
		}
	})
}
