package engine

import (
	"cmp"
	"slices"
)

// Fleet is what placement picks from: the placeable devices (up, not
// revoked, not quarantined), ordered by their active tasks, then by id.
// The read side keeps it as an index (projections.Tasks), so a pick asks
// three questions of it instead of copying and sorting the fleet.
type Fleet interface {
	// Placeable reports whether device id may take a task.
	Placeable(id string) bool
	// Least returns k, the number of placeable devices with the fewest
	// active tasks (0 when no device is placeable).
	Least() int
	// LeastAt returns the i-th of those k devices in id order, 0 <= i < k.
	LeastAt(i int) string
}

// PlaceOn picks the device a task goes to. With a target device it is the
// target when that is placeable, else "" (the task must wait for it).
// Otherwise it is one of the k placeable devices with the fewest active
// tasks: the (turn mod k)-th of them in id order, so successive turns take
// equals in turn; "" when no device is placeable. Pure: the same fleet and
// turn give the same device.
func PlaceOn(f Fleet, target string, turn uint64) string {
	if target != "" {
		if f.Placeable(target) {
			return target
		}
		return ""
	}
	k := f.Least()
	if k <= 0 {
		return ""
	}
	return f.LeastAt(int(turn % uint64(k)))
}

// Candidate is a device that may take a task, with its current load.
type Candidate struct {
	ID      string
	Running int // tasks scheduled or running on it
}

// Candidates is a Fleet given as a list of the placeable devices, in any
// order. Every question scans the list: it is the reference an indexed
// Fleet is tested against, not the way to place on a large fleet.
type Candidates []Candidate

var _ Fleet = Candidates(nil)

// Placeable implements Fleet: id is in the list.
func (c Candidates) Placeable(id string) bool {
	return slices.ContainsFunc(c, func(x Candidate) bool { return x.ID == id })
}

// Least implements Fleet.
func (c Candidates) Least() int { return len(c.least()) }

// LeastAt implements Fleet.
func (c Candidates) LeastAt(i int) string { return c.least()[i] }

// least returns the ids of the candidates with the fewest running tasks,
// sorted, without reordering c.
func (c Candidates) least() []string {
	if len(c) == 0 {
		return nil
	}
	fewest := slices.MinFunc(c, func(a, b Candidate) int { return cmp.Compare(a.Running, b.Running) }).Running
	var ids []string
	for _, x := range c {
		if x.Running == fewest {
			ids = append(ids, x.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// Place picks the candidate with the fewest running tasks; among equals it
// takes turns: the (turn mod n)-th of them in id order. It returns "" when
// there is no candidate. It is PlaceOn over Candidates(cands) without a
// target.
func Place(cands []Candidate, turn uint64) string {
	return PlaceOn(Candidates(cands), "", turn)
}

// Placeable reports whether d, as its read model shows it, may take tasks:
// up and not revoked. A quarantined device is not placeable either, which
// its state cannot show (its read model keeps its last good state); the
// placement index leaves quarantined devices out on its own.
func (d Device) Placeable() bool { return d.State.Up() && !d.Revoked && d.Unreachable == "" }
