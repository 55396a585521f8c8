package oci_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/registrytest"
)

func TestImport(t *testing.T) {
	reg := registrytest.Start(t)
	count, hc := countingClient()
	c := newClient(t, oci.WithHTTPClient(hc))
	st, obj := newStore(t, 0)
	ctx := context.Background()
	v1, v2 := wasmModule(t, 100<<10), wasmModule(t, 1000)
	manifest := push(t, c, reg.Ref("demo/add:v1"), v1)
	push(t, c, reg.Ref("demo/add:v2"), v2)

	d, n, err := oci.Import(ctx, c, st, reg.Ref("demo/add:v1"))
	if err != nil || d != digestOf(v1) || n != int64(len(v1)) {
		t.Fatalf("import: %s %d %v, want %s %d", d, n, err, digestOf(v1), len(v1))
	}
	got, err := st.Get(ctx, d)
	if err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("stored module: %v", err)
	}
	downloads := count.blobGets.Load()

	// the same module by digest: found in the store, not downloaded again
	d2, n2, err := oci.Import(ctx, c, st, reg.Ref("demo/add@"+manifest))
	if err != nil || d2 != d || n2 != n {
		t.Fatalf("second import: %s %d %v", d2, n2, err)
	}
	if again := count.blobGets.Load(); again != downloads {
		t.Fatalf("second import downloaded the layer again (%d blob GETs, was %d)", again, downloads)
	}
	if names := objects(t, obj); len(names) != 1 {
		t.Fatalf("store holds %v, want one module", names)
	}

	if d3, _, err := oci.Import(ctx, c, st, reg.Ref("demo/add:v2")); err != nil || d3 != digestOf(v2) {
		t.Fatalf("import v2: %s %v", d3, err)
	}
	if names := objects(t, obj); len(names) != 2 {
		t.Fatalf("store holds %v, want two modules", names)
	}
}

func TestImport_Errors(t *testing.T) {
	reg := registrytest.Start(t)
	c := newClient(t)
	st, obj := newStore(t, 0)
	notWasm := []byte("#!/bin/sh\necho this is not wasm\n")
	push(t, c, reg.Ref("demo/script:v1"), notWasm) // Push does not look inside
	tests := []struct {
		name    string
		ref     string
		wantErr error
	}{
		{"layer is not wasm", "demo/script:v1", domain.ErrNotWasm},
		{"unknown tag", "demo/script:v9", oci.ErrNotFound},
		{"unknown repository", "demo/none:v1", oci.ErrNotFound},
		{"bad reference", "demo", oci.ErrInvalidReference},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref := reg.Ref(tc.ref)
			if tc.wantErr == oci.ErrInvalidReference {
				ref = tc.ref
			}
			_, _, err := oci.Import(context.Background(), c, st, ref)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			var oe *oci.Error
			if !errors.As(err, &oe) || oe.Op != "import" || oe.Ref != ref {
				t.Fatalf("%v is not an *oci.Error naming the import of %s", err, ref)
			}
			if names := objects(t, obj); len(names) != 0 {
				t.Fatalf("store holds %v", names)
			}
		})
	}
}
