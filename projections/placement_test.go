package projections_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
)

// fleetSim folds random device and task events into the two read models,
// linked the way the service links them, and checks after every event that
// the index answers what a full scan of the models answers.
type fleetSim struct {
	t                 *testing.T
	rng               *rand.Rand
	tasks             *projections.Tasks
	devices           *projections.Devices
	taskSeq, devSeq   uint64
	linked            bool
	held              map[string]bool
	devIDs, taskIDs   []string
	nextTask, attempt int
}

func (s *fleetSim) apply(p projections.Projection, seq *uint64, agg events.Aggregate, ev events.Event) {
	s.t.Helper()
	*seq++
	env, err := events.Wrap(agg, fmt.Sprintf("e%d", *seq), events.Meta{Time: t0}, ev)
	if err != nil {
		s.t.Fatal(err)
	}
	env.Seq = *seq
	if err := p.Apply(env); err != nil {
		s.t.Fatal(err)
	}
}

// link has the index follow the devices (as service.New does), possibly
// long after both models folded events, like a server started on a
// history.
func (s *fleetSim) link() {
	s.devices.ObservePlaceable(s.tasks.SetPlaceable)
	for id := range s.held {
		s.tasks.Hold(id)
	}
	s.linked = true
}

func (s *fleetSim) step() {
	dev := s.devIDs[s.rng.IntN(len(s.devIDs))]
	switch n := s.rng.IntN(20); {
	case n < 6:
		evs := []events.Event{
			events.DeviceAnnounced{}, events.DeviceAlive{}, events.DeviceOffline{Reason: "last will"},
			events.DeviceProvisioned{KeyHash: "h"}, events.DeviceRevoked{Reason: "stolen"},
		}
		s.apply(s.devices, &s.devSeq, events.DeviceAggregate(dev), evs[s.rng.IntN(len(evs))])
	case n < 8:
		id := fmt.Sprintf("t%d", s.nextTask)
		s.nextTask++
		s.taskIDs = append(s.taskIDs, id)
		s.apply(s.tasks, &s.taskSeq, events.TaskAggregate(id), events.TaskCreated{Name: "add", Module: digest})
	case n < 19 && len(s.taskIDs) > 0:
		id := s.taskIDs[s.rng.IntN(len(s.taskIDs))]
		s.attempt++
		evs := []events.Event{
			events.TaskScheduled{Device: dev, Attempt: s.attempt}, events.TaskScheduled{Device: dev, Attempt: s.attempt},
			events.TaskStarted{Device: dev}, events.TaskCompleted{Device: dev, Result: []byte("1")},
			events.TaskFailed{Device: dev, Reason: "trap"}, events.TaskStopped{Reason: "asked"}, events.TaskDeleted{},
		}
		s.apply(s.tasks, &s.taskSeq, events.TaskAggregate(id), evs[s.rng.IntN(len(evs))])
	case n == 19 && s.rng.IntN(3) == 0:
		s.held[dev] = true // quarantined: the service tells the index
		if s.linked {
			s.tasks.Hold(dev)
		}
	}
}

// scan is the reference: every placeable device of the devices read model
// that is not held, with its load counted from every task.
func (s *fleetSim) scan() engine.Candidates {
	load := map[string]int{}
	for _, task := range s.tasks.All() {
		if task.State.Active() {
			load[task.Device]++
		}
	}
	if got := s.tasks.Load(); !maps.Equal(got, load) {
		s.t.Fatalf("Load() = %v, counted %v", got, load)
	}
	var out engine.Candidates
	for _, d := range s.devices.List() {
		if d.Placeable() && !s.held[d.ID] {
			out = append(out, engine.Candidate{ID: d.ID, Running: load[d.ID]})
		}
		if got := s.tasks.LoadOf(d.ID); got != load[d.ID] {
			s.t.Fatalf("LoadOf(%s) = %d, counted %d", d.ID, got, load[d.ID])
		}
	}
	return out
}

func (s *fleetSim) check() {
	s.t.Helper()
	want := s.scan()
	turns := []uint64{0, 1, 2, 3, s.tasks.Turn(), s.rng.Uint64()}
	for _, turn := range turns {
		if got, want := s.tasks.PlaceAt("", turn), engine.Place(want, turn); got != want {
			s.t.Fatalf("Place at turn %d = %q, a full scan picks %q from %v", turn, got, want, want)
		}
	}
	if got, want := s.tasks.Place(""), engine.Place(want, s.tasks.Turn()); got != want {
		s.t.Fatalf("Place() = %q, a full scan picks %q", got, want)
	}
	for _, target := range append(s.devIDs, "stranger") {
		if got, want := s.tasks.PlaceAt(target, turns[5]), engine.PlaceOn(want, target, turns[5]); got != want {
			s.t.Fatalf("Place(%q) = %q, want %q", target, got, want)
		}
	}
}

// checkListing compares the ordered views of the devices read model with
// a sort of every device.
func (s *fleetSim) checkListing() {
	s.t.Helper()
	all := s.devices.List()
	if !slices.IsSortedFunc(all, func(a, b engine.Device) int { return strings.Compare(a.ID, b.ID) }) {
		s.t.Fatalf("List() is not sorted by id: %v", ids(all, deviceID))
	}
	var up []engine.Device
	for _, id := range s.devIDs {
		if d, ok := s.devices.Get(id); ok && d.Placeable() {
			up = append(up, d)
		}
	}
	slices.SortFunc(up, func(a, b engine.Device) int { return strings.Compare(a.ID, b.ID) })
	if got := s.devices.UpShared(); !slices.EqualFunc(got, up, sameDevice) {
		s.t.Fatalf("UpShared() = %v, want %v", ids(got, deviceID), ids(up, deviceID))
	}
	off, limit := s.rng.IntN(len(all)+2), s.rng.IntN(5)
	page, total := s.devices.Page(off, limit)
	want := all[min(off, len(all)):min(off+limit, len(all))]
	if total != len(all) || !slices.EqualFunc(page, want, sameDevice) {
		s.t.Fatalf("Page(%d, %d) = %v, %d; want %v, %d", off, limit, ids(page, deviceID), total, ids(want, deviceID), len(all))
	}
}

func sameDevice(a, b engine.Device) bool { return a.ID == b.ID && a.Seq == b.Seq }

// The placement index answers what a full scan answers (engine.Place over
// every placeable device with its load), through random histories of
// device and task events and quarantine holds, linked from the start or
// after a history was folded; the device listing's pages and the up
// snapshot equal a sort of every device.
func TestPlacement_IndexAgainstFullScan(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := &fleetSim{
				t: t, rng: rand.New(rand.NewPCG(seed, 11)), held: map[string]bool{},
				tasks: projections.NewTasks(codec), devices: projections.NewDevices(codec),
			}
			for i := range 3 + s.rng.IntN(12) {
				s.devIDs = append(s.devIDs, fmt.Sprintf("d%02d", (i*7)%23))
			}
			linkAt := s.rng.IntN(200)
			for step := range 600 {
				if step == linkAt {
					s.link()
				}
				s.step()
				if s.linked {
					s.check()
				}
				s.checkListing()
			}
		})
	}
}
