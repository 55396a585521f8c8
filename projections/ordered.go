package projections

import "math/rand/v2"

// ordered is a set of keys kept in the order cmp gives, that also knows
// each key's rank: insert, delete, the i-th key and the rank of a key in
// O(log n) expected time, and a walk from the i-th key on in O(log n + k).
// It is a treap whose nodes count their subtree. The priorities are
// random, drawn from a seed per set, so no order of inserted keys can
// make it degenerate; the shape never changes an answer. Deleted nodes
// are kept for the next insert, so a key that moves (a delete and an
// insert) allocates nothing. Not safe for concurrent use: the read model
// that holds it locks.
type ordered[K any] struct {
	root *onode[K]
	cmp  func(a, b K) int
	rng  rand.PCG
	free *onode[K] // deleted nodes, linked by right
}

type onode[K any] struct {
	key         K
	prio        uint64
	size        int // nodes in this subtree
	left, right *onode[K]
}

func newOrdered[K any](cmp func(a, b K) int) *ordered[K] {
	o := &ordered[K]{cmp: cmp}
	o.rng.Seed(rand.Uint64(), rand.Uint64())
	return o
}

func (n *onode[K]) count() int {
	if n == nil {
		return 0
	}
	return n.size
}

func (n *onode[K]) fix() { n.size = 1 + n.left.count() + n.right.count() }

// Len is the number of keys.
func (o *ordered[K]) Len() int { return o.root.count() }

// Insert adds k, which the set must not hold.
func (o *ordered[K]) Insert(k K) {
	n := o.free
	if n != nil {
		o.free = n.right
	} else {
		n = new(onode[K])
	}
	*n = onode[K]{key: k, prio: o.rng.Uint64(), size: 1}
	o.root = o.insert(o.root, n)
}

func (o *ordered[K]) insert(at, n *onode[K]) *onode[K] {
	if at == nil {
		return n
	}
	if o.cmp(n.key, at.key) < 0 {
		at.left = o.insert(at.left, n)
		if at.left.prio > at.prio {
			return rotateRight(at)
		}
	} else {
		at.right = o.insert(at.right, n)
		if at.right.prio > at.prio {
			return rotateLeft(at)
		}
	}
	at.fix()
	return at
}

func rotateRight[K any](n *onode[K]) *onode[K] {
	l := n.left
	n.left = l.right
	n.fix()
	l.right = n
	l.fix()
	return l
}

func rotateLeft[K any](n *onode[K]) *onode[K] {
	r := n.right
	n.right = r.left
	n.fix()
	r.left = n
	r.fix()
	return r
}

// Delete removes k and reports whether the set held it.
func (o *ordered[K]) Delete(k K) bool {
	var gone *onode[K]
	o.root, gone = o.delete(o.root, k)
	if gone == nil {
		return false
	}
	var zero K
	gone.key, gone.left, gone.right = zero, nil, o.free // no key kept alive
	o.free = gone
	return true
}

func (o *ordered[K]) delete(at *onode[K], k K) (*onode[K], *onode[K]) {
	if at == nil {
		return nil, nil
	}
	var gone *onode[K]
	switch c := o.cmp(k, at.key); {
	case c < 0:
		at.left, gone = o.delete(at.left, k)
	case c > 0:
		at.right, gone = o.delete(at.right, k)
	default:
		return merge(at.left, at.right), at
	}
	at.fix()
	return at, gone
}

// merge joins two treaps, every key of a before every key of b.
func merge[K any](a, b *onode[K]) *onode[K] {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case a.prio > b.prio:
		a.right = merge(a.right, b)
		a.fix()
		return a
	default:
		b.left = merge(a, b.left)
		b.fix()
		return b
	}
}

// At returns the i-th key in order, 0 <= i < Len().
func (o *ordered[K]) At(i int) K {
	n := o.root
	for {
		l := n.left.count()
		switch {
		case i < l:
			n = n.left
		case i == l:
			return n.key
		default:
			i -= l + 1
			n = n.right
		}
	}
}

// Rank returns how many keys come before k (k need not be in the set).
func (o *ordered[K]) Rank(k K) int {
	r := 0
	for n := o.root; n != nil; {
		if o.cmp(k, n.key) <= 0 {
			n = n.left
		} else {
			r += n.left.count() + 1
			n = n.right
		}
	}
	return r
}

// Ascend calls fn with the keys in order from the i-th on, until fn
// returns false or the keys run out.
func (o *ordered[K]) Ascend(i int, fn func(K) bool) {
	ascend(o.root, max(i, 0), fn)
}

func ascend[K any](n *onode[K], skip int, fn func(K) bool) bool {
	if n == nil {
		return true
	}
	l := n.left.count()
	if skip < l && !ascend(n.left, skip, fn) {
		return false
	}
	if skip <= l && !fn(n.key) {
		return false
	}
	return ascend(n.right, max(skip-l-1, 0), fn)
}
