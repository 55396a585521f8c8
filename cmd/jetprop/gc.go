package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultGOGC is the garbage collector's target of a server process when
// GOGC is not set: the heap may grow to three times what is live between
// two collections, instead of Go's twice. Most of a large fleet's live
// heap is the broker's per-connection state, which lives as long as the
// connections: at Go's default, every collection scans it again for little
// garbage (docs/RATIONALE.md, "The server collects garbage at GOGC=200").
const DefaultGOGC = 200

// memoryLimitShare is the part of the machine's memory (or of the
// cgroup's limit, when lower) the server's Go runtime aims to stay under
// when GOMEMLIMIT is not set: near it the collector works harder instead
// of letting the larger GOGC heap grow.
const memoryLimitShare = 0.7

// tuneGC sets DefaultGOGC and a soft memory limit for a server process,
// unless GOGC or GOMEMLIMIT say otherwise (Go reads them itself). It
// returns what it did, for the log.
func tuneGC(lookup func(string) (string, bool)) string {
	var did []string
	if _, set := lookup("GOGC"); !set {
		debug.SetGCPercent(DefaultGOGC)
		did = append(did, "GOGC="+strconv.Itoa(DefaultGOGC))
	}
	if _, set := lookup("GOMEMLIMIT"); !set {
		if total := memoryAvailable(); total > 0 {
			limit := int64(float64(total) * memoryLimitShare)
			debug.SetMemoryLimit(limit)
			did = append(did, fmt.Sprintf("GOMEMLIMIT=%dMiB", limit>>20))
		}
	}
	return strings.Join(did, " ")
}

// memoryAvailable is the machine's memory, or its cgroup's limit when that
// is lower; 0 when neither can be read.
func memoryAvailable() uint64 {
	total := physicalMemory()
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}
