package service

import (
	"slices"
	"sync"
	"time"
)

// DefaultLivenessTimeout is how long a device may stay silent before it is
// marked offline: three missed heartbeats at Propeller's 10 s interval.
const DefaultLivenessTimeout = 30 * time.Second

// Liveness remembers when each device last showed a sign of life. It is not
// event-sourced (heartbeats are not events unless they change something);
// after a restart every device gets a fresh grace period.
type Liveness struct {
	clock   Clock
	timeout time.Duration

	mu   sync.Mutex
	last map[string]time.Time
}

// NewLiveness returns a tracker that expires devices after timeout.
func NewLiveness(clock Clock, timeout time.Duration) *Liveness {
	if timeout <= 0 {
		timeout = DefaultLivenessTimeout
	}
	return &Liveness{clock: clock, timeout: timeout, last: map[string]time.Time{}}
}

// Timeout is the silence allowed.
func (l *Liveness) Timeout() time.Duration { return l.timeout }

// Seen records a sign of life now.
func (l *Liveness) Seen(id string) {
	now := l.clock.Now()
	l.mu.Lock()
	l.last[id] = now
	l.mu.Unlock()
}

// Gone forgets a device (it said it is offline).
func (l *Liveness) Gone(id string) {
	l.mu.Lock()
	delete(l.last, id)
	l.mu.Unlock()
}

// Expired removes and returns, sorted, the devices silent for longer than
// the timeout.
func (l *Liveness) Expired() []string {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id, t := range l.last {
		if now.Sub(t) > l.timeout {
			out = append(out, id)
			delete(l.last, id)
		}
	}
	slices.Sort(out)
	return out
}
