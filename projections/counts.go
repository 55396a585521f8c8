package projections

import (
	"maps"

	"github.com/jetprop/jetprop/engine"
)

// The counts by state the read models keep as they fold, so that a
// metrics scrape reads a handful of numbers instead of walking the fleet.

// count moves a task between the counts by state: a known task leaves
// its old state, one that is not deleted enters its new one. A task is
// counted exactly while byID holds it.
func (p *Tasks) count(before engine.Task, known bool, after engine.Task) {
	if known {
		decrement(p.states, before.State)
	}
	if !after.Deleted {
		p.states[after.State]++
	}
}

// Counts returns how many tasks are in each state (a state with none is
// left out); the counts add up to the total of List. It costs O(states).
func (p *Tasks) Counts() map[engine.TaskState]int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return maps.Clone(p.states)
}

// Device statuses that are not an engine.DeviceState.
const (
	// StatusRevoked is a device whose key was revoked, whatever its
	// liveness says.
	StatusRevoked = "revoked"
	// StatusUnreachable is a device that is up and cannot receive
	// (engine.Device.Unreachable).
	StatusUnreachable = "unreachable"
)

// DeviceStatus is the one word a device is counted under: StatusRevoked
// for a revoked device, else the name of its state ("unknown" is a
// device provisioned and never seen). The statuses exclude each other:
// their counts add up to the fleet.
func DeviceStatus(d engine.Device) string {
	if d.Revoked {
		return StatusRevoked
	}
	if d.State.Up() && d.Unreachable != "" {
		return StatusUnreachable
	}
	return d.State.String()
}

// count moves a device between the counts by status.
func (p *Devices) count(before engine.Device, known bool, after engine.Device) {
	if known {
		decrement(p.statuses, DeviceStatus(before))
	}
	p.statuses[DeviceStatus(after)]++
}

// Counts returns how many devices have each status (DeviceStatus; a
// status with none is left out); the counts add up to the fleet. It costs
// O(statuses).
func (p *Devices) Counts() map[string]int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return maps.Clone(p.statuses)
}

func decrement[K comparable](m map[K]int, k K) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}
