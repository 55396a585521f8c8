package service_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/jetprop/jetprop/engine/service"
)

// TestULIDs_Concurrent: two id sources (two engine replicas in one
// process) and ulid.Make used at once share no entropy state (the race
// detector watches), and each source's ids are unique and increasing.
func TestULIDs_Concurrent(t *testing.T) {
	const n = 2000
	sources := []*service.ULIDs{service.NewULIDs(), service.NewULIDs()}
	got := make([][]string, len(sources))
	var wg sync.WaitGroup
	for i, ids := range sources {
		wg.Go(func() {
			for range n {
				got[i] = append(got[i], ids.New())
			}
		})
	}
	wg.Go(func() {
		for range n {
			ulid.Make()
		}
	})
	wg.Wait()
	for i, ids := range got {
		if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != n {
			t.Fatalf("source %d: ids not unique and increasing", i)
		}
	}
}
