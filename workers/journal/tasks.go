package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// taskPrefix keys the task records: "t.<task id>".
const taskPrefix = "t."

// Entry is a task accepted and not finished.
type Entry struct {
	TaskID  string
	Attempt int
	// Start is what Accepted was given to describe the task.
	Start []byte

	seq uint64 // of its record, so clearing it cannot clear a newer one
}

// Accepted records that a task was accepted. Call it before running the
// task (and before acknowledging its start), so that a crash from now on
// finds it in Interrupted. Accepting a task id again replaces its entry.
func (j *Journal) Accepted(taskID string, attempt int, start []byte) error {
	if taskID == "" {
		return fmt.Errorf("%w: empty task id", ErrInvalid)
	}
	val := binary.AppendVarint(nil, int64(attempt))
	return j.put(taskPrefix+taskID, append(val, start...))
}

// Finished records that an attempt of a task is over: its result is in
// the session store (or was delivered), so a crash no longer interrupts
// it, and the attempt is done (see Done). The task's entry goes unless it
// is of a newer attempt (accepted while this one was still ending).
// Finishing a task the journal does not hold records it done all the same.
func (j *Journal) Finished(taskID string, attempt int) error {
	if taskID == "" {
		return fmt.Errorf("%w: empty task id", ErrInvalid)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.markDone(taskID, attempt); err != nil {
		return err
	}
	s, ok := j.index[taskPrefix+taskID]
	if !ok || attemptOf(s.val) > attempt {
		return nil
	}
	return j.delLocked(taskPrefix+taskID, s.seq)
}

// Interrupted returns the tasks that were accepted and not finished when
// the journal was opened (a previous process died running them) and are
// still unfinished, oldest first. Report each, then Clear it.
func (j *Journal) Interrupted() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []Entry
	for _, e := range j.interrupted {
		if s, ok := j.index[e.key]; ok && s.seq == e.seq {
			out = append(out, decodeEntry(e.key, e.slot))
		}
	}
	return out
}

// Clear finishes an interrupted task once it is reported: its attempt is
// done (see Done) and its entry goes, unless the task was accepted again
// since Open (then the newer entry stays).
func (j *Journal) Clear(e Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.markDone(e.TaskID, e.Attempt); err != nil {
		return err
	}
	return j.delLocked(taskPrefix+e.TaskID, e.seq)
}

// decodeEntry reads a task record. One that does not start with a varint
// (no writer of this package makes such) gets attempt 0 and all bytes as
// Start.
func decodeEntry(key string, s *slot) Entry {
	attempt, start := splitAttempt(s.val)
	return Entry{TaskID: strings.TrimPrefix(key, taskPrefix), Attempt: attempt, Start: bytes.Clone(start), seq: s.seq}
}
