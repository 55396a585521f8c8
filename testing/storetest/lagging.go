package storetest

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jetprop/jetprop/events"
)

// Lagging is a real store read through a replica of its streams that
// lags: Load and Version answer with an aggregate's events up to the
// sequence set by LagAt only, while LoadLatest and Append go to the real
// store (the stream leader). It is fault injection over a real server: a
// replica that lags cannot be provoked on one server, and a cluster's lag
// cannot be held still for a test. SetLeaderErr makes LoadLatest fail
// instead (the leader cannot be reached: an election, a timeout).
type Lagging struct {
	events.Store
	upTo   atomic.Uint64
	latest atomic.Int64

	mu        sync.Mutex
	leaderErr error
}

// NewLagging returns store read through a replica that is current until
// LagAt is called.
func NewLagging(store events.Store) *Lagging {
	l := &Lagging{Store: store}
	l.upTo.Store(1<<64 - 1)
	return l
}

// LagAt has the replica hold the streams up to sequence seq.
func (l *Lagging) LagAt(seq uint64) { l.upTo.Store(seq) }

// CatchUp has the replica current again.
func (l *Lagging) CatchUp() { l.upTo.Store(1<<64 - 1) }

// SetLeaderErr has LoadLatest fail with err (nil: answer again).
func (l *Lagging) SetLeaderErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leaderErr = err
}

// LatestReads is how many times LoadLatest was called.
func (l *Lagging) LatestReads() int64 { return l.latest.Load() }

// Load implements events.Store: what the replica holds.
func (l *Lagging) Load(ctx context.Context, agg events.Aggregate) ([]events.Envelope, error) {
	evs, err := l.Store.Load(ctx, agg)
	if err != nil {
		return nil, err
	}
	up := l.upTo.Load()
	if i := slices.IndexFunc(evs, func(e events.Envelope) bool { return e.Seq > up }); i >= 0 {
		evs = evs[:i]
	}
	return evs, nil
}

// Version implements events.Store: the replica's last sequence of agg.
func (l *Lagging) Version(ctx context.Context, agg events.Aggregate) (uint64, error) {
	evs, err := l.Load(ctx, agg)
	return events.LastSeqOf(evs), err
}

// LoadLatest implements events.Store: the leader's, or the error set.
func (l *Lagging) LoadLatest(ctx context.Context, agg events.Aggregate) ([]events.Envelope, error) {
	l.latest.Add(1)
	l.mu.Lock()
	err := l.leaderErr
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return l.Store.LoadLatest(ctx, agg)
}

var _ events.Store = (*Lagging)(nil)
