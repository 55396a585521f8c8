package projections

import (
	"cmp"
	"strings"

	"github.com/jetprop/jetprop/engine"
)

// fleet is the placement index the tasks read model keeps: which devices
// are placeable (up as the devices read model says, SetPlaceable; not held
// by the quarantine, Hold), and those ordered by (active tasks, id). The
// k least loaded devices are then the first k keys, in id order, so
// engine.PlaceOn picks in O(log n) and copies nothing.
type fleet struct {
	up     map[string]bool // up and not revoked, as the devices read model says
	held   map[string]bool // quarantined
	byLoad *ordered[slot]  // the placeable devices
}

// slot is a placeable device and its active tasks.
type slot struct {
	load int
	id   string
}

func compareSlots(a, b slot) int {
	return cmp.Or(cmp.Compare(a.load, b.load), strings.Compare(a.id, b.id))
}

var _ engine.Fleet = (*fleet)(nil)

func newFleet() fleet {
	return fleet{up: map[string]bool{}, held: map[string]bool{}, byLoad: newOrdered(compareSlots)}
}

// Placeable implements engine.Fleet.
func (f *fleet) Placeable(id string) bool { return f.up[id] && !f.held[id] }

// Least implements engine.Fleet: the keys before the first one with one
// task more than the least loaded.
func (f *fleet) Least() int {
	if f.byLoad.Len() == 0 {
		return 0
	}
	return f.byLoad.Rank(slot{load: f.byLoad.At(0).load + 1})
}

// LeastAt implements engine.Fleet.
func (f *fleet) LeastAt(i int) string { return f.byLoad.At(i).id }

// setUp records whether the devices read model shows id up (and not
// revoked); load is its active tasks.
func (f *fleet) setUp(id string, up bool, load int) {
	f.change(id, load, func() {
		if up {
			f.up[id] = true
		} else {
			delete(f.up, id)
		}
	})
}

// hold leaves id out for good: it is quarantined.
func (f *fleet) hold(id string, load int) {
	f.change(id, load, func() { f.held[id] = true })
}

// change applies what and keeps id in the index exactly while it is
// placeable.
func (f *fleet) change(id string, load int, what func()) {
	was := f.Placeable(id)
	what()
	switch is := f.Placeable(id); {
	case was && !is:
		f.byLoad.Delete(slot{load, id})
	case is && !was:
		f.byLoad.Insert(slot{load, id})
	}
}

// moved records that id's active tasks went from old to load.
func (f *fleet) moved(id string, old, load int) {
	if old != load && f.Placeable(id) {
		f.byLoad.Delete(slot{old, id})
		f.byLoad.Insert(slot{load, id})
	}
}
