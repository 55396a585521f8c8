package engine_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/jetprop/jetprop/engine"
)

func TestPlace(t *testing.T) {
	three := []engine.Candidate{{ID: "c", Running: 0}, {ID: "a", Running: 0}, {ID: "b", Running: 0}}
	tests := []struct {
		name  string
		cands []engine.Candidate
		turn  uint64
		want  string
	}{
		{name: "none", cands: nil, want: ""},
		{name: "empty", cands: []engine.Candidate{}, turn: 7, want: ""},
		{name: "one", cands: []engine.Candidate{{ID: "a", Running: 9}}, turn: 5, want: "a"},
		{name: "fewest running", cands: []engine.Candidate{{ID: "a", Running: 2}, {ID: "b", Running: 1}, {ID: "c", Running: 3}}, want: "b"},
		{name: "fewest running whatever the turn", cands: []engine.Candidate{{ID: "a", Running: 2}, {ID: "b", Running: 1}, {ID: "c", Running: 3}}, turn: 2, want: "b"},
		{name: "tie turn 0 takes first id", cands: three, turn: 0, want: "a"},
		{name: "tie turn 1", cands: three, turn: 1, want: "b"},
		{name: "tie turn 2", cands: three, turn: 2, want: "c"},
		{name: "tie turn wraps", cands: three, turn: 3, want: "a"},
		{name: "tie at max turn", cands: three, turn: math.MaxUint64, want: "a"}, // 2^64-1 mod 3 == 0
		{name: "tie among the least only", cands: []engine.Candidate{{ID: "a", Running: 1}, {ID: "d", Running: 0}, {ID: "b", Running: 0}}, turn: 1, want: "d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.cands)
			if got := engine.Place(tc.cands, tc.turn); got != tc.want {
				t.Fatalf("Place(%v, %d) = %q, want %q", tc.cands, tc.turn, got, tc.want)
			}
			if !slices.Equal(before, tc.cands) {
				t.Fatalf("Place reordered its input: %v", tc.cands)
			}
		})
	}
}

// Successive turns spread equal devices evenly, whatever order the
// candidates come in.
func TestPlace_Rotation(t *testing.T) {
	orders := [][]engine.Candidate{
		{{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "d"}},
		{{ID: "d"}, {ID: "b"}, {ID: "a"}, {ID: "c"}},
	}
	for i, cands := range orders {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var got []string
			for turn := range uint64(8) {
				got = append(got, engine.Place(cands, turn))
			}
			want := []string{"a", "b", "c", "d", "a", "b", "c", "d"}
			if !slices.Equal(got, want) {
				t.Fatalf("placements = %v, want %v", got, want)
			}
		})
	}
}

func ExamplePlace() {
	cands := []engine.Candidate{{ID: "pi-2", Running: 1}, {ID: "pi-1", Running: 0}, {ID: "pi-3", Running: 0}}
	for turn := range uint64(3) {
		fmt.Println(engine.Place(cands, turn))
	}
	// Output:
	// pi-1
	// pi-3
	// pi-1
}

// PlaceOn with a target places on it only when it is placeable; without
// one it follows Place.
func TestPlaceOn(t *testing.T) {
	fleet := engine.Candidates{{ID: "c", Running: 1}, {ID: "a", Running: 2}, {ID: "b", Running: 1}}
	tests := []struct {
		name   string
		fleet  engine.Candidates
		target string
		turn   uint64
		want   string
	}{
		{name: "target placeable", fleet: fleet, target: "a", want: "a"},
		{name: "target placeable whatever its load or the turn", fleet: fleet, target: "a", turn: 5, want: "a"},
		{name: "target not placeable", fleet: fleet, target: "d", want: ""},
		{name: "target on an empty fleet", target: "a", want: ""},
		{name: "no target: fewest, turn 0", fleet: fleet, want: "b"},
		{name: "no target: fewest, turn 1", fleet: fleet, turn: 1, want: "c"},
		{name: "no target: fewest, turn 2", fleet: fleet, turn: 2, want: "b"},
		{name: "no target, no device", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := engine.PlaceOn(tc.fleet, tc.target, tc.turn); got != tc.want {
				t.Fatalf("PlaceOn(%v, %q, %d) = %q, want %q", tc.fleet, tc.target, tc.turn, got, tc.want)
			}
		})
	}
}

// A Fleet answers the least loaded group and its members; Candidates does
// so by scanning, whatever order the list is in.
func TestCandidates_Fleet(t *testing.T) {
	c := engine.Candidates{{ID: "d", Running: 0}, {ID: "b", Running: 3}, {ID: "a", Running: 0}, {ID: "c", Running: 0}}
	if got := c.Least(); got != 3 {
		t.Fatalf("Least() = %d, want 3", got)
	}
	var got []string
	for i := range c.Least() {
		got = append(got, c.LeastAt(i))
	}
	if want := []string{"a", "c", "d"}; !slices.Equal(got, want) {
		t.Fatalf("LeastAt(0..2) = %v, want %v", got, want)
	}
	if !c.Placeable("b") || c.Placeable("e") {
		t.Fatal("Placeable: b is in the list, e is not")
	}
	if (engine.Candidates{}).Least() != 0 {
		t.Fatal("an empty list has no least loaded device")
	}
}

func TestDevice_Placeable(t *testing.T) {
	tests := []struct {
		name string
		d    engine.Device
		want bool
	}{
		{name: "announced", d: engine.Device{State: engine.DeviceAnnounced}, want: true},
		{name: "alive", d: engine.Device{State: engine.DeviceAlive}, want: true},
		{name: "offline", d: engine.Device{State: engine.DeviceOffline}, want: false},
		{name: "unknown", d: engine.Device{}, want: false},
		{name: "alive but revoked", d: engine.Device{State: engine.DeviceAlive, Revoked: true}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.Placeable(); got != tc.want {
				t.Fatalf("Placeable() = %v, want %v", got, tc.want)
			}
		})
	}
}
