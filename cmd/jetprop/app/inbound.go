package app

import (
	"github.com/jetprop/jetprop/adapters/httpapi"
)

// inboundStats is GET /inbound/stats: the inbound counters as the API
// shows them.
func (a *App) inboundStats() httpapi.InboundStats {
	s := a.inbound.Stats()
	dropped := []httpapi.DeviceDrops{}
	for _, d := range a.inbound.Dropped() {
		dropped = append(dropped, httpapi.DeviceDrops{Device: d.Device, TooLarge: d.TooLarge, RateLimited: d.RateLimited})
	}
	return httpapi.InboundStats{DroppedDevices: dropped,
		Received: s.Received, Recorded: s.Recorded, Malformed: s.Malformed,
		Ignored: s.Ignored, IgnoredByReason: s.IgnoredBy.ByReason(), Retried: s.Retried,
		ResultAcks: s.ResultAcks, ResultAckErrors: s.ResultAckErrors,
		Refusals: httpapi.RefusalStats{Confirmed: s.Refusals.Confirmed, Overturned: s.Refusals.Overturned, Unconfirmed: s.Refusals.Unconfirmed},
	}
}
