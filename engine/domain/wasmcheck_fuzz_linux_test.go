//go:build linux

package domain_test

import (
	"syscall"
	"testing"
)

// capAddressSpace sets this process's RLIMIT_AS to n bytes.
func capAddressSpace(tb testing.TB, n uint64) {
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		tb.Fatalf("cap address space: %v", err)
	}
}
