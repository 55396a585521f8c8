package events_test

import (
	"context"
	"testing"

	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) events.Store { return events.NewMemory() })
}

func TestJetStream(t *testing.T) {
	storetest.Run(t, func(t *testing.T) events.Store {
		s := natstest.Start(t)
		nc, _ := natstest.Connect(t, s)
		st, err := events.NewJetStream(context.Background(), nc, events.StreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestDefaultCodec(t *testing.T) {
	r := events.DefaultCodec()
	if got, want := len(r.Types()), len(events.All()); got != want {
		t.Fatalf("%d types registered, want %d", got, want)
	}
}
