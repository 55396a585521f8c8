package httpapi

import "net/http"

// InboundStats is GET /inbound/stats: what this server did with the
// device messages it took from EDGE_IN since it started. The counters are
// this process's (each engine replica has its own); every message is
// counted by the replica that settled it.
type InboundStats struct {
	Received  uint64 `json:"received"`  // taken to record (a message redelivered is counted again)
	Recorded  uint64 `json:"recorded"`  // the command succeeded (events or a no-op)
	Malformed uint64 `json:"malformed"` // did not decode: acked and dropped
	Ignored   uint64 `json:"ignored"`   // refused for good: acked and dropped; by reason below
	// IgnoredByReason holds every reason, 0 or not: unknown (task), stale
	// (attempt), not_placed (the current attempt from another device),
	// quarantined, revoked (device), unhandled (topic), too_large (over
	// the size bound of its kind), rate_limited (over its device's rate
	// limit).
	IgnoredByReason map[string]uint64 `json:"ignored_by_reason"`
	// DroppedDevices are the devices with the most messages dropped
	// unread (too_large, rate_limited) since the start, most first (at
	// most 20, of the last 1,024 that had any).
	DroppedDevices  []DeviceDrops `json:"dropped_devices"`
	Retried         uint64        `json:"retried"` // left for redelivery (an infrastructure error, a refusal the stream leader could not confirm)
	ResultAcks      uint64        `json:"result_acks"`
	ResultAckErrors uint64        `json:"result_ack_errors"`
	// Refusals are the command handler's refusals decided again on the
	// stream leader's state, device messages and API calls alike.
	Refusals RefusalStats `json:"refusals"`
}

// DeviceDrops counts one device's messages dropped unread. Device is ""
// for messages too large to read on a shared topic.
type DeviceDrops struct {
	Device      string `json:"device"`
	TooLarge    uint64 `json:"too_large"`
	RateLimited uint64 `json:"rate_limited"`
}

// RefusalStats counts refusals by what the stream leader's state said.
type RefusalStats struct {
	Confirmed   uint64 `json:"confirmed"`   // the refusal stands
	Overturned  uint64 `json:"overturned"`  // the first state lagged; the command was accepted
	Unconfirmed uint64 `json:"unconfirmed"` // the leader could not be read; the command failed instead
}

// WithInbound serves stats on GET /inbound/stats. Without it the route
// answers 404.
func WithInbound(stats func() InboundStats) Option {
	return func(a *api) { a.inbound = stats }
}

// inboundStats is GET /inbound/stats.
func (a *api) inboundStats(w http.ResponseWriter, _ *http.Request) {
	if a.inbound == nil {
		writeError(w, http.StatusNotFound, "this server records no device messages")
		return
	}
	writeJSON(w, http.StatusOK, a.inbound())
}
