package proxy

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine/domain"
)

// cache keeps pulled modules in files named by their digest, in a
// directory of its own that close removes; at most limit bytes in all, the
// least recently used going first. It is the oci.Store the resolver pulls
// into and the outbound.ModuleOpener the chunk server reads from.
type cache struct {
	dir     string
	maxSize int64 // largest module accepted
	limit   int64 // bytes kept in all
	stats   *counters

	mu      sync.Mutex
	entries map[string]*entry // by digest
	used    int64
	tick    uint64
}

type entry struct {
	size int64
	last uint64 // tick of the last use
}

var (
	_ oci.Store             = (*cache)(nil)
	_ outbound.ModuleOpener = (*cache)(nil)
)

// newCache makes the cache's directory under base ("" for the system's
// temp directory).
func newCache(base string, maxSize, limit int64, stats *counters) (*cache, error) {
	dir, err := os.MkdirTemp(base, "jetprop-proxy-*")
	if err != nil {
		return nil, fmt.Errorf("proxy: module cache: %w", err)
	}
	return &cache{dir: dir, maxSize: maxSize, limit: limit, stats: stats, entries: map[string]*entry{}}, nil
}

func (c *cache) path(digest string) string {
	return filepath.Join(c.dir, domain.DigestHex(digest)+".wasm")
}

// MaxSize is the largest module accepted.
func (c *cache) MaxSize() int64 { return c.maxSize }

// Has reports whether the module is cached, and counts it as used.
func (c *cache) Has(_ context.Context, digest string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[digest]
	if ok {
		c.tick++
		e.last = c.tick
		c.stats.cacheHits.Add(1)
	}
	return ok
}

// Put spools r to a file while hashing it, checks that it is a wasm module
// no larger than the limit, and keeps it under its digest.
func (c *cache) Put(_ context.Context, r io.Reader) (string, int64, error) {
	f, err := os.CreateTemp(c.dir, ".pull-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(f.Name()) // renamed away on success
	digest, n, err := c.spool(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, err
	}
	if err := os.Rename(f.Name(), c.path(digest)); err != nil {
		return "", 0, err
	}
	c.add(digest, n)
	c.stats.pulls.Add(1)
	return digest, n, nil
}

func (c *cache) spool(w io.Writer, r io.Reader) (string, int64, error) {
	return domain.CopyModule(w, r, c.maxSize)
}

// add records a stored file and evicts the least recently used others
// while the cache holds more than its limit.
func (c *cache) add(digest string, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	if e, ok := c.entries[digest]; ok {
		e.last = c.tick
		return
	}
	c.entries[digest] = &entry{size: size, last: c.tick}
	c.used += size
	for c.used > c.limit && len(c.entries) > 1 {
		c.evictOldest(digest)
	}
}

func (c *cache) evictOldest(keep string) {
	var oldest string
	for d, e := range c.entries {
		if d != keep && (oldest == "" || e.last < c.entries[oldest].last) {
			oldest = d
		}
	}
	c.used -= c.entries[oldest].size
	delete(c.entries, oldest)
	_ = os.Remove(c.path(oldest)) // a transfer reading it keeps its open file
}

// Open streams a cached module.
func (c *cache) Open(_ context.Context, digest string) (io.ReadCloser, int64, error) {
	c.mu.Lock()
	e, ok := c.entries[digest]
	if ok {
		c.tick++
		e.last = c.tick
	}
	c.mu.Unlock()
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s is not cached", domain.ErrModuleNotFound, digest)
	}
	f, err := os.Open(c.path(digest))
	if err != nil {
		return nil, 0, err
	}
	return f, e.size, nil
}

// close removes the directory and everything in it.
func (c *cache) close() error { return os.RemoveAll(c.dir) }
