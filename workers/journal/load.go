package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// load replays the file into the index, repairs what a crash or damage
// left behind, and opens the file for appending.
func (j *Journal) load() error {
	b, err := os.ReadFile(j.path(fileName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	end, err := j.replay(b)
	j.size = int64(end)
	if errors.Is(err, errCorrupt) {
		return j.setAside(len(b) - end)
	}
	if err := j.openAppend(); err != nil {
		return err
	}
	if end < len(b) { // torn last record
		j.stats.TornBytes = int64(len(b) - end)
		if err := j.truncateTail(); err != nil {
			return err
		}
	}
	j.maybeCompact()
	return nil
}

// replay applies the records of b in order and returns where the good
// records end, with errShort or errCorrupt when that is before len(b).
func (j *Journal) replay(b []byte) (int, error) {
	off := 0
	for off < len(b) {
		rec, n, err := decodeRecord(b[off:])
		if err != nil {
			return off, err
		}
		j.apply(rec, int64(n))
		off += n
	}
	return off, nil
}

func (j *Journal) apply(rec record, n int64) {
	j.seq++
	j.forget(rec.key)
	if rec.op == opPut {
		j.index[rec.key] = &slot{seq: j.seq, val: bytes.Clone(rec.val), size: n}
		j.live += n
	}
}

// setAside keeps a damaged journal as journal.corrupt and writes the
// records read before the damage to a fresh journal.
func (j *Journal) setAside(dropped int) error {
	j.stats.Corrupt, j.stats.DroppedBytes = 1, int64(dropped)
	if err := os.Rename(j.path(fileName), j.path(corruptName)); err != nil {
		return fmt.Errorf("journal: set aside a damaged journal: %w", err)
	}
	return j.compact()
}

// openAppend opens the journal file for appending, creating it if needed.
func (j *Journal) openAppend() error {
	_, statErr := os.Stat(j.path(fileName))
	f, err := os.OpenFile(j.path(fileName), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.f = f
	if errors.Is(statErr, fs.ErrNotExist) && j.opts.sync {
		return syncDir(j.dir)
	}
	return nil
}

func (j *Journal) truncateTail() error {
	err := j.f.Truncate(j.size)
	if err == nil && j.opts.sync {
		err = j.f.Sync()
	}
	if err != nil {
		j.f.Close()
		j.f = nil
		return fmt.Errorf("journal: truncate a torn record: %w", err)
	}
	return nil
}

// syncDir makes renames and creations in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("journal: sync dir: %w", err)
	}
	return nil
}
