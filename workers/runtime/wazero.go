package runtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// maxAddressablePages is the largest memory wazero runs correctly: its
// compiler (v1.12) reads a memory's length as 32 bits, so a memory of all
// 65536 pages (exactly 4 GiB) looks empty to the guest (memory.size 0,
// every access out of bounds). A limit of MaxMemoryLimitPages is therefore
// applied as one page less.
const maxAddressablePages = MaxMemoryLimitPages - 1

// DefaultMaxModules is how many compiled modules each memory-limit class
// keeps before evicting the least recently used one.
const DefaultMaxModules = 64

// scavengeInterval is the least time between two returns of the Go heap's
// free memory to the OS after traps (see afterTrap).
const scavengeInterval = time.Second

// Options configure the wazero runtime. The zero value is usable.
type Options struct {
	// CacheDir holds wazero's compilation cache on disk, so a restarted
	// proplet does not recompile its modules. Empty: in memory only.
	CacheDir string
	// MemoryLimitPages applies to jobs that do not set their own limit.
	// Zero: DefaultMemoryLimitPages (256 MiB).
	MemoryLimitPages uint32
	// DisableCloseOnContextDone makes guest code uninterruptible: a timeout
	// or stop then takes effect only when the guest returns or calls a host
	// function. It is faster for tight loops (see BenchmarkWazero_Sum) but a
	// module that loops forever can never be stopped. Keep it false unless
	// every module is trusted.
	DisableCloseOnContextDone bool
	// MaxOutput caps stdout (and the stderr kept for error messages) per
	// job. Zero: DefaultMaxOutput.
	MaxOutput int
	// MaxModules bounds the compiled modules kept per memory limit. Zero:
	// DefaultMaxModules.
	MaxModules int
	// Tiered makes Prepare (a latent deployment) compile a module with
	// wazero's interpreter first, which takes a fraction of the optimizing
	// compiler's time, and serve Runs from it while the compiler compiles
	// it in the background; the compiled code then replaces the
	// interpreted one for the Runs that start after (see
	// wazero_tiers.go). Run alone compiles with the compiler, as without.
	Tiered bool
}

func (o *Options) setDefaults() error {
	if o.MemoryLimitPages == 0 {
		o.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if o.MemoryLimitPages > MaxMemoryLimitPages {
		return fmt.Errorf("runtime: memory limit of %d pages is above the wasm maximum of %d", o.MemoryLimitPages, MaxMemoryLimitPages)
	}
	o.MemoryLimitPages = min(o.MemoryLimitPages, maxAddressablePages)
	if o.MaxOutput <= 0 {
		o.MaxOutput = DefaultMaxOutput
	}
	if o.MaxModules <= 0 {
		o.MaxModules = DefaultMaxModules
	}
	return nil
}

// Wazero runs modules in process with wazero. Each module is compiled once
// per content digest and memory limit, and every Run gets a fresh instance.
type Wazero struct {
	opts     Options
	cache    wazero.CompilationCache
	base     wazero.ModuleConfig
	compiles atomic.Uint64
	tiers    *tiers
	// scavenged is when afterTrap last freed memory (unix nanoseconds).
	scavenged atomic.Int64

	mu      sync.Mutex
	engines map[uint32]*engine // one wazero.Runtime per memory limit
	closed  bool
}

var _ Runtime = (*Wazero)(nil)

// NewWazero returns a wazero runtime. Close it to release compiled code.
func NewWazero(ctx context.Context, opts Options) (*Wazero, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	cache, err := newCache(opts.CacheDir)
	if err != nil {
		return nil, err
	}
	w := &Wazero{opts: opts, cache: cache, base: baseModuleConfig(), engines: map[uint32]*engine{}, tiers: newTiers(opts.CacheDir)}
	if _, err := w.engine(ctx, opts.MemoryLimitPages); err != nil {
		_ = cache.Close(ctx)
		return nil, err
	}
	return w, nil
}

func newCache(dir string) (wazero.CompilationCache, error) {
	if dir == "" {
		return wazero.NewCompilationCache(), nil
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, fmt.Errorf("runtime: compilation cache in %s: %w", dir, err)
	}
	return c, nil
}

// baseModuleConfig gives guests real clocks, sleep and randomness (wazero's
// defaults are fake and deterministic) and no file system.
func baseModuleConfig() wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
}

// Run compiles (or reuses) job.Module and runs it in a fresh instance.
func (w *Wazero) Run(ctx context.Context, job Job) (string, error) {
	if len(job.Module) == 0 {
		return "", fmt.Errorf("%w: empty module", ErrInvalidModule)
	}
	if err := checkLimit(job.MemoryLimitPages); err != nil {
		return "", err
	}
	ctx, cancel := withTimeout(ctx, job.Timeout)
	defer cancel()
	e, err := w.engine(ctx, w.limit(job))
	if err != nil {
		return "", err
	}
	c, err := e.acquire(ctx, job.digest(), job.Module, false)
	if err != nil {
		return "", w.runError(ctx, job, err)
	}
	defer e.release(c)
	t := e.enter(c)
	defer e.leave(c, t)
	ctx, release := withArena(ctx)
	defer release()
	out, err := w.invoke(ctx, t, job)
	if err != nil {
		w.afterTrap(err)
		return "", w.runError(ctx, job, err)
	}
	return out, nil
}

// withArena makes the instances created with ctx take their linear memory
// from a fresh arena (where the platform has one); release frees it, once
// the guest has returned.
func withArena(ctx context.Context) (context.Context, func()) {
	if !hasReservedMemory {
		return ctx, func() {}
	}
	a := &arena{}
	return experimental.WithMemoryAllocator(ctx, a), a.release
}

// afterTrap gives the Go heap's free pages back to the OS after a trap, at
// most once per scavengeInterval. A stack overflow leaves wazero's grown
// call stack (up to hundreds of MiB, on the Go heap) as garbage; with no
// allocation to start a GC it stayed resident indefinitely (163 MiB after
// one endless recursion, measured), which FreeOSMemory takes back to the
// idle size. The interval bounds what a stream of trapping tasks costs.
func (w *Wazero) afterTrap(err error) {
	if !errors.Is(err, ErrTrap) {
		return
	}
	now := time.Now().UnixNano()
	last := w.scavenged.Load()
	if now-last < int64(scavengeInterval) || !w.scavenged.CompareAndSwap(last, now) {
		return
	}
	debug.FreeOSMemory()
}

// runError prefers the reason ctx ended over whatever the guest reported.
func (w *Wazero) runError(ctx context.Context, job Job, err error) error {
	if ctx.Err() != nil {
		return stopError(ctx, job.Timeout)
	}
	return err
}

func (w *Wazero) limit(job Job) uint32 {
	if job.MemoryLimitPages == 0 {
		return w.opts.MemoryLimitPages
	}
	return min(job.MemoryLimitPages, maxAddressablePages)
}

// Compiles reports how many modules this runtime has compiled (cache
// misses; a promotion to the optimizing compiler is not one).
func (w *Wazero) Compiles() uint64 { return w.compiles.Load() }

// Promotions reports how many modules compiled by the interpreter (a
// tiered Prepare) were compiled again by the optimizing compiler and
// swapped in, and how many promotions (or their marks in the disk cache)
// failed; a module whose promotion failed stays interpreted.
func (w *Wazero) Promotions() (promoted, failed uint64) {
	return w.tiers.promoted.Load(), w.tiers.failed.Load()
}

// engine returns the runtime for a memory limit, creating it on first use.
// wazero's memory limit is a runtime setting, so each limit gets its own
// runtime; all of them share one compilation cache.
func (w *Wazero) engine(ctx context.Context, limit uint32) (*engine, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	if e, ok := w.engines[limit]; ok {
		return e, nil
	}
	e, err := w.newEngine(ctx, limit)
	if err != nil {
		return nil, err
	}
	w.engines[limit] = e
	return e, nil
}

func (w *Wazero) newEngine(ctx context.Context, limit uint32) (*engine, error) {
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(w.cache).
		WithMemoryLimitPages(limit).
		WithCloseOnContextDone(!w.opts.DisableCloseOnContextDone).
		// DWARF would keep a copy of every custom section resident (a module
		// padded with data keeps it all); traps still name the function.
		WithDebugInfoEnabled(false)
	rt, err := newRuntime(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e := &engine{rt: rt, limit: limit, max: w.opts.MaxModules, compiles: &w.compiles, tiers: w.tiers, modules: map[string]*compiled{}}
	if w.opts.Tiered {
		if e.slow, err = newRuntime(ctx, interpreterConfig(limit, !w.opts.DisableCloseOnContextDone)); err != nil {
			_ = rt.Close(ctx)
			return nil, err
		}
	}
	return e, nil
}

// newRuntime is a wazero runtime of cfg with WASI.
func newRuntime(ctx context.Context, cfg wazero.RuntimeConfig) (wazero.Runtime, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("runtime: instantiate WASI: %w", err)
	}
	return rt, nil
}

// Close closes every runtime (stopping running guests) and the cache,
// after the promotions under way (an optimizing compile is not
// interruptible: Close may wait for one).
func (w *Wazero) Close(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	w.tiers.close()
	var errs []error
	for _, e := range w.engines {
		errs = append(errs, e.rt.Close(ctx))
		if e.slow != nil {
			errs = append(errs, e.slow.Close(ctx))
		}
	}
	errs = append(errs, w.cache.Close(ctx))
	return errors.Join(errs...)
}
