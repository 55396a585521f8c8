//go:build !linux

package domain_test

import "testing"

// capAddressSpace is a no-op where RLIMIT_AS is not Linux's: run the fuzzer
// under ulimit -v there.
func capAddressSpace(testing.TB, uint64) {}
