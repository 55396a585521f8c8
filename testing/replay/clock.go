package replay

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetprop/jetprop/engine/service"
)

// FixedClock is a service.Clock that reads a time the test sets. Each Now
// returns the current reading and then moves it on by the tick given to
// NewFixedClock (zero: the clock stands still until stepped). Safe for
// concurrent use.
type FixedClock struct {
	mu   sync.Mutex
	now  time.Time
	tick time.Duration
}

var _ service.Clock = (*FixedClock)(nil)

// NewFixedClock returns a clock reading start (in UTC) that advances by tick
// after every Now.
func NewFixedClock(start time.Time, tick time.Duration) *FixedClock {
	return &FixedClock{now: start.UTC(), tick: tick}
}

// Now returns the clock's reading and advances it by the tick.
func (c *FixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.tick)
	return t
}

// Step moves the clock on by d and returns the new reading.
func (c *FixedClock) Step(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set sets the clock's reading.
func (c *FixedClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t.UTC()
}

// SeqIDs is a service.IDs that counts: prefix followed by 1, 2, 3... as six
// or more digits, so ids sort in the order they were made. The zero value
// counts without a prefix. Safe for concurrent use.
type SeqIDs struct {
	Prefix string
	n      atomic.Uint64
}

var _ service.IDs = (*SeqIDs)(nil)

// NewSeqIDs returns an id source whose ids start with prefix (which must be
// made of the characters events.ValidateID allows).
func NewSeqIDs(prefix string) *SeqIDs { return &SeqIDs{Prefix: prefix} }

// New returns the next id.
func (s *SeqIDs) New() string { return fmt.Sprintf("%s%06d", s.Prefix, s.n.Add(1)) }
