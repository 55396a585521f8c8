package oci_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/testing/registrytest"
)

const benchModuleSize = 10 << 20

// BenchmarkImport measures OCI import of a 10 MiB module into a real
// artifacts store: resolve, download with verification, wasm check, spool,
// object store put. The module is deleted from the store (untimed) between
// iterations so every import downloads and stores it.
func BenchmarkImport(b *testing.B) {
	reg := registrytest.Start(b)
	c := newClient(b)
	module := wasmModule(b, benchModuleSize)
	push(b, c, reg.Ref("bench/big:v1"), module)
	st, obj := newStore(b, 0)
	ctx := context.Background()
	b.SetBytes(int64(len(module)))
	b.ResetTimer()
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		d, _, err := oci.Import(ctx, c, st, reg.Ref("bench/big:v1"))
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := obj.Delete(ctx, d); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportMiBps(b, len(module), elapsed)
}

// BenchmarkPull measures the registry download alone (verified, into
// io.Discard), for comparison with BenchmarkImport.
func BenchmarkPull(b *testing.B) {
	reg := registrytest.Start(b)
	c := newClient(b)
	module := wasmModule(b, benchModuleSize)
	push(b, c, reg.Ref("bench/big:v1"), module)
	ctx := context.Background()
	b.SetBytes(int64(len(module)))
	start := time.Now()
	for b.Loop() {
		m, err := c.Pull(ctx, reg.Ref("bench/big:v1"), 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, m.Reader); err != nil {
			b.Fatal(err)
		}
		m.Reader.Close()
	}
	reportMiBps(b, len(module), time.Since(start))
}

// BenchmarkStorePut is the baseline: the same module put into the store
// from memory, no registry involved.
func BenchmarkStorePut(b *testing.B) {
	module := wasmModule(b, benchModuleSize)
	st, obj := newStore(b, 0)
	ctx := context.Background()
	b.SetBytes(int64(len(module)))
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		d, _, err := st.Put(ctx, bytes.NewReader(module))
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := obj.Delete(ctx, d); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportMiBps(b, len(module), elapsed)
}

func reportMiBps(b *testing.B, size int, elapsed time.Duration) {
	if elapsed > 0 {
		b.ReportMetric(float64(size)*float64(b.N)/(1<<20)/elapsed.Seconds(), "MiB/s")
	}
}
