package projections

import (
	"slices"
	"sync"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Artifacts is the read model of the artifact catalog: every name, its
// tags and the digests they point at. Deleted names are kept (with their
// history, in case the name is used again) but shown nowhere.
type Artifacts struct {
	cursor

	mu     sync.RWMutex
	byName map[string]engine.Artifact
	names  []string // names of the artifacts that exist, sorted
}

var _ Projection = (*Artifacts)(nil)

// NewArtifacts returns an empty artifacts projection.
func NewArtifacts(codec *events.Codec, opts ...Option) *Artifacts {
	p := &Artifacts{cursor: cursor{codec: codec, kind: events.KindArtifact}, byName: map[string]engine.Artifact{}}
	p.configure(opts)
	return p
}

// Apply implements Projection.
func (p *Artifacts) Apply(env events.Envelope) error {
	return p.fold(&p.mu, env, func(ev events.Event) {
		name := env.Aggregate.ID
		a := p.byName[name].Apply(env, ev)
		p.byName[name] = a
		i, listed := slices.BinarySearch(p.names, name)
		switch {
		case a.Exists() && !listed:
			p.names = slices.Insert(p.names, i, name)
		case !a.Exists() && listed:
			p.names = slices.Delete(p.names, i, i+1)
		}
	})
}

// Get returns an artifact that exists.
func (p *Artifacts) Get(name string) (engine.Artifact, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	a, ok := p.byName[name]
	return a, ok && a.Exists()
}

// Resolve returns the row of name:tag.
func (p *Artifacts) Resolve(name, tag string) (engine.ArtifactTag, bool) {
	a, ok := p.Get(name)
	if !ok {
		return engine.ArtifactTag{}, false
	}
	return a.Lookup(tag)
}

// List returns up to limit rows from offset, sorted by name and tag, and
// the total.
func (p *Artifacts) List(offset, limit int) ([]engine.ArtifactTag, int) {
	all := p.rows(func(engine.ArtifactTag) bool { return true })
	total := len(all)
	offset = min(max(offset, 0), total)
	end := offset + min(max(limit, 0), total-offset)
	return all[offset:end], total
}

// Tagged returns the rows whose tag points at digest, sorted by name and tag.
func (p *Artifacts) Tagged(digest string) []engine.ArtifactTag {
	return p.rows(func(r engine.ArtifactTag) bool { return r.Digest == digest })
}

func (p *Artifacts) rows(keep func(engine.ArtifactTag) bool) []engine.ArtifactTag {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []engine.ArtifactTag
	for _, name := range p.names {
		for _, r := range p.byName[name].Rows() {
			if keep(r) {
				out = append(out, r)
			}
		}
	}
	return out // names sorted, each name's rows sorted by tag
}
