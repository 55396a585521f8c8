package journal

import (
	"errors"
	"fmt"
	"os"
	"slices"
)

// maybeCompact compacts once the dead bytes exceed both the threshold and
// the live bytes. A compaction that fails leaves the journal as it was; it
// is retried after another threshold's worth of dead bytes.
func (j *Journal) maybeCompact() {
	dead := j.size - j.live
	if dead < j.opts.compactBytes || dead <= j.live || dead < j.retryAt {
		return
	}
	if err := j.compact(); err != nil {
		j.stats.CompactErrors++
		j.retryAt = dead + j.opts.compactBytes
		j.reportError(err)
	}
}

// compact writes the live records, oldest first, to journal.compact,
// renames it over the journal and appends to the new file from then on.
// With WithSync the new file and the directory are fsynced first; without
// it, like every other write, the compaction survives a killed process
// (rename is atomic) but not a power loss, and costs no disk flush, which
// would stall every writer behind the journal's lock.
func (j *Journal) compact() error {
	tmp := j.path(compactName)
	size, err := j.writeLive(tmp)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, j.path(fileName)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("journal: compact: %w", err)
	}
	if j.opts.sync {
		if err := syncDir(j.dir); err != nil {
			return err // the new file is in place; only its durability is in doubt
		}
	}
	return j.reopen(size)
}

// writeLive writes every live record to path (fsyncing it WithSync).
func (j *Journal) writeLive(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("journal: compact: %w", err)
	}
	var buf []byte
	var size int64
	for _, e := range j.sorted() {
		buf = appendRecord(buf, opPut, e.key, e.val)
		if len(buf) >= 1<<20 {
			size += int64(len(buf))
			if _, err = f.Write(buf); err != nil {
				break
			}
			buf = buf[:0]
		}
	}
	if err == nil {
		size += int64(len(buf))
		_, err = f.Write(buf)
	}
	if err == nil && j.opts.sync {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return 0, fmt.Errorf("journal: compact: %w", err)
	}
	return size, nil
}

// sorted returns every live record in the order it was written.
func (j *Journal) sorted() []slotEntry {
	out := make([]slotEntry, 0, len(j.index))
	for k, s := range j.index {
		out = append(out, slotEntry{key: k, slot: s})
	}
	slices.SortFunc(out, func(a, b slotEntry) int { return compareSeq(a.seq, b.seq) })
	return out
}

// reopen switches appends to the freshly renamed journal file.
func (j *Journal) reopen(size int64) error {
	f, err := os.OpenFile(j.path(fileName), os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: compact: reopen: %w", err)
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.size, j.live = f, size, size
	j.stats.Compactions++
	return nil
}
