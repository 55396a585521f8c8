package mqtt

import (
	"strings"
	"time"
)

// RateLimit is a token bucket: a device may send Burst messages at once,
// and Rate a second on average. A zero field takes its lane's default; a
// negative Rate turns the limit off.
type RateLimit struct {
	Rate  float64 // messages a second
	Burst int     // messages at once
}

// Off reports whether the limit admits everything.
func (r RateLimit) Off() bool { return r.Rate < 0 }

func (r RateLimit) orDefault(def RateLimit) RateLimit {
	if r.Rate == 0 {
		r.Rate = def.Rate
	}
	if r.Burst <= 0 {
		r.Burst = def.Burst
	}
	return r
}

// Default rate limits per device, by lane (docs/limits.md).
const (
	// DefaultWorkRate and DefaultWorkBurst are each device's budget of
	// results, accepts, metrics and module requests: 5,000 a second,
	// 10,000 at once. A busy proplet sends two a task (accept, result):
	// the embedded one ran 1,300-1,500 tasks/s here, and the first budget
	// tried (100/s) stalled it and the fleet bench. A flood of 10,000
	// results/s of unknown tasks, half of it let through, delayed another
	// device's results by 4.7 ms at p99 (make flood-bench).
	DefaultWorkRate  = 5000
	DefaultWorkBurst = 10000
	// DefaultLivenessRate and DefaultLivenessBurst are each device's
	// budget of discoveries, heartbeats and last wills: 1 a second (a
	// proplet heartbeats every 10 s), 30 at once (reconnections).
	DefaultLivenessRate  = 1
	DefaultLivenessBurst = 30
)

// DefaultLimitedDevices bounds the buckets each lane keeps: 10,000 busy
// devices fit with room. A device whose bucket is full again needs none
// (a new one starts full), so idle buckets are dropped first; past the
// bound, buckets still refilling are dropped too, at random, which gives
// those devices a fresh burst.
const DefaultLimitedDevices = 1 << 16

// limiter holds a token bucket per device. It belongs to one lane's
// router, which calls it on one goroutine: it has no lock. Time is the
// time EDGE_IN stored a message, so a backlog the engine works off after
// a restart is judged by the rate its devices sent it at, not by the rate
// it is read at.
type limiter struct {
	off     bool
	perNano float64 // tokens a nanosecond
	burst   float64
	max     int
	buckets map[string]bucket
}

type bucket struct {
	tokens float64
	at     int64 // unix nanoseconds of the last refill
}

func newLimiter(r RateLimit, max int) *limiter {
	return &limiter{off: r.Off(), perNano: r.Rate / float64(time.Second), burst: float64(r.Burst), max: max, buckets: map[string]bucket{}}
}

// allow takes a token from device's bucket at time at, and reports
// whether there was one.
func (l *limiter) allow(device string, at time.Time) bool {
	if l.off {
		return true
	}
	now := at.UnixNano()
	b, ok := l.buckets[device]
	if !ok {
		if len(l.buckets) >= l.max {
			l.shrink(now)
		}
		device = strings.Clone(device) // not the topic it was cut from
		b = bucket{tokens: l.burst, at: now}
	}
	if elapsed := now - b.at; elapsed > 0 {
		b.tokens, b.at = min(l.burst, b.tokens+float64(elapsed)*l.perNano), now
	}
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	l.buckets[device] = b
	return allowed
}

// shrink drops the buckets that are full again at now, then, while more
// than three quarters of max are left, any (map order is random).
func (l *limiter) shrink(now int64) {
	for d, b := range l.buckets {
		if b.tokens+float64(now-b.at)*l.perNano >= l.burst {
			delete(l.buckets, d)
		}
	}
	for d := range l.buckets {
		if len(l.buckets) <= l.max*3/4 {
			break
		}
		delete(l.buckets, d)
	}
}
