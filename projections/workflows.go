package projections

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Workflows is the read model of every workflow.
type Workflows struct {
	cursor

	mu   sync.RWMutex
	byID map[string]engine.Workflow
}

var _ Projection = (*Workflows)(nil)

// NewWorkflows returns an empty workflows projection.
func NewWorkflows(codec *events.Codec, opts ...Option) *Workflows {
	p := &Workflows{cursor: cursor{codec: codec, kind: events.KindWorkflow}, byID: map[string]engine.Workflow{}}
	p.configure(opts)
	return p
}

// Apply implements Projection.
func (p *Workflows) Apply(env events.Envelope) error {
	return p.fold(&p.mu, env, func(ev events.Event) {
		w := p.byID[env.Aggregate.ID]
		w.ApplyOwned(env, ev) // in place: Get and List hand out copies
		p.byID[env.Aggregate.ID] = w
	})
}

// Get returns one workflow.
func (p *Workflows) Get(id string) (engine.Workflow, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	w, ok := p.byID[id]
	return w.Clone(), ok && w.Exists()
}

// Version returns the workflow's last sequence and whether it ended.
func (p *Workflows) Version(id string) (seq uint64, ended, ok bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	w, ok := p.byID[id]
	return w.Seq, w.State.Terminal(), ok && w.Exists()
}

// List returns up to limit workflows from offset, newest first (ids are
// ULIDs, so by id descending), and the total.
func (p *Workflows) List(offset, limit int) ([]engine.Workflow, int) {
	p.mu.RLock()
	all := make([]engine.Workflow, 0, len(p.byID))
	for _, w := range p.byID {
		if w.Exists() {
			all = append(all, w.Clone())
		}
	}
	p.mu.RUnlock()
	slices.SortFunc(all, func(a, b engine.Workflow) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	total := len(all)
	offset = min(max(offset, 0), total)
	end := total
	if limit > 0 {
		end = min(offset+limit, total)
	}
	return all[offset:end], total
}

// Running returns the ids of the workflows that have not ended, sorted.
func (p *Workflows) Running() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var ids []string
	for id, w := range p.byID {
		if w.Exists() && !w.State.Terminal() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// SnapshotVersion implements Snapshotter.
func (p *Workflows) SnapshotVersion() string {
	return snapshotVersion("workflows", map[string]engine.Workflow{})
}

// Snapshot implements Snapshotter. Workflows fold in place: they are
// encoded under the read lock.
func (p *Workflows) Snapshot() (uint64, []byte, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	b, err := json.Marshal(p.byID) // by id: a workflow's ID is set by its creation, which a history may lack
	return p.folded, b, err
}

// Restore implements Snapshotter.
func (p *Workflows) Restore(seq uint64, data []byte) error {
	var all map[string]engine.Workflow
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, w := range all {
		p.byID[id] = w.Reindexed()
	}
	p.restored(seq)
	return nil
}
