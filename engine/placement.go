package engine

import (
	"cmp"
	"slices"
)

// Candidate is a device that may take a task, with its current load.
type Candidate struct {
	ID      string
	Running int // tasks scheduled or running on it
}

// Place picks the candidate with the fewest running tasks; among equals it
// takes turns: the (turn mod n)-th of them in id order. It returns "" when
// there is no candidate. Pure: the same inputs give the same device.
func Place(cands []Candidate, turn uint64) string {
	if len(cands) == 0 {
		return ""
	}
	least := slices.MinFunc(cands, func(a, b Candidate) int { return cmp.Compare(a.Running, b.Running) }).Running
	var ids []string
	for _, c := range cands {
		if c.Running == least {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	return ids[turn%uint64(len(ids))]
}
