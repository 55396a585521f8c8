package proplet

import (
	"fmt"
	"testing"
	"time"
)

func TestEarlyStops(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name  string
		stop  string
		take  string
		after time.Duration
		want  bool
	}{
		{name: "start right after its stop", stop: "a", take: "a", after: time.Second, want: true},
		{name: "start long after", stop: "a", take: "a", after: earlyStopWindow + time.Second, want: false},
		{name: "other task", stop: "a", take: "b", after: 0, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := earlyStops{}
			e.add(tc.stop, t0)
			if got := e.take(tc.take, t0.Add(tc.after)); got != tc.want {
				t.Fatalf("take = %v, want %v", got, tc.want)
			}
			if e.take(tc.stop, t0.Add(tc.after)) && tc.want {
				t.Fatal("a stop was used twice")
			}
		})
	}
}

func TestEarlyStops_Bounded(t *testing.T) {
	e := earlyStops{}
	t0 := time.Unix(1000, 0)
	for i := range earlyStopMax + 10 {
		e.add(fmt.Sprint(i), t0)
	}
	if len(e) != earlyStopMax {
		t.Fatalf("%d entries, want %d", len(e), earlyStopMax)
	}
	e.add("late", t0.Add(earlyStopWindow+time.Second)) // everything else expired
	if len(e) != 1 || !e.take("late", t0.Add(earlyStopWindow+time.Second)) {
		t.Fatalf("expired entries not pruned: %d left", len(e))
	}
}
