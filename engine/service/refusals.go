package service

import (
	"sync/atomic"
)

// Refusals counts how the handler's refusals fared when decided again on
// the state the stream leader confirmed (Handler.Refusals).
type Refusals struct {
	// Confirmed: refused again on the leader's state; the refusal stands.
	Confirmed uint64
	// Overturned: accepted (or a no-op) on the leader's state. The state
	// first decided on missed events another replica (or this one, through
	// a replica that lags) had written; without the check the command
	// would have been refused wrongly, a device's result dropped.
	Overturned uint64
	// Unconfirmed: the leader could not be read (an election, a timeout);
	// the command failed with that error instead of the refusal.
	Unconfirmed uint64
}

type refusalStats struct{ confirmed, overturned, unconfirmed atomic.Uint64 }

// count records the decision taken on the leader's state.
func (r *refusalStats) count(err error) {
	if err != nil {
		r.confirmed.Add(1)
		return
	}
	r.overturned.Add(1)
}

// Refusals returns the handler's counts of refusals checked on the leader.
func (h *Handler) Refusals() Refusals {
	return Refusals{
		Confirmed:   h.refusals.confirmed.Load(),
		Overturned:  h.refusals.overturned.Load(),
		Unconfirmed: h.refusals.unconfirmed.Load(),
	}
}
