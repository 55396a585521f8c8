package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
)

// lagging is a real JetStream store read through a replica that lags:
// Load and Version answer with the aggregate's events up to sequence upTo
// only, while LoadLatest and Append go to the real store (the stream
// leader). This is fault injection over a real server: a replica that
// lags cannot be provoked on one server, and a cluster's lag cannot be
// held still for a test. leaderErr, when set, is what LoadLatest answers
// instead (the leader cannot be reached: an election, a timeout).
type lagging struct {
	events.Store
	upTo      atomic.Uint64
	leaderErr error
	latest    atomic.Int64 // LoadLatest calls
}

func (l *lagging) Load(ctx context.Context, agg events.Aggregate) ([]events.Envelope, error) {
	evs, err := l.Store.Load(ctx, agg)
	if err != nil {
		return nil, err
	}
	up := l.upTo.Load()
	i := slices.IndexFunc(evs, func(e events.Envelope) bool { return e.Seq > up })
	if i < 0 {
		return evs, nil
	}
	return evs[:i], nil
}

func (l *lagging) Version(ctx context.Context, agg events.Aggregate) (uint64, error) {
	evs, err := l.Load(ctx, agg)
	return events.LastSeqOf(evs), err
}

func (l *lagging) LoadLatest(ctx context.Context, agg events.Aggregate) ([]events.Envelope, error) {
	l.latest.Add(1)
	if l.leaderErr != nil {
		return nil, l.leaderErr
	}
	return l.Store.LoadLatest(ctx, agg)
}

var result3 = json.RawMessage(`"3"`)

// TestHandler_RefusalConfirmedOnLeader: the measured loss of issue 11 —
// a result called stale on a state read from a replica that lagged, and
// dropped — and its kin: a refusal is decided again on the leader's state
// before it is returned; the fast path never asks the leader.
func TestHandler_RefusalConfirmedOnLeader(t *testing.T) {
	tests := []struct {
		name       string
		history    []engine.TaskCommand // written through the leader
		lagAt      int                  // the replica holds the first lagAt events of the history
		cached     bool                 // the handler wrote the replica's state itself (its cache holds it)
		cmd        engine.TaskCommand
		wantErr    error
		wantState  engine.TaskState
		wantLatest int64 // LoadLatest calls
		want       service.Refusals
	}{{
		name:    "result the replica calls stale: recorded",
		history: []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}, engine.ScheduleTask{ID: "t1", Device: "dev-a"}, engine.MarkStarted{ID: "t1", Attempt: 1}},
		lagAt:   1, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: result3},
		wantState: engine.TaskCompleted, wantLatest: 1, want: service.Refusals{Overturned: 1},
	}, {
		name:    "result for a task the replica does not know yet: recorded",
		history: []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}, engine.ScheduleTask{ID: "t1", Device: "dev-a"}},
		lagAt:   0, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: result3},
		wantState: engine.TaskCompleted, wantLatest: 1, want: service.Refusals{Overturned: 1},
	}, {
		name:    "accept the replica calls stale: recorded",
		history: []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}, engine.ScheduleTask{ID: "t1", Device: "dev-a"}},
		lagAt:   1, cmd: engine.MarkStarted{ID: "t1", Attempt: 1, Device: "dev-a"},
		wantState: engine.TaskRunning, wantLatest: 1, want: service.Refusals{Overturned: 1},
	}, {
		name: "cache and replica agree, the leader does not: recorded",
		history: []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}, engine.ScheduleTask{ID: "t1", Device: "dev-a"},
			engine.StopTask{ID: "t1"}, engine.ScheduleTask{ID: "t1", Device: "dev-b"}},
		lagAt: 3, cached: true, cmd: engine.RecordResult{ID: "t1", Device: "dev-b", Attempt: 2, Result: result3},
		wantState: engine.TaskCompleted, wantLatest: 1, want: service.Refusals{Overturned: 1},
	}, {
		name:    "result of an older attempt: the refusal stands",
		history: []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}, engine.ScheduleTask{ID: "t1", Device: "dev-a"}, engine.StopTask{ID: "t1"}, engine.ScheduleTask{ID: "t1", Device: "dev-b"}},
		lagAt:   4, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: result3},
		wantErr: domain.ErrStale, wantState: engine.TaskScheduled, wantLatest: 1, want: service.Refusals{Confirmed: 1},
	}, {
		name:    "result for a task that does not exist: the refusal stands",
		history: []engine.TaskCommand{engine.CreateTask{ID: "t2", Spec: created}},
		lagAt:   1, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Result: result3},
		wantErr: domain.ErrNotFound, wantLatest: 1, want: service.Refusals{Confirmed: 1},
	}, {
		name:    "fast path: a result recorded on the replica's state never asks the leader",
		history: []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}, engine.ScheduleTask{ID: "t1", Device: "dev-a"}},
		lagAt:   2, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: result3},
		wantState: engine.TaskCompleted,
	}, {
		name:    "fast path: a duplicate result is a no-op without the leader",
		history: []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}, engine.ScheduleTask{ID: "t1", Device: "dev-a"}, engine.RecordResult{ID: "t1", Device: "dev-a", Result: result3}},
		lagAt:   3, cmd: engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: result3},
		wantState: engine.TaskCompleted,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &lagging{Store: newJetStream(t)}
			store.upTo.Store(1 << 62)
			writer := newHandler(store.Store, "w-")
			h := newHandler(store, "h-")
			var seqs []uint64
			for i, c := range tt.history {
				by := writer
				if tt.cached && i < tt.lagAt {
					by = h // its cache holds the state after lagAt events
				}
				seqs = append(seqs, mustTask(t, by, c).Seq)
			}
			if tt.lagAt > 0 {
				store.upTo.Store(seqs[tt.lagAt-1])
			} else {
				store.upTo.Store(0)
			}
			got, err := h.Task(testCtx(t), tt.cmd)
			checkErr(t, err, tt.wantErr)
			if got.State != tt.wantState {
				t.Errorf("state %s, want %s", got.State, tt.wantState)
			}
			if n := store.latest.Load(); n != tt.wantLatest {
				t.Errorf("%d reads from the leader, want %d", n, tt.wantLatest)
			}
			if r := h.Refusals(); r != tt.want {
				t.Errorf("Refusals = %+v, want %+v", r, tt.want)
			}
		})
	}
}

// TestHandler_UnconfirmedRefusal: when the leader cannot be read, a
// refusal decided on a replica's state is not returned: the command fails
// with the leader's error, which is no refusal (not ErrStale, not
// ErrNotFound), so the device message is redelivered, not dropped.
func TestHandler_UnconfirmedRefusal(t *testing.T) {
	errLeader := fmt.Errorf("stream leader election: %w", nats.ErrTimeout)
	store := &lagging{Store: newJetStream(t), leaderErr: errLeader}
	store.upTo.Store(1 << 62)
	writer := newHandler(store.Store, "w-")
	mustTask(t, writer, engine.CreateTask{ID: "t1", Spec: created})
	seq := mustTask(t, writer, engine.ScheduleTask{ID: "t1", Device: "dev-a"}).Seq
	store.upTo.Store(seq - 1)

	h := newHandler(store, "h-")
	_, err := h.Task(testCtx(t), engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: result3})
	if !errors.Is(err, errLeader) || errors.Is(err, domain.ErrStale) || errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("Task = %v, want the leader's error and no refusal", err)
	}
	if r := h.Refusals(); r != (service.Refusals{Unconfirmed: 1}) {
		t.Errorf("Refusals = %+v, want one unconfirmed", r)
	}
	if got := types(load(t, store.Store, events.TaskAggregate("t1"))); !slices.Equal(got, []string{"task.created", "task.scheduled"}) {
		t.Errorf("history %v: nothing may be written", got)
	}
	// The leader is back: the redelivered result is recorded.
	store.leaderErr = nil
	if got := mustTask(t, h, engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: result3}); got.State != engine.TaskCompleted {
		t.Fatalf("after the leader came back: %s", got.State)
	}
}
