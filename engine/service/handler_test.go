package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/replay"
)

func TestHandler_TaskFlow(t *testing.T) {
	store := events.NewMemory()
	h := newHandler(store, "ev-")
	steps := []struct {
		name      string
		cmd       engine.TaskCommand
		wantState engine.TaskState
		wantSeq   uint64
	}{
		{"create", engine.CreateTask{ID: "t1", Spec: created}, engine.TaskPending, 1},
		{"schedule", engine.ScheduleTask{ID: "t1", Device: "dev-a"}, engine.TaskScheduled, 2},
		{"start", engine.MarkStarted{ID: "t1", Attempt: 1}, engine.TaskRunning, 3},
		{"start again", engine.MarkStarted{ID: "t1", Attempt: 1}, engine.TaskRunning, 3},
		{"result", engine.RecordResult{ID: "t1", Device: "dev-a", Result: json.RawMessage(`"3"`)}, engine.TaskCompleted, 4},
		{"duplicate result", engine.RecordResult{ID: "t1", Device: "dev-a", Result: json.RawMessage(`"3"`)}, engine.TaskCompleted, 4},
	}
	var got engine.Task
	for _, st := range steps {
		got = mustTask(t, h, st.cmd)
		if got.State != st.wantState || got.Seq != st.wantSeq {
			t.Fatalf("%s: state %s seq %d, want %s seq %d", st.name, got.State, got.Seq, st.wantState, st.wantSeq)
		}
	}
	hist := load(t, store, events.TaskAggregate("t1"))
	want := []string{"task.created", "task.scheduled", "task.started", "task.completed"}
	if !slices.Equal(types(hist), want) {
		t.Fatalf("history %v, want %v", types(hist), want)
	}
	sameState(t, "fold of the history", foldTask(t, store, "t1"), got)
	if string(got.Result) != `"3"` || got.Attempt != 1 || got.Device != "dev-a" {
		t.Fatalf("result %s attempt %d device %q", got.Result, got.Attempt, got.Device)
	}
}

// The handler records the result of a fast proplet that answers before the
// dispatcher marked the task started.
func TestHandler_ResultBeforeStarted(t *testing.T) {
	store := events.NewMemory()
	h := newHandler(store, "ev-")
	mustTask(t, h, engine.CreateTask{ID: "t1", Spec: created})
	mustTask(t, h, engine.ScheduleTask{ID: "t1", Device: "dev-a"})
	done := mustTask(t, h, engine.RecordResult{ID: "t1", Device: "dev-a", Result: json.RawMessage(`"3"`)})
	late := mustTask(t, h, engine.MarkStarted{ID: "t1", Attempt: 1})
	if done.State != engine.TaskCompleted {
		t.Fatalf("after the result: %s", done.State)
	}
	sameState(t, "state after the late start", late, done)
	want := []string{"task.created", "task.scheduled", "task.completed"}
	if got := types(load(t, store, events.TaskAggregate("t1"))); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
}

func TestHandler_Refusals(t *testing.T) {
	store := events.NewMemory()
	h := newHandler(store, "ev-")
	mustTask(t, h, engine.CreateTask{ID: "t1", Spec: created})
	mustTask(t, h, engine.CreateTask{ID: "t2", Spec: createdBare})
	tests := []struct {
		name    string
		cmd     engine.TaskCommand
		wantErr error
	}{
		{"invalid id", engine.MarkStarted{ID: "a.b"}, domain.ErrInvalid},
		{"empty id", engine.StopTask{}, domain.ErrInvalid},
		{"unknown task", engine.StopTask{ID: "t9"}, domain.ErrNotFound},
		{"exists", engine.CreateTask{ID: "t1", Spec: created}, domain.ErrExists},
		{"stop pending", engine.StopTask{ID: "t1"}, domain.ErrInvalidState},
		{"no module", engine.ScheduleTask{ID: "t2", Device: "dev-a"}, domain.ErrInvalid},
		{"no device", engine.ScheduleTask{ID: "t1"}, domain.ErrNoDevice},
		{"result of pending", engine.RecordResult{ID: "t1", Result: json.RawMessage(`1`)}, domain.ErrStale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := store.LastSeq(testCtx(t), events.KindTask)
			_, err := h.Task(testCtx(t), tc.cmd)
			checkErr(t, err, tc.wantErr)
			if after, _ := store.LastSeq(testCtx(t), events.KindTask); after != before {
				t.Fatalf("a refused command appended: last seq %d -> %d", before, after)
			}
		})
	}
	t.Run("device invalid id", func(t *testing.T) {
		_, err := h.Device(testCtx(t), engine.Heartbeat{ID: "a b"})
		checkErr(t, err, domain.ErrInvalid)
	})
}

func TestHandler_DeviceFlow(t *testing.T) {
	store := events.NewMemory()
	h := newHandler(store, "ev-")
	steps := []struct {
		name      string
		cmd       engine.DeviceCommand
		wantState engine.DeviceState
		wantSeq   uint64
	}{
		{"last will of a stranger", engine.MarkOffline{ID: "d1", Reason: "last will"}, engine.DeviceUnknown, 0},
		{"announce", engine.Announce{ID: "d1", Namespace: "ns", Metadata: meta}, engine.DeviceAnnounced, 1},
		{"heartbeat", engine.Heartbeat{ID: "d1", Namespace: "ns"}, engine.DeviceAlive, 2},
		{"heartbeat again", engine.Heartbeat{ID: "d1", Namespace: "ns"}, engine.DeviceAlive, 2},
		{"last will", engine.MarkOffline{ID: "d1", Reason: "last will"}, engine.DeviceOffline, 3},
		{"last will again", engine.MarkOffline{ID: "d1", Reason: "last will"}, engine.DeviceOffline, 3},
		{"back", engine.Heartbeat{ID: "d1", Namespace: "ns"}, engine.DeviceAlive, 4},
	}
	var got engine.Device
	for _, st := range steps {
		got = mustDevice(t, h, st.cmd)
		if got.State != st.wantState || got.Seq != st.wantSeq {
			t.Fatalf("%s: state %s seq %d, want %s seq %d", st.name, got.State, got.Seq, st.wantState, st.wantSeq)
		}
	}
	sameState(t, "fold of the history", foldDevice(t, store, "d1"), got)
	if envs := load(t, store, events.DeviceAggregate("d2")); len(envs) != 0 {
		t.Fatalf("stranger's last will stored %d events", len(envs))
	}
}

func TestHandler_Cause(t *testing.T) {
	store := events.NewMemory()
	h := newHandler(store, "ev-")
	ctx := service.WithCause(testCtx(t), "msg-7", "job-1")
	if _, err := h.Task(ctx, engine.CreateTask{ID: "t1", Spec: created}); err != nil {
		t.Fatal(err)
	}
	envs := load(t, store, events.TaskAggregate("t1"))
	e := envs[0]
	if e.CausationID != "msg-7" || e.CorrelationID != "job-1" || e.ID != "ev-000001" || !e.Time.Equal(t0) {
		t.Fatalf("envelope %+v", e)
	}
}

// Two handlers over one store: what one writes makes the other's cached
// state stale. The stale one must still decide on the stored state, both
// when its stale decision would append (a conflict, a reload) and when it
// would refuse or ignore the command (no conflict tells it).
func TestHandler_StaleCache(t *testing.T) {
	result := engine.RecordResult{ID: "t1", Device: "dev-a", Result: json.RawMessage(`"3"`)}
	tests := []struct {
		name      string
		first     []engine.TaskCommand // through h1, which caches the outcome
		second    []engine.TaskCommand // through h2
		cmd       engine.TaskCommand   // through h1 again
		wantState engine.TaskState
		wantTypes []string
	}{
		{
			name:      "stale decision conflicts",
			first:     []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}, engine.ScheduleTask{ID: "t1", Device: "dev-a"}},
			second:    []engine.TaskCommand{engine.MarkStarted{ID: "t1", Attempt: 1}},
			cmd:       result,
			wantState: engine.TaskCompleted,
			wantTypes: []string{"task.created", "task.scheduled", "task.started", "task.completed"},
		},
		{
			name:      "stale state would refuse a result",
			first:     []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}},
			second:    []engine.TaskCommand{engine.ScheduleTask{ID: "t1", Device: "dev-a"}},
			cmd:       result,
			wantState: engine.TaskCompleted,
			wantTypes: []string{"task.created", "task.scheduled", "task.completed"},
		},
		{
			name:      "stale state would refuse a stop",
			first:     []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}},
			second:    []engine.TaskCommand{engine.ScheduleTask{ID: "t1", Device: "dev-a"}},
			cmd:       engine.StopTask{ID: "t1"},
			wantState: engine.TaskStopped,
			wantTypes: []string{"task.created", "task.scheduled", "task.stopped"},
		},
		{
			name:      "stale state would ignore a start",
			first:     []engine.TaskCommand{engine.CreateTask{ID: "t1", Spec: created}},
			second:    []engine.TaskCommand{engine.ScheduleTask{ID: "t1", Device: "dev-a"}},
			cmd:       engine.MarkStarted{ID: "t1", Attempt: 1},
			wantState: engine.TaskRunning,
			wantTypes: []string{"task.created", "task.scheduled", "task.started"},
		},
		{
			name: "stale attempt would call a result stale",
			first: []engine.TaskCommand{
				engine.CreateTask{ID: "t1", Spec: created}, engine.ScheduleTask{ID: "t1", Device: "dev-a"},
			},
			second:    []engine.TaskCommand{engine.StopTask{ID: "t1"}, engine.ScheduleTask{ID: "t1", Device: "dev-a"}},
			cmd:       engine.RecordResult{ID: "t1", Device: "dev-a", Attempt: 2, Result: json.RawMessage(`"3"`)},
			wantState: engine.TaskCompleted,
			wantTypes: []string{"task.created", "task.scheduled", "task.stopped", "task.scheduled", "task.completed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := events.NewMemory()
			h1, h2 := newHandler(store, "a-"), newHandler(store, "b-")
			for _, c := range tc.first {
				mustTask(t, h1, c)
			}
			for _, c := range tc.second {
				mustTask(t, h2, c)
			}
			got, err := h1.Task(testCtx(t), tc.cmd)
			if err != nil {
				t.Fatalf("%T on a stale cache: %v", tc.cmd, err)
			}
			if got.State != tc.wantState {
				t.Fatalf("state %s, want %s", got.State, tc.wantState)
			}
			if hist := types(load(t, store, events.TaskAggregate("t1"))); !slices.Equal(hist, tc.wantTypes) {
				t.Fatalf("history %v, want %v", hist, tc.wantTypes)
			}
			sameState(t, "returned state vs fold", got, foldTask(t, store, "t1"))
		})
	}
}

func TestHandler_StaleDeviceCache(t *testing.T) {
	store := events.NewMemory()
	h1, h2 := newHandler(store, "a-"), newHandler(store, "b-")
	mustDevice(t, h1, engine.Heartbeat{ID: "d1"})
	mustDevice(t, h2, engine.MarkOffline{ID: "d1", Reason: "missed heartbeats"})
	got := mustDevice(t, h1, engine.Heartbeat{ID: "d1"})
	if got.State != engine.DeviceAlive {
		t.Fatalf("heartbeat through a stale cache left the device %s", got.State)
	}
	sameState(t, "returned state vs fold", got, foldDevice(t, store, "d1"))
}

// conflicting is a real store with a second writer that always gets in
// first: every append by the handler meets a conflict.
type conflicting struct{ events.Store }

func (c conflicting) Append(ctx context.Context, agg events.Aggregate, expected uint64, evs ...events.Envelope) (uint64, error) {
	other, err := events.Wrap(agg, fmt.Sprintf("other-%d", expected), events.Meta{Time: t0}, events.TaskModuleAttached{Module: fmt.Sprint(expected)})
	if err != nil {
		return 0, err
	}
	if _, err := c.Store.Append(ctx, agg, expected, other); err != nil {
		return 0, err
	}
	return c.Store.Append(ctx, agg, expected, evs...)
}

func TestHandler_GivesUp(t *testing.T) {
	mem := events.NewMemory()
	mustTask(t, newHandler(mem, "a-"), engine.CreateTask{ID: "t1", Spec: created})
	mustTask(t, newHandler(mem, "b-"), engine.ScheduleTask{ID: "t1", Device: "dev-a"})
	_, err := newHandler(conflicting{mem}, "c-").Task(testCtx(t), engine.MarkStarted{ID: "t1", Attempt: 1})
	checkErr(t, err, events.ErrConflict)
	if n := len(load(t, mem, events.TaskAggregate("t1"))); n != 2+service.DefaultRetries {
		t.Fatalf("%d events, want the 2 first and %d of the other writer", n, service.DefaultRetries)
	}
}

// hammerCmd is the i-th of the commands the hammer sends at once.
func hammerCmd(id string, i int) engine.TaskCommand {
	switch i % 4 {
	case 0:
		return engine.StopTask{ID: id}
	case 1:
		return engine.MarkStarted{ID: id, Attempt: 1}
	default:
		return engine.RecordResult{ID: id, Device: "dev-a", Result: json.RawMessage(fmt.Sprintf(`"r%d"`, i))}
	}
}

type outcome struct {
	cmd  engine.TaskCommand
	task engine.Task
	err  error
}

// hammer sends 16 commands at once at each of rounds tasks, through two
// handlers (so both the shared cache and the store's conflict check are
// exercised), and checks the stored histories.
func hammer(t *testing.T, store events.Store, rounds int) {
	hs := []*service.Handler{
		service.NewHandler(store, codec, service.SystemClock{}, service.NewULIDs()),
		service.NewHandler(store, codec, service.SystemClock{}, service.NewULIDs()),
	}
	const n = 16
	for r := range rounds {
		id := fmt.Sprintf("t%d", r)
		mustTask(t, hs[0], engine.CreateTask{ID: id, Spec: created})
		mustTask(t, hs[1], engine.ScheduleTask{ID: id, Device: "dev-a"})
		out := make([]outcome, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				cmd := hammerCmd(id, i)
				<-start
				s, err := hs[i%2].Task(testCtx(t), cmd)
				out[i] = outcome{cmd, s, err}
			})
		}
		close(start)
		wg.Wait()
		checkHammer(t, store, id, out)
	}
}

func checkHammer(t *testing.T, store events.Store, id string, out []outcome) {
	t.Helper()
	hist := load(t, store, events.TaskAggregate(id))
	kinds := types(hist)
	terminals := 0
	for _, k := range kinds {
		if k == "task.completed" || k == "task.stopped" || k == "task.failed" {
			terminals++
		}
	}
	okShape := slices.Equal(kinds[:2], []string{"task.created", "task.scheduled"}) &&
		(len(kinds) == 3 || len(kinds) == 4 && kinds[2] == "task.started") && terminals == 1
	if !okShape {
		t.Fatalf("%s: history %v, want created, scheduled, [started], one terminal event", id, kinds)
	}
	final, err := engine.Fold(codec, engine.Task{}, hist)
	if err != nil {
		t.Fatal(err)
	}
	appended := map[uint64]bool{} // seqs some caller saw its own event at
	for _, o := range out {
		if o.err != nil {
			if _, stop := o.cmd.(engine.StopTask); !stop || !errors.Is(o.err, domain.ErrInvalidState) || final.State != engine.TaskCompleted {
				t.Fatalf("%s: %#v: unexpected error %v (final state %s)", id, o.cmd, o.err, final.State)
			}
			continue
		}
		i := slices.IndexFunc(hist, func(e events.Envelope) bool { return e.Seq == o.task.Seq })
		if i < 0 {
			t.Fatalf("%s: %T returned seq %d, not in the history %v", id, o.cmd, o.task.Seq, kinds)
		}
		prefix, err := engine.Fold(codec, engine.Task{}, hist[:i+1])
		if err != nil {
			t.Fatal(err)
		}
		sameState(t, fmt.Sprintf("%s: %T returned state vs the history up to it", id, o.cmd), o.task, prefix)
		if mine(o) {
			appended[o.task.Seq] = true
		}
	}
	for _, e := range hist[2:] {
		if !appended[e.Seq] {
			t.Fatalf("%s: %s at %d was appended by no caller that succeeded", id, e.Type, e.Seq)
		}
	}
}

// mine reports whether the state a command returned holds the event that
// command itself would have appended.
func mine(o outcome) bool {
	switch c := o.cmd.(type) {
	case engine.StopTask:
		return o.task.State == engine.TaskStopped
	case engine.MarkStarted:
		return o.task.State == engine.TaskRunning
	case engine.RecordResult:
		return o.task.State == engine.TaskCompleted && string(o.task.Result) == string(c.Result)
	}
	return false
}

func TestHandler_Hammer(t *testing.T) {
	hammer(t, events.NewMemory(), 50)
}

func TestHandler_HammerJetStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	hammer(t, newJetStream(t), 10)
}

// randomCommand draws a command on a few tasks and devices, with payloads
// that do not survive JSON byte for byte (spaces in results, empty lists).
func randomCommand(rng *rand.Rand) (engine.TaskCommand, engine.DeviceCommand) {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	id, dev, attempt := pick("t1", "t2", "t3"), pick("d1", "d2", ""), rng.IntN(3)
	if rng.IntN(4) == 0 {
		metas := []events.DeviceMetadata{{}, meta, {Tags: []string{}, Hostname: "h"}}
		switch rng.IntN(3) {
		case 0:
			return nil, engine.Announce{ID: pick("d1", "d2"), Namespace: pick("", "ns"), Metadata: metas[rng.IntN(len(metas))]}
		case 1:
			return nil, engine.Heartbeat{ID: pick("d1", "d2"), Namespace: pick("", "ns")}
		default:
			return nil, engine.MarkOffline{ID: pick("d1", "d2"), Reason: "last will"}
		}
	}
	specs := []events.TaskCreated{created, createdBare, {Name: "f", Module: digest, Inputs: []string{}, Env: map[string]string{}}}
	switch rng.IntN(9) {
	case 0:
		return engine.CreateTask{ID: id, Spec: specs[rng.IntN(len(specs))]}, nil
	case 1:
		return engine.AttachModule{ID: id, Module: pick(digest, "sha256:beef"), Size: 3}, nil
	case 2, 3:
		return engine.ScheduleTask{ID: id, Device: dev}, nil
	case 4:
		return engine.MarkStarted{ID: id, Attempt: attempt}, nil
	case 5, 6:
		return engine.RecordResult{ID: id, Device: dev, Attempt: attempt,
			Result: json.RawMessage(pick(`"3"`, `{ "w": [1, 2] }`, ``)), Error: pick("", "", "boom")}, nil
	case 7:
		return engine.FailTask{ID: id, Attempt: attempt, Reason: "undeliverable"}, nil
	default:
		if rng.IntN(5) == 0 {
			return engine.DeleteTask{ID: id}, nil
		}
		return engine.StopTask{ID: id}, nil
	}
}

// Property: whatever the handler returns - after a write, a no-op or a
// refusal, through either of two handlers - is what a replay of the stored
// events gives.
func TestHandler_FoldEqualsReturned(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			store := events.NewMemory()
			hs := []*service.Handler{newHandler(store, "a-"), newHandler(store, "b-")}
			rng := rand.New(rand.NewPCG(seed, 1))
			for step := range 400 {
				h := hs[rng.IntN(len(hs))]
				tc, dc := randomCommand(rng)
				if tc != nil {
					got, err := h.Task(testCtx(t), tc)
					if err != nil && got.Seq == 0 {
						continue // refused before anything was stored
					}
					sameState(t, fmt.Sprintf("step %d: %#v (err %v)", step, tc, err), got, foldTask(t, store, tc.TaskID()))
					continue
				}
				got, err := h.Device(testCtx(t), dc)
				if err != nil {
					t.Fatalf("step %d: %#v: %v", step, dc, err)
				}
				sameState(t, fmt.Sprintf("step %d: %#v", step, dc), got, foldDevice(t, store, dc.DeviceID()))
			}
		})
	}
}

// versionCounting is a real store that counts the version reads it
// answers.
type versionCounting struct {
	events.Store
	versions atomic.Int64
}

func (c *versionCounting) Version(ctx context.Context, agg events.Aggregate) (uint64, error) {
	c.versions.Add(1)
	return c.Store.Version(ctx, agg)
}

// TestHandler_VersionsFromReadModel: with WithVersions, a no-op on a
// cached state the read model agrees with asks the store nothing; one the
// model shows has moved on is decided again on the store's state.
func TestHandler_VersionsFromReadModel(t *testing.T) {
	mem := events.NewMemory()
	store := &versionCounting{Store: mem}
	var model atomic.Uint64 // the read model's sequence of d1
	versions := func(agg events.Aggregate) (uint64, bool) { return model.Load(), agg.ID == "d1" }
	h1 := service.NewHandler(store, codec, replay.NewFixedClock(t0, time.Second), replay.NewSeqIDs("a-"), service.WithVersions(versions))
	h2 := newHandler(mem, "b-")

	d := mustDevice(t, h1, engine.Heartbeat{ID: "d1"})
	model.Store(d.Seq)
	mustDevice(t, h1, engine.Heartbeat{ID: "d1"}) // a no-op on the cached state
	if n := store.versions.Load(); n != 0 {
		t.Fatalf("the store was asked %d times for a version the read model knew", n)
	}

	off := mustDevice(t, h2, engine.MarkOffline{ID: "d1", Reason: "missed heartbeats"})
	model.Store(off.Seq)
	got := mustDevice(t, h1, engine.Heartbeat{ID: "d1"})
	if got.State != engine.DeviceAlive {
		t.Fatalf("a heartbeat after the model moved on left the device %s", got.State)
	}
	sameState(t, "returned state vs fold", got, foldDevice(t, mem, "d1"))
}
