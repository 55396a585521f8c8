package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
)

// tiersDir, under Options.CacheDir, holds one empty file per digest the
// optimizing compiler compiled into wazero's disk cache: a module found
// there is compiled by the compiler at once (a disk cache hit costs a
// read), not by the interpreter first.
const tiersDir = "jetprop-optimized"

// MaxPromotions is how many promotions compile at once; the others wait
// their turn (their modules interpreted meanwhile), so background
// compiles take at most this many cores from the invocations.
const MaxPromotions = 1

// tiers runs the promotions of modules compiled by the interpreter to the
// optimizing compiler, in the background: Close cancels and waits for
// them.
type tiers struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	dir    string        // tiersDir under the cache dir; empty: no disk cache
	slots  chan struct{} // MaxPromotions
	// hold, when set (tests only), delays each promotion until it closes.
	hold chan struct{}

	promoted atomic.Uint64
	failed   atomic.Uint64
}

func newTiers(cacheDir string) *tiers {
	t := &tiers{slots: make(chan struct{}, MaxPromotions)}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	if cacheDir != "" {
		t.dir = filepath.Join(cacheDir, tiersDir)
	}
	return t
}

// interpreterConfig is cfg's settings (memory limit, interruptibility,
// debug info) for wazero's interpreter. No compilation cache: the
// interpreter keeps nothing on disk, and each runtime has its own.
func interpreterConfig(limit uint32, closeOnDone bool) wazero.RuntimeConfig {
	return wazero.NewRuntimeConfigInterpreter().
		WithMemoryLimitPages(limit).
		WithCloseOnContextDone(closeOnDone).
		WithDebugInfoEnabled(false)
}

// promoteLater compiles bin with e's optimizing compiler in the
// background and swaps it in for c's interpreted tier when done. The Runs
// on the interpreter's tier finish on it; the last one closes it.
func (t *tiers) promoteLater(e *engine, c *compiled, digest string, bin []byte) {
	t.wg.Go(func() {
		if t.hold != nil {
			select {
			case <-t.hold:
			case <-t.ctx.Done():
				return
			}
		}
		select {
		case t.slots <- struct{}{}:
		case <-t.ctx.Done():
			return
		}
		mod, err := e.rt.CompileModule(t.ctx, bin) // checked by the first compile
		<-t.slots
		if err != nil {
			t.failed.Add(1) // the interpreter keeps serving it
			return
		}
		e.promote(c, &tier{rt: e.rt, mod: mod})
		t.promoted.Add(1)
		t.remember(digest)
	})
}

// promote makes fast the tier of c's next Runs.
func (e *engine) promote(c *compiled, fast *tier) {
	e.mu.Lock()
	old, gone := c.cur, c.gone
	if !gone {
		c.cur = fast
	}
	idle := old.runs == 0
	e.mu.Unlock()
	switch {
	case gone:
		_ = fast.mod.Close(context.Background())
	case idle:
		_ = old.mod.Close(context.Background())
	}
}

// remember marks digest as compiled into the disk cache (best effort: a
// missing mark costs an interpreted start, not a failure).
func (t *tiers) remember(digest string) {
	if t.dir == "" {
		return
	}
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		t.failed.Add(1)
		return
	}
	if err := os.WriteFile(t.mark(digest), nil, 0o600); err != nil {
		t.failed.Add(1)
	}
}

// onDisk reports whether digest's optimized code is in the disk cache.
func (t *tiers) onDisk(digest string) bool {
	if t.dir == "" {
		return false
	}
	_, err := os.Stat(t.mark(digest))
	return err == nil
}

// mark is digest's file name: its hash, whatever characters it holds.
func (t *tiers) mark(digest string) string {
	h := sha256.Sum256([]byte(digest))
	return filepath.Join(t.dir, hex.EncodeToString(h[:]))
}

// close cancels the promotions under way and waits for them.
func (t *tiers) close() {
	t.cancel()
	t.wg.Wait()
}
