package projections

import (
	"slices"
	"strings"
	"sync"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Devices is the read model of every proplet that announced itself.
type Devices struct {
	cursor

	mu   sync.RWMutex
	byID map[string]engine.Device
}

var _ Projection = (*Devices)(nil)

// NewDevices returns an empty devices projection.
func NewDevices(codec *events.Codec, opts ...Option) *Devices {
	p := &Devices{cursor: cursor{codec: codec, kind: events.KindDevice}, byID: map[string]engine.Device{}}
	p.configure(opts)
	return p
}

// Apply implements Projection.
func (p *Devices) Apply(env events.Envelope) error {
	return p.fold(&p.mu, env, func(ev events.Event) {
		p.byID[env.Aggregate.ID] = p.byID[env.Aggregate.ID].Apply(env, ev)
	})
}

// Get returns one device.
func (p *Devices) Get(id string) (engine.Device, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	d, ok := p.byID[id]
	return d, ok
}

// List returns every device sorted by id.
func (p *Devices) List() []engine.Device {
	p.mu.RLock()
	out := make([]engine.Device, 0, len(p.byID))
	for _, d := range p.byID {
		out = append(out, d)
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b engine.Device) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Up returns the devices that may take tasks, sorted by id.
func (p *Devices) Up() []engine.Device {
	return slices.DeleteFunc(p.List(), func(d engine.Device) bool { return !d.State.Up() })
}
