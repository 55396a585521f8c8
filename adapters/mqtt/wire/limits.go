package wire

import (
	"errors"
	"fmt"
)

// ErrTooLarge reports a device message over the size bound of its kind
// (MaxSize). It is checked before anything is decoded.
var ErrTooLarge = errors.New("wire: message over the size bound of its kind")

// Size bounds of the messages devices send, by kind, in bytes. The
// broker's max payload (1 MiB by default, Propeller's too) bounds every
// message; these bound each kind to what it needs, so a device cannot
// make the engine decode, hold or store more than that. Propeller's
// messages are far below them but for results, whose bound leaves room
// under the 1 MiB max payload for the event that records one.
const (
	// MaxDiscoverySize bounds a discovery (control/proplet/create): an
	// id, a namespace and metadata within domain's MaxMetadata* bounds
	// (about 4 KiB at most, more with JSON escapes).
	MaxDiscoverySize = 16 << 10
	// MaxAliveSize bounds a heartbeat or last will: an id, a status, a
	// namespace and, for an unreachable proplet, the reason.
	MaxAliveSize = 4 << 10
	// MaxAcceptedSize bounds an accept: a task id, an attempt, an id.
	MaxAcceptedSize = 1 << 10
	// MaxResultSize bounds a result (and an invoke result): a string, or
	// any JSON for federated learning, recorded in the task's event.
	MaxResultSize = 768 << 10
	// MaxMetricsSize bounds task and proplet metrics.
	MaxMetricsSize = 64 << 10
	// MaxModuleRequestSize bounds a module request: a name and at most
	// MaxRequestedChunks chunk indexes.
	MaxModuleRequestSize = 512 << 10
	// MaxOtherSize bounds a message on any other topic (none is handled).
	MaxOtherSize = 4 << 10
)

// MaxSize is the size bound of a device message of kind (a shared
// suffix, as SplitOwn returns it).
func MaxSize(kind string) int {
	switch kind {
	case SuffixCreate:
		return MaxDiscoverySize
	case SuffixAlive:
		return MaxAliveSize
	case SuffixAccepted:
		return MaxAcceptedSize
	case SuffixResults, SuffixInvokeResults:
		return MaxResultSize
	case SuffixMetrics, SuffixTaskMetrics:
		return MaxMetricsSize
	case SuffixModuleRequest:
		return MaxModuleRequestSize
	}
	return MaxOtherSize
}

// CheckSize returns ErrTooLarge, naming the sizes, when data is over the
// bound of kind.
func CheckSize(kind string, data []byte) error {
	if max := MaxSize(kind); len(data) > max {
		return fmt.Errorf("%w: %s of %d bytes (max %d)", ErrTooLarge, kind, len(data), max)
	}
	return nil
}
