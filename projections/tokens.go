package projections

import (
	"strings"
	"sync"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Tokens is the read model of API tokens: every token by id, oldest first,
// and the active ones by the hash of their secret, which is how a request
// is authenticated.
type Tokens struct {
	cursor

	mu     sync.RWMutex
	byID   map[string]engine.Token
	byHash map[string]string // hash -> id, active tokens only
	ids    []string          // in the order they were created
}

var _ Projection = (*Tokens)(nil)

// NewTokens returns an empty tokens projection.
func NewTokens(codec *events.Codec, opts ...Option) *Tokens {
	p := &Tokens{cursor: cursor{codec: codec, kind: events.KindToken},
		byID: map[string]engine.Token{}, byHash: map[string]string{}}
	p.configure(opts)
	return p
}

// Apply implements Projection.
func (p *Tokens) Apply(env events.Envelope) error {
	return p.fold(&p.mu, env, func(ev events.Event) {
		id := env.Aggregate.ID
		prev, known := p.byID[id]
		t := prev.Apply(env, ev)
		p.byID[id] = t
		if !known {
			p.ids = append(p.ids, id)
		}
		if prev.Active() && p.byHash[prev.Hash] == id {
			delete(p.byHash, prev.Hash)
		}
		if t.Active() {
			p.byHash[t.Hash] = id
		}
	})
}

// Get returns a token that was created, revoked or not.
func (p *Tokens) Get(id string) (engine.Token, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	t, ok := p.byID[id]
	return t, ok
}

// ByHash returns the active token whose secret hashes to hash.
func (p *Tokens) ByHash(hash string) (engine.Token, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	id, ok := p.byHash[strings.ToLower(hash)]
	if !ok {
		return engine.Token{}, false
	}
	return p.byID[id], true
}

// List returns up to limit tokens from offset, oldest first, and the total.
func (p *Tokens) List(offset, limit int) ([]engine.Token, int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	total := len(p.ids)
	offset = min(max(offset, 0), total)
	end := offset + min(max(limit, 0), total-offset)
	out := make([]engine.Token, 0, end-offset)
	for _, id := range p.ids[offset:end] {
		out = append(out, p.byID[id])
	}
	return out, total
}
