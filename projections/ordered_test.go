package projections

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The ordered set answers what a sorted slice of the same keys answers,
// through random inserts and deletes.
func TestOrdered_AgainstSortedSlice(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 3))
		o := newOrdered(strings.Compare)
		var model []string
		for step := range 2000 {
			k := string(rune('a'+rng.IntN(26))) + string(rune('a'+rng.IntN(26)))
			i, held := slices.BinarySearch(model, k)
			if gone := o.Delete(k); gone != held {
				t.Fatalf("seed %d step %d: Delete(%q) = %v, want %v", seed, step, k, gone, held)
			}
			if held {
				model = slices.Delete(model, i, i+1)
			} else if rng.IntN(3) > 0 {
				o.Insert(k)
				model = slices.Insert(model, i, k)
			}
			checkOrdered(t, o, model, rng)
		}
	}
}

func checkOrdered(t *testing.T, o *ordered[string], model []string, rng *rand.Rand) {
	t.Helper()
	if o.Len() != len(model) {
		t.Fatalf("Len() = %d, want %d", o.Len(), len(model))
	}
	if len(model) == 0 {
		return
	}
	i := rng.IntN(len(model))
	if got := o.At(i); got != model[i] {
		t.Fatalf("At(%d) = %q, want %q", i, got, model[i])
	}
	k := string(rune('a'+rng.IntN(26))) + string(rune('a'+rng.IntN(26)))
	if got, want := o.Rank(k), rankIn(model, k); got != want {
		t.Fatalf("Rank(%q) = %d, want %d", k, got, want)
	}
	from, n := rng.IntN(len(model)+2)-1, rng.IntN(10)
	var walked []string
	o.Ascend(from, func(k string) bool {
		walked = append(walked, k)
		return len(walked) < n
	})
	from = max(from, 0)
	want := model[min(from, len(model)):min(from+max(n, 1), len(model))]
	if !slices.Equal(walked, want) {
		t.Fatalf("Ascend(%d) for %d = %v, want %v", from, n, walked, want)
	}
}

// rankIn returns how many keys of the sorted model come before k.
func rankIn(model []string, k string) int {
	i, _ := slices.BinarySearch(model, k)
	return i
}

// Moving keys reuses the nodes deletes freed: no allocation.
func TestOrdered_MoveAllocatesNothing(t *testing.T) {
	o, ids := newOrdered(compareSlots), make([]string, 1000)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
		o.Insert(slot{id: ids[i]})
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		id := ids[i%1000]
		o.Delete(slot{load: i / 1000, id: id})
		o.Insert(slot{load: i/1000 + 1, id: id})
		i++
	})
	if allocs != 0 {
		t.Fatalf("a move allocates %v times, want 0", allocs)
	}
}
