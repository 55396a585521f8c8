package projections_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

// Readers place, page and read the up snapshot while the models follow a
// store that writers fill with device and task events (run with -race);
// once the writers are done, the index answers what a full scan answers.
func TestPlacement_Hammer(t *testing.T) {
	store := events.NewMemory()
	tasks, devices := projections.NewTasks(codec), projections.NewDevices(codec)
	h := newHandler(store)
	service.New(h, tasks, devices, nil) // links the index to the devices and the quarantine
	ctx := testCtx(t)
	var follow, readers sync.WaitGroup
	fctx, stop := context.WithCancel(ctx)
	for _, p := range []projections.Projection{tasks, devices} {
		follow.Go(func() { _ = projections.Follow(fctx, store, p) })
	}
	done := make(chan struct{})
	for range 3 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				tasks.Place("")
				tasks.Place("d3")
				devices.Page(2, 3)
				_ = len(devices.UpShared())
				tasks.LoadOf("d1")
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 5))
			for i := range 60 {
				dev := fmt.Sprintf("d%d", rng.IntN(8))
				if rng.IntN(3) == 0 {
					_, _ = h.Device(ctx, []engine.DeviceCommand{engine.Announce{ID: dev}, engine.MarkOffline{ID: dev, Reason: "gone"}}[rng.IntN(2)])
					continue
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				_, _ = h.Task(ctx, create(id))
				_, _ = h.Task(ctx, schedule(id, dev))
				if rng.IntN(2) == 0 {
					_, _ = h.Task(ctx, result(id, dev, `1`))
				}
			}
		})
	}
	writers.Wait()
	lastTask, _ := store.LastSeq(ctx, events.KindTask)
	lastDevice, _ := store.LastSeq(ctx, events.KindDevice)
	if err := errors.Join(tasks.WaitFor(ctx, lastTask), devices.WaitFor(ctx, lastDevice)); err != nil {
		t.Fatal(err)
	}
	close(done)
	readers.Wait()
	stop()
	follow.Wait()
	s := &fleetSim{t: t, rng: rand.New(rand.NewPCG(1, 1)), tasks: tasks, devices: devices, held: map[string]bool{}}
	for i := range 8 {
		s.devIDs = append(s.devIDs, fmt.Sprintf("d%d", i))
	}
	s.check()
	s.checkListing()
}
