package propletcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jetprop/jetprop/cmd/internal/envflag"
	"github.com/jetprop/jetprop/cmd/internal/pprofmux"
	"github.com/jetprop/jetprop/workers/proplet"
)

// serving is what the proplet command serves over HTTP besides MQTT: both
// off by default.
type serving struct {
	metricsAddr string // Prometheus exposition on GET /metrics, no auth
	pprofAddr   string // Go's runtime profiles, loopback only
}

func servingFlags(s *envflag.Set, sv *serving) {
	s.String(&sv.metricsAddr, "metrics-addr", "",
		"serve Prometheus metrics on GET /metrics at this `address` (host:port; no authentication: bind it where only your scraper reaches); empty: off", "PROPLET_METRICS_ADDR")
	s.String(&sv.pprofAddr, "pprof", "",
		"serve Go's runtime profiles (net/http/pprof) at this loopback `address`, e.g. 127.0.0.1:6061; empty: off", "PROPLET_PPROF_ADDR")
}

func (sv serving) validate() error {
	if sv.pprofAddr == "" {
		return nil
	}
	if host, _, err := net.SplitHostPort(sv.pprofAddr); err != nil || !loopback(host) {
		return fmt.Errorf("--pprof %s: profiles are served on a loopback address only (e.g. 127.0.0.1:6061)", sv.pprofAddr)
	}
	return nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// servers are the HTTP servers started; close stops them and waits.
type servers struct {
	srvs []*http.Server
	wg   sync.WaitGroup
}

// start listens on each address set and serves until close.
func (sv serving) start(reg *prometheus.Registry, log *slog.Logger) (*servers, error) {
	s := &servers{}
	if sv.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		if err := s.serve("metrics", sv.metricsAddr, mux, log); err != nil {
			return s, err
		}
	}
	if sv.pprofAddr != "" {
		if err := s.serve("pprof", sv.pprofAddr, pprofmux.New(), log); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (s *servers) serve(name, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("proplet: %s: listen on %s: %w", name, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.srvs = append(s.srvs, srv)
	s.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+" server", "err", err)
		}
	})
	log.Info("serving "+name, "addr", ln.Addr().String())
	return nil
}

func (s *servers) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range s.srvs {
		_ = srv.Shutdown(ctx)
	}
	s.wg.Wait()
}

// Names of the proplet's own series (README, "Metrics").
const (
	metricTasksRun     = "jetprop_proplet_tasks_run_total"
	metricTasksFailed  = "jetprop_proplet_tasks_failed_total"
	metricTasksRunning = "jetprop_proplet_tasks_running"
	metricReconnects   = "jetprop_proplet_mqtt_reconnects_total"
	metricTaskDuration = "jetprop_proplet_task_duration_seconds"
	metricPromotions   = "jetprop_proplet_tier_promotions_total"
)

// NewMetrics returns the proplet's Prometheus registry over stats (a
// Proplet's Stats) and the RunObserver that feeds its run-duration
// histogram (Config.Observer).
func NewMetrics(stats func() proplet.Stats) (*prometheus.Registry, proplet.RunObserver) {
	runs := newRunHistogram()
	return registry(stats, runs), runs
}

// registry is the proplet's Prometheus registry: its counters read from
// Stats at scrape time, the run-duration histogram observed as tasks end
// (runs), Go runtime and process collectors (memory, CPU).
func registry(stats func() proplet.Stats, runs *runHistogram) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		statsCollector{stats}, runs.h)
	return reg
}

var (
	tasksRunDesc     = prometheus.NewDesc(metricTasksRun, "Tasks that ended on this proplet, however they ended.", nil, nil)
	tasksFailedDesc  = prometheus.NewDesc(metricTasksFailed, "Tasks that ended with an error (stops and timeouts included).", nil, nil)
	tasksRunningDesc = prometheus.NewDesc(metricTasksRunning, "Tasks running now.", nil, nil)
	reconnectsDesc   = prometheus.NewDesc(metricReconnects, "MQTT connections made after the first (each follows a lost one).", nil, nil)
	promotionsDesc   = prometheus.NewDesc(metricPromotions,
		"Latent modules first compiled by wazero's interpreter, then by its optimizing compiler in the background: promoted, or failed (left interpreted).", []string{"outcome"}, nil)
)

type statsCollector struct{ stats func() proplet.Stats }

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tasksRunDesc
	ch <- tasksFailedDesc
	ch <- tasksRunningDesc
	ch <- reconnectsDesc
	ch <- promotionsDesc
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(tasksRunDesc, prometheus.CounterValue, float64(s.TasksRun))
	ch <- prometheus.MustNewConstMetric(tasksFailedDesc, prometheus.CounterValue, float64(s.TasksFailed))
	ch <- prometheus.MustNewConstMetric(tasksRunningDesc, prometheus.GaugeValue, float64(s.Running))
	ch <- prometheus.MustNewConstMetric(reconnectsDesc, prometheus.CounterValue, float64(s.Reconnects))
	ch <- prometheus.MustNewConstMetric(promotionsDesc, prometheus.CounterValue, float64(s.Promoted), "promoted")
	ch <- prometheus.MustNewConstMetric(promotionsDesc, prometheus.CounterValue, float64(s.PromoteFailed), "failed")
}

// runHistogram is the proplet's RunObserver: task run durations by
// outcome.
type runHistogram struct{ h *prometheus.HistogramVec }

func newRunHistogram() *runHistogram {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricTaskDuration,
		Help:    "How long tasks ran on this proplet, from start to result, by outcome (ok, failed).",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms to about 4 min
	}, []string{"outcome"})
	h.WithLabelValues("ok")
	h.WithLabelValues("failed")
	return &runHistogram{h: h}
}

// TaskEnded implements proplet.RunObserver.
func (r *runHistogram) TaskEnded(took time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "failed"
	}
	r.h.WithLabelValues(outcome).Observe(took.Seconds())
}
