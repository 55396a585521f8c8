package mqtt_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jetprop/jetprop/events"
)

// appendUndecodable stores a task.scheduled whose body does not decode.
func (r *dispatchRig) appendUndecodable(t *testing.T, id string) uint64 {
	t.Helper()
	agg := events.TaskAggregate(id)
	last, err := r.store.Version(context.Background(), agg)
	if err != nil {
		t.Fatal(err)
	}
	bad := events.Envelope{ID: "bad-" + id, Type: events.TaskScheduled{}.EventType(), Aggregate: agg, Time: time.Unix(1, 0), Version: 1, Data: json.RawMessage(`{"attempt":"x"}`)}
	seq, err := r.store.Append(context.Background(), agg, last, bad)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// With a quarantine the dispatcher sends nothing for a quarantined task
// and quarantines one whose event it cannot decode instead of ending Run
// (without one, TestDispatcher_RunReturnsUndecodableEvent).
func TestDispatcher_Quarantine(t *testing.T) {
	rig := newDispatchRig()
	q := events.NewQuarantine()
	rig.held = q
	// t0 is left scheduled by an earlier run, but quarantined since.
	t0 := httpTask("p1", 1)
	t0.ID = "t0"
	rig.schedule(t, t0)
	q.Add(events.NewQuarantined(events.KindTask, "jp.evt.task.t0", nil, nil, 99, errors.New("bad")))
	rig.run(t, 2)
	seq := rig.appendUndecodable(t, "t1") // the dispatcher cannot decode it: t1 is quarantined, Run goes on
	rig.schedule(t, httpTask("p1", 1))    // ...and nothing is sent for t1
	checkCalls(t, rig.settle(t), nil)
	if r, ok := q.Get(events.TaskAggregate("t1")); !ok || r.Seq != seq {
		t.Fatalf("t1 record %+v, %t; want seq %d", r, ok, seq)
	}
}
