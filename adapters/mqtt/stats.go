package mqtt

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetprop/jetprop/engine/service"
)

// Reasons a device message is ignored (acked without effect), the reason
// label of jetprop_inbound_ignored_total and the keys of
// IgnoredCounts.ByReason. Every refusal of the engine among them was
// confirmed on the state the stream leader holds before the message was
// acked; too_large and rate_limited are dropped unread, before any
// decoding (and counted per device too, Snapshot.Dropped).
const (
	IgnoredUnknown     = "unknown"      // a task the engine does not know (domain.ErrNotFound)
	IgnoredStale       = "stale"        // an attempt that is not the task's current one, or a task no longer active (domain.ErrStale)
	IgnoredNotPlaced   = "not_placed"   // the current attempt, from a device it is not placed on (domain.ErrStale)
	IgnoredQuarantined = "quarantined"  // the task or device has a stored event that cannot be read (domain.ErrQuarantined)
	IgnoredRevoked     = "revoked"      // a device revoked since it sent the message (domain.ErrInvalidState)
	IgnoredUnhandled   = "unhandled"    // a topic nobody handles, an accept on a shared topic, a module request without module delivery
	IgnoredTooLarge    = "too_large"    // over the size bound of its kind (wire.MaxSize), or a discovery whose metadata is over domain's bounds
	IgnoredRateLimited = "rate_limited" // over its device's rate limit (InboundConfig.WorkLimit, LivenessLimit)
)

// IgnoredReasons lists the reasons, in the order of IgnoredCounts' fields.
var IgnoredReasons = []string{IgnoredUnknown, IgnoredStale, IgnoredNotPlaced, IgnoredQuarantined, IgnoredRevoked, IgnoredUnhandled, IgnoredTooLarge, IgnoredRateLimited}

// Stats counts what Inbound did with device messages.
type Stats struct {
	Received  atomic.Uint64 // messages taken from EDGE_IN to record, each once (by the consumer of its lane)
	Recorded  atomic.Uint64 // turned into commands that succeeded (events or no-ops)
	Malformed atomic.Uint64 // failed to decode: acked and dropped
	Ignored   atomic.Uint64 // decoded but refused (every reason): acked and dropped
	Retried   atomic.Uint64 // left for redelivery after an infrastructure error (a refusal the leader could not confirm included)

	ResultAcks      atomic.Uint64 // results acknowledged to the device (wire.ResultAck)
	ResultAckErrors atomic.Uint64 // acks that could not be handed to the broker: the device sends the result again

	ignoredBy [8]atomic.Uint64 // by reason, in IgnoredReasons order
	dropped   droppedBy        // too_large and rate_limited, by device
}

// ignore counts one message ignored for reason and returns how many were
// for that reason.
func (s *Stats) ignore(reason string) uint64 {
	s.Ignored.Add(1)
	for i, r := range IgnoredReasons {
		if r == reason {
			return s.ignoredBy[i].Add(1)
		}
	}
	panic("mqtt: unknown ignore reason " + reason)
}

// IgnoredCounts are the ignored messages by reason.
type IgnoredCounts struct {
	Unknown, Stale, NotPlaced, Quarantined, Revoked, Unhandled uint64
	TooLarge, RateLimited                                      uint64
}

// ByReason returns the counts keyed by reason, every reason present.
func (c IgnoredCounts) ByReason() map[string]uint64 {
	return map[string]uint64{
		IgnoredUnknown: c.Unknown, IgnoredStale: c.Stale, IgnoredNotPlaced: c.NotPlaced,
		IgnoredQuarantined: c.Quarantined, IgnoredRevoked: c.Revoked, IgnoredUnhandled: c.Unhandled,
		IgnoredTooLarge: c.TooLarge, IgnoredRateLimited: c.RateLimited,
	}
}

// Snapshot is a plain copy of Stats.
type Snapshot struct {
	Received, Recorded, Malformed, Ignored, Retried uint64
	ResultAcks, ResultAckErrors                     uint64
	IgnoredBy                                       IgnoredCounts
	// Refusals are the command handler's refusals decided again on the
	// stream leader's state (device messages and API commands alike);
	// zero without InboundPorts.Refusals.
	Refusals service.Refusals
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() Snapshot {
	by := &s.ignoredBy
	return Snapshot{
		Received: s.Received.Load(), Recorded: s.Recorded.Load(), Malformed: s.Malformed.Load(),
		Ignored: s.Ignored.Load(), Retried: s.Retried.Load(),
		ResultAcks: s.ResultAcks.Load(), ResultAckErrors: s.ResultAckErrors.Load(),
		IgnoredBy: IgnoredCounts{Unknown: by[0].Load(), Stale: by[1].Load(), NotPlaced: by[2].Load(),
			Quarantined: by[3].Load(), Revoked: by[4].Load(), Unhandled: by[5].Load(),
			TooLarge: by[6].Load(), RateLimited: by[7].Load()},
	}
}

// onceLog logs the first problem of each key and counts the rest silently.
type onceLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (o *onceLog) log(l *slog.Logger, key, msg string, args ...any) {
	o.mu.Lock()
	first := !o.seen[key]
	if first {
		if o.seen == nil {
			o.seen = map[string]bool{}
		}
		if len(o.seen) < 10000 {
			o.seen[key] = true
		}
	}
	o.mu.Unlock()
	if first {
		l.Warn(msg, append(args, "note", "logged once per topic; counted in stats")...)
	}
}

// DefaultProblemLogEvery is how often Inbound logs the device messages it
// drops for one reason, at most: the first at once, then one an interval
// with the count of those it did not log.
const DefaultProblemLogEvery = time.Minute

// rateLog logs a problem of each key (a reason: a handful of keys) at
// most once an interval, saying how many there were in all and how many
// went unlogged since the last line.
type rateLog struct {
	every time.Duration

	mu   sync.Mutex
	last map[string]rateEntry
}

type rateEntry struct {
	at       time.Time
	unlogged uint64
}

func (r *rateLog) log(l *slog.Logger, now time.Time, key string, total uint64, msg string, args ...any) {
	r.mu.Lock()
	e, seen := r.last[key]
	if seen && now.Sub(e.at) < r.every {
		e.unlogged++
		r.last[key] = e
		r.mu.Unlock()
		return
	}
	if r.last == nil {
		r.last = map[string]rateEntry{}
	}
	r.last[key] = rateEntry{at: now}
	r.mu.Unlock()
	l.Warn(msg, append(args, "total", total, "unlogged_since_last", e.unlogged, "note",
		"logged at most once every "+r.every.String()+" per reason; all counted in GET /inbound/stats and metrics")...)
}
