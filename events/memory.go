package events

import (
	"context"
	"fmt"
	"sync"
)

// Memory is an in-memory Store with the same semantics as the JetStream
// one: one sequence space per kind, dedup by envelope id.
type Memory struct {
	mu      sync.Mutex
	streams map[Kind][]Envelope
	ids     map[string]uint64 // envelope id -> seq, for dedup
	changed chan struct{}     // closed and replaced on every append
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{streams: map[Kind][]Envelope{}, ids: map[string]uint64{}, changed: make(chan struct{})}
}

// Append implements Store.
func (m *Memory) Append(_ context.Context, agg Aggregate, expected uint64, evs ...Envelope) (uint64, error) {
	if err := checkAppend(agg, evs); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if last := m.lastOf(agg); last != expected {
		return 0, fmt.Errorf("%w: %s at %d, expected %d", ErrConflict, agg, last, expected)
	}
	if seq, dup := m.ids[evs[0].ID]; dup {
		return seq + uint64(len(evs)-1), nil
	}
	s := m.streams[agg.Kind]
	for _, e := range evs {
		e.Aggregate = agg
		e.Seq = uint64(len(s)) + 1
		m.ids[e.ID] = e.Seq
		s = append(s, e)
	}
	m.streams[agg.Kind] = s
	close(m.changed)
	m.changed = make(chan struct{})
	return uint64(len(s)), nil
}

func (m *Memory) lastOf(agg Aggregate) uint64 {
	s := m.streams[agg.Kind]
	for i := len(s) - 1; i >= 0; i-- {
		if s[i].Aggregate.ID == agg.ID {
			return s[i].Seq
		}
	}
	return 0
}

// Load implements Store.
func (m *Memory) Load(_ context.Context, agg Aggregate) ([]Envelope, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Envelope
	for _, e := range m.streams[agg.Kind] {
		if e.Aggregate.ID == agg.ID {
			out = append(out, e)
		}
	}
	return out, nil
}

// LoadLatest implements Store: the memory store has one copy, always the
// latest.
func (m *Memory) LoadLatest(ctx context.Context, agg Aggregate) ([]Envelope, error) {
	if err := agg.Validate(); err != nil {
		return nil, err
	}
	return m.Load(ctx, agg)
}

// Version implements Store.
func (m *Memory) Version(_ context.Context, agg Aggregate) (uint64, error) {
	if err := agg.Validate(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastOf(agg), nil
}

// LastSeq implements Store.
func (m *Memory) LastSeq(_ context.Context, kind Kind) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.streams[kind])), nil
}

// Replay implements Store.
func (m *Memory) Replay(ctx context.Context, kind Kind, from uint64, fn func(Envelope) error) error {
	batch, _ := m.since(kind, from)
	for _, e := range batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Subscribe implements Store.
func (m *Memory) Subscribe(ctx context.Context, kind Kind, from uint64, fn func(Envelope) error) error {
	if from == 0 {
		from = 1
	}
	for {
		batch, changed := m.since(kind, from)
		for _, e := range batch {
			if err := fn(e); err != nil {
				return err
			}
			from = e.Seq + 1
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// since copies the events of kind from seq on, and the channel that closes
// on the next append.
func (m *Memory) since(kind Kind, from uint64) ([]Envelope, chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if from == 0 {
		from = 1
	}
	s := m.streams[kind]
	if from > uint64(len(s)) {
		return nil, m.changed
	}
	return append([]Envelope(nil), s[from-1:]...), m.changed
}

// checkAppend validates what every store requires of an append.
func checkAppend(agg Aggregate, evs []Envelope) error {
	if err := agg.Validate(); err != nil {
		return err
	}
	if len(evs) == 0 {
		return fmt.Errorf("events: append to %s without events", agg)
	}
	for _, e := range evs {
		if e.ID == "" || e.Type == "" {
			return fmt.Errorf("events: envelope without id or type in append to %s", agg)
		}
	}
	return nil
}
