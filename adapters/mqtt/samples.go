package mqtt

import (
	"sync"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// Bounds of Samples (RATIONALE.md, "Device metrics are a window in
// memory, not events").
const (
	// DefaultMetricsSamples is how many recent samples Samples keeps per
	// device and per task: 5 minutes at Propeller's default interval of
	// 10 s. A sample takes about 110 bytes of heap for a device and 170
	// for a task (measured: TestSamples_Memory10k), so 10,000 devices cost
	// 33 MB when every window is full.
	DefaultMetricsSamples = 30
	// DefaultMetricsTasks is how many tasks Samples keeps windows for; past
	// it, the window sampled least recently goes (a finished task stops
	// being sampled). Full, they cost 25 MB.
	DefaultMetricsTasks = 5_000
)

// Samples keeps the recent metrics samples of each device and each task in
// memory: a ring of at most n samples per device and per task, and at most
// maxTasks task windows. Nothing is recorded as an event; a restarted
// server starts with empty windows. It is safe for concurrent use.
type Samples struct {
	n, maxTasks int
	mu          sync.RWMutex
	devices     map[string]*ring[propletSample]
	tasks       map[string]*taskWindow
	clock       uint64 // counts task samples, to find the window sampled least recently
}

// NewSamples returns windows of n samples (DefaultMetricsSamples if n < 1)
// for at most maxTasks tasks (DefaultMetricsTasks if maxTasks < 1).
func NewSamples(n, maxTasks int) *Samples {
	if n < 1 {
		n = DefaultMetricsSamples
	}
	if maxTasks < 1 {
		maxTasks = DefaultMetricsTasks
	}
	return &Samples{n: n, maxTasks: maxTasks, devices: map[string]*ring[propletSample]{}, tasks: map[string]*taskWindow{}}
}

// Window is how many samples a window keeps.
func (s *Samples) Window() int { return s.n }

// AddProplet keeps m as device id's newest sample; a sample without a
// wall-clock time (an embedded proplet's uptime) is stamped at now.
func (s *Samples) AddProplet(id string, m wire.PropletMetrics, now time.Time) {
	ps := propletSampleOf(m, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.devices[id]
	if r == nil {
		r = newRing[propletSample](s.n)
		s.devices[id] = r
	}
	if prev, ok := r.newest(); ok && prev.namespace == ps.namespace {
		ps.namespace = prev.namespace // one copy of the bytes per window
	}
	r.push(ps)
}

// AddTask keeps m as task id's newest sample.
func (s *Samples) AddTask(id string, m wire.TaskMetrics, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.tasks[id]
	if w == nil {
		if len(s.tasks) >= s.maxTasks {
			s.evictOldestTask()
		}
		w = &taskWindow{ring: newRing[taskSample](s.n)}
		s.tasks[id] = w
	}
	s.clock++
	w.last = s.clock
	w.ring.push(w.sampleOf(m, now))
}

// evictOldestTask drops the task window sampled least recently: O(tasks),
// paid once per new task past the bound.
func (s *Samples) evictOldestTask() {
	var oldest string
	var at uint64
	for id, w := range s.tasks {
		if oldest == "" || w.last < at {
			oldest, at = id, w.last
		}
	}
	delete(s.tasks, oldest)
}

// ForgetDevice drops a device's window (a device removed).
func (s *Samples) ForgetDevice(id string) {
	s.mu.Lock()
	delete(s.devices, id)
	s.mu.Unlock()
}

// ForgetTask drops a task's window (a task deleted).
func (s *Samples) ForgetTask(id string) {
	s.mu.Lock()
	delete(s.tasks, id)
	s.mu.Unlock()
}

// PropletMetrics returns device id's samples from offset on, oldest first,
// at most limit of them, and how many it holds.
func (s *Samples) PropletMetrics(id string, offset, limit int) ([]wire.PropletMetrics, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := s.devices[id]
	if r == nil {
		return []wire.PropletMetrics{}, 0
	}
	page := r.page(offset, limit)
	out := make([]wire.PropletMetrics, len(page))
	for i, ps := range page {
		out[i] = ps.wire(id)
	}
	return out, r.len
}

// TaskMetrics returns task id's samples from offset on, oldest first, at
// most limit of them, and how many it holds.
func (s *Samples) TaskMetrics(id string, offset, limit int) ([]wire.TaskMetrics, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	w := s.tasks[id]
	if w == nil {
		return []wire.TaskMetrics{}, 0
	}
	page := w.ring.page(offset, limit)
	out := make([]wire.TaskMetrics, len(page))
	for i, ts := range page {
		out[i] = ts.wire(id)
	}
	return out, w.ring.len
}

// Counts are how many device and task windows Samples holds.
func (s *Samples) Counts() (devices, tasks int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.devices), len(s.tasks)
}

// ring is a fixed-size ring of the newest samples.
type ring[T any] struct {
	buf       []T
	next, len int
}

func newRing[T any](n int) *ring[T] { return &ring[T]{buf: make([]T, n)} }

func (r *ring[T]) push(v T) {
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	r.len = min(r.len+1, len(r.buf))
}

// newest is the sample pushed last.
func (r *ring[T]) newest() (T, bool) {
	if r.len == 0 {
		var zero T
		return zero, false
	}
	return r.buf[(r.next-1+len(r.buf))%len(r.buf)], true
}

// page returns up to limit samples from offset on, oldest first.
func (r *ring[T]) page(offset, limit int) []T {
	if offset >= r.len || limit <= 0 {
		return nil
	}
	n := min(limit, r.len-offset)
	out := make([]T, n)
	first := (r.next - r.len + len(r.buf)) % len(r.buf)
	for i := range n {
		out[i] = r.buf[(first+offset+i)%len(r.buf)]
	}
	return out
}

// propletSample is a wire.PropletMetrics without its ids, the container
// values flattened.
type propletSample struct {
	at        int64 // Unix nanoseconds
	cpu       wire.CPUMetrics
	rss, heap [3]wire.Int // rss, container usage, container limit; heap alloc, sys, inuse
	namespace string
	has       uint8 // bit 0: container usage; bit 1: container limit
}

func propletSampleOf(m wire.PropletMetrics, now time.Time) propletSample {
	ps := propletSample{at: stamp(m.Timestamp, now), cpu: m.CPU, namespace: m.Namespace}
	ps.rss[0] = m.Memory.RSSBytes
	ps.heap = [3]wire.Int{m.Memory.HeapAllocBytes, m.Memory.HeapSysBytes, m.Memory.HeapInuseBytes}
	if v := m.Memory.ContainerUsageBytes; v != nil {
		ps.rss[1], ps.has = *v, ps.has|1
	}
	if v := m.Memory.ContainerLimitBytes; v != nil {
		ps.rss[2], ps.has = *v, ps.has|2
	}
	return ps
}

func (ps propletSample) wire(id string) wire.PropletMetrics {
	m := wire.PropletMetrics{PropletID: id, Namespace: ps.namespace, Timestamp: wire.Timestamp{Time: time.Unix(0, ps.at).UTC()}, CPU: ps.cpu,
		Memory: wire.MemoryMetrics{RSSBytes: ps.rss[0], HeapAllocBytes: ps.heap[0], HeapSysBytes: ps.heap[1], HeapInuseBytes: ps.heap[2]}}
	if ps.has&1 != 0 {
		v := ps.rss[1]
		m.Memory.ContainerUsageBytes = &v
	}
	if ps.has&2 != 0 {
		v := ps.rss[2]
		m.Memory.ContainerLimitBytes = &v
	}
	return m
}

// taskWindow is one task's ring; the proplet id of its samples is kept
// once while it does not change (a task runs on one device at a time).
type taskWindow struct {
	ring    *ring[taskSample]
	proplet string
	last    uint64
}

// taskSample is a wire.TaskMetrics without its task id.
type taskSample struct {
	at         int64
	proplet    string // shares taskWindow.proplet's bytes
	metrics    wire.ProcessMetrics
	aggregated wire.AggregatedMetrics
	hasAgg     bool
}

func (w *taskWindow) sampleOf(m wire.TaskMetrics, now time.Time) taskSample {
	if m.PropletID != w.proplet {
		w.proplet = m.PropletID
	}
	ts := taskSample{at: stamp(m.Timestamp, now), proplet: w.proplet, metrics: m.Metrics}
	if m.Aggregated != nil {
		ts.aggregated, ts.hasAgg = *m.Aggregated, true
	}
	return ts
}

func (ts taskSample) wire(id string) wire.TaskMetrics {
	m := wire.TaskMetrics{TaskID: id, PropletID: ts.proplet, Metrics: ts.metrics, Timestamp: wire.Timestamp{Time: time.Unix(0, ts.at).UTC()}}
	if ts.hasAgg {
		a := ts.aggregated
		m.Aggregated = &a
	}
	return m
}

// stamp is a sample's time: the sender's wall clock, else now (Propeller's
// manager does the same with a time it cannot read).
func stamp(t wire.Timestamp, now time.Time) int64 {
	if t.Time.IsZero() || t.Time.Year() < 1678 || t.Time.Year() > 2261 { // outside what UnixNano holds
		return now.UnixNano()
	}
	return t.Time.UnixNano()
}
