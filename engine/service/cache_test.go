package service

import (
	"context"
	"fmt"
	"testing"
)

func TestStateCache(t *testing.T) {
	c := newStateCache[int](3)
	for i := range 10 {
		c.put(fmt.Sprint(i), i)
		if n := len(c.m); n > 3 {
			t.Fatalf("after %d puts the cache holds %d entries, max 3", i+1, n)
		}
		if v, ok := c.get(fmt.Sprint(i)); !ok || v != i {
			t.Fatalf("get(%d) = %d, %v right after put", i, v, ok)
		}
	}
	c.put("9", 90) // replacing an entry evicts nothing
	if v, _ := c.get("9"); v != 90 || len(c.m) != 3 {
		t.Fatalf("replace: got %d with %d entries", v, len(c.m))
	}
	c.drop("9")
	if _, ok := c.get("9"); ok {
		t.Fatal("get after drop found the entry")
	}
	c.drop("absent")
}

func TestMetaFrom(t *testing.T) {
	tests := []struct {
		name            string
		ctx             context.Context
		causation, corr string
	}{
		{"none", context.Background(), "", ""},
		{"cause", WithCause(context.Background(), "m1", "j1"), "m1", "j1"},
		{"innermost wins", WithCause(WithCause(context.Background(), "a", "b"), "c", "d"), "c", "d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := metaFrom(tc.ctx, SystemClock{}.Now())
			if m.CausationID != tc.causation || m.CorrelationID != tc.corr {
				t.Fatalf("meta %+v", m)
			}
		})
	}
}

func TestULIDs(t *testing.T) {
	ids := NewULIDs()
	prev := ""
	for range 1000 {
		id := ids.New()
		if id <= prev {
			t.Fatalf("%q after %q: not increasing", id, prev)
		}
		prev = id
	}
}
