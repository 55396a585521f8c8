package runtime

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// arena allocates the linear memories of one Run. On Linux a memory is a
// reservation of address space for its maximum (the job's memory limit),
// made once with mmap and committed page by page as the guest grows it, so
// growth never copies and never leaves garbage on the Go heap; elsewhere
// wazero's default (a Go slice grown by append) applies.
//
// wazero calls LinearMemory.Free when the instance closes, which may happen
// on another goroutine while the guest still runs (a runtime Close during a
// call). Unmapping then would fault the guest, so Free only marks the
// memory; release unmaps every memory once the guest has returned.
type arena struct {
	mu   sync.Mutex
	mems []*mappedMemory
}

var _ experimental.MemoryAllocator = (*arena)(nil)

// Allocate reserves max bytes; wazero then asks for the minimum with
// Reallocate. Where no reservation can be made (no mmap, or too little
// address space) it returns a Go slice memory, as wazero's default would.
func (a *arena) Allocate(_, maxBytes uint64) experimental.LinearMemory {
	m, ok := reserve(maxBytes)
	if !ok {
		return &sliceMemory{}
	}
	a.mu.Lock()
	a.mems = append(a.mems, m)
	a.mu.Unlock()
	return m
}

// release unmaps the arena's memories. Call it when no guest of the Run
// can run any more.
func (a *arena) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.mems {
		m.unmap()
	}
	a.mems = nil
}

// sliceMemory is a linear memory on the Go heap, grown by append (wazero's
// own behaviour without an allocator), used when no reservation can be made.
type sliceMemory struct{ buf []byte }

func (s *sliceMemory) Reallocate(size uint64) []byte {
	if n := size - uint64(len(s.buf)); size > uint64(len(s.buf)) {
		s.buf = append(s.buf, make([]byte, n)...)
	}
	return s.buf[:size]
}

func (s *sliceMemory) Free() { s.buf = nil }
