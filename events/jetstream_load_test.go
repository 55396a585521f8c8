package events_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/storetest"
)

// loadPaths are the ways Load reads an aggregate: batches of the default
// size, batches so small that most loads take several, and the walk of
// one direct get per message (streams without direct get).
var loadPaths = []struct {
	name  string
	batch int
}{
	{"batch=default", events.DefaultLoadBatch},
	{"batch=2", 2},
	{"batch=1", 1},
	{"walk", 0},
}

// TestJetStream_LoadPaths runs the store conformance suite on each path.
func TestJetStream_LoadPaths(t *testing.T) {
	for _, p := range loadPaths[1:] {
		t.Run(p.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) events.Store {
				s := natstest.Start(t)
				nc, _ := natstest.Connect(t, s)
				st, err := events.NewJetStream(testCtx(t), nc, events.StreamOptions{})
				if err != nil {
					t.Fatal(err)
				}
				events.SetLoadBatch(st, p.batch)
				return st
			})
		})
	}
}

// appendN appends n events to the task aggregate id and returns their
// sequences.
func appendN(t *testing.T, s events.Store, id string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for range n {
		seqs = append(seqs, appendCreated(t, s, id))
	}
	return seqs
}

func loadSeqs(evs []events.Envelope) []uint64 {
	var seqs []uint64
	for _, e := range evs {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func TestJetStream_LoadMultiBatch(t *testing.T) {
	r := newJSRig(t)
	walk := r.store(t)
	events.SetLoadBatch(walk, 0)
	// a's events interleaved with b's, so that a batch of a skips b's.
	var want []uint64
	for range 7 {
		want = append(want, appendN(t, walk, "a", 1)...)
		appendN(t, walk, "b", 2)
	}
	walked, err := walk.Load(testCtx(t), events.TaskAggregate("a"))
	if err != nil || fmt.Sprint(loadSeqs(walked)) != fmt.Sprint(want) {
		t.Fatalf("walk: Load = %v, %v; want %v", loadSeqs(walked), err, want)
	}
	for _, p := range loadPaths[:3] {
		t.Run(p.name, func(t *testing.T) {
			s := r.store(t)
			events.SetLoadBatch(s, p.batch)
			got, err := s.Load(testCtx(t), events.TaskAggregate("a"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, walked) {
				t.Errorf("Load = %v, want what the walk loads: %v", loadSeqs(got), want)
			}
		})
	}
}

// TestJetStream_LoadCorrupt has a message that is not an event in the
// middle of an aggregate, in a later batch than the first: Load fails with
// the *CorruptError the walk returns, and quarantines the same record.
func TestJetStream_LoadCorrupt(t *testing.T) {
	r := newJSRig(t)
	seed := r.store(t)
	appendN(t, seed, "a", 3)
	bad := r.publishRaw(t, "jp.evt.task.a", nats.Header{"Nmqtt-Pub": {"1"}}, "\xff garbage")
	appendN(t, seed, "a", 2)

	load := func(batch int) (events.Quarantined, error) {
		q := events.NewQuarantine()
		s := r.store(t, events.WithQuarantine(q))
		events.SetLoadBatch(s, batch)
		evs, err := s.Load(testCtx(t), events.TaskAggregate("a"))
		if evs != nil {
			t.Errorf("batch %d: Load returned %d events besides %v", batch, len(evs), err)
		}
		rec, _ := q.Get(events.TaskAggregate("a"))
		return rec, err
	}
	wantRec, wantErr := load(0)
	if c, ok := errors.AsType[*events.CorruptError](wantErr); !ok || c.Message.Seq != bad {
		t.Fatalf("walk: Load = %v, want a *CorruptError at %d", wantErr, bad)
	}
	for _, batch := range []int{2, 3, events.DefaultLoadBatch} {
		rec, err := load(batch)
		c, ok := errors.AsType[*events.CorruptError](err)
		if !errors.Is(err, events.ErrCorrupt) || !ok || err.Error() != wantErr.Error() {
			t.Errorf("batch %d: Load = %v, want %v", batch, err, wantErr)
			continue
		}
		if !reflect.DeepEqual(c.Message, rec) || !reflect.DeepEqual(rec, wantRec) {
			t.Errorf("batch %d: quarantined %+v (error's %+v), want %+v", batch, rec, c.Message, wantRec)
		}
	}
}

// TestJetStream_LoadEmpty: an aggregate with no events, or whose events
// are all gone, loads as nil, nil on every path.
func TestJetStream_LoadEmpty(t *testing.T) {
	r := newJSRig(t)
	seed := r.store(t)
	appendN(t, seed, "other", 3)
	st, err := r.js.Stream(testCtx(t), "TASKS")
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range appendN(t, seed, "gone", 2) {
		if err := st.DeleteMsg(testCtx(t), seq); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range loadPaths {
		t.Run(p.name, func(t *testing.T) {
			s := r.store(t)
			events.SetLoadBatch(s, p.batch)
			for _, id := range []string{"never", "gone"} {
				if evs, err := s.Load(testCtx(t), events.TaskAggregate(id)); evs != nil || err != nil {
					t.Errorf("Load(%s) = %v, %v; want nil, nil", id, evs, err)
				}
			}
		})
	}
}
