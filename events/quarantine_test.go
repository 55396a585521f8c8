package events_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

func record(agg events.Aggregate, seq uint64) events.Quarantined {
	return events.NewQuarantined(agg.Kind, agg.Subject(), nil, []byte("{}"), seq, errors.New("bad"))
}

func TestQuarantine_Add(t *testing.T) {
	x := events.TaskAggregate("x")
	tests := []struct {
		name     string
		add      []events.Quarantined
		wantNews []bool
		wantSeq  uint64 // of x's record
	}{
		{"first", []events.Quarantined{record(x, 7)}, []bool{true}, 7},
		{"same message again", []events.Quarantined{record(x, 7), record(x, 7)}, []bool{true, false}, 7},
		{"later message keeps the first", []events.Quarantined{record(x, 7), record(x, 9)}, []bool{true, false}, 7},
		{"earlier message replaces", []events.Quarantined{record(x, 7), record(x, 3)}, []bool{true, true}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := events.NewQuarantine()
			var told []uint64
			q.Observe(func(r events.Quarantined) { told = append(told, r.Seq) })
			var wantTold []uint64
			for i, r := range tc.add {
				if got := q.Add(r); got != tc.wantNews[i] {
					t.Fatalf("Add #%d = %t, want %t", i, got, tc.wantNews[i])
				}
				if tc.wantNews[i] {
					wantTold = append(wantTold, r.Seq)
				}
			}
			if fmt.Sprint(told) != fmt.Sprint(wantTold) {
				t.Fatalf("observer told %v, want %v", told, wantTold)
			}
			if r, ok := q.Get(x); !ok || r.Seq != tc.wantSeq || q.Len() != 1 {
				t.Fatalf("Get = %+v, %t; Len %d; want seq %d, one record", r, ok, q.Len(), tc.wantSeq)
			}
		})
	}
}

func TestQuarantine_Holds(t *testing.T) {
	q := events.NewQuarantine()
	q.Add(record(events.TaskAggregate("x"), 5))
	tests := []struct {
		name string
		env  events.Envelope
		want bool
	}{
		{"before the bad message", events.Envelope{Aggregate: events.TaskAggregate("x"), Seq: 4}, false},
		{"the bad message", events.Envelope{Aggregate: events.TaskAggregate("x"), Seq: 5}, true},
		{"after it", events.Envelope{Aggregate: events.TaskAggregate("x"), Seq: 6}, true},
		{"another task", events.Envelope{Aggregate: events.TaskAggregate("y"), Seq: 6}, false},
		{"same id, another kind", events.Envelope{Aggregate: events.DeviceAggregate("x"), Seq: 6}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := q.Holds(tc.env); got != tc.want {
				t.Fatalf("Holds(%s seq %d) = %t, want %t", tc.env.Aggregate, tc.env.Seq, got, tc.want)
			}
		})
	}
}

func TestQuarantine_Check(t *testing.T) {
	q := events.NewQuarantine()
	q.Add(record(events.WorkflowAggregate("w1"), 12))
	if err := q.Check(events.WorkflowAggregate("w2")); err != nil {
		t.Fatalf("Check(w2) = %v, want nil", err)
	}
	err := q.Check(events.WorkflowAggregate("w1"))
	if !errors.Is(err, domain.ErrQuarantined) {
		t.Fatalf("Check(w1) = %v, want ErrQuarantined", err)
	}
	qe, ok := errors.AsType[*events.QuarantineError](err)
	if !ok || qe.Record.Seq != 12 {
		t.Fatalf("Check(w1) = %#v, want a *QuarantineError at seq 12", err)
	}
	for _, want := range []string{"wf/w1 is quarantined", "WORKFLOWS sequence 12", "bad"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not say %q", err, want)
		}
	}
}

func TestQuarantine_List(t *testing.T) {
	q := events.NewQuarantine()
	q.Add(record(events.TaskAggregate("b"), 9))
	q.Add(record(events.DeviceAggregate("d"), 2))
	q.Add(record(events.TaskAggregate("a"), 3))
	// A subject that names no aggregate is kept by stream and sequence.
	q.Add(events.NewQuarantined(events.KindTask, "jp.evt.task", nil, nil, 4, errors.New("no id")))
	q.Add(events.NewQuarantined(events.KindTask, "jp.evt.task", nil, nil, 5, errors.New("no id")))
	var got []string
	for _, r := range q.List() {
		got = append(got, fmt.Sprintf("%s %d %s", r.Stream, r.Seq, r.Aggregate))
	}
	want := "[DEVICES 2 dev/d TASKS 3 task/a TASKS 4 / TASKS 5 / TASKS 9 task/b]"
	if fmt.Sprint(got) != want || q.Len() != 5 {
		t.Fatalf("List = %v (Len %d), want %s", got, q.Len(), want)
	}
}

func TestQuarantine_Nil(t *testing.T) {
	var q *events.Quarantine
	if _, ok := q.Get(events.TaskAggregate("x")); ok || q.Holds(events.Envelope{Aggregate: events.TaskAggregate("x"), Seq: 1}) ||
		q.Check(events.TaskAggregate("x")) != nil || q.Len() != 0 || q.List() != nil || q.Streams() != nil {
		t.Fatal("a nil quarantine holds something")
	}
}

func TestNewQuarantined(t *testing.T) {
	long := strings.Repeat("a", events.ExcerptSize+10)
	headers := map[string][]string{"Jp-Time": {"never"}, "Long": {long}}
	for i := range 40 {
		headers[fmt.Sprintf("X-%02d", i)] = []string{"v"}
	}
	r := events.NewQuarantined(events.KindTask, "jp.evt.task.x", headers, []byte(long), 3, errors.New("bad Jp-Time"))
	if r.Aggregate != events.TaskAggregate("x") || r.Stream != "TASKS" || r.Seq != 3 || r.Subject != "jp.evt.task.x" || r.Reason != "bad Jp-Time" {
		t.Fatalf("record %+v", r)
	}
	if r.Size != len(long) || r.Data != long[:events.ExcerptSize]+"…" {
		t.Fatalf("data %q (size %d), want the first %d bytes and a mark", r.Data, r.Size, events.ExcerptSize)
	}
	n := 0
	for _, vs := range r.Headers {
		n += len(vs)
	}
	if n != 32 || r.Headers["Jp-Time"][0] != "never" || r.Headers["Long"][0] != long[:events.ExcerptSize]+"…" {
		t.Fatalf("%d header values kept (want 32), Jp-Time %q, Long %d bytes", n, r.Headers["Jp-Time"], len(r.Headers["Long"][0]))
	}
	if other := events.NewQuarantined(events.KindDevice, "jp.evt.task.x", nil, nil, 1, errors.New("x")); other.Aggregate != (events.Aggregate{}) {
		t.Fatalf("a task subject in the devices stream names %s, want no aggregate", other.Aggregate)
	}
}

func TestNewQuarantined_Excerpt(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"json", `{"a": "é"}`, `{"a": "é"}`},
		{"newlines and tabs", "a\nb\tc", `a\nb\tc`},
		{"invalid utf-8", "a\xffb", `a\xffb`},
		{"control character", "a\x00b\x1b", `a\u{0000}b\u{001b}`},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := events.NewQuarantined(events.KindTask, "jp.evt.task.x", nil, []byte(tc.data), 1, errors.New("x"))
			if r.Data != tc.want || r.Size != len(tc.data) {
				t.Fatalf("excerpt of %q = %q (size %d), want %q", tc.data, r.Data, r.Size, tc.want)
			}
		})
	}
}

func TestUnreadable(t *testing.T) {
	env := events.Envelope{ID: "e1", Type: "task.teleported", Aggregate: events.TaskAggregate("x"), Seq: 4, Version: 1, Data: []byte(`{}`)}
	_, decodeErr := events.DefaultCodec().Decode(env)
	corrupt := &events.CorruptError{Message: record(events.TaskAggregate("y"), 2), Err: errors.New("no Jp-Type header")}
	tests := []struct {
		name    string
		err     error
		want    bool
		wantAgg events.Aggregate
		wantSeq uint64
	}{
		{"decode", decodeErr, true, events.TaskAggregate("x"), 4},
		{"decode, wrapped", fmt.Errorf("fold: %w", decodeErr), true, events.TaskAggregate("x"), 4},
		{"corrupt", corrupt, true, events.TaskAggregate("y"), 2},
		{"other", errors.New("network down"), false, events.Aggregate{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := events.Unreadable(tc.err)
			if ok != tc.want || r.Aggregate != tc.wantAgg || r.Seq != tc.wantSeq {
				t.Fatalf("Unreadable = %+v, %t; want %s seq %d, %t", r, ok, tc.wantAgg, tc.wantSeq, tc.want)
			}
		})
	}
	if !errors.Is(decodeErr, events.ErrUnknownType) || !errors.Is(corrupt, events.ErrCorrupt) {
		t.Fatal("the typed errors lost their sentinels")
	}
	if r, _ := events.Unreadable(decodeErr); r.Headers["Jp-Type"][0] != "task.teleported" || r.Headers["Nats-Msg-Id"][0] != "e1" {
		t.Fatalf("headers of an undecodable event %v, want the envelope's", r.Headers)
	}
}

func FuzzFromMsg(f *testing.F) {
	f.Add("jp.evt.task.x", "task.created", "e1", "2026-11-21T12:00:00Z", []byte(`{"name":"add"}`))
	f.Add("jp.evt.task.x", "", "", "", []byte(`{}`))
	f.Add("jp.evt.dev", "x", "y", "z", []byte("\xff\x00"))
	f.Fuzz(func(t *testing.T, subject, typ, id, at string, data []byte) {
		h := map[string][]string{events.HeaderType: {typ}, "Nats-Msg-Id": {id}, events.HeaderTime: {at}}
		e, err := events.FromMsg(subject, h, data, 1)
		if err != nil {
			r := events.NewQuarantined(events.KindTask, subject, h, data, 1, err)
			if !utf8.ValidString(r.Data) || r.Size != len(data) {
				t.Fatalf("record of a refused message: %+v", r)
			}
			return
		}
		if e.Type == "" || e.ID == "" || e.Aggregate.Kind == "" || e.Aggregate.ID == "" {
			t.Fatalf("FromMsg accepted %+v", e)
		}
	})
}
