//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64)

package runtime

import (
	"sync"
	"syscall"
)

// hasReservedMemory reports whether linear memories are reservations
// committed as they grow (64-bit Linux).
const hasReservedMemory = true

// mappedMemory is a linear memory in a private anonymous mapping of its
// maximum size: PROT_NONE (address space only, no commit charge) beyond
// the committed length, read-write below it. Fresh pages read as zero, as
// wasm requires.
type mappedMemory struct {
	mu        sync.Mutex
	mapping   []byte // the whole reservation, as mmap returned it
	committed uint64
	unmapped  bool
}

func reserve(maxBytes uint64) (*mappedMemory, bool) {
	if maxBytes == 0 || maxBytes > 1<<32 {
		return nil, false
	}
	b, err := syscall.Mmap(-1, 0, int(maxBytes), syscall.PROT_NONE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return nil, false
	}
	return &mappedMemory{mapping: b}, true
}

// Reallocate commits the memory up to size and returns it; nil (memory.grow
// returns -1) past the reservation or when the kernel refuses the commit.
func (m *mappedMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unmapped || size > uint64(len(m.mapping)) {
		return nil
	}
	if size > m.committed {
		if err := syscall.Mprotect(m.mapping[m.committed:size], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			return nil
		}
		m.committed = size
	}
	return m.mapping[:size:size]
}

// Free is called by wazero when the instance closes; see arena for why it
// leaves the unmapping to arena.release.
func (m *mappedMemory) Free() {}

func (m *mappedMemory) unmap() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unmapped {
		return
	}
	m.unmapped = true
	_ = syscall.Munmap(m.mapping) // fails only for a mapping that is not one
}
