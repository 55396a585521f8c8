package projections

import (
	"slices"
	"strings"
	"sync"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Secrets is the read model of secrets: every secret by name, with its
// sealed value (what the dispatcher opens for a start message) and its
// version. It holds no value in the clear.
type Secrets struct {
	cursor

	mu     sync.RWMutex
	byName map[string]engine.Secret
}

var _ Projection = (*Secrets)(nil)

// NewSecrets returns an empty secrets projection.
func NewSecrets(codec *events.Codec, opts ...Option) *Secrets {
	p := &Secrets{cursor: cursor{codec: codec, kind: events.KindSecret}, byName: map[string]engine.Secret{}}
	p.configure(opts)
	return p
}

// Apply implements Projection.
func (p *Secrets) Apply(env events.Envelope) error {
	return p.fold(&p.mu, env, func(ev events.Event) {
		name := env.Aggregate.ID
		p.byName[name] = p.byName[name].Apply(env, ev)
	})
}

// Get returns a secret that was ever set, deleted or not.
func (p *Secrets) Get(name string) (engine.Secret, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	s, ok := p.byName[name]
	return s, ok
}

// List returns up to limit secrets that exist (set and not deleted) from
// offset, by name, and how many exist.
func (p *Secrets) List(offset, limit int) ([]engine.Secret, int) {
	p.mu.RLock()
	all := make([]engine.Secret, 0, len(p.byName))
	for _, s := range p.byName {
		if s.Exists() {
			all = append(all, s)
		}
	}
	p.mu.RUnlock()
	slices.SortFunc(all, func(a, b engine.Secret) int { return strings.Compare(a.Name, b.Name) })
	total := len(all)
	offset = min(max(offset, 0), total)
	end := offset + min(max(limit, 0), total-offset)
	return all[offset:end], total
}
