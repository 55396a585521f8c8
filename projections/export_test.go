package projections

import "github.com/jetprop/jetprop/engine"

// PlaceAt is Place at the given turn instead of the current one.
func (p *Tasks) PlaceAt(target string, turn uint64) string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return engine.PlaceOn(&p.fleet, target, turn)
}
