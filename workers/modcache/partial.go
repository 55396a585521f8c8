package modcache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// MaxChunks bounds total_chunks (the most a registry request may list).
const MaxChunks = 1 << 16

// ErrBadChunk: an index outside the download's chunks, or a total that
// does not fit.
var ErrBadChunk = errors.New("modcache: bad chunk")

const metaFile = "meta.json"

// Meta describes a download in progress.
type Meta struct {
	AppName string `json:"app_name"`
	Digest  string `json:"digest,omitempty"` // expected, when known
	Size    int64  `json:"size,omitempty"`   // expected, when known
	Total   int    `json:"total_chunks,omitempty"`
}

// Partial is the chunks of one module received so far, kept on disk under
// a key derived from its app_name. It is not safe for concurrent use.
type Partial struct {
	dir   string
	meta  Meta
	have  []bool
	count int
	bytes int64
}

// Partial opens the download of appName, with the chunks an earlier run
// kept, or an empty one. A download whose files do not agree with each
// other starts again empty.
func (c *Cache) Partial(appName string) (*Partial, error) {
	sum := sha256.Sum256([]byte(appName))
	p := &Partial{dir: filepath.Join(c.dir, partialDir, hex.EncodeToString(sum[:16]))}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, fmt.Errorf("modcache: %w", err)
	}
	now := time.Now()
	_ = os.Chtimes(p.dir, now, now) // in use: not stale
	if err := p.load(appName); err != nil {
		if err := p.Reset(); err != nil {
			return nil, err
		}
		p.meta.AppName = appName
	}
	return p, nil
}

// load reads meta.json and indexes the chunk files; any disagreement is an
// error (and the caller starts afresh).
func (p *Partial) load(appName string) error {
	b, err := os.ReadFile(filepath.Join(p.dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		p.meta = Meta{AppName: appName}
		return p.loadChunks() // no chunk is written before the meta
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &p.meta); err != nil || p.meta.AppName != appName || p.meta.Total < 0 || p.meta.Total > MaxChunks {
		return fmt.Errorf("%w: meta %s", ErrBadChunk, b)
	}
	p.have = make([]bool, p.meta.Total)
	return p.loadChunks()
}

func (p *Partial) loadChunks() error {
	des, err := os.ReadDir(p.dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		name := de.Name()
		if name == metaFile {
			continue
		}
		idx, err := strconv.Atoi(name)
		if err != nil || idx < 0 || idx >= len(p.have) || p.have[idx] {
			_ = os.Remove(filepath.Join(p.dir, name)) // a temp file cut short, or a stray
			if err == nil {
				return fmt.Errorf("%w: chunk file %s outside the %d chunks", ErrBadChunk, name, len(p.have))
			}
			continue
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		p.have[idx], p.count, p.bytes = true, p.count+1, p.bytes+info.Size()
	}
	return nil
}

// Meta returns what is known of the download.
func (p *Partial) Meta() Meta { return p.meta }

// SetMeta records what is known of the download. The total may be set
// once (Reset clears it).
func (p *Partial) SetMeta(m Meta) error {
	if m.Total < 0 || m.Total > MaxChunks {
		return fmt.Errorf("%w: total_chunks %d outside 1..%d", ErrBadChunk, m.Total, MaxChunks)
	}
	if p.meta.Total != 0 && m.Total != p.meta.Total {
		return fmt.Errorf("%w: total_chunks %d, the download has %d", ErrBadChunk, m.Total, p.meta.Total)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(p.dir, metaFile), b); err != nil {
		return err
	}
	if p.meta.Total == 0 {
		p.have = make([]bool, m.Total)
	}
	p.meta = m
	return nil
}

// Put stores chunk idx unless it is there already; added is false for a
// duplicate. The total must be set first.
func (p *Partial) Put(idx int, data []byte) (added bool, err error) {
	if idx < 0 || idx >= len(p.have) {
		return false, fmt.Errorf("%w: chunk index %d outside 0..%d", ErrBadChunk, idx, len(p.have)-1)
	}
	if p.have[idx] {
		return false, nil
	}
	if err := writeFileAtomic(filepath.Join(p.dir, strconv.Itoa(idx)), data); err != nil {
		return false, err
	}
	p.have[idx], p.count, p.bytes = true, p.count+1, p.bytes+int64(len(data))
	return true, nil
}

// Has reports whether chunk idx is stored.
func (p *Partial) Has(idx int) bool { return idx >= 0 && idx < len(p.have) && p.have[idx] }

// Count is the number of chunks stored.
func (p *Partial) Count() int { return p.count }

// Bytes is the size of the chunks stored.
func (p *Partial) Bytes() int64 { return p.bytes }

// Complete reports whether every chunk is stored (and the total is known).
func (p *Partial) Complete() bool { return p.meta.Total > 0 && p.count == p.meta.Total }

// Missing lists the indexes not stored yet, nil while the total is unknown.
func (p *Partial) Missing() []int {
	var out []int
	for i, ok := range p.have {
		if !ok {
			out = append(out, i)
		}
	}
	return out
}

// Reset discards every chunk and what is known of the download but its
// app_name.
func (p *Partial) Reset() error {
	if err := os.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("modcache: reset download: %w", err)
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return fmt.Errorf("modcache: %w", err)
	}
	p.meta, p.have, p.count, p.bytes = Meta{AppName: p.meta.AppName}, nil, 0, 0
	return nil
}

// Remove deletes the download from disk.
func (p *Partial) Remove() error {
	if err := os.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("modcache: remove download: %w", err)
	}
	return nil
}

// writeTo copies the chunks in order to w.
func (p *Partial) writeTo(w io.Writer) (int64, error) {
	var n int64
	for i := range p.meta.Total {
		m, err := copyFile(w, filepath.Join(p.dir, strconv.Itoa(i)))
		n += m
		if err != nil {
			return n, fmt.Errorf("modcache: chunk %d: %w", i, err)
		}
	}
	return n, nil
}

func copyFile(w io.Writer, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.Copy(w, f)
}

// writeFileAtomic writes a temp file and renames it over path, so path is
// whole or absent after a crash.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("modcache: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("modcache: %w", err)
	}
	return nil
}
