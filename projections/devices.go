package projections

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Devices is the read model of every proplet that announced itself. It
// keeps the ids in order, so a page costs O(log n + page) and copies only
// the page, and the devices that are up as one shared snapshot, rebuilt
// after a change only when it is asked for.
type Devices struct {
	cursor

	mu        sync.RWMutex
	byID      map[string]engine.Device
	ids       *ordered[string]                  // every id, in order
	placeable []func(id string, placeable bool) // told when a device's Placeable changes
	statuses  map[string]int                    // devices by DeviceStatus (counts.go)

	up atomic.Pointer[[]engine.Device] // the devices that are up, by id; nil after a change
}

var _ Projection = (*Devices)(nil)

// NewDevices returns an empty devices projection.
func NewDevices(codec *events.Codec, opts ...Option) *Devices {
	p := &Devices{cursor: cursor{codec: codec, kind: events.KindDevice}, byID: map[string]engine.Device{}, ids: newOrdered(strings.Compare), statuses: map[string]int{}}
	p.configure(opts)
	return p
}

// Apply implements Projection.
func (p *Devices) Apply(env events.Envelope) error {
	return p.fold(&p.mu, env, func(ev events.Event) {
		id := env.Aggregate.ID
		before, known := p.byID[id]
		after := before.Apply(env, ev)
		p.byID[id] = after
		p.count(before, known, after)
		if !known {
			p.ids.Insert(id)
		}
		if _, ok := ev.(events.DeviceRemoved); ok && !after.Provisioned {
			p.forget(id, after) // a provisioned device stays, as one never seen
		}
		if before.Placeable() || after.Placeable() {
			p.up.Store(nil)
		}
		if before.Placeable() != after.Placeable() {
			for _, fn := range p.placeable {
				fn(id, after.Placeable())
			}
		}
	})
}

// forget drops a removed device that has no identity to keep: it leaves
// every listing until it shows itself again.
func (p *Devices) forget(id string, d engine.Device) {
	delete(p.byID, id)
	p.ids.Delete(id)
	decrement(p.statuses, DeviceStatus(d))
}

// ObservePlaceable calls fn with every device that is placeable now (up
// and not revoked, engine.Device.Placeable), then whenever a device
// becomes placeable or stops being so, in the order of the events, under
// the model's lock: fn must not block, nor call the model. The tasks read
// model's placement index follows this (Tasks.SetPlaceable).
func (p *Devices) ObservePlaceable(fn func(id string, placeable bool)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.placeable = append(p.placeable, fn)
	p.ids.Ascend(0, func(id string) bool {
		if p.byID[id].Placeable() {
			fn(id, true)
		}
		return true
	})
}

// Get returns one device.
func (p *Devices) Get(id string) (engine.Device, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	d, ok := p.byID[id]
	return d, ok
}

// Page returns up to limit devices from offset in id order, and the
// total: a page of a listing of List.
func (p *Devices) Page(offset, limit int) ([]engine.Device, int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	total := p.ids.Len()
	offset = min(max(offset, 0), total)
	out := make([]engine.Device, 0, min(max(limit, 0), total-offset)) // no overflow on a huge limit
	if cap(out) > 0 {
		p.ids.Ascend(offset, func(id string) bool {
			out = append(out, p.byID[id])
			return len(out) < cap(out)
		})
	}
	return out, total
}

// List returns every device sorted by id.
func (p *Devices) List() []engine.Device {
	all, _ := p.Page(0, int(^uint(0)>>1))
	return all
}

// Up returns the devices that may take tasks (engine.Device.Placeable),
// sorted by id, in a slice of the caller's own.
func (p *Devices) Up() []engine.Device { return slices.Clone(p.UpShared()) }

// UpShared returns what Up does, but in a slice shared by every caller
// until a device that is up changes: read it, never modify it. Between
// such changes it costs nothing.
func (p *Devices) UpShared() []engine.Device {
	if up := p.up.Load(); up != nil {
		return *up
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	up := []engine.Device{}
	p.ids.Ascend(0, func(id string) bool {
		if d := p.byID[id]; d.Placeable() {
			up = append(up, d)
		}
		return true
	})
	p.up.Store(&up) // under the read lock: no change can have come in between
	return up
}

// SnapshotVersion implements Snapshotter.
func (p *Devices) SnapshotVersion() string { return snapshotVersion("devices", []engine.Device{}) }

// Snapshot implements Snapshotter.
func (p *Devices) Snapshot() (uint64, []byte, error) {
	p.mu.RLock()
	all := make([]engine.Device, 0, len(p.byID))
	p.ids.Ascend(0, func(id string) bool {
		all = append(all, p.byID[id])
		return true
	})
	seq := p.folded
	p.mu.RUnlock()
	b, err := json.Marshal(all)
	return seq, b, err
}

// Restore implements Snapshotter. Nobody observes placeable devices yet:
// ObservePlaceable reports them all when it is called.
func (p *Devices) Restore(seq uint64, data []byte) error {
	var all []engine.Device
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, d := range all {
		p.byID[d.ID] = d
		p.ids.Insert(d.ID)
		p.count(engine.Device{}, false, d)
	}
	p.up.Store(nil)
	p.restored(seq)
	return nil
}
