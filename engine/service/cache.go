package service

import (
	"context"
	"sync"
	"time"

	"github.com/jetprop/jetprop/events"
)

// stateCache keeps the last known state of aggregates this process wrote.
type stateCache[S any] struct {
	mu  sync.Mutex
	max int
	m   map[string]S
}

func newStateCache[S any](max int) *stateCache[S] {
	return &stateCache[S]{max: max, m: make(map[string]S)}
}

func (c *stateCache[S]) get(id string) (S, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[id]
	return s, ok
}

func (c *stateCache[S]) put(id string, s S) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; !ok && len(c.m) >= c.max {
		for k := range c.m { // evict any one entry: a miss only costs a load
			delete(c.m, k)
			break
		}
	}
	c.m[id] = s
}

func (c *stateCache[S]) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

type causeKey struct{}

type cause struct{ causation, correlation string }

// WithCause returns a context whose commands record the given causation and
// correlation ids in the events they append.
func WithCause(ctx context.Context, causation, correlation string) context.Context {
	return context.WithValue(ctx, causeKey{}, cause{causation, correlation})
}

func metaFrom(ctx context.Context, now time.Time) events.Meta {
	c, _ := ctx.Value(causeKey{}).(cause)
	return events.Meta{Time: now, CausationID: c.causation, CorrelationID: c.correlation}
}
