package mqtt

import (
	"cmp"
	"slices"
	"sync"
)

// Bounds of the per-device counts of dropped messages.
const (
	// MaxDroppedDevices bounds the devices whose drops are counted: past
	// it, the device with the fewest drops is forgotten for a new one
	// (the totals by reason count everything).
	MaxDroppedDevices = 1024
	// MaxDroppedShown bounds the devices GET /inbound/stats lists.
	MaxDroppedShown = 20
)

// DeviceDrops counts one device's messages dropped unread. Device is ""
// for messages on Propeller's shared topics too large to read the id
// they name.
type DeviceDrops struct {
	Device      string
	TooLarge    uint64
	RateLimited uint64
}

// Total is every drop counted.
func (d DeviceDrops) Total() uint64 { return d.TooLarge + d.RateLimited }

// droppedBy counts drops by device, for at most MaxDroppedDevices
// devices. Drops come from both lanes' routers (and a discovery whose
// metadata is over its bounds, from a worker), so it has a lock; only
// dropped messages take it.
type droppedBy struct {
	mu  sync.Mutex
	by  map[string]*DeviceDrops
	max int // MaxDroppedDevices when 0
}

// add counts one drop of device for reason (IgnoredTooLarge or
// IgnoredRateLimited).
func (d *droppedBy) add(device, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.by[device]
	if !ok {
		e = d.make(device)
	}
	if reason == IgnoredTooLarge {
		e.TooLarge++
	} else {
		e.RateLimited++
	}
}

// make starts counting device, forgetting the device with the fewest
// drops when the counts are full.
func (d *droppedBy) make(device string) *DeviceDrops {
	if d.by == nil {
		d.by = map[string]*DeviceDrops{}
	}
	if len(d.by) >= cmp.Or(d.max, MaxDroppedDevices) {
		var least *DeviceDrops
		for _, e := range d.by {
			if least == nil || e.Total() < least.Total() {
				least = e
			}
		}
		delete(d.by, least.Device)
	}
	e := &DeviceDrops{Device: device}
	d.by[device] = e
	return e
}

// top returns the n devices with the most drops, most first.
func (d *droppedBy) top(n int) []DeviceDrops {
	d.mu.Lock()
	out := make([]DeviceDrops, 0, len(d.by))
	for _, e := range d.by {
		out = append(out, *e)
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b DeviceDrops) int {
		return cmp.Or(cmp.Compare(b.Total(), a.Total()), cmp.Compare(a.Device, b.Device))
	})
	return out[:min(n, len(out))]
}
