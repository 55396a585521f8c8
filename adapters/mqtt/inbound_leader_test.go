package mqtt_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/storetest"
)

// newLaggingRig is an edge rig whose handler reads the event store
// through a replica that lags (storetest.Lagging: fault injection over
// the real server), and a handler that writes through the leader.
func newLaggingRig(t *testing.T) (*edgeRig, *storetest.Lagging, *service.Handler) {
	t.Helper()
	var lag *storetest.Lagging
	rig := newEdgeRigOn(t, mqtt.InboundConfig{Workers: 2}, func(s events.Store) events.Store {
		lag = storetest.NewLagging(s)
		return lag
	})
	writer := service.NewHandler(rig.store, events.DefaultCodec(), service.SystemClock{}, service.NewULIDs())
	return rig, lag, writer
}

func must[S any](t *testing.T) func(S, error) S {
	return func(s S, err error) S {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestInbound_RefusalConfirmedOnLeader: results read against a replica
// that has the tasks created but nothing since. The one the leader's state
// accepts is recorded (issue 11 measured it called stale and dropped);
// the others are ignored only after the leader's state refused them too,
// and counted by reason.
func TestInbound_RefusalConfirmedOnLeader(t *testing.T) {
	rig, lag, w := newLaggingRig(t)
	ctx := context.Background()
	task := must[engine.Task](t)
	var last uint64
	for _, id := range []string{"t-ok", "t-old", "t-elsewhere"} {
		last = task(w.Task(ctx, engine.CreateTask{ID: id, Spec: events.TaskCreated{Name: "main", ImageURL: "fleet:1"}})).Seq
	}
	lag.LagAt(last) // the replica has the tasks created, nothing after
	task(w.Task(ctx, engine.ScheduleTask{ID: "t-ok", Device: "dev-a"}))
	task(w.Task(ctx, engine.MarkStarted{ID: "t-ok", Attempt: 1}))
	task(w.Task(ctx, engine.ScheduleTask{ID: "t-old", Device: "dev-a"}))
	task(w.Task(ctx, engine.StopTask{ID: "t-old"}))
	task(w.Task(ctx, engine.ScheduleTask{ID: "t-old", Device: "dev-a"}))
	task(w.Task(ctx, engine.ScheduleTask{ID: "t-elsewhere", Device: "dev-b"}))

	a := device{id: "dev-a"}
	rig.publish(t, []edgeMsg{a.result("t-ok"), a.result("t-old"), a.result("t-elsewhere"), a.result("t-none")})
	rig.run(t)
	rig.checkSettled(t, 4)

	if got := rig.task(t, "t-ok"); got.State != engine.TaskCompleted {
		t.Errorf("t-ok is %s, want completed: its result was dropped", got.State)
	}
	s := rig.in.Stats()
	want := mqtt.IgnoredCounts{Unknown: 1, Stale: 1, NotPlaced: 1}
	if s.Recorded != 1 || s.Ignored != 3 || s.IgnoredBy != want || s.Retried != 0 {
		t.Errorf("stats %+v, want 1 recorded, 3 ignored by %+v", s, want)
	}
	if s.Refusals != (service.Refusals{Confirmed: 3, Overturned: 1}) {
		t.Errorf("refusals %+v, want 3 confirmed on the leader, 1 overturned", s.Refusals)
	}
}

// TestInbound_UnconfirmedRefusalNotAcked: while the leader cannot be read,
// a result the replica calls stale is neither acked nor counted ignored:
// it is redelivered (nak with delay) and recorded once the leader answers.
func TestInbound_UnconfirmedRefusalNotAcked(t *testing.T) {
	rig, lag, w := newLaggingRig(t)
	ctx := context.Background()
	task := must[engine.Task](t)
	lag.LagAt(task(w.Task(ctx, engine.CreateTask{ID: "t1", Spec: events.TaskCreated{Name: "main", ImageURL: "fleet:1"}})).Seq)
	task(w.Task(ctx, engine.ScheduleTask{ID: "t1", Device: "dev-a"}))
	lag.SetLeaderErr(fmt.Errorf("stream leader election: %w", nats.ErrTimeout))

	rig.publish(t, []edgeMsg{device{id: "dev-a"}.result("t1")})
	rig.run(t)
	natstest.CheckFor(t, 30*time.Second, func() error {
		if s := rig.in.Stats(); s.Retried < 2 {
			return fmt.Errorf("stats %+v: want the result tried twice", s)
		}
		return nil
	})
	if s := rig.in.Stats(); s.Ignored != 0 || s.Recorded != 0 || s.Refusals.Unconfirmed < 2 {
		t.Fatalf("stats %+v: nothing may be ignored or recorded, each try unconfirmed", s)
	}
	cons, err := rig.js.Consumer(ctx, mqtt.EdgeStream, mqtt.EdgeConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 0 {
		t.Fatalf("ack floor at %d: the unconfirmed refusal was acked", info.AckFloor.Stream)
	}

	lag.SetLeaderErr(nil)
	rig.checkSettled(t, 1)
	if got := rig.task(t, "t1"); got.State != engine.TaskCompleted {
		t.Errorf("t1 is %s, want completed once the leader answered", got.State)
	}
	if s := rig.in.Stats(); s.Ignored != 0 || s.Recorded != 1 {
		t.Errorf("stats %+v: want the result recorded, nothing ignored", s)
	}
}
