package runtime

import (
	"context"
	"fmt"
)

// Preparer is a Runtime that compiles a module ahead of its runs and keeps
// it compiled (and out of eviction) until released: what a latent task
// needs, so that every invocation only instantiates. Runs of the same
// Digest and memory limit share the compiled code.
type Preparer interface {
	Prepare(ctx context.Context, job Job) (release func(), err error)
}

var _ Preparer = (*Wazero)(nil)

// Prepare compiles job.Module (or finds it compiled) for job's memory limit
// and pins it until release is called. Runs of the same Digest and limit
// then only instantiate it. With Options.Tiered the first compile is the
// interpreter's, promoted in the background.
func (w *Wazero) Prepare(ctx context.Context, job Job) (func(), error) {
	if len(job.Module) == 0 {
		return nil, fmt.Errorf("%w: empty module", ErrInvalidModule)
	}
	if err := checkLimit(job.MemoryLimitPages); err != nil {
		return nil, err
	}
	e, err := w.engine(ctx, w.limit(job))
	if err != nil {
		return nil, err
	}
	c, err := e.acquire(ctx, job.digest(), job.Module, w.opts.Tiered)
	if err != nil {
		return nil, err
	}
	return func() { e.release(c) }, nil
}
