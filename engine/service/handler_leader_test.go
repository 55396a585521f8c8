package service_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/storetest"
)

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
			store := storetest.NewLagging(newJetStream(t))
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
				store.LagAt(seqs[tt.lagAt-1])
			} else {
				store.LagAt(0)
			}
			got, err := h.Task(testCtx(t), tt.cmd)
			checkErr(t, err, tt.wantErr)
			if got.State != tt.wantState {
				t.Errorf("state %s, want %s", got.State, tt.wantState)
			}
			if n := store.LatestReads(); n != tt.wantLatest {
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
	store := storetest.NewLagging(newJetStream(t))
	store.SetLeaderErr(errLeader)
	writer := newHandler(store.Store, "w-")
	mustTask(t, writer, engine.CreateTask{ID: "t1", Spec: created})
	seq := mustTask(t, writer, engine.ScheduleTask{ID: "t1", Device: "dev-a"}).Seq
	store.LagAt(seq - 1)

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
	store.SetLeaderErr(nil)
	if got := mustTask(t, h, engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 1, Result: result3}); got.State != engine.TaskCompleted {
		t.Fatalf("after the leader came back: %s", got.State)
	}
}
