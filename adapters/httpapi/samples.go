package httpapi

import (
	"net/http"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// Samples is the window of recent metrics samples the API serves on
// GET /proplets/{id}/metrics and GET /tasks/{id}/metrics (an
// *mqtt.Samples): each from offset on, oldest first, at most limit, and
// how many the window holds.
type Samples interface {
	PropletMetrics(id string, offset, limit int) ([]wire.PropletMetrics, int)
	TaskMetrics(id string, offset, limit int) ([]wire.TaskMetrics, int)
}

// WithSamples serves s on the metrics routes of proplets and tasks.
// Without it they answer an empty page for a known proplet or task.
func WithSamples(s Samples) Option {
	return func(a *api) { a.samples = s }
}

// PropletMetricsPage is Propeller's answer of GET /proplets/{id}/metrics.
type PropletMetricsPage struct {
	Offset  int                   `json:"offset"`
	Limit   int                   `json:"limit"`
	Total   int                   `json:"total"`
	Metrics []wire.PropletMetrics `json:"metrics"`
}

// TaskMetricsPage is Propeller's answer of GET /tasks/{id}/metrics.
type TaskMetricsPage struct {
	Offset  int                `json:"offset"`
	Limit   int                `json:"limit"`
	Total   int                `json:"total"`
	Metrics []wire.TaskMetrics `json:"metrics"`
}

// propletMetrics is GET /proplets/{id}/metrics: 404 for a proplet the
// server does not know.
func (a *api) propletMetrics(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err == nil {
		_, err = a.svc.GetDevice(r.PathValue("id"))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := PropletMetricsPage{Offset: p.offset, Limit: p.limit, Metrics: []wire.PropletMetrics{}}
	if a.samples != nil {
		out.Metrics, out.Total = a.samples.PropletMetrics(r.PathValue("id"), p.offset, p.limit)
	}
	writeJSON(w, http.StatusOK, out)
}

// taskMetrics is GET /tasks/{id}/metrics: 404 for a task the server does
// not know.
func (a *api) taskMetrics(w http.ResponseWriter, r *http.Request) {
	p, err := parsePage(r)
	if err == nil {
		_, err = a.svc.GetTask(r.PathValue("id"))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := TaskMetricsPage{Offset: p.offset, Limit: p.limit, Metrics: []wire.TaskMetrics{}}
	if a.samples != nil {
		out.Metrics, out.Total = a.samples.TaskMetrics(r.PathValue("id"), p.offset, p.limit)
	}
	writeJSON(w, http.StatusOK, out)
}
