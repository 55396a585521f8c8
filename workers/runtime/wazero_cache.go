package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"

	"github.com/jetprop/jetprop/engine/domain"
)

// engine is one wazero.Runtime (one memory limit) and the modules compiled
// in it, keyed by digest. With tiers, slow is a second runtime of the same
// limit and settings, whose interpreter compiles a latent deployment
// first (see wazero_tiers.go).
type engine struct {
	rt       wazero.Runtime
	slow     wazero.Runtime // nil without tiers
	limit    uint32
	max      int
	compiles *atomic.Uint64
	tiers    *tiers

	mu      sync.Mutex
	modules map[string]*compiled
	tick    uint64
}

// compiled is a module being compiled or ready. done closes when cur or
// err is set; callers that found it in the map wait on done, so concurrent
// Runs of one module compile it once.
type compiled struct {
	done chan struct{}
	cur  *tier // the tier new Runs use; swapped by promote
	err  error
	refs int    // Runs and Prepares using it; guarded by engine.mu
	used uint64 // last use, for eviction; guarded by engine.mu
	gone bool   // evicted: a tier promoted later is closed at once
}

// tier is one compilation of a module and the runtime its instances run
// in: the interpreter's (a tiered start) or the optimizing compiler's.
type tier struct {
	rt   wazero.Runtime
	mod  wazero.CompiledModule
	runs int // Runs instantiating mod; guarded by engine.mu
}

// acquire returns the compiled module for digest, compiling it when absent
// (first with the interpreter when tiered and engine has tiers). The
// caller must release it.
func (e *engine) acquire(ctx context.Context, digest string, bin []byte, tiered bool) (*compiled, error) {
	c, leader := e.lookup(digest)
	if leader {
		t, err := e.compileFirst(context.WithoutCancel(ctx), digest, bin, tiered)
		e.finish(digest, c, t, err)
		switch {
		case err != nil || e.slow == nil:
		case t.rt == e.slow:
			e.tiers.promoteLater(e, c, digest, bin)
		default: // compiled: into the disk cache too, when there is one
			e.tiers.remember(digest)
		}
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		e.release(c)
		return nil, ctx.Err()
	}
	if c.err != nil {
		e.release(c)
		return nil, c.err
	}
	return c, nil
}

// compileFirst compiles bin with the interpreter when tiered (unless the
// optimizing compiler's code is on disk already), else with the compiler.
func (e *engine) compileFirst(ctx context.Context, digest string, bin []byte, tiered bool) (*tier, error) {
	rt := e.rt
	if tiered && e.slow != nil && !e.tiers.onDisk(digest) {
		rt = e.slow
	}
	mod, err := e.compile(ctx, rt, bin)
	if err != nil {
		return nil, err
	}
	return &tier{rt: rt, mod: mod}, nil
}

// lookup finds or registers digest; leader reports that the caller must
// compile it.
func (e *engine) lookup(digest string) (c *compiled, leader bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.modules[digest]
	if !ok {
		e.evict()
		c = &compiled{done: make(chan struct{})}
		e.modules[digest] = c
	}
	e.tick++
	c.used, c.refs = e.tick, c.refs+1
	return c, !ok
}

func (e *engine) release(c *compiled) {
	e.mu.Lock()
	c.refs--
	e.mu.Unlock()
}

// enter returns the tier a Run instantiates, counted until leave: a
// promotion meanwhile does not close it under the Run.
func (e *engine) enter(c *compiled) *tier {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.cur.runs++
	return c.cur
}

// leave ends a Run on t; the last Run on a tier that was swapped out
// closes it.
func (e *engine) leave(c *compiled, t *tier) {
	e.mu.Lock()
	t.runs--
	retired := t != c.cur && t.runs == 0
	e.mu.Unlock()
	if retired {
		_ = t.mod.Close(context.Background())
	}
}

// finish publishes a compile result to the waiters. A failed compile is
// dropped from the map, so a later Run tries again.
func (e *engine) finish(digest string, c *compiled, t *tier, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.cur, c.err = t, err
	if err != nil && e.modules[digest] == c {
		delete(e.modules, digest)
	}
	close(c.done)
}

// evict closes the least recently used idle module when the map is full.
// Called with e.mu held.
func (e *engine) evict() {
	if len(e.modules) < e.max {
		return
	}
	var oldest string
	var victim *compiled
	for d, c := range e.modules {
		if c.refs == 0 && c.cur != nil && (victim == nil || c.used < victim.used) {
			oldest, victim = d, c
		}
	}
	if victim != nil {
		delete(e.modules, oldest)
		victim.gone = true
		_ = victim.cur.mod.Close(context.Background())
	}
}

func (e *engine) compile(ctx context.Context, rt wazero.Runtime, bin []byte) (wazero.CompiledModule, error) {
	e.compiles.Add(1)
	if err := checkModule(bin); err != nil {
		return nil, err
	}
	mod, err := rt.CompileModule(ctx, bin)
	if err == nil {
		return mod, nil
	}
	if pages, ok := DeclaredMinPages(bin); ok && pages > e.limit {
		return nil, fmt.Errorf("%w: module declares %d pages (%d MiB) of memory, the limit is %d pages (%d MiB)",
			ErrMemoryLimit, pages, pages/16, e.limit, e.limit/16)
	}
	return nil, fmt.Errorf("%w: %w", ErrInvalidModule, err)
}

// checkModule walks bin's structure (domain.CheckModule) before wazero
// decodes it: wazero sizes its arrays from the counts a module declares
// before it checks them against the module's bytes, so 23 bytes could
// take 14 GB.
func checkModule(bin []byte) error {
	err := domain.CheckModule(bin)
	var me *domain.ModuleError
	switch {
	case errors.As(err, &me):
		return fmt.Errorf("%w: %s", ErrInvalidModule, me.Problem())
	case err != nil:
		return fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	return nil
}
