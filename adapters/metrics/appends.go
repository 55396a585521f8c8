package metrics

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetprop/jetprop/events"
)

// Results of an append, the result label of jetprop_store_appends_total.
const (
	AppendOK       = "ok"
	AppendConflict = "conflict" // events.ErrConflict: another writer was first; the handler retries
	AppendError    = "error"
)

// Appends is an events.Store that counts its appends by kind and result,
// and the events they stored, as a prometheus.Collector. Everything but
// Append goes to the store unchanged.
type Appends struct {
	events.Store
	appends  *prometheus.CounterVec
	appended *prometheus.CounterVec
}

var (
	_ events.Store         = (*Appends)(nil)
	_ prometheus.Collector = (*Appends)(nil)
)

// CountAppends returns store with its appends counted. Every kind starts
// at 0 with every result, so that rates work from the first scrape.
func CountAppends(store events.Store) *Appends {
	a := &Appends{
		Store: store,
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "store", Name: "appends_total",
			Help: "Appends to the event store by aggregate kind and result (ok; conflict: the expected sequence had moved, the command is retried; error).",
		}, []string{"kind", "result"}),
		appended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "store", Name: "appended_events_total",
			Help: "Events stored by appends that succeeded, by aggregate kind.",
		}, []string{"kind"}),
	}
	for _, k := range events.Kinds() {
		for _, r := range []string{AppendOK, AppendConflict, AppendError} {
			a.appends.WithLabelValues(string(k), r)
		}
		a.appended.WithLabelValues(string(k))
	}
	return a
}

// Append implements events.Store.
func (a *Appends) Append(ctx context.Context, agg events.Aggregate, expected uint64, evs ...events.Envelope) (uint64, error) {
	seq, err := a.Store.Append(ctx, agg, expected, evs...)
	kind := string(agg.Kind)
	switch {
	case err == nil:
		a.appends.WithLabelValues(kind, AppendOK).Inc()
		a.appended.WithLabelValues(kind).Add(float64(len(evs)))
	case errors.Is(err, events.ErrConflict):
		a.appends.WithLabelValues(kind, AppendConflict).Inc()
	default:
		a.appends.WithLabelValues(kind, AppendError).Inc()
	}
	return seq, err
}

// Describe implements prometheus.Collector.
func (a *Appends) Describe(ch chan<- *prometheus.Desc) {
	a.appends.Describe(ch)
	a.appended.Describe(ch)
}

// Collect implements prometheus.Collector.
func (a *Appends) Collect(ch chan<- prometheus.Metric) {
	a.appends.Collect(ch)
	a.appended.Collect(ch)
}
