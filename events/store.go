package events

import (
	"context"
	"errors"
)

// ErrConflict reports an append whose expected sequence was stale: another
// writer appended to the aggregate first. Reload and decide again.
var ErrConflict = errors.New("events: concurrent append conflict")

// ErrCorrupt reports a stored message that is not a valid event envelope
// (a *CorruptError says which).
var ErrCorrupt = errors.New("events: stored message is not an event")

// ErrTooLarge reports an event larger than the largest message the store
// takes (the broker's max_payload, or the stream's max_msg_size): the
// command that decided it asked for too much. The HTTP API answers 413,
// so that a bound the API forgot still answers the client, not 500.
var ErrTooLarge = errors.New("events: event larger than the largest message the store takes")

// ErrClosed reports use of a closed store.
var ErrClosed = errors.New("events: store closed")

// Store is the event store port. Sequences are stream sequences: the
// expected sequence of an append is the Seq of the aggregate's last event
// (0 when it has none).
//
// A store delivers envelopes, not decoded events: a body that does not
// decode is its reader's to quarantine (see Quarantine). A stored message
// that is not an envelope at all (the JetStream store can hold one) fails
// Load of its aggregate with a *CorruptError, and Replay and Subscribe too
// unless the store records it in a quarantine and skips it.
type Store interface {
	// Append stores evs atomically at the end of agg's events if agg's last
	// event still has sequence expected, and returns the Seq of the last one.
	// The JetStream store is atomic for up to MaxAtomicAppend events; a
	// longer append is written as consecutive atomic parts, each checked
	// against the last, so a crash between parts leaves a prefix.
	Append(ctx context.Context, agg Aggregate, expected uint64, evs ...Envelope) (uint64, error)
	// Load returns agg's events in order (empty when it has none). In a
	// cluster the JetStream store may read them from a replica that lags:
	// a prefix of the history, which an Append built on it turns into
	// ErrConflict.
	Load(ctx context.Context, agg Aggregate) ([]Envelope, error)
	// LoadLatest is Load confirmed by the stream leader: it holds every
	// event whose append was acknowledged before the call. It costs more
	// than Load (a round trip to the leader at least); it is for a
	// decision no append will check, such as refusing a device message.
	LoadLatest(ctx context.Context, agg Aggregate) ([]Envelope, error)
	// Replay calls fn for every event of kind with Seq >= from, in order,
	// up to the last event stored when Replay was called.
	Replay(ctx context.Context, kind Kind, from uint64, fn func(Envelope) error) error
	// Subscribe is Replay that goes on with new events until ctx is done
	// or fn returns an error.
	Subscribe(ctx context.Context, kind Kind, from uint64, fn func(Envelope) error) error
	// LastSeq is the sequence of the newest event of kind (0 if none).
	LastSeq(ctx context.Context, kind Kind) (uint64, error)
	// Version is the sequence of agg's newest event (0 if none): one cheap
	// read that tells whether a cached state is current.
	Version(ctx context.Context, agg Aggregate) (uint64, error)
}

// MaxAtomicAppend is the most events one append stores all or nothing
// (JetStream's atomic batch limit).
const MaxAtomicAppend = 1000

// LastSeqOf returns the Seq of the last envelope, 0 for none.
func LastSeqOf(evs []Envelope) uint64 {
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}
