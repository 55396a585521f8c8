package metrics

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// InvokeAnswers is what the invocations' metrics read at scrape time (an
// *mqtt.Invoker): the invoke answers this replica ignored, by reason.
type InvokeAnswers interface {
	Ignored() map[string]uint64
}

var invokeIgnoredDesc = prometheus.NewDesc(Namespace+"_invoke_answers_ignored_total",
	"Invoke answers (control/proplet/invoke_results) this replica ignored, by reason: unmatched (no call here waits for its invocation id: another replica's, or timed out), foreign (from a proplet the invocation was not sent to, or whose own topic and proplet_id differ), duplicate (the proplet answered it already), malformed.",
	[]string{"reason"}, nil)

type invokesCollector struct{ src InvokeAnswers }

func (c invokesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- invokeIgnoredDesc }

func (c invokesCollector) Collect(ch chan<- prometheus.Metric) {
	by := c.src.Ignored()
	for _, reason := range slices.Sorted(maps.Keys(by)) {
		ch <- prometheus.MustNewConstMetric(invokeIgnoredDesc, prometheus.CounterValue, float64(by[reason]), reason)
	}
}
