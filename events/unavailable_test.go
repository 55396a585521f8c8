package events_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
)

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"no responders", fmt.Errorf("events: append: %w", nats.ErrNoResponders), true},
		{"no stream response", jetstream.ErrNoStreamResponse, true},
		{"leader election", &jetstream.APIError{Code: 503, ErrorCode: 10008}, true},
		{"JetStream off for the account", &jetstream.APIError{Code: 503, ErrorCode: 10039}, true},
		{"stream offline", fmt.Errorf("wrapped: %w", &jetstream.APIError{Code: 500, ErrorCode: 10118}), true},
		{"a timeout", context.DeadlineExceeded, true},
		{"a lost connection", nats.ErrConnectionClosed, true},
		{"conflict", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, false},
		{"stream not found", jetstream.ErrStreamNotFound, false},
		{"cancelled by the caller", context.Canceled, false},
		{"anything else", errors.New("nats: no responders available for request"), false}, // text is no identity
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := events.Unavailable(tc.err); got != tc.want {
				t.Fatalf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestJetStream_Unavailable turns JetStream off under a store: appends and
// loads fail with errors Unavailable recognizes; a conflict is not one.
func TestJetStream_Unavailable(t *testing.T) {
	srv := natstest.Start(t)
	nc, _ := natstest.Connect(t, srv)
	st, err := events.NewJetStream(t.Context(), nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	agg := events.TaskAggregate("t1")
	env := func() events.Envelope {
		e, err := events.Wrap(agg, nats.NewInbox()[7:], events.Meta{}, events.TaskCreated{Name: "a"})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	if _, err := st.Append(t.Context(), agg, 0, env()); err != nil {
		t.Fatal(err)
	}
	_, err = st.Append(t.Context(), agg, 0, env())
	if !errors.Is(err, events.ErrConflict) || events.Unavailable(err) {
		t.Fatalf("conflict: %v, Unavailable %v", err, events.Unavailable(err))
	}
	enable := natstest.DisableJetStream(t, srv)
	// An append tries again while the store is unavailable, within its
	// context: a short one ends it with the store's error.
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = st.Append(short, agg, 1, env())
	if !events.Unavailable(err) {
		t.Fatalf("append without JetStream: %v, not Unavailable", err)
	}
	if _, err := st.Version(t.Context(), agg); !events.Unavailable(err) {
		t.Fatalf("version without JetStream: %v, not Unavailable", err)
	}
	if err := enable(); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error { // the stream is back, with its message
		_, err := st.Append(t.Context(), agg, 1, env())
		return err
	})
}
