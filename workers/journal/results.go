package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// resultPrefix keys the results sent and not acknowledged yet:
// "r.<task id>", the attempt (a varint) followed by the result message.
const resultPrefix = "r."

// Defaults of the bound on kept results: the oldest is dropped when
// another would exceed either. 10,000 results is far more than a device
// finishes while its engine is away for minutes; 64 MiB keeps a device's
// disk and memory (the index holds the messages) in check.
const (
	DefaultResultLimit = 10_000
	DefaultResultBytes = 64 << 20
)

// WithResultLimit bounds the results kept (KeepResult): at most n of them
// and size bytes of messages; the oldest are dropped first.
func WithResultLimit(n int, size int64) Option {
	return func(o *options) error {
		if n <= 0 || size <= 0 {
			return fmt.Errorf("journal: result limit %d, %d bytes: want > 0", n, size)
		}
		o.resultLimit, o.resultBytes = n, size
		return nil
	}
}

// Result is a task's result kept until the manager acknowledges it.
type Result struct {
	TaskID  string
	Attempt int
	Message []byte
}

// resultTally counts the kept results and their bytes. Guarded by
// Journal.mu.
type resultTally struct {
	n     int
	bytes int64
}

// KeepResult keeps a task's result until ResultAcked; call it before
// sending the result, so that a crash from then on finds it in Results.
// A task's result kept again replaces the one kept before. When the
// results kept exceed the limit (WithResultLimit), the oldest go; dropped
// lists them.
func (j *Journal) KeepResult(taskID string, attempt int, msg []byte) (dropped []Result, err error) {
	if taskID == "" {
		return nil, fmt.Errorf("%w: empty task id", ErrInvalid)
	}
	key := resultPrefix + taskID
	val := append(binary.AppendVarint(nil, int64(attempt)), msg...)
	j.mu.Lock()
	defer j.mu.Unlock()
	old, had := j.index[key]
	if err := j.putLocked(key, val); err != nil {
		return nil, err
	}
	if had {
		j.results.n--
		j.results.bytes -= int64(len(old.val))
	}
	j.results.n++
	j.results.bytes += int64(len(val))
	return j.evictResults()
}

// ResultAcked drops the kept result of a task if it is of attempt or an
// older one, and reports whether it did.
func (j *Journal) ResultAcked(taskID string, attempt int) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s, ok := j.index[resultPrefix+taskID]
	if !ok || attemptOf(s.val) > attempt {
		return false, nil
	}
	return true, j.dropResult(resultPrefix+taskID, s)
}

// Result returns the kept result of a task.
func (j *Journal) Result(taskID string) (Result, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s, ok := j.index[resultPrefix+taskID]
	if !ok {
		return Result{}, false
	}
	return decodeResult(resultPrefix+taskID, s.val), true
}

// Results returns the kept results, oldest first.
func (j *Journal) Results() []Result {
	kept := j.entries(resultPrefix)
	out := make([]Result, 0, len(kept))
	for _, e := range kept {
		out = append(out, decodeResult(e.key, e.val))
	}
	return out
}

func (j *Journal) dropResult(key string, s *slot) error {
	if err := j.delLocked(key, s.seq); err != nil {
		return err
	}
	j.results.n--
	j.results.bytes -= int64(len(s.val))
	return nil
}

// evictResults drops the oldest results while the kept ones exceed the
// limit, and returns them.
func (j *Journal) evictResults() ([]Result, error) {
	if j.results.n <= j.opts.resultLimit && j.results.bytes <= j.opts.resultBytes {
		return nil, nil
	}
	var dropped []Result
	for _, e := range j.entriesLocked(resultPrefix) {
		if j.results.n <= j.opts.resultLimit && j.results.bytes <= j.opts.resultBytes {
			break
		}
		if err := j.dropResult(e.key, e.slot); err != nil {
			return dropped, err
		}
		dropped = append(dropped, decodeResult(e.key, e.val))
	}
	return dropped, nil
}

// loadResults counts the results found at Open, and drops the oldest
// beyond the limit.
func (j *Journal) loadResults() ([]Result, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range j.entriesLocked(resultPrefix) {
		j.results.n++
		j.results.bytes += int64(len(e.val))
	}
	return j.evictResults()
}

// decodeResult reads a result record: the attempt, then the message.
func decodeResult(key string, val []byte) Result {
	attempt, msg := splitAttempt(val)
	return Result{TaskID: strings.TrimPrefix(key, resultPrefix), Attempt: attempt, Message: bytes.Clone(msg)}
}

// DroppedAtOpen returns the kept results Open dropped because there were
// more than the limit.
func (j *Journal) DroppedAtOpen() []Result { return j.dropped }
