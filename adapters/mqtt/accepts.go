package mqtt

import (
	"context"
	"fmt"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// A jetprop proplet listens on its own topics at QoS 0 (no broker session
// state per device: see docs/RATIONALE.md), so a start can be lost on the
// way; the proplet answers each one it takes with an accept. Until the
// accept arrives, the dispatcher keeps the attempt here and sends its
// start again, after ResendAfter and then twice as long each time; when
// AcceptTimeout passes without one, the task goes to another device and
// the silent one is marked unreachable (ReplaceUndelivered). What is
// waiting is known from the log (task.scheduled without task.started), so
// a restarted engine finds it again: Run sends the start of every
// scheduled task once more, and a proplet that has the attempt already
// only accepts it again.

// unaccepted is an attempt whose start was sent and not accepted yet.
type unaccepted struct {
	device  string
	attempt int
	first   time.Time     // first sent
	next    time.Time     // send again then
	wait    time.Duration // after the next send
}

// A stop goes to a proplet on its own topics at QoS 0 as well, and gets no
// answer of its own, so it is sent stopResends more times, after
// ResendAfter and then twice as long each time, unless the task is
// started again meanwhile. It names its attempt, so a late copy cannot
// stop a newer attempt on the same device.
const stopResends = 4

// stopResend is a stop to send again.
type stopResend struct {
	ev   events.TaskStopped
	next time.Time
	wait time.Duration
	left int
}

// stopping notes a stop sent to a device on its own topics.
func (d *Dispatcher) stopping(id string, ev events.TaskStopped) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stops == nil {
		d.stops = map[string]*stopResend{}
	}
	d.stops[id] = &stopResend{ev: ev, next: time.Now().Add(d.cfg.ResendAfter), wait: 2 * d.cfg.ResendAfter, left: stopResends}
}

// sweepEvery is how often the waiting attempts are looked at (more often
// when ResendAfter is shorter than twice that).
const sweepEvery = 250 * time.Millisecond

// accepting reports whether starts on own topics wait for an accept.
func (d *Dispatcher) accepting() bool { return d.ports.Replacer != nil }

// await notes a sent start of an attempt that must be accepted; resent:
// the sweep's send, which backs off. Another send of an attempt already
// waiting (Run's, after a restart of the stream) keeps its clock.
func (d *Dispatcher) await(id, device string, attempt int, resent bool) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waiting == nil {
		d.waiting = map[string]*unaccepted{}
	}
	if w := d.waiting[id]; w != nil && w.attempt == attempt {
		if resent {
			w.next, w.wait = now.Add(w.wait), 2*w.wait
		}
		return
	}
	d.waiting[id] = &unaccepted{device: device, attempt: attempt, first: now, next: now.Add(d.cfg.ResendAfter), wait: 2 * d.cfg.ResendAfter}
}

// Waiting counts the attempts whose start was sent and not accepted yet.
func (d *Dispatcher) Waiting() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.waiting)
}

// sweep looks at the waiting attempts until ctx is done: one that is no
// longer scheduled (accepted, finished, stopped, moved) is forgotten; one
// due is sent again, or handed to the Replacer when its time is up. Both
// go through route, so they are ordered with the task's other jobs.
func (d *Dispatcher) sweep(ctx context.Context, route func(job)) {
	tick := time.NewTicker(min(sweepEvery, d.cfg.ResendAfter/2))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, j := range d.due(now) {
				route(j)
			}
		}
	}
}

// due returns the jobs the waiting attempts call for at now.
func (d *Dispatcher) due(now time.Time) []job {
	d.mu.Lock()
	defer d.mu.Unlock()
	var jobs []job
	for id, w := range d.waiting {
		t, ok := d.ports.Tasks.Get(id)
		if !ok || t.State != engine.TaskScheduled || t.Attempt != w.attempt || !d.owns(id) {
			delete(d.waiting, id) // over, or another replica's now
			delete(d.marks, id)
			continue
		}
		j := job{env: events.Envelope{Aggregate: events.TaskAggregate(id), Seq: t.Seq}, ev: events.TaskScheduled{Device: w.device, Attempt: w.attempt}}
		switch {
		case now.Sub(w.first) >= d.cfg.AcceptTimeout:
			delete(d.waiting, id)
			j.op = opReplace
		case !now.Before(w.next):
			w.next = now.Add(w.wait) // until the resend is done, which sets it again
			j.op = opResend
		default:
			continue
		}
		jobs = append(jobs, j)
	}
	for id, st := range d.stops {
		if !d.owns(id) {
			delete(d.stops, id)
			continue
		}
		if now.Before(st.next) {
			continue
		}
		jobs = append(jobs, job{env: events.Envelope{Aggregate: events.TaskAggregate(id)}, ev: st.ev, op: opResend})
		st.left--
		st.next, st.wait = now.Add(st.wait), 2*st.wait
		if st.left == 0 {
			delete(d.stops, id)
		}
	}
	return jobs
}

// replace hands an attempt that was never accepted to the Replacer, once
// the device messages stored by then are handled (settled).
func (d *Dispatcher) replace(ctx context.Context, id string, ev events.TaskScheduled) error {
	t, ok := d.ports.Tasks.Get(id)
	if !ok || t.State != engine.TaskScheduled || t.Attempt != ev.Attempt {
		d.mu.Lock()
		delete(d.marks, id)
		d.mu.Unlock()
		return nil // accepted (or over) meanwhile
	}
	if !d.settled(ctx, id, ev) {
		return nil // asked again at the next sweep
	}
	reason := fmt.Sprintf("proplet %s did not accept the start of task %s attempt %d within %s", ev.Device, id, ev.Attempt, d.cfg.AcceptTimeout)
	d.log.Warn("start not accepted; placing the task elsewhere", "task", id, "attempt", ev.Attempt, "proplet", ev.Device, "timeout", d.cfg.AcceptTimeout)
	return d.ports.Replacer.ReplaceUndelivered(ctx, id, ev.Attempt, reason)
}

// settled reports whether the inbound has handled every device message
// stored when the attempt's accept timed out, so that no accept of it
// waits unhandled. If not (or when that cannot be read: an election),
// the attempt waits again, due at every sweep, with the sequence to reach.
func (d *Dispatcher) settled(ctx context.Context, id string, ev events.TaskScheduled) bool {
	if d.ports.Handled == nil {
		return true
	}
	d.mu.Lock()
	mark := d.marks[id]
	d.mu.Unlock()
	handled, stored, err := d.ports.Handled.EdgeProgress(ctx)
	if err == nil {
		if mark == 0 {
			mark = stored
		}
		if handled >= mark {
			d.mu.Lock()
			delete(d.marks, id)
			d.mu.Unlock()
			return true
		}
	}
	d.log.Debug("start not accepted in time; waiting until the device messages stored by then are handled",
		"task", id, "attempt", ev.Attempt, "handled", handled, "mark", mark, "err", err)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.marks == nil {
		d.marks = map[string]uint64{}
	}
	if mark != 0 {
		d.marks[id] = mark
	}
	if d.waiting == nil {
		d.waiting = map[string]*unaccepted{}
	}
	if _, ok := d.waiting[id]; !ok {
		now := time.Now()
		d.waiting[id] = &unaccepted{device: ev.Device, attempt: ev.Attempt, first: now.Add(-d.cfg.AcceptTimeout), next: now, wait: d.cfg.ResendAfter}
	}
	return false
}
