package journal

import (
	"encoding/binary"
	"fmt"
)

// donePrefix keys the done records: "d.<task id>", the newest attempt of
// the task that finished here (a varint).
const donePrefix = "d."

// DefaultDoneLimit is how many done records the journal keeps: the oldest
// is dropped when another would exceed it. A record of a ULID task id
// takes about 160 bytes of memory and 40 of file: 10,000 cost some 1.6 MB
// and 400 KB, and remember a busy device's tasks for far longer than a
// manager re-sends a start.
const DefaultDoneLimit = 10_000

// WithDoneLimit sets how many done records the journal keeps,
// DefaultDoneLimit by default; the oldest are dropped first.
func WithDoneLimit(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("journal: done limit %d: want > 0", n)
		}
		o.doneLimit = n
		return nil
	}
}

// Done returns the newest attempt of a task that finished here (Finished,
// or Clear of an interrupted one), if the journal still remembers one.
func (j *Journal) Done(taskID string) (attempt int, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.doneAttempt(taskID)
}

func (j *Journal) doneAttempt(taskID string) (int, bool) {
	s, ok := j.index[donePrefix+taskID]
	if !ok {
		return 0, false
	}
	return attemptOf(s.val), true
}

// markDone records that an attempt of a task finished, unless a newer one
// already did, and drops the oldest done records beyond the limit.
func (j *Journal) markDone(taskID string, attempt int) error {
	if done, ok := j.doneAttempt(taskID); ok && done >= attempt {
		return nil
	}
	key := donePrefix + taskID
	_, known := j.index[key]
	if err := j.putLocked(key, binary.AppendVarint(nil, int64(attempt))); err != nil {
		return err
	}
	j.done.push(key, j.seq, !known)
	return j.evictDone()
}

// evictDone deletes the oldest done records while there are more than the
// limit.
func (j *Journal) evictDone() error {
	for j.done.live > j.opts.doneLimit {
		e := j.done.pop()
		if !j.doneCurrent(e) {
			continue // written again since: a newer entry stands for it
		}
		if err := j.delLocked(e.key, e.seq); err != nil {
			j.done.unpop(e)
			return err
		}
		j.done.live--
	}
	j.done.tidy(j.doneCurrent)
	return nil
}

// doneCurrent reports whether e is still its key's record.
func (j *Journal) doneCurrent(e doneKey) bool {
	s, ok := j.index[e.key]
	return ok && s.seq == e.seq
}

// loadDone queues the done records found at Open, oldest first, and drops
// the oldest beyond the limit.
func (j *Journal) loadDone() error {
	for _, e := range j.entries(donePrefix) {
		j.done.push(e.key, e.seq, true)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.evictDone()
}

// attemptOf reads the varint attempt at the start of a task, done or
// result record; 0 if there is none.
func attemptOf(val []byte) int {
	a, _ := splitAttempt(val)
	return a
}

// splitAttempt splits a record into the varint attempt it starts with and
// the rest. One that does not start with a varint (no writer of this
// package makes such) gets attempt 0 and all bytes as the rest.
func splitAttempt(val []byte) (attempt int, rest []byte) {
	a, n := binary.Varint(val)
	if n <= 0 {
		return 0, val
	}
	return int(a), val[n:]
}

// doneQueue holds the done keys in the order their records were written,
// oldest first, each with the record's sequence. A key written again (a
// newer attempt) is queued again; its older entry goes stale and is
// skipped. Guarded by Journal.mu.
type doneQueue struct {
	keys []doneKey
	head int // keys before head were popped
	live int // done records in the index
}

type doneKey struct {
	key string
	seq uint64
}

func (q *doneQueue) push(key string, seq uint64, added bool) {
	q.keys = append(q.keys, doneKey{key: key, seq: seq})
	if added {
		q.live++
	}
}

func (q *doneQueue) pop() doneKey {
	e := q.keys[q.head]
	q.keys[q.head] = doneKey{}
	q.head++
	return e
}

// unpop puts back the entry pop returned last.
func (q *doneQueue) unpop(e doneKey) {
	q.head--
	q.keys[q.head] = e
}

// tidy rebuilds the queue once the popped slots are half of it, or once
// stale entries outnumber the live ones, so it stays within about twice
// the live records.
func (q *doneQueue) tidy(current func(doneKey) bool) {
	popped := q.head >= 64 && q.head >= len(q.keys)/2
	stale := len(q.keys)-q.head > 2*q.live+64
	if !popped && !stale {
		return
	}
	kept := make([]doneKey, 0, q.live)
	for _, e := range q.keys[q.head:] {
		if current(e) {
			kept = append(kept, e)
		}
	}
	q.keys, q.head = kept, 0
}
