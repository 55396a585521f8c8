//go:build !linux

package main

// physicalMemory is not read outside Linux: no memory limit is set there
// unless a cgroup (or GOMEMLIMIT) gives one.
func physicalMemory() uint64 { return 0 }
