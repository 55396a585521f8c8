package artifacts_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// module encodes a module of functions () -> i32 with the given bodies
// (each without its locals byte or end).
func module(bodies ...[]byte) []byte {
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	out = section(out, 1, []byte{0x01, 0x60, 0x00, 0x01, 0x7f})
	funcs := []byte{byte(len(bodies))}
	code := []byte{byte(len(bodies))}
	for _, b := range bodies {
		funcs = append(funcs, 0x00)
		body := append(append([]byte{0x00}, b...), 0x0b)
		code = append(append(code, byte(len(body))), body...)
	}
	return section(section(out, 3, funcs), 10, code)
}

func section(out []byte, id byte, content []byte) []byte {
	return append(append(out, id, byte(len(content))), content...)
}

// TestValidate_Bodies: every function body is validated at Put, the last
// one too: the store stops wazero's compile after its validation
// (decodeAndValidate), and must not stop it before.
func TestValidate_Bodies(t *testing.T) {
	ok := []byte{0x41, 0x2a} // i32.const 42
	for _, tc := range []struct {
		name    string
		module  []byte
		wantErr error
	}{
		{"valid", module(ok, ok, ok), nil},
		{"1 MiB of code", wasmfixtures.Functions(1 << 20), nil},
		{"no functions", module(), nil},
		{"add on an empty stack, first", module([]byte{0x6a}, ok, ok), domain.ErrNotWasm},
		{"wrong result type, last", module(ok, ok, []byte{0x42, 0x00}), domain.ErrNotWasm},
		{"unknown opcode, middle", module(ok, []byte{0xff}, ok), domain.ErrNotWasm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t, 0)
			_, _, err := st.Put(context.Background(), bytes.NewReader(tc.module))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("put: %v, want %v", err, tc.wantErr)
			}
		})
	}
}
