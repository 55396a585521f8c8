package proplet

import (
	"errors"
	"testing"
	"time"
)

// TestReception_Backoff: after a refused subscription the proplet tries
// again 10 s later, then twice as long each time up to 5 min, and starts
// over once subscribed.
func TestReception_Backoff(t *testing.T) {
	refused := errors.New("broker refused the subscription")
	t0 := time.Unix(0, 0)
	var r reception
	if r.due(t0) {
		t.Fatal("due while subscribed")
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	now := t0
	for i, w := range want {
		r.failed(refused, now)
		if r.backoff != w || r.err != refused {
			t.Fatalf("failure %d: backoff %s, want %s", i+1, r.backoff, w)
		}
		if r.due(now.Add(w - time.Millisecond)) {
			t.Fatalf("failure %d: due before %s", i+1, w)
		}
		now = now.Add(w)
		if !r.due(now) {
			t.Fatalf("failure %d: not due after %s", i+1, w)
		}
	}
	r.subscribed()
	r.failed(refused, now)
	if r.backoff != 10*time.Second {
		t.Fatalf("backoff %s after a success, want 10s", r.backoff)
	}
}
