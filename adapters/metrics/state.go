package metrics

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

// The collectors in this file read, at each scrape, counts the server
// keeps anyway: a scrape costs O(states), whatever the size of the fleet,
// and no event pays for metrics.

// TaskCounts is the tasks read model's counts by state
// (projections.Tasks).
type TaskCounts interface {
	Counts() map[engine.TaskState]int
}

// DeviceCounts is the devices read model's counts by status
// (projections.Devices, projections.DeviceStatus).
type DeviceCounts interface {
	Counts() map[string]int
}

// InboundStats is the inbound adapter's counters of device messages
// (mqtt.Inbound).
type InboundStats interface {
	Stats() mqtt.Snapshot
}

// Quarantine is what the quarantine holds (events.Quarantine).
type Quarantine interface {
	Len() int
	Streams() []events.StreamProblem
}

var (
	_ TaskCounts   = (*projections.Tasks)(nil)
	_ DeviceCounts = (*projections.Devices)(nil)
	_ InboundStats = (*mqtt.Inbound)(nil)
	_ Quarantine   = (*events.Quarantine)(nil)
)

var (
	tasksDesc = prometheus.NewDesc(Namespace+"_tasks",
		"Tasks by state (pending, scheduled, running, completed, failed, stopped), as the tasks read model holds them; deleted tasks are gone.",
		[]string{"state"}, nil)
	devicesDesc = prometheus.NewDesc(Namespace+"_devices",
		"Devices by state (unknown: provisioned, never seen; announced; alive; offline; unreachable: up and cannot receive; revoked, whatever its liveness), as the devices read model holds them; they add up to the fleet.",
		[]string{"state"}, nil)
)

// taskStates and deviceStatuses are always exposed, at 0 when none is in
// them, so that a series does not appear from nowhere; a state missing
// here is exposed once a task or device is in it.
var (
	taskStates = []engine.TaskState{engine.TaskPending, engine.TaskScheduled, engine.TaskRunning,
		engine.TaskCompleted, engine.TaskFailed, engine.TaskStopped}
	deviceStatuses = []string{engine.DeviceUnknown.String(), engine.DeviceAnnounced.String(),
		engine.DeviceAlive.String(), engine.DeviceOffline.String(), projections.StatusRevoked, projections.StatusUnreachable}
)

type tasksCollector struct{ src TaskCounts }

func (c tasksCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tasksDesc }

func (c tasksCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	for _, s := range taskStates {
		counts[s.String()] = 0
	}
	for s, n := range c.src.Counts() {
		counts[s.String()] = n
	}
	gauges(ch, tasksDesc, counts)
}

type devicesCollector struct{ src DeviceCounts }

func (c devicesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- devicesDesc }

func (c devicesCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	for _, s := range deviceStatuses {
		counts[s] = 0
	}
	maps.Copy(counts, c.src.Counts())
	gauges(ch, devicesDesc, counts)
}

// gauges sends one gauge of desc per label value, in order.
func gauges(ch chan<- prometheus.Metric, desc *prometheus.Desc, counts map[string]int) {
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(counts[k]), k)
	}
}

var (
	inboundReceivedDesc = prometheus.NewDesc(Namespace+"_inbound_messages_received_total",
		"Device messages taken from EDGE_IN to record (a message delivered again after a retry is counted again).",
		nil, nil)
	inboundDesc = prometheus.NewDesc(Namespace+"_inbound_messages_total",
		"Device messages handled, by outcome: recorded (the command succeeded), malformed (dropped), ignored (refused: unknown task, stale attempt, quarantined), retried (left for redelivery after an infrastructure error).",
		[]string{"outcome"}, nil)
	inboundIgnoredDesc = prometheus.NewDesc(Namespace+"_inbound_ignored_total",
		"Device messages ignored (acked without effect), by reason: unknown (task), stale (attempt), not_placed (the current attempt from another device), quarantined, revoked (device), unhandled (topic), too_large (over the size bound of its kind, dropped unread), rate_limited (over its device's rate limit, dropped unread; the devices are in GET /inbound/stats). Every refusal of the engine among them was confirmed on the stream leader's state first.",
		[]string{"reason"}, nil)
	refusalsDesc = prometheus.NewDesc(Namespace+"_refusals_total",
		"Refusals of commands (device messages and API calls) decided again on the stream leader's state, by outcome: confirmed (the refusal stands), overturned (the first state lagged; the command was accepted), unconfirmed (the leader could not be read; the command failed, a device message is redelivered).",
		[]string{"outcome"}, nil)
	resultAcksDesc = prometheus.NewDesc(Namespace+"_inbound_result_acks_total",
		"Result acks to devices that accept starts, by outcome: sent (handed to the broker at QoS 0), failed (not sent: the device sends its result again).",
		[]string{"outcome"}, nil)
)

type inboundCollector struct{ src InboundStats }

func (c inboundCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- inboundReceivedDesc
	ch <- inboundDesc
	ch <- inboundIgnoredDesc
	ch <- refusalsDesc
	ch <- resultAcksDesc
}

func (c inboundCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(inboundReceivedDesc, prometheus.CounterValue, float64(s.Received))
	for outcome, n := range map[string]uint64{"recorded": s.Recorded, "malformed": s.Malformed, "ignored": s.Ignored, "retried": s.Retried} {
		ch <- prometheus.MustNewConstMetric(inboundDesc, prometheus.CounterValue, float64(n), outcome)
	}
	for reason, n := range s.IgnoredBy.ByReason() {
		ch <- prometheus.MustNewConstMetric(inboundIgnoredDesc, prometheus.CounterValue, float64(n), reason)
	}
	r := s.Refusals
	for outcome, n := range map[string]uint64{"confirmed": r.Confirmed, "overturned": r.Overturned, "unconfirmed": r.Unconfirmed} {
		ch <- prometheus.MustNewConstMetric(refusalsDesc, prometheus.CounterValue, float64(n), outcome)
	}
	ch <- prometheus.MustNewConstMetric(resultAcksDesc, prometheus.CounterValue, float64(s.ResultAcks), "sent")
	ch <- prometheus.MustNewConstMetric(resultAcksDesc, prometheus.CounterValue, float64(s.ResultAckErrors), "failed")
}

var (
	quarantinedDesc = prometheus.NewDesc(Namespace+"_quarantined_aggregates",
		"Aggregates stopped by a stored message that cannot be read: their commands are refused until an operator acts ('jetprop events doctor').",
		nil, nil)
	damagedDesc = prometheus.NewDesc(Namespace+"_event_streams_damaged",
		"Event streams found damaged at start (GET /health says degraded).",
		nil, nil)
)

type quarantineCollector struct{ src Quarantine }

func (c quarantineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- quarantinedDesc
	ch <- damagedDesc
}

func (c quarantineCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(quarantinedDesc, prometheus.GaugeValue, float64(c.src.Len()))
	ch <- prometheus.MustNewConstMetric(damagedDesc, prometheus.GaugeValue, float64(len(c.src.Streams())))
}
