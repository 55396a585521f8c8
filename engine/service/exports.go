package service

import (
	"context"
	"fmt"
	"io"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// maxCachedExports bounds the modules whose exported functions the service
// keeps in memory. Modules are content-addressed, so an entry never goes
// stale; an evicted one costs a read of the module up to its export section.
const maxCachedExports = 4096

// exportsOf returns the functions the stored module digest exports, from
// the cache or read from the store up to its export section. ok is false
// when the module cannot be read as a core module (its exports stay
// unknown, and nothing is refused for them).
func (s *Service) exportsOf(ctx context.Context, digest string) (exports []string, ok bool, err error) {
	if ex, ok := s.exports.get(digest); ok {
		return ex, true, nil
	}
	rc, _, err := s.modules.Open(ctx, digest)
	if err != nil {
		return nil, false, err
	}
	defer rc.Close()
	ex, err := domain.ReadExports(rc)
	if err != nil {
		return nil, false, nil
	}
	s.exports.put(digest, ex)
	return ex, true, nil
}

// checkFunction refuses a task or step calling fn on the stored module
// digest (shown as image) when no proplet could call anything on it
// (engine.CheckFunction).
func (s *Service) checkFunction(ctx context.Context, fn, digest, image string) error {
	ex, ok, err := s.exportsOf(ctx, digest)
	if err != nil || !ok {
		return err
	}
	module := "module " + digest
	if image != "" && image != digest {
		module = fmt.Sprintf("module %s (%s)", image, digest)
	}
	return engine.CheckFunction(fn, module, ex)
}

// putChecked stores module, refusing it as soon as its export section shows
// that fn cannot be called on it: the read fails, so a refused module is
// never stored. Its exports are cached under its digest.
func (s *Service) putChecked(ctx context.Context, fn string, module io.Reader) (string, int64, error) {
	fc := &functionCheck{r: module, fn: fn}
	digest, size, err := s.modules.Put(ctx, fc)
	if fc.err != nil {
		return "", 0, fc.err
	}
	if err != nil {
		return "", 0, err
	}
	if ex, err := fc.sc.Exports(); err == nil && fc.sc.Done() {
		s.exports.put(digest, ex)
	}
	return digest, size, nil
}

// functionCheck reads a module through an ExportScanner and fails with the
// refusal of engine.CheckFunction once the exports are known.
type functionCheck struct {
	r   io.Reader
	fn  string
	sc  domain.ExportScanner
	err error
}

func (c *functionCheck) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	if c.sc.Done() {
		return n, err
	}
	_, _ = c.sc.Write(p[:n])
	if !c.sc.Done() {
		return n, err
	}
	if ex, xerr := c.sc.Exports(); xerr == nil {
		c.err = engine.CheckFunction(c.fn, "the uploaded module", ex)
	}
	if c.err != nil {
		return n, c.err
	}
	return n, err
}
