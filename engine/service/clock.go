package service

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Clock gives the time stamped on new events.
type Clock interface{ Now() time.Time }

// IDs gives new event and entity ids.
type IDs interface{ New() string }

// SystemClock reads the wall clock (only the handler does, never a decider).
type SystemClock struct{}

// Now returns the current UTC time.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// ULIDs makes monotonic ULIDs, safe for concurrent use.
type ULIDs struct {
	mu sync.Mutex
	e  *ulid.MonotonicEntropy
}

// NewULIDs returns an id source with an entropy source of its own. (The
// monotonic reader must not wrap ulid.DefaultEntropy(): that one's own
// reader is shared process-wide without a lock, so two sources, or one and
// ulid.Make, raced on it.)
func NewULIDs() *ULIDs { return &ULIDs{e: ulid.Monotonic(rand.Reader, 0)} }

// New returns a new ULID string.
func (u *ULIDs) New() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return ulid.MustNew(ulid.Now(), u.e).String()
}
