package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestTuneGC: a server sets DefaultGOGC and a soft memory limit at
// memoryLimitShare of the machine's memory, unless GOGC or GOMEMLIMIT are
// set, which Go then reads itself.
func TestTuneGC(t *testing.T) {
	gcPercent, memLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(gcPercent); debug.SetMemoryLimit(memLimit) })
	current := func() (int, int64) {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p, debug.SetMemoryLimit(-1)
	}

	did := tuneGC(func(string) (string, bool) { return "", false })
	p, limit := current()
	if p != DefaultGOGC {
		t.Errorf("GOGC %d, want %d (%s)", p, DefaultGOGC, did)
	}
	if total := memoryAvailable(); total == 0 || limit != int64(float64(total)*memoryLimitShare) {
		t.Errorf("memory limit %d of %d available, want %.0f%% (%s)", limit, total, memoryLimitShare*100, did)
	}

	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	if did := tuneGC(func(string) (string, bool) { return "50", true }); did != "" {
		t.Errorf("with GOGC and GOMEMLIMIT set it did %q, want nothing", did)
	}
	if p, limit := current(); p != 100 || limit != math.MaxInt64 {
		t.Errorf("GOGC %d, memory limit %d: want them untouched", p, limit)
	}
}
