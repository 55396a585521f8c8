package artifacts_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/testing/natstest"
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
	if err != nil || n != int64(len(tiny)) || !artifacts.ValidDigest(d1) {
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
		{"text", []byte("hello world, not wasm"), artifacts.ErrNotWasm},
		{"empty", nil, artifacts.ErrNotWasm},
		{"wrong version", []byte{0, 0x61, 0x73, 0x6d, 2, 0, 0, 0}, artifacts.ErrNotWasm},
		{"too large", append(append([]byte{}, tiny...), make([]byte, 64)...), artifacts.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := st.Put(ctx, bytes.NewReader(tc.in)); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
	if _, err := st.Get(ctx, "sha256:"+string(bytes.Repeat([]byte("0"), 64))); !errors.Is(err, artifacts.ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
	if _, err := st.Get(ctx, "../etc/passwd"); !errors.Is(err, artifacts.ErrNotFound) {
		t.Fatalf("get bad digest: %v", err)
	}
}
