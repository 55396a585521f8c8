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
// in it, keyed by digest.
type engine struct {
	rt       wazero.Runtime
	limit    uint32
	max      int
	compiles *atomic.Uint64

	mu      sync.Mutex
	modules map[string]*compiled
	tick    uint64
}

// compiled is a module being compiled or ready. done closes when mod or err
// is set; callers that found it in the map wait on done, so concurrent Runs
// of one module compile it once.
type compiled struct {
	done chan struct{}
	mod  wazero.CompiledModule
	err  error
	refs int    // Runs using mod; guarded by engine.mu
	used uint64 // last use, for eviction; guarded by engine.mu
}

// acquire returns the compiled module for digest, compiling it when absent.
// The caller must release it.
func (e *engine) acquire(ctx context.Context, digest string, bin []byte) (*compiled, error) {
	c, leader := e.lookup(digest)
	if leader {
		mod, err := e.compile(context.WithoutCancel(ctx), bin)
		e.finish(digest, c, mod, err)
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

// finish publishes a compile result to the waiters. A failed compile is
// dropped from the map, so a later Run tries again.
func (e *engine) finish(digest string, c *compiled, mod wazero.CompiledModule, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.mod, c.err = mod, err
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
		if c.refs == 0 && c.mod != nil && (victim == nil || c.used < victim.used) {
			oldest, victim = d, c
		}
	}
	if victim != nil {
		delete(e.modules, oldest)
		_ = victim.mod.Close(context.Background())
	}
}

func (e *engine) compile(ctx context.Context, bin []byte) (wazero.CompiledModule, error) {
	e.compiles.Add(1)
	if err := checkModule(bin); err != nil {
		return nil, err
	}
	mod, err := e.rt.CompileModule(ctx, bin)
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
