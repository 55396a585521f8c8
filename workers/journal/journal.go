package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// File names inside the journal's directory.
const (
	fileName    = "journal"
	compactName = "journal.compact" // being written by a compaction
	corruptName = "journal.corrupt" // the last damaged journal, set aside
	lockName    = "journal.lock"
)

// DefaultCompactBytes is the dead space that, once it is also more than
// half the file, makes the journal rewrite itself.
const DefaultCompactBytes = 1 << 20

// Errors.
var (
	// ErrClosed: the journal was closed.
	ErrClosed = errors.New("journal: closed")
	// ErrLocked: another process (or another Journal in this one) has the
	// journal open.
	ErrLocked = errors.New("journal: in use by another process")
	// ErrInvalid: a key or value the journal cannot hold.
	ErrInvalid = errors.New("journal: invalid record")
)

// Journal is an append-only file of keyed records with an in-memory index.
// It is safe for concurrent use.
type Journal struct {
	dir  string
	opts options
	lock *os.File
	// interrupted: tasks found at Open, with their record sequence.
	interrupted []slotEntry
	// dropped: kept results beyond the limit at Open (DroppedAtOpen).
	dropped []Result
	store   *Store

	mu      sync.Mutex
	f       *os.File // nil once closed
	broken  error    // a failed write that could not be undone: refuse writes
	index   map[string]*slot
	seq     uint64 // of the last record
	size    int64  // bytes in the file
	live    int64  // bytes of the records the index points at
	buf     []byte // record being written
	retryAt int64  // dead bytes at which a failed compaction is retried
	done    doneQueue
	results resultTally
	stats   Stats
}

// slot is the live record of a key.
type slot struct {
	seq  uint64 // order of writing, for All and compaction
	val  []byte
	size int64 // encoded size in the file
}

type slotEntry struct {
	key string
	*slot
}

// Stats describes the journal; the counters cover the life of this Journal.
type Stats struct {
	Records   int   // live records
	Size      int64 // bytes in the file
	LiveBytes int64 // bytes of live records
	DeadBytes int64 // bytes of deleted or overwritten records

	Compactions   uint64
	CompactErrors uint64 // compactions that failed (the journal carries on uncompacted)
	WriteErrors   uint64 // records that could not be written

	// What Open found.
	TornBytes    int64 // an incomplete last record, truncated away
	Corrupt      int   // damaged records (replay stops at the first)
	DroppedBytes int64 // bytes from the damaged record to the end of the file
}

// options are set by Option functions.
type options struct {
	sync         bool
	compactBytes int64
	doneLimit    int
	resultLimit  int
	resultBytes  int64
	onError      func(error)
}

// Option configures Open.
type Option func(*options) error

// WithSync makes every record durable (fsync) before the call that wrote
// it returns. Without it a record survives a killed process, not a power
// loss.
func WithSync(sync bool) Option {
	return func(o *options) error { o.sync = sync; return nil }
}

// WithCompactBytes sets the dead bytes that trigger a compaction (once they
// are also half the file); DefaultCompactBytes by default.
func WithCompactBytes(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("journal: compact bytes %d: want > 0", n)
		}
		o.compactBytes = n
		return nil
	}
}

// WithOnError sets a function called with the errors nobody else can be
// told of: failed writes through the Store (paho's interface returns no
// errors) and failed compactions. It runs on the writing goroutine and
// must not call the journal.
func WithOnError(fn func(error)) Option {
	return func(o *options) error { o.onError = fn; return nil }
}

// Open opens the journal in dir, creating both if needed, and replays it
// (see the package documentation for what it does with damage). Close it
// when done.
func Open(dir string, opts ...Option) (*Journal, error) {
	o := options{compactBytes: DefaultCompactBytes, doneLimit: DefaultDoneLimit, resultLimit: DefaultResultLimit, resultBytes: DefaultResultBytes}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	j := &Journal{dir: dir, opts: o, lock: lock, index: map[string]*slot{}}
	j.store = &Store{j: j, mem: map[string]memEntry{}}
	if err := j.load(); err != nil {
		lock.Close()
		return nil, err
	}
	j.interrupted = j.entries(taskPrefix)
	if err := j.loadDone(); err != nil {
		j.Close()
		return nil, err
	}
	if j.dropped, err = j.loadResults(); err != nil {
		j.Close()
		return nil, err
	}
	return j, nil
}

func (j *Journal) path(name string) string { return filepath.Join(j.dir, name) }

// Close closes the file; later calls fail with ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return errors.Join(err, j.lock.Close())
}

// Stats returns the journal's sizes and counters.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.stats
	s.Records, s.Size, s.LiveBytes, s.DeadBytes = len(j.index), j.size, j.live, j.size-j.live
	return s
}

// put writes a put record and indexes it.
func (j *Journal) put(key string, val []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.putLocked(key, val)
}

func (j *Journal) putLocked(key string, val []byte) error {
	n, err := j.write(opPut, key, val)
	if err != nil {
		return err
	}
	j.forget(key)
	j.index[key] = &slot{seq: j.seq, val: bytes.Clone(val), size: n}
	j.live += n
	j.maybeCompact()
	return nil
}

// del writes a delete record if key is live; deleting nothing writes
// nothing.
func (j *Journal) del(key string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.delLocked(key, 0)
}

// delLocked deletes key, only if its record is seq when seq is not 0.
func (j *Journal) delLocked(key string, seq uint64) error {
	s, ok := j.index[key]
	if !ok || (seq != 0 && s.seq != seq) {
		return nil
	}
	if _, err := j.write(opDel, key, nil); err != nil {
		return err
	}
	j.forget(key)
	j.maybeCompact()
	return nil
}

// forget drops key from the index, its bytes becoming dead.
func (j *Journal) forget(key string) {
	if s, ok := j.index[key]; ok {
		j.live -= s.size
		delete(j.index, key)
	}
}

// get returns the value of key; callers must not modify it.
func (j *Journal) get(key string) ([]byte, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s, ok := j.index[key]
	if !ok {
		return nil, false
	}
	return s.val, true
}

// entries returns the live records whose key starts with prefix, in the
// order they were written.
func (j *Journal) entries(prefix string) []slotEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.entriesLocked(prefix)
}

func (j *Journal) entriesLocked(prefix string) []slotEntry {
	var out []slotEntry
	for k, s := range j.index {
		if strings.HasPrefix(k, prefix) {
			out = append(out, slotEntry{key: k, slot: s})
		}
	}
	slices.SortFunc(out, func(a, b slotEntry) int { return compareSeq(a.seq, b.seq) })
	return out
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// write appends one record with a single write(2), fsyncing it if asked.
// A failed write is truncated away; if that fails too, the journal refuses
// further writes, since a record appended after garbage would be lost.
func (j *Journal) write(op byte, key string, val []byte) (int64, error) {
	err := j.writable(key, val)
	if err == nil {
		j.buf = appendRecord(j.buf[:0], op, key, val)
		err = j.append(j.buf)
	}
	if err != nil {
		j.stats.WriteErrors++
		return 0, err
	}
	j.seq++
	n := int64(len(j.buf))
	j.size += n
	if cap(j.buf) > 64<<10 {
		j.buf = nil // do not pin one large message's buffer
	}
	return n, nil
}

func (j *Journal) writable(key string, val []byte) error {
	switch {
	case j.f == nil:
		return ErrClosed
	case j.broken != nil:
		return j.broken
	}
	return checkRecord(key, val)
}

func (j *Journal) append(b []byte) error {
	_, err := j.f.Write(b)
	if err == nil && j.opts.sync {
		err = j.f.Sync()
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("journal: write: %w", err)
	if terr := j.f.Truncate(j.size); terr != nil {
		j.broken = fmt.Errorf("journal: unusable after a failed write: %w", errors.Join(err, terr))
		return j.broken
	}
	return err
}

// reportError passes an error the Store could not return to the
// WithOnError callback.
func (j *Journal) reportError(err error) {
	if err != nil && j.opts.onError != nil {
		j.opts.onError(err)
	}
}
