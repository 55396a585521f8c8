package fleetsim

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// schedSlot is the least time the scheduler waits for a job to look again
// (keepalive with nothing to do).
const schedSlot = 10 * time.Millisecond

// job is a recurring task of the scheduler: run at due, it returns when
// to run next (zero: never again).
type job struct {
	due time.Time
	run func(due, now time.Time) time.Time
}

// jobHeap is a min-heap of jobs by due time.
type jobHeap []job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	*h = old[:len(old)-1]
	return j
}

// scheduler is the fleet's one timing goroutine: every device's
// heartbeats and keepalive are jobs on its heap, and it sweeps overdue
// acknowledgements, instead of a ticker and timers per device. It wakes
// when the next job is due, so each device keeps its own phase and the
// broker sees heartbeats arrive as a ticker per device would send them.
type scheduler struct {
	mu   sync.Mutex
	jobs jobHeap
	wake chan struct{} // a job earlier than the one waited for
}

func newScheduler() *scheduler { return &scheduler{wake: make(chan struct{}, 1)} }

// add schedules fn at due.
func (s *scheduler) add(due time.Time, fn func(due, now time.Time) time.Time) {
	s.mu.Lock()
	heap.Push(&s.jobs, job{due: due, run: fn})
	first := s.jobs[0].due.Equal(due)
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// run runs the jobs when they are due, and sweep every sweepEvery, until
// ctx ends. Jobs run one after another on this goroutine: they must not
// block.
func (s *scheduler) run(ctx context.Context, sweepEvery time.Duration, sweep func(now time.Time)) {
	t := time.NewTimer(sweepEvery)
	defer t.Stop()
	nextSweep := time.Now().Add(sweepEvery)
	for {
		now := time.Now()
		s.runDue(now)
		if !now.Before(nextSweep) {
			sweep(now)
			nextSweep = now.Add(sweepEvery)
		}
		t.Reset(time.Until(s.next(nextSweep)))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// next is the earlier of the first job's due time and limit.
func (s *scheduler) next(limit time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.jobs) > 0 && s.jobs[0].due.Before(limit) {
		return s.jobs[0].due
	}
	return limit
}

// runDue runs the jobs due at now and schedules their next runs.
func (s *scheduler) runDue(now time.Time) {
	for _, j := range s.popDue(now) {
		if next := j.run(j.due, now); !next.IsZero() {
			s.add(next, j.run)
		}
	}
}

func (s *scheduler) popDue(now time.Time) []job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []job
	for len(s.jobs) > 0 && !s.jobs[0].due.After(now) {
		due = append(due, heap.Pop(&s.jobs).(job))
	}
	return due
}

// every is a job that calls fn every interval from its first due time,
// keeping that phase (ticks it is late for are skipped, as a Ticker's).
func every(interval time.Duration, fn func(now time.Time)) func(due, now time.Time) time.Time {
	return func(due, now time.Time) time.Time {
		fn(now)
		next := due.Add(interval)
		if !next.After(now) {
			next = due.Add(interval * (now.Sub(due)/interval + 1))
		}
		return next
	}
}
