package projections

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Tasks is the read model of every task, in creation order.
type Tasks struct {
	cursor

	mu        sync.RWMutex
	byID      map[string]engine.Task
	order     []string
	active    map[string]struct{} // ids of scheduled or running tasks
	load      map[string]int      // device -> active tasks on it
	scheduled uint64              // task.scheduled events seen: the placement turn
	fleet     fleet               // the placeable devices by load: what Place picks from

	states map[engine.TaskState]int // tasks by state (counts.go)
}

var _ Projection = (*Tasks)(nil)

// NewTasks returns an empty tasks projection.
func NewTasks(codec *events.Codec, opts ...Option) *Tasks {
	p := &Tasks{cursor: cursor{codec: codec, kind: events.KindTask}, byID: map[string]engine.Task{}, active: map[string]struct{}{}, load: map[string]int{}, fleet: newFleet(), states: map[engine.TaskState]int{}}
	p.configure(opts)
	return p
}

// Apply implements Projection.
func (p *Tasks) Apply(env events.Envelope) error {
	return p.fold(&p.mu, env, func(ev events.Event) {
		id := env.Aggregate.ID
		before, known := p.byID[id]
		t := before.Apply(env, ev)
		p.track(before, t)
		p.count(before, known, t)
		switch {
		case t.Deleted:
			delete(p.byID, id)
			if i := slices.Index(p.order, id); i >= 0 {
				p.order = slices.Delete(p.order, i, i+1)
			}
		case !known:
			p.order = append(p.order, id)
			p.byID[id] = t
		default:
			p.byID[id] = t
		}
		if _, ok := ev.(events.TaskScheduled); ok {
			p.scheduled++
		}
	})
}

// track keeps the active set, the per-device load and the placement
// index current.
func (p *Tasks) track(before, after engine.Task) {
	if before.State.Active() {
		delete(p.active, before.ID)
		p.addLoad(before.Device, -1)
	}
	if after.State.Active() && !after.Deleted {
		p.active[after.ID] = struct{}{}
		p.addLoad(after.Device, +1)
	}
}

func (p *Tasks) addLoad(device string, delta int) {
	old := p.load[device]
	n := max(old+delta, 0)
	if n == 0 {
		delete(p.load, device)
	} else {
		p.load[device] = n
	}
	p.fleet.moved(device, old, n)
}

// Get returns one task.
func (p *Tasks) Get(id string) (engine.Task, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	t, ok := p.byID[id]
	return t, ok
}

// List returns up to limit tasks from offset, in creation order, and the total.
func (p *Tasks) List(offset, limit int) ([]engine.Task, int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	total := len(p.order)
	offset = min(max(offset, 0), total)
	end := offset + min(max(limit, 0), total-offset) // no overflow on a huge limit
	out := make([]engine.Task, 0, end-offset)
	for _, id := range p.order[offset:end] {
		out = append(out, p.byID[id])
	}
	return out, total
}

// Filter returns a page of the tasks match keeps, in creation order, and
// how many it keeps. It scans every task: a filter has no index.
func (p *Tasks) Filter(match func(engine.Task) bool, offset, limit int) ([]engine.Task, int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	offset, limit = max(offset, 0), max(limit, 0)
	var out []engine.Task
	total := 0
	for _, id := range p.order {
		t := p.byID[id]
		if !match(t) {
			continue
		}
		if total >= offset && len(out) < limit {
			out = append(out, t)
		}
		total++
	}
	return out, total
}

// All returns every task in creation order.
func (p *Tasks) All() []engine.Task {
	all, _ := p.List(0, int(^uint(0)>>1))
	return all
}

// Active returns the tasks scheduled or running, sorted by id.
func (p *Tasks) Active() []engine.Task {
	p.mu.RLock()
	out := make([]engine.Task, 0, len(p.active))
	for id := range p.active {
		out = append(out, p.byID[id])
	}
	p.mu.RUnlock()
	slices.SortFunc(out, func(a, b engine.Task) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Load counts the active tasks per device.
func (p *Tasks) Load() map[string]int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return maps.Clone(p.load)
}

// LoadOf counts the active tasks on one device.
func (p *Tasks) LoadOf(device string) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.load[device]
}

// Place returns the device a task with this target device ("" for any)
// goes to now: engine.PlaceOn over the placeable devices, with their
// active tasks, at the current turn; "" when none may take it. It costs
// O(log n) in the number of placeable devices and allocates nothing.
// Placeable devices are those SetPlaceable says are up and Hold does not
// hold: without them, there are none.
func (p *Tasks) Place(target string) string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return engine.PlaceOn(&p.fleet, target, p.scheduled)
}

// SetPlaceable records whether the devices read model shows device up
// (and not revoked); Devices.ObservePlaceable calls it.
func (p *Tasks) SetPlaceable(device string, up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fleet.setUp(device, up, p.load[device])
}

// Hold leaves device out of placement: it is quarantined, and its read
// model keeps a last good state that may say up forever.
func (p *Tasks) Hold(device string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fleet.hold(device, p.load[device])
}

// Turn is the number of placements made so far.
func (p *Tasks) Turn() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.scheduled
}

// tasksSnapshot is what a snapshot of Tasks holds.
type tasksSnapshot struct {
	IDs       []string      `json:"ids"`   // in creation order (a task's ID is set by its creation, which a history may lack)
	Tasks     []engine.Task `json:"tasks"` // in the same order
	Scheduled uint64        `json:"scheduled"`
}

// SnapshotVersion implements Snapshotter.
func (p *Tasks) SnapshotVersion() string { return snapshotVersion("tasks", tasksSnapshot{}) }

// Snapshot implements Snapshotter. Tasks are values that folds replace,
// never write to: they are copied under the lock and encoded outside it.
func (p *Tasks) Snapshot() (uint64, []byte, error) {
	p.mu.RLock()
	s := tasksSnapshot{IDs: slices.Clone(p.order), Tasks: make([]engine.Task, len(p.order)), Scheduled: p.scheduled}
	for i, id := range p.order {
		s.Tasks[i] = p.byID[id]
	}
	seq := p.folded
	p.mu.RUnlock()
	b, err := json.Marshal(s)
	return seq, b, err
}

// Restore implements Snapshotter: the indexes are rebuilt as the folds
// build them.
func (p *Tasks) Restore(seq uint64, data []byte) error {
	var s tasksSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if len(s.IDs) != len(s.Tasks) {
		return fmt.Errorf("projections: tasks snapshot: %d ids for %d tasks", len(s.IDs), len(s.Tasks))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, t := range s.Tasks {
		p.byID[s.IDs[i]] = t
		p.order = append(p.order, s.IDs[i])
		p.track(engine.Task{}, t)
		p.count(engine.Task{}, false, t)
	}
	p.scheduled = s.Scheduled
	p.restored(seq)
	return nil
}
