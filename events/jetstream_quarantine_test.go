package events_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
)

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// jsRig is a nats-server with the event streams, a store on them and a raw
// JetStream client to write what no store would.
type jsRig struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newJSRig(t *testing.T) jsRig {
	s := natstest.Start(t)
	nc, js := natstest.Connect(t, s)
	return jsRig{nc: nc, js: js}
}

func (r jsRig) store(t *testing.T, opts ...events.JetStreamOption) *events.JetStream {
	t.Helper()
	st, err := events.NewJetStream(testCtx(t), r.nc, events.StreamOptions{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func appendCreated(t *testing.T, s events.Store, id string) uint64 {
	t.Helper()
	agg := events.TaskAggregate(id)
	e, err := events.Wrap(agg, ulid.Make().String(), events.Meta{Time: t0}, events.TaskCreated{Name: "add"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Version(testCtx(t), agg)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := s.Append(testCtx(t), agg, v, e)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// publishRaw stores a message on subject as is: no envelope, headers as
// given (an MQTT client's publish into the stream looks like this).
func (r jsRig) publishRaw(t *testing.T, subject string, h nats.Header, data string) uint64 {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Header, m.Data = h, []byte(data)
	ack, err := r.js.PublishMsg(testCtx(t), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func replaySeqs(t *testing.T, s events.Store, from uint64) ([]uint64, error) {
	var got []uint64
	err := s.Replay(testCtx(t), events.KindTask, from, func(e events.Envelope) error {
		got = append(got, e.Seq)
		return nil
	})
	return got, err
}

func TestJetStream_CorruptWithoutQuarantine(t *testing.T) {
	r := newJSRig(t)
	s := r.store(t)
	appendCreated(t, s, "a")
	bad := r.publishRaw(t, "jp.evt.task.x", nats.Header{"Nmqtt-Pub": {"0"}}, "{}")
	_, err := replaySeqs(t, s, 1)
	c, ok := errors.AsType[*events.CorruptError](err)
	if !errors.Is(err, events.ErrCorrupt) || !ok || c.Message.Seq != bad {
		t.Fatalf("Replay = %v, want a *CorruptError at %d", err, bad)
	}
	err = s.Subscribe(testCtx(t), events.KindTask, 1, func(events.Envelope) error { return nil })
	if !errors.Is(err, events.ErrCorrupt) {
		t.Fatalf("Subscribe = %v, want ErrCorrupt", err)
	}
}

func TestJetStream_CorruptQuarantined(t *testing.T) {
	r := newJSRig(t)
	q := events.NewQuarantine()
	s := r.store(t, events.WithQuarantine(q))
	a1 := appendCreated(t, s, "a")
	noHeaders := r.publishRaw(t, "jp.evt.task.x", nil, "{}")
	badTime := r.publishRaw(t, "jp.evt.task.y", nats.Header{events.HeaderType: {"task.created"}, "Nats-Msg-Id": {"m1"}, events.HeaderTime: {"yesterday"}}, `{"name":"add"}`)
	b1 := appendCreated(t, s, "b")
	last := r.publishRaw(t, "jp.evt.task.z", nats.Header{"Nmqtt-Pub": {"1"}}, "\xff garbage")

	// Replay skips what is not an event and still ends, although the last
	// message of the stream is one of them.
	got, err := replaySeqs(t, s, 1)
	if err != nil || fmt.Sprint(got) != fmt.Sprint([]uint64{a1, b1}) {
		t.Fatalf("Replay = %v, %v; want %v", got, err, []uint64{a1, b1})
	}
	tests := []struct {
		id     string
		seq    uint64
		reason string
	}{
		{"x", noHeaders, "events: message 2: no Jp-Type header"},
		{"y", badTime, `events: message 3: bad Jp-Time: parsing time "yesterday"`},
		{"z", last, "events: message 5: no Jp-Type header"},
	}
	for _, tc := range tests {
		rec, ok := q.Get(events.TaskAggregate(tc.id))
		if !ok || rec.Seq != tc.seq || rec.Stream != "TASKS" || rec.Subject != "jp.evt.task."+tc.id || len(rec.Reason) < len(tc.reason) || rec.Reason[:len(tc.reason)] != tc.reason {
			t.Errorf("task %s: record %+v, %t; want seq %d, %q", tc.id, rec, ok, tc.seq, tc.reason)
		}
	}
	if rec, _ := q.Get(events.TaskAggregate("z")); rec.Data != `\xff garbage` || rec.Headers["Nmqtt-Pub"][0] != "1" {
		t.Errorf("record of z: data %q, headers %v", rec.Data, rec.Headers)
	}

	// Load of a quarantined aggregate fails; the others load.
	if _, err := s.Load(testCtx(t), events.TaskAggregate("y")); !errors.Is(err, events.ErrCorrupt) {
		t.Fatalf("Load(y) = %v, want ErrCorrupt", err)
	}
	if evs, err := s.Load(testCtx(t), events.TaskAggregate("b")); err != nil || len(evs) != 1 {
		t.Fatalf("Load(b) = %d events, %v", len(evs), err)
	}

	// Subscribe goes on past them to new events.
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	seen := make(chan uint64, 8)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, events.KindTask, 1, func(e events.Envelope) error { seen <- e.Seq; return nil })
	}()
	c1 := appendCreated(t, s, "c")
	for _, want := range []uint64{a1, b1, c1} {
		select {
		case got := <-seen:
			if got != want {
				t.Fatalf("Subscribe delivered %d, want %d", got, want)
			}
		case err := <-done:
			t.Fatalf("Subscribe ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("no event %d from Subscribe", want)
		}
	}
	cancel()
	<-done
}

func TestJetStream_ReplayPurged(t *testing.T) {
	tests := []struct {
		name  string
		purge func(t *testing.T, st jetstream.Stream, seqs []uint64)
		from  uint64
		want  func(seqs []uint64) []uint64
	}{
		{"all", func(t *testing.T, st jetstream.Stream, _ []uint64) { mustPurge(t, st) }, 1,
			func([]uint64) []uint64 { return nil }},
		{"all but the last", func(t *testing.T, st jetstream.Stream, _ []uint64) { mustPurge(t, st, jetstream.WithPurgeKeep(1)) }, 1,
			func(s []uint64) []uint64 { return s[2:] }},
		{"up to the second", func(t *testing.T, st jetstream.Stream, s []uint64) {
			mustPurge(t, st, jetstream.WithPurgeSequence(s[2]))
		}, 1,
			func(s []uint64) []uint64 { return s[2:] }},
		{"the tail a replay starts in", func(t *testing.T, st jetstream.Stream, s []uint64) {
			for _, seq := range s[1:] {
				if err := st.DeleteMsg(testCtx(t), seq); err != nil {
					t.Fatal(err)
				}
			}
		}, 2, func([]uint64) []uint64 { return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newJSRig(t)
			s := r.store(t)
			var seqs []uint64
			for _, id := range []string{"a", "b", "c"} {
				seqs = append(seqs, appendCreated(t, s, id))
			}
			st, err := r.js.Stream(testCtx(t), "TASKS")
			if err != nil {
				t.Fatal(err)
			}
			tc.purge(t, st, seqs)
			got, err := replaySeqs(t, s, tc.from)
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want(seqs)) {
				t.Fatalf("Replay from %d = %v, %v; want %v", tc.from, got, err, tc.want(seqs))
			}
		})
	}
}

func mustPurge(t *testing.T, st jetstream.Stream, opts ...jetstream.StreamPurgeOpt) {
	t.Helper()
	if err := st.Purge(testCtx(t), opts...); err != nil {
		t.Fatal(err)
	}
}

func TestJetStream_StreamProblems(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, r jsRig)
		want   string // stream problem first_seq messages, one a line
	}{
		{"none", func(*testing.T, jsRig) {}, ""},
		{"purged", func(t *testing.T, r jsRig) { mustPurge(t, stream(t, r, "TASKS")) }, "TASKS purged 3 0"},
		{"purged in part", func(t *testing.T, r jsRig) { mustPurge(t, stream(t, r, "TASKS"), jetstream.WithPurgeKeep(1)) }, "TASKS purged 2 1"},
		{"deleted", func(t *testing.T, r jsRig) { deleteStream(t, r, "TASKS") }, "TASKS missing 0 0"},
		{"deleted while empty", func(t *testing.T, r jsRig) { deleteStream(t, r, "CHUNKS") }, "CHUNKS missing 0 0"},
		{"added by a newer version", func(t *testing.T, r jsRig) {
			// Streams opened by a version without ARTIFACTS do not list it.
			deleteStream(t, r, "ARTIFACTS")
			var others []string
			for _, k := range events.Kinds() {
				if k.Stream() != "ARTIFACTS" {
					others = append(others, k.Stream())
				}
			}
			for _, name := range others {
				cfg := stream(t, r, name).CachedInfo().Config
				cfg.Metadata = map[string]string{"jetprop.streams": strings.Join(others, ",")}
				if _, err := r.js.UpdateStream(testCtx(t), cfg); err != nil {
					t.Fatal(err)
				}
			}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newJSRig(t)
			s := r.store(t)
			appendCreated(t, s, "a")
			appendCreated(t, s, "b")
			tc.damage(t, r)
			q := events.NewQuarantine()
			s = r.store(t, events.WithQuarantine(q))
			got := ""
			for _, p := range q.Streams() {
				got += fmt.Sprintf("%s %s %d %d\n", p.Stream, p.Problem, p.FirstSeq, p.Messages)
				if p.Detail == "" {
					t.Errorf("%s: no detail", p.Stream)
				}
			}
			if want := tc.want; want != "" && got != want+"\n" || want == "" && got != "" {
				t.Fatalf("problems:\n%s\nwant:\n%s", got, want)
			}
			// The store works on what is left.
			appendCreated(t, s, "c")
			if _, err := replaySeqs(t, s, 1); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func stream(t *testing.T, r jsRig, name string) jetstream.Stream {
	t.Helper()
	st, err := r.js.Stream(testCtx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func deleteStream(t *testing.T, r jsRig, name string) {
	t.Helper()
	if err := r.js.DeleteStream(testCtx(t), name); err != nil {
		t.Fatal(err)
	}
}

func TestJetStream_Opened(t *testing.T) {
	r := newJSRig(t)
	s := r.store(t)
	appendCreated(t, s, "a")
	var got []string
	for _, o := range r.store(t).Opened() {
		got = append(got, fmt.Sprintf("%s %t %d", o.Stream, o.Created, o.Messages))
	}
	if want := "[TASKS false 1 DEVICES false 0 WORKFLOWS false 0 CHUNKS false 0 ARTIFACTS false 0 TOKENS false 0 SECRETS false 0]"; fmt.Sprint(got) != want {
		t.Fatalf("Opened = %v, want %s", got, want)
	}
	if o := s.Opened(); !o[0].Created {
		t.Fatalf("the first store did not create TASKS: %+v", o[0])
	}
}
