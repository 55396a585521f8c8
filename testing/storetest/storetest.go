// Package storetest is the conformance suite every events.Store passes:
// the in-memory store and the JetStream store run the same tests.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/jetprop/jetprop/events"
)

// Factory returns a fresh, empty store for one test.
type Factory func(t *testing.T) events.Store

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, events.Store)
	}{
		{"AppendLoad", testAppendLoad},
		{"AppendConflict", testAppendConflict},
		{"AppendExpectEmpty", testAppendExpectEmpty},
		{"AppendBatchAtomic", testAppendBatchAtomic},
		{"AppendLong", testAppendLong},
		{"AppendDuplicateID", testAppendDuplicateID},
		{"AppendInvalid", testAppendInvalid},
		{"LoadUnknown", testLoadUnknown},
		{"LoadSeparatesAggregates", testLoadSeparates},
		{"Replay", testReplay},
		{"Subscribe", testSubscribe},
		{"Version", testVersion},
		{"LoadLatest", testLoadLatest},
		{"Hammer", testHammer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func env(t *testing.T, agg events.Aggregate, ev events.Event) events.Envelope {
	t.Helper()
	e, err := events.Wrap(agg, ulid.Make().String(), events.Meta{Time: t0, CausationID: "c1", CorrelationID: "k1"}, ev)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustAppend(t *testing.T, s events.Store, agg events.Aggregate, exp uint64, evs ...events.Envelope) uint64 {
	t.Helper()
	seq, err := s.Append(ctx(t), agg, exp, evs...)
	if err != nil {
		t.Fatalf("append to %s at %d: %v", agg, exp, err)
	}
	return seq
}

func mustLoad(t *testing.T, s events.Store, agg events.Aggregate) []events.Envelope {
	t.Helper()
	evs, err := s.Load(ctx(t), agg)
	if err != nil {
		t.Fatalf("load %s: %v", agg, err)
	}
	return evs
}

func testAppendLoad(t *testing.T, s events.Store) {
	agg := events.TaskAggregate("t1")
	in := env(t, agg, events.TaskCreated{Name: "add", Inputs: []string{"1", "2"}})
	seq := mustAppend(t, s, agg, 0, in)
	if seq == 0 {
		t.Fatal("append returned sequence 0")
	}
	got := mustLoad(t, s, agg)
	if len(got) != 1 {
		t.Fatalf("loaded %d events, want 1", len(got))
	}
	e := got[0]
	if e.ID != in.ID || e.Type != in.Type || e.Seq != seq || e.Aggregate != agg || !e.Time.Equal(t0) ||
		e.CausationID != "c1" || e.CorrelationID != "k1" || e.Version != events.SchemaVersion {
		t.Fatalf("round trip changed the envelope:\n got %+v\nwant %+v", e, in)
	}
	var body events.TaskCreated
	if err := json.Unmarshal(e.Data, &body); err != nil || body.Name != "add" || len(body.Inputs) != 2 {
		t.Fatalf("body %s: %v", e.Data, err)
	}
	seq2 := mustAppend(t, s, agg, seq, env(t, agg, events.TaskScheduled{Device: "d", Attempt: 1}))
	if seq2 <= seq {
		t.Fatalf("second seq %d not after %d", seq2, seq)
	}
}

func testAppendConflict(t *testing.T, s events.Store) {
	agg := events.TaskAggregate("t1")
	seq := mustAppend(t, s, agg, 0, env(t, agg, events.TaskCreated{Name: "a"}))
	mustAppend(t, s, agg, seq, env(t, agg, events.TaskScheduled{Attempt: 1}))
	_, err := s.Append(ctx(t), agg, seq, env(t, agg, events.TaskScheduled{Attempt: 2}))
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("stale append: err %v, want ErrConflict", err)
	}
	if n := len(mustLoad(t, s, agg)); n != 2 {
		t.Fatalf("after a conflict the aggregate has %d events, want 2", n)
	}
}

func testAppendExpectEmpty(t *testing.T, s events.Store) {
	agg := events.TaskAggregate("t1")
	mustAppend(t, s, agg, 0, env(t, agg, events.TaskCreated{Name: "a"}))
	_, err := s.Append(ctx(t), agg, 0, env(t, agg, events.TaskCreated{Name: "b"}))
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("second create: err %v, want ErrConflict", err)
	}
}

func testAppendBatchAtomic(t *testing.T, s events.Store) {
	agg := events.TaskAggregate("t1")
	seq := mustAppend(t, s, agg, 0,
		env(t, agg, events.TaskCreated{Name: "a"}),
		env(t, agg, events.TaskScheduled{Device: "d", Attempt: 1}),
		env(t, agg, events.TaskStarted{Device: "d", Attempt: 1}))
	got := mustLoad(t, s, agg)
	if len(got) != 3 || got[2].Seq != seq || got[0].Type != "task.created" || got[2].Type != "task.started" {
		t.Fatalf("batch loaded as %d events (last seq %d, want %d)", len(got), events.LastSeqOf(got), seq)
	}
	_, err := s.Append(ctx(t), agg, seq-1,
		env(t, agg, events.TaskCompleted{Attempt: 1}), env(t, agg, events.TaskDeleted{}))
	if !errors.Is(err, events.ErrConflict) {
		t.Fatalf("stale batch: err %v, want ErrConflict", err)
	}
	if n := len(mustLoad(t, s, agg)); n != 3 {
		t.Fatalf("a refused batch left %d events, want 3", n)
	}
}

// testAppendLong: an append longer than MaxAtomicAppend stores every
// event in order, and the next append expects its last sequence.
func testAppendLong(t *testing.T, s events.Store) {
	agg := events.TaskAggregate("long")
	n := events.MaxAtomicAppend*2 + 10
	evs := make([]events.Envelope, n)
	for i := range evs {
		evs[i] = env(t, agg, events.TaskModuleAttached{Module: fmt.Sprint(i)})
	}
	last, err := s.Append(ctx(t), agg, 0, evs...)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx(t), agg)
	if err != nil || len(got) != n || got[n-1].Seq != last {
		t.Fatalf("loaded %d events (last %d), want %d ending at %d: %v", len(got), got[len(got)-1].Seq, n, last, err)
	}
	for i, e := range got {
		if e.ID != evs[i].ID {
			t.Fatalf("event %d is %s, want %s", i, e.ID, evs[i].ID)
		}
	}
	if _, err := s.Append(ctx(t), agg, last, env(t, agg, events.TaskDeleted{})); err != nil {
		t.Fatalf("append after a long one: %v", err)
	}
}

func testAppendDuplicateID(t *testing.T, s events.Store) {
	agg := events.TaskAggregate("t1")
	e := env(t, agg, events.TaskCreated{Name: "a"})
	seq := mustAppend(t, s, agg, 0, e)
	// The concurrency check comes first: a retry with the old expectation
	// conflicts, and the caller's reload shows its write already landed.
	if _, err := s.Append(ctx(t), agg, 0, e); !errors.Is(err, events.ErrConflict) {
		t.Fatalf("re-append at a stale sequence: %v, want ErrConflict", err)
	}
	// With a current expectation the same envelope id is deduplicated.
	if _, err := s.Append(ctx(t), agg, seq, e); err != nil {
		t.Fatalf("re-append of the same envelope id: %v (want deduplicated)", err)
	}
	if n := len(mustLoad(t, s, agg)); n != 1 {
		t.Fatalf("duplicate stored: %d events", n)
	}
}

func testAppendInvalid(t *testing.T, s events.Store) {
	good := events.TaskAggregate("t1")
	for _, tc := range []struct {
		name string
		agg  events.Aggregate
		evs  []events.Envelope
	}{
		{"no events", good, nil},
		{"bad id", events.TaskAggregate("a.b"), []events.Envelope{env(t, good, events.TaskDeleted{})}},
		{"wildcard id", events.TaskAggregate(">"), []events.Envelope{env(t, good, events.TaskDeleted{})}},
		{"empty id", events.TaskAggregate(""), []events.Envelope{env(t, good, events.TaskDeleted{})}},
		{"envelope without id", good, []events.Envelope{{Type: "task.deleted"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Append(ctx(t), tc.agg, 0, tc.evs...); err == nil {
				t.Fatal("append accepted")
			}
		})
	}
}

func testLoadUnknown(t *testing.T, s events.Store) {
	if got := mustLoad(t, s, events.TaskAggregate("nope")); len(got) != 0 {
		t.Fatalf("unknown aggregate has %d events", len(got))
	}
}

func testLoadSeparates(t *testing.T, s events.Store) {
	a, b := events.TaskAggregate("a"), events.TaskAggregate("a-b")
	sa := mustAppend(t, s, a, 0, env(t, a, events.TaskCreated{Name: "a"}))
	sb := mustAppend(t, s, b, 0, env(t, b, events.TaskCreated{Name: "b"}))
	mustAppend(t, s, a, sa, env(t, a, events.TaskDeleted{}))
	mustAppend(t, s, b, sb, env(t, b, events.TaskDeleted{}))
	d := events.DeviceAggregate("a")
	mustAppend(t, s, d, 0, env(t, d, events.DeviceAlive{}))
	for _, agg := range []events.Aggregate{a, b} {
		got := mustLoad(t, s, agg)
		if len(got) != 2 {
			t.Fatalf("%s: %d events, want 2", agg, len(got))
		}
		for _, e := range got {
			if e.Aggregate != agg {
				t.Fatalf("load of %s returned an event of %s", agg, e.Aggregate)
			}
		}
	}
}

func testReplay(t *testing.T, s events.Store) {
	var seqs []uint64
	for i := range 5 {
		agg := events.TaskAggregate(fmt.Sprintf("t%d", i))
		seqs = append(seqs, mustAppend(t, s, agg, 0, env(t, agg, events.TaskCreated{Name: "x"})))
	}
	collect := func(from uint64) []uint64 {
		var got []uint64
		if err := s.Replay(ctx(t), events.KindTask, from, func(e events.Envelope) error {
			got = append(got, e.Seq)
			return nil
		}); err != nil {
			t.Fatalf("replay from %d: %v", from, err)
		}
		return got
	}
	if got := collect(0); fmt.Sprint(got) != fmt.Sprint(seqs) {
		t.Fatalf("replay all: %v, want %v", got, seqs)
	}
	if got := collect(seqs[2]); fmt.Sprint(got) != fmt.Sprint(seqs[2:]) {
		t.Fatalf("replay from %d: %v, want %v", seqs[2], got, seqs[2:])
	}
	if got := collect(seqs[4] + 1); len(got) != 0 {
		t.Fatalf("replay past the end: %v", got)
	}
	if last, err := s.LastSeq(ctx(t), events.KindTask); err != nil || last != seqs[4] {
		t.Fatalf("LastSeq %d, %v; want %d", last, err, seqs[4])
	}
	err := s.Replay(ctx(t), events.KindDevice, 0, func(events.Envelope) error { return errors.New("called") })
	if err != nil {
		t.Fatalf("replay of an empty kind: %v", err)
	}
	boom := errors.New("boom")
	if err := s.Replay(ctx(t), events.KindTask, 0, func(events.Envelope) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("replay did not return fn's error: %v", err)
	}
}

func testSubscribe(t *testing.T, s events.Store) {
	a := events.TaskAggregate("old")
	mustAppend(t, s, a, 0, env(t, a, events.TaskCreated{Name: "x"}))
	c, cancel := context.WithCancel(ctx(t))
	got := make(chan events.Envelope, 16)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(c, events.KindTask, 0, func(e events.Envelope) error { got <- e; return nil })
	}()
	next := func() events.Envelope {
		select {
		case e := <-got:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no event from Subscribe")
		}
		return events.Envelope{}
	}
	if e := next(); e.Aggregate.ID != "old" {
		t.Fatalf("first event from %s", e.Aggregate)
	}
	for i := range 3 {
		b := events.TaskAggregate(fmt.Sprintf("new%d", i))
		mustAppend(t, s, b, 0, env(t, b, events.TaskCreated{Name: "x"}))
		if e := next(); e.Aggregate != b {
			t.Fatalf("live event from %s, want %s", e.Aggregate, b)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not return after cancel")
	}
}

// testHammer runs load-decide-append loops on one aggregate from many
// goroutines: every append lands exactly once, in order.
func testHammer(t *testing.T, s events.Store) {
	agg := events.TaskAggregate("hot")
	const workers, each = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				for {
					evs, err := s.Load(ctx(t), agg)
					if err != nil {
						t.Error(err)
						return
					}
					e := env(t, agg, events.TaskFailed{Attempt: w*each + i, Reason: "r"})
					_, err = s.Append(ctx(t), agg, events.LastSeqOf(evs), e)
					if err == nil {
						break
					}
					if !errors.Is(err, events.ErrConflict) {
						t.Error(err)
						return
					}
					mu.Lock()
					conflicts++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	got := mustLoad(t, s, agg)
	if len(got) != workers*each {
		t.Fatalf("%d events stored, want %d", len(got), workers*each)
	}
	seen := map[string]bool{}
	for i, e := range got {
		if seen[string(e.Data)] {
			t.Fatalf("event %s stored twice", e.Data)
		}
		seen[string(e.Data)] = true
		if i > 0 && e.Seq <= got[i-1].Seq {
			t.Fatalf("sequences out of order at %d", i)
		}
	}
	t.Logf("%d conflicts retried", conflicts)
}

func testVersion(t *testing.T, s events.Store) {
	agg := events.TaskAggregate("v1")
	if v, err := s.Version(ctx(t), agg); err != nil || v != 0 {
		t.Fatalf("version of an empty aggregate: %d, %v", v, err)
	}
	seq := mustAppend(t, s, agg, 0, env(t, agg, events.TaskCreated{Name: "x"}))
	other := events.TaskAggregate("v2")
	mustAppend(t, s, other, 0, env(t, other, events.TaskCreated{Name: "y"}))
	if v, err := s.Version(ctx(t), agg); err != nil || v != seq {
		t.Fatalf("version %d, %v; want %d", v, err, seq)
	}
	if _, err := s.Version(ctx(t), events.TaskAggregate("a.b")); err == nil {
		t.Fatal("version of an invalid aggregate succeeded")
	}
}

// testLoadLatest: LoadLatest returns what Load returns (on one server, or
// in memory, every read is the latest).
func testLoadLatest(t *testing.T, s events.Store) {
	agg, other := events.TaskAggregate("l1"), events.TaskAggregate("l1-b")
	if got, err := s.LoadLatest(ctx(t), agg); err != nil || len(got) != 0 {
		t.Fatalf("latest of an empty aggregate: %d events, %v", len(got), err)
	}
	seq := mustAppend(t, s, agg, 0, env(t, agg, events.TaskCreated{Name: "x"}))
	mustAppend(t, s, other, 0, env(t, other, events.TaskCreated{Name: "y"}))
	mustAppend(t, s, agg, seq, env(t, agg, events.TaskScheduled{Device: "d", Attempt: 1}), env(t, agg, events.TaskStarted{Device: "d", Attempt: 1}))
	got, err := s.LoadLatest(ctx(t), agg)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustLoad(t, s, agg); !sameEvents(got, want) {
		t.Fatalf("latest %v, want %v", got, want)
	}
	if _, err := s.LoadLatest(ctx(t), events.TaskAggregate("a.b")); err == nil {
		t.Fatal("latest of an invalid aggregate succeeded")
	}
}

func sameEvents(a, b []events.Envelope) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Seq != b[i].Seq || a[i].Type != b[i].Type || string(a[i].Data) != string(b[i].Data) {
			return false
		}
	}
	return true
}
