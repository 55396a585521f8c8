// Package projections holds the read models jetprop's API answers from. Each
// folds a stream with the engine's own Apply functions, records the last
// stream sequence it applied, is rebuilt by replay at start and kept current
// by a subscription. With a quarantine (WithQuarantine), an event that does
// not decode stops only its own aggregate: the model keeps the aggregate's
// last good state and goes on with the rest of the stream.
package projections

import (
	"context"
	"fmt"
	"sync"

	"github.com/jetprop/jetprop/events"
)

// Projection is a read model of one kind's stream.
type Projection interface {
	Kind() events.Kind
	Apply(env events.Envelope) error
	LastSeq() uint64
}

// Catchup replays everything after p's last sequence up to the end of the stream.
func Catchup(ctx context.Context, store events.Store, p Projection) error {
	if err := store.Replay(ctx, p.Kind(), p.LastSeq()+1, p.Apply); err != nil {
		return fmt.Errorf("projections: replay %s: %w", p.Kind().Stream(), err)
	}
	return nil
}

// Follow applies new events until ctx is done.
func Follow(ctx context.Context, store events.Store, p Projection) error {
	err := store.Subscribe(ctx, p.Kind(), p.LastSeq()+1, p.Apply)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("projections: follow %s: %w", p.Kind().Stream(), err)
}

// Option adjusts a projection.
type Option func(*cursor)

// WithQuarantine has the projection record in q every event it cannot
// decode and skip it, together with every later event of the same
// aggregate (and of any aggregate q holds from an earlier message): the
// model keeps the aggregate's last good state. Without a quarantine,
// Apply fails on an event it cannot decode.
func WithQuarantine(q *events.Quarantine) Option {
	return func(c *cursor) { c.quarantine = q }
}

func (c *cursor) configure(opts []Option) {
	for _, o := range opts {
		o(c)
	}
}

// fold is the part every projection's Apply shares: skip an event already
// applied or quarantined, decode it, let change update the model under mu,
// then advance.
func (c *cursor) fold(mu sync.Locker, env events.Envelope, change func(events.Event)) error {
	if c.skip(env.Seq) {
		return nil
	}
	if c.quarantine.Holds(env) {
		c.advance(env.Seq)
		return nil
	}
	ev, err := c.codec.Decode(env)
	if err != nil {
		return c.hold(env, err)
	}
	mu.Lock()
	change(ev)
	c.folded = env.Seq
	mu.Unlock()
	c.advance(env.Seq)
	c.notify(env)
	return nil
}

// hold quarantines the aggregate of env, which does not decode, and moves
// past it; without a quarantine err stands.
func (c *cursor) hold(env events.Envelope, err error) error {
	r, ok := events.Unreadable(err)
	if !ok || c.quarantine == nil {
		return err
	}
	c.quarantine.Add(r)
	c.advance(env.Seq)
	return nil
}

// cursor is what every projection shares: the kind it folds and the codec
// it decodes with, the last applied sequence, waiters for read-your-writes
// and observers told of each envelope once the model shows it.
type cursor struct {
	codec      *events.Codec
	kind       events.Kind
	quarantine *events.Quarantine // nil: an event that does not decode fails Apply

	mu        sync.Mutex
	seq       uint64
	folded    uint64 // the last sequence the model's state holds: written and read under the model's lock (snapshots)
	changed   chan struct{}
	observers []func(events.Envelope)
}

// Observe calls fn with every envelope applied from now on, after the
// model shows it. fn must not block (queue the work elsewhere).
func (c *cursor) Observe(fn func(events.Envelope)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.observers = append(c.observers, fn)
}

func (c *cursor) notify(env events.Envelope) {
	c.mu.Lock()
	obs := c.observers
	c.mu.Unlock()
	for _, fn := range obs {
		fn(env)
	}
}

// Kind implements Projection.
func (c *cursor) Kind() events.Kind { return c.kind }

// LastSeq implements Projection: the last sequence applied.
func (c *cursor) LastSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seq
}

// restored sets the cursor of a model restored from a snapshot of seq.
func (c *cursor) restored(seq uint64) {
	c.folded = seq
	c.advance(seq)
}

// skip reports whether seq was applied already (redelivery after a restart
// of the subscription).
func (c *cursor) skip(seq uint64) bool { return seq != 0 && seq <= c.LastSeq() }

func (c *cursor) advance(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq > c.seq { // an envelope without a stream sequence never moves it back
		c.seq = seq
	}
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// WaitFor blocks until the sequence seq has been applied.
func (c *cursor) WaitFor(ctx context.Context, seq uint64) error {
	for {
		c.mu.Lock()
		if c.seq >= seq {
			c.mu.Unlock()
			return nil
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("projections: waiting for sequence %d: %w", seq, ctx.Err())
		case <-ch:
		}
	}
}
