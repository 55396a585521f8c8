package artifacts_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

var tiny = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

func newStore(t *testing.T, max int64) *artifacts.Store {
	s := natstest.Start(t)
	_, js := natstest.Connect(t, s)
	st, err := artifacts.New(context.Background(), js, artifacts.Options{MaxSize: max})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStore_PutGet(t *testing.T) {
	st := newStore(t, 0)
	ctx := context.Background()
	d1, n, err := st.Put(ctx, bytes.NewReader(tiny))
	if err != nil || n != int64(len(tiny)) || !domain.ValidDigest(d1) {
		t.Fatalf("put: %q %d %v", d1, n, err)
	}
	d2, _, err := st.Put(ctx, bytes.NewReader(tiny))
	if err != nil || d2 != d1 {
		t.Fatalf("second put: %q %v, want %q", d2, err, d1)
	}
	got, err := st.Get(ctx, d1)
	if err != nil || !bytes.Equal(got, tiny) {
		t.Fatalf("get: %v", err)
	}
}

func TestStore_BadInput(t *testing.T) {
	st := newStore(t, 16)
	ctx := context.Background()
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"text", []byte("hello world, not wasm"), domain.ErrNotWasm},
		{"empty", nil, domain.ErrNotWasm},
		{"wrong version", []byte{0, 0x61, 0x73, 0x6d, 2, 0, 0, 0}, domain.ErrNotWasm},
		{"too large", append(append([]byte{}, tiny...), make([]byte, 64)...), domain.ErrTooLarge},
		{"truncated section", append(append([]byte{}, tiny...), 1, 5, 1), domain.ErrNotWasm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := st.Put(ctx, bytes.NewReader(tc.in)); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
	if _, err := st.Get(ctx, "sha256:"+string(bytes.Repeat([]byte("0"), 64))); !errors.Is(err, domain.ErrModuleNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
	if _, err := st.Get(ctx, "../etc/passwd"); !errors.Is(err, domain.ErrModuleNotFound) {
		t.Fatalf("get bad digest: %v", err)
	}
}

// TestStore_RefusesBombs: modules whose declared counts wazero would
// allocate before reading them are refused by domain.CheckModule before
// wazero sees them (without it, each takes the test process down).
func TestStore_RefusesBombs(t *testing.T) {
	st := newStore(t, 0)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"export count", wasmfixtures.ExportBomb(), "invalid wasm module: section export ends inside its exports count"},
		{"locals", wasmfixtures.LocalsBomb(), "invalid wasm module: section code declares 4294967295 locals in function body 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := st.Put(context.Background(), bytes.NewReader(tc.in))
			if !errors.Is(err, domain.ErrNotWasm) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want an ErrNotWasm saying %q", err, tc.want)
			}
		})
	}
}

func TestStore_StatOpenDelete(t *testing.T) {
	st := newStore(t, 0)
	ctx := context.Background()
	module := wasmfixtures.Padded(tiny, 700_000) // several object chunks
	d, n, err := st.Put(ctx, bytes.NewReader(module))
	if err != nil {
		t.Fatal(err)
	}
	if size, ok, err := st.Stat(ctx, d); err != nil || !ok || size != n {
		t.Fatalf("stat: %d %v %v, want %d", size, ok, err, n)
	}
	rc, size, err := st.Open(ctx, d)
	if err != nil || size != n {
		t.Fatalf("open: %d %v", size, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, module) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}

	if err := st.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.Stat(ctx, d); ok || err != nil {
		t.Fatalf("stat after delete: %v %v", ok, err)
	}
	if _, _, err := st.Open(ctx, d); !errors.Is(err, domain.ErrModuleNotFound) {
		t.Fatalf("open after delete: %v", err)
	}
	if err := st.Delete(ctx, d); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if d2, _, err := st.Put(ctx, bytes.NewReader(module)); err != nil || d2 != d || !st.Has(ctx, d) {
		t.Fatalf("put after delete: %s %v", d2, err)
	}

	for _, bad := range []string{"", "../etc/passwd", "sha256:XYZ"} {
		if _, ok, err := st.Stat(ctx, bad); ok || err != nil {
			t.Errorf("stat %q: %v %v", bad, ok, err)
		}
		if _, _, err := st.Open(ctx, bad); !errors.Is(err, domain.ErrModuleNotFound) {
			t.Errorf("open %q: %v", bad, err)
		}
		if err := st.Delete(ctx, bad); err != nil {
			t.Errorf("delete %q: %v", bad, err)
		}
	}
}
