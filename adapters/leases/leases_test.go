package leases_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/leases"
	"github.com/jetprop/jetprop/testing/natstest"
)

func newLeases(t *testing.T, js jetstream.JetStream, id string, ttl time.Duration) *leases.Leases {
	t.Helper()
	l, err := leases.New(context.Background(), js, leases.Config{Replica: id, Partitions: 16, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// disjoint fails when two replicas count one partition as theirs, and
// returns how many partitions are held.
func disjoint(t *testing.T, ls ...*leases.Leases) int {
	t.Helper()
	seen := map[int]int{}
	for i, l := range ls {
		for _, p := range l.Owned() {
			if j, ok := seen[p]; ok {
				t.Fatalf("partition %d held by replicas %d and %d", p, j, i)
			}
			seen[p] = i
		}
	}
	return len(seen)
}

func TestLeases_ShareAndHandOver(t *testing.T) {
	ctx := context.Background()
	_, js := natstest.Connect(t, natstest.Start(t))
	ttl := 2 * time.Second
	a, b := newLeases(t, js, "a", ttl), newLeases(t, js, "b", ttl)

	a.Round(ctx)
	if got := len(a.Owned()); got != 16 {
		t.Fatalf("alone, replica a holds %d of 16 partitions", got)
	}

	// b joins: a gives back half at its next round, b takes them.
	natstest.CheckFor(t, 10*time.Second, func() error {
		b.Round(ctx)
		a.Round(ctx)
		disjoint(t, a, b)
		if na, nb := len(a.Owned()), len(b.Owned()); na != 8 || nb != 8 {
			return fmt.Errorf("a holds %d, b %d; want 8 each", na, nb)
		}
		return nil
	})

	// a stops renewing (killed, no goodbye): b holds nothing of a's until
	// a's leases expire, then everything. b never overlaps a while a
	// still counts its leases.
	natstest.CheckFor(t, 4*ttl, func() error {
		b.Round(ctx)
		disjoint(t, a, b)
		if nb := len(b.Owned()); nb != 16 {
			return fmt.Errorf("b holds %d of 16", nb)
		}
		return nil
	})
	if na := len(a.Owned()); na != 0 {
		t.Fatalf("a still counts %d partitions after their time", na)
	}
}

func TestLeases_GracefulStopHandsOverAtOnce(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	// A TTL far longer than the test: only a release can hand over.
	a, b := newLeases(t, js, "a", time.Minute), newLeases(t, js, "b", time.Minute)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	natstest.CheckFor(t, 10*time.Second, func() error {
		if n := len(a.Owned()); n != 16 {
			return fmt.Errorf("a holds %d", n)
		}
		return nil
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.Round(context.Background())
	// a's announcement is gone too, so b's share is everything.
	if nb := len(b.Owned()); nb != 16 {
		t.Fatalf("after a's release b holds %d of 16", nb)
	}
}

func TestLeases_RestartReclaims(t *testing.T) {
	ctx := context.Background()
	_, js := natstest.Connect(t, natstest.Start(t))
	a := newLeases(t, js, "a", time.Minute)
	a.Round(ctx)
	// The same replica (same id) after a crash: its keys still name it, so
	// it takes them back without waiting for them to expire.
	again := newLeases(t, js, "a", time.Minute)
	again.Round(ctx)
	if n := len(again.Owned()); n != 16 {
		t.Fatalf("restarted replica holds %d of 16", n)
	}
}

func TestLeases_Validation(t *testing.T) {
	_, js := natstest.Connect(t, natstest.Start(t))
	for _, id := range []string{"", "a.b", "a*", "a b"} {
		if _, err := leases.New(context.Background(), js, leases.Config{Replica: id}); err == nil {
			t.Errorf("replica id %q accepted", id)
		}
	}
}

// TestLeases_BackAfterOutage: leases that stopped counting while
// JetStream was away count again once it is back, and the replica is told
// (Gained), so whoever acts on them looks for the work they hold.
func TestLeases_BackAfterOutage(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ttl := time.Second
	a := newLeases(t, js, "a", ttl)
	a.Round(ctx)
	<-a.Gained()
	enable := natstest.DisableJetStream(t, srv)
	natstest.CheckFor(t, 10*time.Second, func() error {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		a.Round(short)
		if n := len(a.Owned()); n != 0 {
			return fmt.Errorf("a counts %d partitions without JetStream", n)
		}
		return nil
	})
	if err := enable(); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		a.Round(ctx)
		if n := len(a.Owned()); n != 16 {
			return fmt.Errorf("a holds %d of 16 after the outage", n)
		}
		return nil
	})
	select {
	case <-a.Gained():
	default:
		t.Fatal("the partitions back were not signalled")
	}
}
