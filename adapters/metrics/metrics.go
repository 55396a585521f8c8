// Package metrics exposes jetprop's metrics to Prometheus (the text
// exposition format on GET /metrics) through client_golang, on a registry
// of its own, never the global one. What the server already keeps is read
// at scrape time: tasks and devices by state from the read models' counts,
// the inbound device-message counters, the quarantine. What happens per
// request is counted as it happens: HTTP requests by method, route pattern
// and status (Registry.ObserveRequest, the HTTP API's Metrics port), and
// event-store appends (Appends, a decorator of events.Store). Go runtime
// and process metrics come with it.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every series of jetprop's own.
const Namespace = "jetprop"

// Sources are what a scrape reads; a nil source is left out.
type Sources struct {
	Tasks      TaskCounts
	Devices    DeviceCounts
	Inbound    InboundStats
	Quarantine Quarantine
	Appends    *Appends // CountAppends over the store the command handler appends to
	Latencies  *Latencies
	Lag        *Lag
	Delivery   *Delivery
	Invokes    InvokeAnswers
}

// Registry is jetprop's metrics registry: it serves the exposition
// (ServeHTTP) and counts the HTTP API's requests (ObserveRequest).
type Registry struct {
	reg     *prometheus.Registry
	http    *requests
	handler http.Handler
	log     *slog.Logger
	version string
}

// Option configures the registry.
type Option func(*Registry)

// WithLogger sets the logger for errors of a scrape (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(r *Registry) {
		if l != nil {
			r.log = l
		}
	}
}

// WithVersion sets the version jetprop_build_info reports (default "dev").
func WithVersion(v string) Option {
	return func(r *Registry) {
		if v != "" {
			r.version = v
		}
	}
}

// New returns a registry over src, with the Go runtime and process
// collectors.
func New(src Sources, opts ...Option) (*Registry, error) {
	r := &Registry{reg: prometheus.NewRegistry(), http: newRequests(), log: slog.New(slog.DiscardHandler), version: "dev"}
	for _, o := range opts {
		o(r)
	}
	for _, c := range r.collectors(src) {
		if err := r.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	r.handler = promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorLog:      printer{r.log},
		ErrorHandling: promhttp.ContinueOnError, // a collector's failure costs its series, not the scrape
		Registry:      r.reg,                    // promhttp_metric_handler_errors_total
	})
	return r, nil
}

// collectors are the registry's collectors for src.
func (r *Registry) collectors(src Sources) []prometheus.Collector {
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.buildInfo(),
		r.http,
	}
	if src.Tasks != nil {
		cs = append(cs, tasksCollector{src.Tasks})
	}
	if src.Devices != nil {
		cs = append(cs, devicesCollector{src.Devices})
	}
	if src.Inbound != nil {
		cs = append(cs, inboundCollector{src.Inbound})
	}
	if src.Quarantine != nil {
		cs = append(cs, quarantineCollector{src.Quarantine})
	}
	if src.Appends != nil {
		cs = append(cs, src.Appends)
	}
	if src.Invokes != nil {
		cs = append(cs, invokesCollector{src.Invokes})
	}
	if src.Latencies != nil {
		cs = append(cs, src.Latencies)
	}
	if src.Lag != nil {
		cs = append(cs, lagCollector{*src.Lag})
	}
	if src.Delivery != nil {
		cs = append(cs, deliveryCollector{*src.Delivery})
	}
	return cs
}

func (r *Registry) buildInfo() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the version of the server in its label.",
		ConstLabels: prometheus.Labels{"version": r.version},
	}, func() float64 { return 1 })
}

// ServeHTTP serves the exposition (text format, or what the scraper
// negotiates).
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.handler.ServeHTTP(w, req)
}

// printer is promhttp's error log on a slog.Logger.
type printer struct{ log *slog.Logger }

func (p printer) Println(v ...any) { p.log.Error("metrics scrape: " + fmt.Sprint(v...)) }
