package fleetsim

import (
	"sync"
	"sync/atomic"
)

// counters are the fleet's running counts.
type counters struct {
	connected                         atomic.Int64
	connectAttempts, connectErrors    atomic.Int64
	lost                              atomic.Int64
	subscribeRefused, subscribeErrors atomic.Int64
	discoveryErrors                   atomic.Int64
	heartbeats, heartbeatErrors       atomic.Int64
	unreachableHeartbeats             atomic.Int64
	starts, duplicates, redelivered   atomic.Int64
	accepts, acceptErrors             atomic.Int64
	startsInvalid, foreign            atomic.Int64
	stops, other                      atomic.Int64
	results, resultErrors             atomic.Int64

	mu          sync.Mutex
	lastConnErr string
}

func (c *counters) connectError(err error) {
	c.connectErrors.Add(1)
	c.mu.Lock()
	c.lastConnErr = err.Error()
	c.mu.Unlock()
}

// Stats is a snapshot of what the fleet did so far.
type Stats struct {
	Devices int `json:"devices"`
	QoS     int `json:"qos"` // of the subscriptions to starts (Config.QoS)
	// HeartbeatQoS is Config.HeartbeatQoS: at 0 no heartbeat is acknowledged.
	HeartbeatQoS int  `json:"heartbeat_qos"`
	Accept       bool `json:"accept"` // devices accept starts and say when unreachable (not Config.NoAccept)

	Ready      int `json:"ready"`      // through their first setup
	Connected  int `json:"connected"`  // connections open now
	Subscribed int `json:"subscribed"` // devices whose subscription to starts the broker accepted
	// Unreachable devices heartbeat "unreachable": the broker refused
	// their subscription (never with NoAccept).
	Unreachable int `json:"unreachable"`

	ConnectAttempts  int64  `json:"connect_attempts"`
	ConnectErrors    int64  `json:"connect_errors"`
	LastConnectError string `json:"last_connect_error,omitempty"`
	ConnectionsLost  int64  `json:"connections_lost"`
	SubscribeRefused int64  `json:"subscribe_refused"` // SUBACK 0x80, every try (at QoS 1: no consumer, e.g. beyond the limit)
	SubscribeErrors  int64  `json:"subscribe_errors"`  // no SUBACK in time
	DiscoveryErrors  int64  `json:"discovery_errors"`

	Heartbeats            int64 `json:"heartbeats"`             // acknowledged
	UnreachableHeartbeats int64 `json:"unreachable_heartbeats"` // of those, saying "unreachable"
	HeartbeatErrors       int64 `json:"heartbeat_errors"`       // not acknowledged within an interval

	Starts int64 `json:"starts"` // received, valid, re-sends included
	// Duplicates are re-sends: a task and attempt again on a device that
	// had received it (accepted again, not answered again).
	Duplicates    int64 `json:"duplicates"`
	Redelivered   int64 `json:"redelivered"`    // with the MQTT DUP flag (QoS 1 only)
	Accepts       int64 `json:"accepts"`        // accepts published and acknowledged, one per start
	AcceptErrors  int64 `json:"accept_errors"`  // not acknowledged
	StartsInvalid int64 `json:"starts_invalid"` // not a valid start request
	Foreign       int64 `json:"foreign"`        // meant for another device (proplet_id or topic)
	Stops         int64 `json:"stops"`
	Other         int64 `json:"other"`         // chunks and anything else
	Results       int64 `json:"results"`       // published and acknowledged
	ResultErrors  int64 `json:"result_errors"` // not acknowledged
}

// Stats returns the counts so far.
func (f *Fleet) Stats() Stats {
	c := &f.stats
	s := Stats{
		Devices: len(f.devices), QoS: int(f.cfg.QoS), HeartbeatQoS: int(f.cfg.HeartbeatQoS), Accept: !f.cfg.NoAccept, Connected: int(c.connected.Load()),
		ConnectAttempts: c.connectAttempts.Load(), ConnectErrors: c.connectErrors.Load(),
		ConnectionsLost: c.lost.Load(), SubscribeRefused: c.subscribeRefused.Load(),
		SubscribeErrors: c.subscribeErrors.Load(), DiscoveryErrors: c.discoveryErrors.Load(),
		Heartbeats: c.heartbeats.Load(), UnreachableHeartbeats: c.unreachableHeartbeats.Load(), HeartbeatErrors: c.heartbeatErrors.Load(),
		Starts: c.starts.Load(), Duplicates: c.duplicates.Load(), Redelivered: c.redelivered.Load(),
		Accepts: c.accepts.Load(), AcceptErrors: c.acceptErrors.Load(),
		StartsInvalid: c.startsInvalid.Load(), Foreign: c.foreign.Load(), Stops: c.stops.Load(),
		Other: c.other.Load(), Results: c.results.Load(), ResultErrors: c.resultErrors.Load(),
	}
	c.mu.Lock()
	s.LastConnectError = c.lastConnErr
	c.mu.Unlock()
	for _, d := range f.devices {
		if isClosed(d.setupDone) && d.c.connected() {
			s.Ready++
		}
		if d.subscribed.Load() {
			s.Subscribed++
		}
		if d.unreachable.Load() != nil {
			s.Unreachable++
		}
	}
	return s
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
