package projections

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkFleet: the placement index alone on n placeable devices with 0
// to 4 active tasks each: a pick (engine.PlaceOn's three questions), and a
// load change (a device moved to one task more, then back: two moves).
//
//	go test -run '^$' -bench Fleet -benchmem ./projections/
func BenchmarkFleet(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		f, ids, load := newFleet(), make([]string, n), make([]int, n)
		rng := rand.New(rand.NewPCG(uint64(n), 4))
		for i, j := range rng.Perm(n) {
			ids[i], load[i] = fmt.Sprintf("dev-%06d", j), rng.IntN(5)
			f.setUp(ids[i], true, load[i])
		}
		b.Run(fmt.Sprintf("devices=%d/pick", n), func(b *testing.B) {
			b.ReportAllocs()
			turn := 0
			for b.Loop() {
				turn++
				if f.LeastAt(turn%f.Least()) == "" {
					b.Fatal("no device")
				}
			}
		})
		b.Run(fmt.Sprintf("devices=%d/load-change", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i = (i + 7919) % n
				f.moved(ids[i], load[i], load[i]+1)
				f.moved(ids[i], load[i]+1, load[i])
			}
		})
	}
}
