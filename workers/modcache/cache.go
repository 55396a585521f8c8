package modcache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
)

// Errors callers branch on.
var (
	// ErrNotFound: the module is not in the cache.
	ErrNotFound = errors.New("modcache: module not cached")
	// ErrMismatch: the assembled module is not the one announced (digest
	// or size).
	ErrMismatch = errors.New("modcache: module mismatch")
	// ErrIncomplete: Commit was called before every chunk arrived.
	ErrIncomplete = errors.New("modcache: download incomplete")
)

// PartialMaxAge is how long Open keeps a download in progress that nobody
// touched.
const PartialMaxAge = 72 * time.Hour

const (
	blobDir    = "sha256"
	partialDir = "partial"
	tmpDir     = "tmp"
)

// Cache is the on-disk module cache.
type Cache struct {
	dir string
	max int64

	mu      sync.Mutex
	entries map[string]*entry // by hex digest
	size    int64
}

type entry struct {
	size     int64
	used     time.Time
	verified bool // hashed by this process (committed, or read once)
}

// Stats describes the cache.
type Stats struct {
	Modules int
	Bytes   int64
	Max     int64
}

// Open opens (creating) the cache in dir, bounded to maxBytes of modules,
// and rebuilds its index from the files there. It removes leftovers of
// interrupted assemblies and downloads untouched for PartialMaxAge.
func Open(dir string, maxBytes int64) (*Cache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("modcache: bound of %d bytes: want > 0", maxBytes)
	}
	for _, d := range []string{blobDir, partialDir, tmpDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("modcache: %w", err)
		}
	}
	c := &Cache{dir: dir, max: maxBytes, entries: map[string]*entry{}}
	if err := c.load(); err != nil {
		return nil, err
	}
	c.clean(time.Now())
	c.mu.Lock()
	c.trim("")
	c.mu.Unlock()
	return c, nil
}

// load indexes sha256/; files that are not named by a digest are removed.
func (c *Cache) load() error {
	des, err := os.ReadDir(filepath.Join(c.dir, blobDir))
	if err != nil {
		return fmt.Errorf("modcache: %w", err)
	}
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if !domain.ValidDigest(domain.DigestPrefix+de.Name()) || !info.Mode().IsRegular() {
			_ = os.RemoveAll(filepath.Join(c.dir, blobDir, de.Name()))
			continue
		}
		c.entries[de.Name()] = &entry{size: info.Size(), used: info.ModTime()}
		c.size += info.Size()
	}
	return nil
}

// clean empties tmp/ and removes stale downloads.
func (c *Cache) clean(now time.Time) {
	tmp := filepath.Join(c.dir, tmpDir)
	if des, err := os.ReadDir(tmp); err == nil {
		for _, de := range des {
			_ = os.RemoveAll(filepath.Join(tmp, de.Name()))
		}
	}
	parts := filepath.Join(c.dir, partialDir)
	des, err := os.ReadDir(parts)
	if err != nil {
		return
	}
	for _, de := range des {
		if info, err := de.Info(); err == nil && now.Sub(info.ModTime()) > PartialMaxAge {
			_ = os.RemoveAll(filepath.Join(parts, de.Name()))
		}
	}
}

func (c *Cache) blobPath(hexDigest string) string { return filepath.Join(c.dir, blobDir, hexDigest) }

// Has reports whether a module is cached.
func (c *Cache) Has(digest string) bool {
	h, err := domain.ParseDigest(digest)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[h] != nil
}

// Read returns a cached module and marks it used. The first Read of a
// module found on disk by Open hashes it: one a power cut left torn is
// removed and reported not found, to be downloaded again.
func (c *Cache) Read(digest string) ([]byte, error) {
	h, err := domain.ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	verified, ok := c.touch(h)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, digest)
	}
	b, err := os.ReadFile(c.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		c.drop(h)
		return nil, fmt.Errorf("%w: %s", ErrNotFound, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("modcache: read %s: %w", digest, err)
	}
	if !verified {
		if domain.DigestOf(b) != domain.DigestPrefix+h {
			c.drop(h)
			return nil, fmt.Errorf("%w: %s (the cached file was damaged, and removed)", ErrNotFound, digest)
		}
		c.verified(h)
	}
	return b, nil
}

// touch marks a module used, in the index and in its file's mtime.
func (c *Cache) touch(h string) (verified, ok bool) {
	now := time.Now()
	c.mu.Lock()
	e := c.entries[h]
	if e != nil {
		e.used, verified = now, e.verified
	}
	c.mu.Unlock()
	if e != nil {
		_ = os.Chtimes(c.blobPath(h), now, now) // order only; the index has it
	}
	return verified, e != nil
}

func (c *Cache) verified(h string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[h]; e != nil {
		e.verified = true
	}
}

// drop removes a module that is gone or damaged.
func (c *Cache) drop(h string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[h] != nil {
		c.remove(h)
	}
}

// Stats returns the number and total size of the cached modules.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Modules: len(c.entries), Bytes: c.size, Max: c.max}
}

// Digests lists the cached modules, least recently used first.
func (c *Cache) Digests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	hs := c.lru()
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = domain.DigestPrefix + h
	}
	return out
}

// lru returns the hex digests, least recently used first. Called with c.mu held.
func (c *Cache) lru() []string {
	hs := make([]string, 0, len(c.entries))
	for h := range c.entries {
		hs = append(hs, h)
	}
	slices.SortFunc(hs, func(a, b string) int {
		if d := c.entries[a].used.Compare(c.entries[b].used); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return hs
}

// trim removes least recently used modules, keep last, until the bound
// holds; a keep larger than the whole bound is removed alone. Called with
// c.mu held.
func (c *Cache) trim(keep string) {
	if c.size <= c.max {
		return
	}
	if e := c.entries[keep]; e != nil && e.size > c.max {
		c.remove(keep)
		return
	}
	for _, h := range c.lru() {
		if c.size <= c.max {
			return
		}
		if h != keep {
			c.remove(h)
		}
	}
}

// remove deletes a module. Called with c.mu held.
func (c *Cache) remove(h string) {
	if err := os.Remove(c.blobPath(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return // still counted: the file is still there
	}
	c.size -= c.entries[h].size
	delete(c.entries, h)
}

// Commit assembles a complete download into the cache: it streams the
// chunks in order into one file while hashing them, checks the digest
// against want (when not empty) and the size against the one announced in
// the partial's Meta (when not zero), installs the file and removes the
// partial. It returns the digest and the module, read once from the
// installed file. On ErrMismatch nothing is installed and the partial is
// left as it was: the caller decides whether to Reset it.
func (c *Cache) Commit(p *Partial, want string) (string, []byte, error) {
	if !p.Complete() {
		return "", nil, fmt.Errorf("%w: %d of %d chunks", ErrIncomplete, p.Count(), p.meta.Total)
	}
	tmp, digest, n, err := c.assemble(p)
	if err != nil {
		return "", nil, err
	}
	defer os.Remove(tmp) // a no-op once renamed
	h := domain.DigestHex(digest)
	if err := checkAssembled(digest, n, want, p.meta.Size); err != nil {
		return "", nil, err
	}
	if err := os.Rename(tmp, c.blobPath(h)); err != nil {
		return "", nil, fmt.Errorf("modcache: install %s: %w", digest, err)
	}
	c.add(h, n)
	if err := p.Remove(); err != nil {
		return "", nil, err
	}
	b, err := os.ReadFile(c.blobPath(h))
	if err != nil {
		return "", nil, fmt.Errorf("modcache: read %s: %w", digest, err)
	}
	c.mu.Lock()
	c.trim(h)
	c.mu.Unlock()
	return digest, b, nil
}

func checkAssembled(digest string, n int64, want string, size int64) error {
	if want != "" && digest != want {
		return fmt.Errorf("%w: the chunks assemble to %s, want %s", ErrMismatch, digest, want)
	}
	if size > 0 && n != size {
		return fmt.Errorf("%w: the chunks assemble to %d bytes, announced %d", ErrMismatch, n, size)
	}
	return nil
}

// assemble writes p's chunks into a temp file and returns its path, hex
// digest and size.
func (c *Cache) assemble(p *Partial) (path, digest string, n int64, err error) {
	f, err := os.CreateTemp(filepath.Join(c.dir, tmpDir), "module-*")
	if err != nil {
		return "", "", 0, fmt.Errorf("modcache: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("modcache: %w", cerr)
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	hash := domain.NewHasher()
	if n, err = p.writeTo(io.MultiWriter(f, hash)); err != nil {
		return "", "", 0, err
	}
	return f.Name(), hash.Digest(), n, nil
}

// add indexes an installed module as just used; its mtime is set from the
// same clock as Read's, since the file system's own timestamps are coarser.
func (c *Cache) add(h string, n int64) {
	now := time.Now()
	_ = os.Chtimes(c.blobPath(h), now, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[h]; old != nil {
		c.size -= old.size
	}
	c.entries[h] = &entry{size: n, used: now, verified: true}
	c.size += n
}
