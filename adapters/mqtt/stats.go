package mqtt

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// Stats counts what Inbound did with device messages.
type Stats struct {
	Received  atomic.Uint64 // messages taken from EDGE_IN to record, each once (by the consumer of its lane)
	Recorded  atomic.Uint64 // turned into commands that succeeded (events or no-ops)
	Malformed atomic.Uint64 // failed to decode: acked and dropped
	Ignored   atomic.Uint64 // decoded but refused: unknown task, stale attempt, quarantined task or device
	Retried   atomic.Uint64 // left for redelivery after an infrastructure error

	ResultAcks      atomic.Uint64 // results acknowledged to the device (wire.ResultAck)
	ResultAckErrors atomic.Uint64 // acks that could not be handed to the broker: the device sends the result again
}

// Snapshot is a plain copy of Stats.
type Snapshot struct {
	Received, Recorded, Malformed, Ignored, Retried uint64
	ResultAcks, ResultAckErrors                     uint64
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() Snapshot {
	return Snapshot{
		Received: s.Received.Load(), Recorded: s.Recorded.Load(), Malformed: s.Malformed.Load(),
		Ignored: s.Ignored.Load(), Retried: s.Retried.Load(),
		ResultAcks: s.ResultAcks.Load(), ResultAckErrors: s.ResultAckErrors.Load(),
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
