package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
)

// TestJetStream_AppendTooLarge: an event over the broker's max_payload
// fails with ErrTooLarge (the API's 413), alone or in an atomic batch, and
// stores nothing.
func TestJetStream_AppendTooLarge(t *testing.T) {
	s := natstest.Start(t)
	nc, _ := natstest.Connect(t, s)
	st, err := events.NewJetStream(testCtx(t), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	big := events.TaskCreated{Name: "add", Inputs: []string{strings.Repeat("x", int(nc.MaxPayload()))}}
	wrap := func(agg events.Aggregate, ev events.Event) events.Envelope {
		e, err := events.Wrap(agg, ulid.Make().String(), events.Meta{Time: t0}, ev)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, tc := range []struct {
		name string
		evs  func(agg events.Aggregate) []events.Envelope
	}{
		{"one event", func(agg events.Aggregate) []events.Envelope { return []events.Envelope{wrap(agg, big)} }},
		{"batch", func(agg events.Aggregate) []events.Envelope {
			return []events.Envelope{wrap(agg, events.TaskCreated{Name: "add"}), wrap(agg, big)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agg := events.TaskAggregate("big-" + strings.ReplaceAll(tc.name, " ", "-"))
			_, err := st.Append(testCtx(t), agg, 0, tc.evs(agg)...)
			if !errors.Is(err, events.ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			if got, err := st.Load(testCtx(t), agg); err != nil || len(got) != 0 {
				t.Fatalf("stored %d events (err %v), want none", len(got), err)
			}
		})
	}
}
