package mqtt_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// replaced is a call of the fake Replacer.
type replaced struct {
	ID      string
	Attempt int
	Reason  string
}

type fakeReplacer struct{ rec *recorder }

func (f fakeReplacer) ReplaceUndelivered(_ context.Context, id string, attempt int, reason string) error {
	f.rec.add(replaced{id, attempt, reason})
	return nil
}

// acceptRig is a dispatch rig whose device "own" (own topics, answers
// starts) must accept starts within a short timeout; "legacy" (shared
// topics) and "older" (own topics, a proplet from before accepts) need not.
func acceptRig() *dispatchRig {
	rig := newDispatchRig()
	rig.devices = fakeDevices{"own": {ID: "own", OwnTopics: true, Accepts: true}, "legacy": {ID: "legacy"}, "older": {ID: "older", OwnTopics: true}}
	rig.replacer = fakeReplacer{rig.rec}
	rig.cfg.ResendAfter = 20 * time.Millisecond
	rig.cfg.AcceptTimeout = 400 * time.Millisecond
	return rig
}

func count[T any](calls []any, match func(T) bool) int {
	n := 0
	for _, c := range calls {
		if v, ok := c.(T); ok && match(v) {
			n++
		}
	}
	return n
}

func isStart(id string) func(wireStart) bool { return func(s wireStart) bool { return s.ID == id } }

// TestDispatcher_NeverAccepted: a start on a device's own topics is sent
// again until the device accepts it; with no accept in time the attempt
// goes to the Replacer, once, and the send never counts as the start.
func TestDispatcher_NeverAccepted(t *testing.T) {
	rig := acceptRig()
	rig.run(t, 1)
	rig.schedule(t, httpTask("own", 1))
	calls := rig.rec.waitFor(t, "the attempt handed to the replacer", func(calls []any) bool {
		return count(calls, func(replaced) bool { return true }) > 0
	})
	if n := count(calls, isStart("t1")); n < 2 {
		t.Errorf("start sent %d times before the timeout, want it sent again", n)
	}
	i := slices.IndexFunc(calls, func(c any) bool { _, ok := c.(replaced); return ok })
	r := calls[i].(replaced)
	if r.ID != "t1" || r.Attempt != 1 || !strings.Contains(r.Reason, "proplet own did not accept the start") {
		t.Errorf("replaced %+v", r)
	}
	if n := count(calls, func(c engine.MarkStarted) bool { return true }); n != 0 {
		t.Errorf("MarkStarted %d times for an attempt never accepted", n)
	}
	// The replacer moves the task; the waiting attempt is forgotten.
	rig.tasks.put(engine.Task{ID: "t1", State: engine.TaskPending, Seq: rig.append(t, "t1", events.TaskUndelivered{Device: "own", Attempt: 1})})
	waitUntil(t, "the attempt forgotten", func() bool { return rig.d.Waiting() == 0 })
	if n := count(rig.settle(t), func(replaced) bool { return true }); n != 1 {
		t.Errorf("replaced %d times, want once", n)
	}
}

// TestDispatcher_Accepted: once the read model shows the attempt running
// (the device's accept), its start is no longer sent and nothing is
// replaced; a device on the shared topics starts its attempt by the send.
func TestDispatcher_Accepted(t *testing.T) {
	rig := acceptRig()
	rig.cfg.AcceptTimeout = time.Hour
	rig.run(t, 1)
	task := httpTask("own", 1)
	rig.schedule(t, task)
	rig.rec.waitFor(t, "the start", func(calls []any) bool { return count(calls, isStart("t1")) == 1 })
	// The dispatcher notes the attempt as waiting once the publish returned,
	// a moment after the sender recorded it.
	waitUntil(t, "the sent attempt waiting", func() bool { return rig.d.Waiting() == 1 })
	task.State, task.Accepted = engine.TaskRunning, true
	task.Seq = rig.append(t, "t1", events.TaskStarted{Device: "own", Attempt: 1, Accepted: true})
	rig.tasks.put(task)
	waitUntil(t, "the accepted attempt forgotten", func() bool { return rig.d.Waiting() == 0 })

	legacy := httpTask("legacy", 1)
	legacy.ID = "t2"
	rig.schedule(t, legacy)
	older := httpTask("older", 1)
	older.ID = "t3"
	rig.schedule(t, older)
	calls := rig.settle(t)
	for _, id := range []string{"t2", "t3"} {
		if !slices.ContainsFunc(calls, func(c any) bool { return c == any(engine.MarkStarted{ID: id, Attempt: 1}) }) {
			t.Errorf("no MarkStarted of %s after the start to a device that sends no accepts:\n%s", id, formatCalls(calls))
		}
	}
	if n := count(calls, func(replaced) bool { return true }); n != 0 {
		t.Errorf("replaced %d times", n)
	}
	if rig.d.Waiting() != 0 {
		t.Errorf("waiting = %d after the legacy start, want 0", rig.d.Waiting())
	}
}

// waitUntil polls cond (state outside the recorder) until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var _ mqtt.Replacer = fakeReplacer{}

type wireStart = wire.StartRequest

// TestDispatcher_StopResent: a stop to a device on its own topics names
// its attempt and is sent again a few times, while the task stays stopped
// at that attempt; a device on the shared topics gets it once, as before.
func TestDispatcher_StopResent(t *testing.T) {
	rig := acceptRig()
	rig.run(t, 1)
	for _, dev := range []string{"own", "legacy"} {
		task := httpTask(dev, 1)
		task.ID = "t-" + dev
		task.State = engine.TaskStopped
		task.Seq = rig.append(t, task.ID, events.TaskStopped{Device: dev, Attempt: 1})
		rig.tasks.put(task)
	}
	stop := wire.StopRequest{ID: "t-own", PropletID: "own", Attempt: 1}
	calls := rig.rec.waitFor(t, "the stop sent five times", func(calls []any) bool {
		return count(calls, func(s wire.StopRequest) bool { return s == stop }) == 5
	})
	if n := count(calls, func(s wire.StopRequest) bool { return s == wire.StopRequest{ID: "t-legacy", PropletID: "legacy"} }); n != 1 {
		t.Errorf("stop to the shared topics sent %d times, want once:\n%s", n, formatCalls(calls))
	}
}

// TestDispatcher_StopResendEnds: a task started again after its stop
// gets no more copies of the stop. The read model shows the new attempt
// before the stop is even sent, so no copy can be due while it still
// shows the stop: the outcome does not depend on timing.
func TestDispatcher_StopResendEnds(t *testing.T) {
	rig := acceptRig()
	rig.cfg.ResendAfter = 200 * time.Millisecond
	rig.cfg.AcceptTimeout = time.Second // after the stop's copies at 200 and 600 ms would have been due
	rig.run(t, 1)
	rig.append(t, "t1", events.TaskStopped{Device: "own", Attempt: 1})
	rig.schedule(t, httpTask("own", 2)) // started again
	calls := rig.rec.waitFor(t, "the new attempt replaced", func(calls []any) bool {
		return count(calls, func(replaced) bool { return true }) > 0
	})
	stop := wire.StopRequest{ID: "t1", PropletID: "own", Attempt: 1}
	if n := count(calls, func(s wire.StopRequest) bool { return s == stop }); n != 1 {
		t.Errorf("stop sent %d times, want once: the task started again:\n%s", n, formatCalls(calls))
	}
}

// progress is a fake mqtt.Handled: EDGE_IN handled up to handled, stored
// up to stored; err fails the read (an election). It counts the reads.
type progress struct {
	mu              sync.Mutex
	handled, stored uint64
	err             error
	reads           int
}

func (p *progress) EdgeProgress(context.Context) (uint64, uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads++
	return p.handled, p.stored, p.err
}

func (p *progress) set(handled, stored uint64, err error) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handled, p.stored, p.err = handled, stored, err
	return p.reads
}

func (p *progress) read() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reads
}

// TestDispatcher_ReplaceWaitsForInbound: an attempt whose accept timed out
// is not replaced while the device messages stored by then are not all
// handled (its accept may be among them) or their progress cannot be
// read; it is once the inbound has handled up to the sequence stored at
// the timeout, even if more has been stored since.
func TestDispatcher_ReplaceWaitsForInbound(t *testing.T) {
	rig := acceptRig()
	p := &progress{handled: 5, stored: 9}
	rig.handled = p
	rig.run(t, 1)
	rig.schedule(t, httpTask("own", 1))
	replacedAny := func(calls []any) bool { return count(calls, func(replaced) bool { return true }) > 0 }
	waitUntil(t, "the progress read after the timeout, again and again", func() bool { return p.read() >= 3 })
	n := p.set(8, 20, errors.New("no leader"))
	waitUntil(t, "the progress read again", func() bool { return p.read() >= n+3 })
	if calls, _ := rig.rec.snapshot(); replacedAny(calls) {
		t.Fatal("replaced while the inbound had not handled what was stored at the timeout")
	}
	p.set(9, 30, nil) // handled up to the mark taken at the timeout, though 30 are stored now
	rig.rec.waitFor(t, "the attempt handed to the replacer", replacedAny)
	if n := count(rig.settle(t), func(replaced) bool { return true }); n != 1 {
		t.Errorf("replaced %d times, want once", n)
	}
}
