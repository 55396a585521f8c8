package engine

import (
	"fmt"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Task limits a create is checked against: what a proplet can honour.
const (
	// MaxTaskMemoryMiB is the largest memory_mib: wasm32 addresses at most
	// 4 GiB (65536 pages of 64 KiB). A larger limit would be a promise no
	// runtime keeps, so it is refused rather than silently lowered.
	MaxTaskMemoryMiB = 4096
	// MaxTaskTimeout is the largest timeout_ms (and workflow step
	// timeout): 30 days. Longer work is a daemon task, which has none.
	// The bound also keeps deadline arithmetic far from overflow.
	MaxTaskTimeout = 30 * 24 * time.Hour
)

// checkTaskLimits refuses a task whose memory or timeout no proplet can
// give it, naming the bound.
func checkTaskLimits(t events.TaskCreated) error {
	switch {
	case t.TimeoutMS < 0 || t.MemoryMiB < 0 || t.MaxAttempts < 0:
		return fmt.Errorf("%w: timeout, memory limit and max_attempts must not be negative", domain.ErrInvalid)
	case t.MemoryMiB > MaxTaskMemoryMiB:
		return fmt.Errorf("%w: memory_mib %d is above wasm32's maximum of %d MiB (4 GiB)", domain.ErrInvalid, t.MemoryMiB, MaxTaskMemoryMiB)
	case t.TimeoutMS > MaxTaskTimeout.Milliseconds():
		return fmt.Errorf("%w: timeout_ms %d is above the maximum of %d (%s); a task that runs until stopped is a daemon",
			domain.ErrInvalid, t.TimeoutMS, MaxTaskTimeout.Milliseconds(), MaxTaskTimeout)
	}
	return nil
}

// stepTimeout refuses a workflow step timeout above MaxTaskTimeout (its
// syntax is checked by duration).
func (v *specCheck) stepTimeout(at, s string) {
	if d, err := time.ParseDuration(s); err == nil && d > MaxTaskTimeout {
		v.addf("%s: timeout %q is above the maximum of %s", at, s, MaxTaskTimeout)
	}
}
