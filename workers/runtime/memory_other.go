//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64))

package runtime

// hasReservedMemory reports whether linear memories are reservations
// committed as they grow: not on this platform, where wazero's default
// (a Go slice grown by append) applies.
const hasReservedMemory = false

type mappedMemory struct{}

func reserve(uint64) (*mappedMemory, bool) { return nil, false }

func (*mappedMemory) Reallocate(uint64) []byte { return nil }
func (*mappedMemory) Free()                    {}
func (*mappedMemory) unmap()                   {}
