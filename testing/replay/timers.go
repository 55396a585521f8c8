package replay

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// Timers is an in-memory service.TimerStore for simulations: it keeps what
// the process manager stores, and the test fires the timers when, in which
// order and how often it likes. The durable TIMERS stream itself is tested
// in adapters/timers and by the app's restart tests. Cron timers are kept
// like one-shot ones.
type Timers struct {
	mu      sync.Mutex
	pending map[string][]byte // id -> payload
}

// NewTimers returns an empty timer store.
func NewTimers() *Timers { return &Timers{pending: map[string][]byte{}} }

// Schedule implements service.TimerStore.
func (t *Timers) Schedule(_ context.Context, id string, _ time.Time, payload []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending[id] = payload
	return nil
}

// Cron implements service.TimerStore.
func (t *Timers) Cron(_ context.Context, id, _, _ string, payload []byte) error {
	return t.Schedule(context.Background(), id, time.Time{}, payload)
}

// Cancel implements service.TimerStore.
func (t *Timers) Cancel(_ context.Context, id string) error {
	t.Remove(id)
	return nil
}

// IDs returns the pending timer ids, sorted.
func (t *Timers) IDs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Sorted(maps.Keys(t.pending))
}

// Payload returns what timer id carries.
func (t *Timers) Payload(id string) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pending[id]
	return p, ok
}

// Remove forgets timer id (it fired).
func (t *Timers) Remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, id)
}
