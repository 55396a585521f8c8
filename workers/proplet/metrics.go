package proplet

import (
	"context"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// RunObserver is told of every task that ends: how long it ran and how
// it ended (nil: it succeeded). It must not block.
type RunObserver interface {
	TaskEnded(took time.Duration, err error)
}

// Stats are the proplet's counters since it started.
type Stats struct {
	TasksRun    uint64 // tasks that ended, however they ended
	TasksFailed uint64 // of them, ended with an error (stops included)
	Running     int    // tasks running now
	Reconnects  uint64 // MQTT connections made after the first
	// Promoted counts latent modules compiled by wazero's interpreter at
	// deploy and then by its optimizing compiler in the background (the
	// tiered start); PromoteFailed those whose second compile (or its mark
	// in the disk cache) failed: they stay interpreted.
	Promoted      uint64
	PromoteFailed uint64
}

// Stats returns the proplet's counters.
func (p *Proplet) Stats() Stats {
	p.mu.Lock()
	running := len(p.tasks)
	p.mu.Unlock()
	s := Stats{TasksRun: p.tasksRun.Load(), TasksFailed: p.tasksFailed.Load(), Running: running,
		Reconnects: max(p.connects.Load(), 1) - 1}
	if w := p.wazero.Load(); w != nil {
		s.Promoted, s.PromoteFailed = w.Promotions()
	}
	return s
}

// countEnd counts a task that ended and tells the observer.
func (p *Proplet) countEnd(took time.Duration, err error) {
	p.tasksRun.Add(1)
	if err != nil {
		p.tasksFailed.Add(1)
	}
	if p.cfg.Observer != nil {
		p.cfg.Observer.TaskEnded(took, err)
	}
}

// metricsLoop publishes the proplet's metrics and those of each running
// task every MetricsInterval, until ctx is done. Metrics go at QoS 0: a
// sample lost while disconnected is not worth a place in the journal, the
// next one follows.
func (p *Proplet) metricsLoop(ctx context.Context) {
	if p.cfg.MetricsOff {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-p.ready:
	}
	var c collector
	c.sample(p.id, p.cfg.Namespace, time.Now()) // the first CPU reading, to take differences from
	ticker := time.NewTicker(p.cfg.MetricsInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			if p.client.IsConnectionOpen() {
				p.publishMetrics(ctx, &c, now)
			}
		}
	}
}

func (p *Proplet) publishMetrics(ctx context.Context, c *collector, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.MetricsInterval)
	defer cancel()
	if err := p.publish(ctx, wire.SuffixMetrics, 0, c.sample(p.id, p.cfg.Namespace, now)); err != nil {
		p.log.Debug("metrics not published", keyErr, err)
	}
	for _, m := range p.taskSamples(now) {
		if err := p.publish(ctx, wire.SuffixTaskMetrics, 0, m); err != nil {
			p.log.Debug("task metrics not published", keyTask, m.TaskID, keyErr, err)
		}
	}
}

// taskSamples are the metrics of the running tasks. A task runs in the
// proplet's process (wazero) or in a child (the external runtime): what a
// task's own CPU and memory are is known for a child only; for one in
// process they are in the proplet's metrics, and the task's say 0.
func (p *Proplet) taskSamples(now time.Time) []wire.TaskMetrics {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]wire.TaskMetrics, 0, len(p.tasks))
	for id, t := range p.tasks {
		m := wire.ProcessMetrics{UptimeSeconds: wire.Int(now.Sub(t.started) / time.Second), ThreadCount: 1}
		out = append(out, wire.TaskMetrics{TaskID: id, PropletID: p.id, Metrics: m,
			Aggregated: t.agg.add(m), Timestamp: wire.Timestamp{Time: now}})
	}
	return out
}

// aggregate sums a task's samples up, as the Rust proplet's
// AggregatedMetrics does.
type aggregate struct {
	n                  int64
	cpuSum, cpuMax     float64
	memSum, memMax     int64
	diskRead, diskWrit int64
}

func (a *aggregate) add(m wire.ProcessMetrics) *wire.AggregatedMetrics {
	a.n++
	a.cpuSum += m.CPUPercent
	a.cpuMax = max(a.cpuMax, m.CPUPercent)
	a.memSum += int64(m.MemoryBytes)
	a.memMax = max(a.memMax, int64(m.MemoryBytes))
	a.diskRead, a.diskWrit = int64(m.DiskReadBytes), int64(m.DiskWriteBytes)
	return &wire.AggregatedMetrics{AvgCPUUsage: a.cpuSum / float64(a.n), MaxCPUUsage: a.cpuMax,
		AvgMemoryUsage: wire.Int(a.memSum / a.n), MaxMemoryUsage: wire.Int(a.memMax),
		TotalDiskRead: wire.Int(a.diskRead), TotalDiskWrite: wire.Int(a.diskWrit), SampleCount: wire.Int(a.n)}
}
