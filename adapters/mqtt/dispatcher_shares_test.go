package mqtt_test

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// fakeShares is the Shares port: the rig's barrier tasks are always this
// replica's, the others once the test gives them (gain).
type fakeShares struct {
	all    atomic.Bool
	gained chan struct{}
}

func newFakeShares() *fakeShares { return &fakeShares{gained: make(chan struct{}, 1)} }

func (f *fakeShares) Owns(key string) bool {
	return strings.HasPrefix(key, "barrier-") || f.all.Load()
}

func (f *fakeShares) Gained() <-chan struct{} { return f.gained }

// gain makes every task this replica's and says so.
func (f *fakeShares) gain() {
	f.all.Store(true)
	f.gained <- struct{}{}
}

// TestDispatcher_GainedWaitsForTheReadModel: a task scheduled while its
// partition was another replica's is passed by; when the partition is
// gained the dispatcher sends its start from the read model, and waits
// for the read model to apply every event it has passed by first (a read
// model a moment behind would otherwise hide the task, and its start
// would never be sent).
func TestDispatcher_GainedWaitsForTheReadModel(t *testing.T) {
	rig := newDispatchRig()
	shares := newFakeShares()
	rig.shares = shares
	rig.run(t, 1)
	task := httpTask("p1", 1)
	task.Seq = rig.append(t, task.ID, events.TaskScheduled{Device: task.Device, Attempt: task.Attempt})
	calls := rig.settle(t) // Run has looked at the task's event, and passed it by
	if n := count(calls, isStart(task.ID)); n != 0 {
		t.Fatalf("start sent %d times for a task of another replica", n)
	}
	last, err := rig.store.LastSeq(t.Context(), events.KindTask) // the barrier's
	if err != nil {
		t.Fatal(err)
	}
	shares.gain()
	waitUntil(t, "the dispatcher waiting for the read model", func() bool { return rig.tasks.waitedFor(last) })
	rig.tasks.put(task)
	rig.tasks.apply(last, func() {})
	rig.rec.waitFor(t, "the start of the task gained", func(calls []any) bool { return count(calls, isStart(task.ID)) == 1 })
	if n := count(rig.settle(t), func(engine.MarkStarted) bool { return true }); n != 1 {
		t.Fatalf("MarkStarted %d times, want once", n)
	}
}
