package leases

import (
	"testing"
	"time"

	"github.com/jetprop/jetprop/testing/natstest"
)

// TestRenew_RevivedWhenTheLeaseRanOutDuringTheRound: a renewal that takes
// after the lease ran out revives it, whether the round began before or
// after that time (a round slowed by the store): Owns said no in between,
// and whoever acts on the partition must be told to look again. A
// renewal in time revives nothing.
func TestRenew_RevivedWhenTheLeaseRanOutDuringTheRound(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	l, err := New(t.Context(), js, Config{Replica: "a", Partitions: 4, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l.Round(t.Context())
	if n := len(l.Owned()); n != 4 {
		t.Fatalf("holds %d of 4 partitions", n)
	}
	runOut := func(at time.Time) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for p, ls := range l.owned {
			ls.until = at
			l.owned[p] = ls
		}
	}
	for _, tc := range []struct {
		name        string
		until       time.Duration // of the leases, from now
		roundBegan  time.Duration // from now
		wantRevived bool
	}{
		{"in time", time.Hour, 0, false},
		{"ran out before the round", -time.Second, 0, true},
		{"ran out during the round", -time.Millisecond, -time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now()
			runOut(now.Add(tc.until))
			if got := l.renew(t.Context(), now.Add(tc.roundBegan)); got != tc.wantRevived {
				t.Fatalf("revived %v, want %v", got, tc.wantRevived)
			}
			if n := len(l.Owned()); n != 4 {
				t.Fatalf("holds %d of 4 partitions after the renewal", n)
			}
		})
	}
}
