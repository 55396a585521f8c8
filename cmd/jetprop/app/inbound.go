package app

import (
	"github.com/jetprop/jetprop/adapters/httpapi"
)

// inboundStats is GET /inbound/stats: the inbound counters as the API
// shows them.
func (a *App) inboundStats() httpapi.InboundStats {
	s := a.inbound.Stats()
	return httpapi.InboundStats{
		Received: s.Received, Recorded: s.Recorded, Malformed: s.Malformed,
		Ignored: s.Ignored, IgnoredByReason: s.IgnoredBy.ByReason(), Retried: s.Retried,
		ResultAcks: s.ResultAcks, ResultAckErrors: s.ResultAckErrors,
		Refusals: httpapi.RefusalStats{Confirmed: s.Refusals.Confirmed, Overturned: s.Refusals.Overturned, Unconfirmed: s.Refusals.Unconfirmed},
	}
}
