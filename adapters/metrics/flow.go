package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/events"
)

// scrapeTimeout bounds what a scrape asks the server (consumer infos,
// stream sequences): a slow JetStream costs those series, not the scrape.
const scrapeTimeout = 2 * time.Second

// Latencies are the dispatch and result latency histograms, observed as
// they happen: the dispatcher's mqtt.Latencies.
type Latencies struct {
	dispatch prometheus.Histogram
	result   *prometheus.HistogramVec
}

var (
	_ mqtt.Latencies       = (*Latencies)(nil)
	_ prometheus.Collector = (*Latencies)(nil)
)

// latencyBuckets: 1 ms to about 4 minutes, by factors of 4.
var latencyBuckets = prometheus.ExponentialBuckets(0.001, 4, 10)

// NewLatencies returns empty histograms.
func NewLatencies() *Latencies {
	l := &Latencies{
		dispatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "dispatch_latency_seconds",
			Help:    "From task.scheduled stored to the attempt's start message handed to the broker, the first time (resends are not counted).",
			Buckets: latencyBuckets,
		}),
		result: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "result_latency_seconds",
			Help:    "From task.started stored to the attempt's result stored, by outcome (completed, failed): an attempt's turnaround as the engine sees it, run time included.",
			Buckets: latencyBuckets,
		}, []string{"outcome"}),
	}
	l.result.WithLabelValues("completed")
	l.result.WithLabelValues("failed")
	return l
}

// ObserveDispatch implements mqtt.Latencies.
func (l *Latencies) ObserveDispatch(d time.Duration) { l.dispatch.Observe(d.Seconds()) }

// ObserveResult implements mqtt.Latencies.
func (l *Latencies) ObserveResult(outcome string, d time.Duration) {
	if outcome != "completed" {
		outcome = "failed" // the label takes two values, whatever a caller says
	}
	l.result.WithLabelValues(outcome).Observe(d.Seconds())
}

// Describe implements prometheus.Collector.
func (l *Latencies) Describe(ch chan<- *prometheus.Desc) {
	l.dispatch.Describe(ch)
	l.result.Describe(ch)
}

// Collect implements prometheus.Collector.
func (l *Latencies) Collect(ch chan<- prometheus.Metric) {
	l.dispatch.Collect(ch)
	l.result.Collect(ch)
}

// EdgeLag reads the EDGE_IN consumers' pending counts (mqtt.Inbound).
type EdgeLag interface {
	Lag(ctx context.Context) ([]mqtt.ConsumerLag, error)
}

// Followed is a read model following an event stream: its kind and the
// last sequence it applied (every projections model).
type Followed interface {
	Kind() events.Kind
	LastSeq() uint64
}

// Lag is what the consumers of the server have not processed yet.
type Lag struct {
	Edge   EdgeLag      // nil: no EDGE_IN series
	Store  events.Store // the streams the models follow; nil: no model series
	Models []Followed
}

var (
	edgePendingDesc = prometheus.NewDesc(Namespace+"_edge_consumer_pending",
		"Device messages stored in EDGE_IN and not yet delivered to the engine's durable consumer (engine: results and the rest; engine-liveness: discoveries and heartbeats).",
		[]string{"consumer"}, nil)
	edgeAckPendingDesc = prometheus.NewDesc(Namespace+"_edge_consumer_ack_pending",
		"Device messages delivered to the engine's durable consumer of EDGE_IN and not acked yet.",
		[]string{"consumer"}, nil)
	modelLagDesc = prometheus.NewDesc(Namespace+"_projection_lag_events",
		"Events stored in a stream that its read model (kind: task, dev, wf, ...) has not applied yet.",
		[]string{"kind"}, nil)
)

type lagCollector struct{ src Lag }

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- edgePendingDesc
	ch <- edgeAckPendingDesc
	ch <- modelLagDesc
}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if c.src.Edge != nil {
		lags, _ := c.src.Edge.Lag(ctx) // an error costs the series it could not read
		for _, l := range lags {
			ch <- prometheus.MustNewConstMetric(edgePendingDesc, prometheus.GaugeValue, float64(l.Pending), l.Consumer)
			ch <- prometheus.MustNewConstMetric(edgeAckPendingDesc, prometheus.GaugeValue, float64(l.AckPending), l.Consumer)
		}
	}
	if c.src.Store == nil {
		return
	}
	for _, m := range c.src.Models {
		last, err := c.src.Store.LastSeq(ctx, m.Kind())
		if err != nil {
			continue
		}
		applied := m.LastSeq()
		ch <- prometheus.MustNewConstMetric(modelLagDesc, prometheus.GaugeValue, float64(last-min(applied, last)), string(m.Kind()))
	}
}

// Delivery counts the module bytes sent to devices: inline in start
// messages (mqtt.Dispatcher.InlineBytes) and in chunks
// (outbound.ChunkServer.SentBytes).
type Delivery struct {
	Inline, Chunks func() uint64
}

var deliveryDesc = prometheus.NewDesc(Namespace+"_module_delivery_bytes_total",
	"Module bytes sent to devices, by path: inline (in start messages) or chunks (over the registry topics, asked for by the proplet).",
	[]string{"path"}, nil)

type deliveryCollector struct{ src Delivery }

func (c deliveryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- deliveryDesc }

func (c deliveryCollector) Collect(ch chan<- prometheus.Metric) {
	for path, f := range map[string]func() uint64{"inline": c.src.Inline, "chunks": c.src.Chunks} {
		var n uint64
		if f != nil {
			n = f()
		}
		ch <- prometheus.MustNewConstMetric(deliveryDesc, prometheus.CounterValue, float64(n), path)
	}
}
