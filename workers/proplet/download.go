package proplet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/workers/modcache"
)

// run owns a download from its first request to its end: it opens the
// partial kept on disk (resuming it), asks for what is missing, re-asks
// after quiet periods, handles chunks that do not fit, and commits the
// module to the cache. Every waiting task gets the same result.
func (r *downloads) run(d *download) {
	defer r.finish(d)
	if err := r.open(d); err != nil {
		d.err = err
		return
	}
	d.err = r.loop(d)
	if d.err != nil && d.ctx.Err() == nil { // not stopped, not shutting down
		r.log.Warn("module download failed", keyModule, d.ref.appName, keyErr, d.err)
	}
}

// open loads the chunks an earlier run kept for this app_name; they are
// discarded when they were for another digest or size.
func (r *downloads) open(d *download) error {
	part, err := r.cache.Partial(d.ref.appName)
	if err != nil {
		return fmt.Errorf("proplet: module download: %w", err)
	}
	m := part.Meta()
	if stale(m, d.ref) {
		if err := part.Reset(); err != nil {
			return fmt.Errorf("proplet: module download: %w", err)
		}
	}
	if n := part.Count(); n > 0 {
		r.log.Info("resuming module download", keyModule, d.ref.appName, keyChunks, n, keyTotal, m.Total)
	}
	d.mu.Lock()
	d.part, d.total = part, part.Meta().Total
	d.mu.Unlock()
	return nil
}

// stale: chunks kept for another module than the one asked for now.
func stale(m modcache.Meta, ref moduleRef) bool {
	return ref.digest != "" && m.Digest != "" && m.Digest != ref.digest ||
		ref.size != 0 && m.Size != 0 && m.Size != ref.size
}

// loop requests and waits until the module is committed, or fails.
func (r *downloads) loop(d *download) error {
	retried := false // a fresh download after chunks that did not fit
	quiet := 0       // quiet periods in a row
	if !d.complete() {
		r.ask(d, d.missing()) // all, or what an earlier run did not get
	}
	timer := time.NewTimer(r.quietPeriod(0))
	defer timer.Stop()
	for {
		switch err := r.commit(d); {
		case errors.Is(err, errIncomplete):
		case errors.Is(err, modcache.ErrMismatch):
			d.discard(err)
		case err != nil:
			return fmt.Errorf("proplet: %w", err)
		default:
			return nil // committed
		}
		select {
		case <-d.ctx.Done():
			return context.Cause(d.ctx)
		case <-timer.C:
			if quiet++; quiet > r.retries {
				return r.stalled(d)
			}
			r.log.Info("no chunk for a while: asking again for the missing ones", keyModule, d.ref.appName, keyRound, quiet)
			r.ask(d, d.missing())
			timer.Reset(r.quietPeriod(quiet))
			continue
		case <-d.notify:
		}
		fresh, bad, fatal := d.take()
		switch {
		case fatal != nil:
			return fatal
		case bad != nil && retried:
			return fmt.Errorf("%w: %v (again after discarding the chunks and downloading afresh)", ErrBadChunks, bad)
		case bad != nil:
			retried = true
			r.log.Warn("module chunks do not fit: discarded, downloading afresh", keyModule, d.ref.appName, keyErr, bad)
			r.ask(d, d.all())
			fresh = true
		}
		if fresh {
			quiet = 0
			timer.Reset(r.quietPeriod(0))
		}
	}
}

func (r *downloads) stalled(d *download) error {
	d.mu.Lock()
	have, total := d.part.Count(), d.total
	d.mu.Unlock()
	if total == 0 {
		return fmt.Errorf("%w: no chunk of %s came after %d requests on %s", ErrDownloadStalled, d.ref.appName, r.retries+1, wire.SuffixModuleRequest)
	}
	return fmt.Errorf("%w: %d of %d chunks of %s after %d requests (kept for the next attempt)", ErrDownloadStalled, have, total, d.ref.appName, r.retries+1)
}

// errIncomplete: commit found chunks still missing.
var errIncomplete = errors.New("proplet: download incomplete")

// commit assembles the module into the cache once every chunk is there;
// chunks arriving meanwhile are ignored (they can only be duplicates).
func (r *downloads) commit(d *download) error {
	d.mu.Lock()
	if !d.part.Complete() {
		d.mu.Unlock()
		return errIncomplete
	}
	d.committing = true
	want := d.ref.digest
	if want == "" {
		want = d.part.Meta().Digest
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.committing = false
		d.mu.Unlock()
	}()
	digest, b, err := r.cache.Commit(d.part, want)
	if err != nil {
		return fmt.Errorf("module %s: %w", d.ref.appName, err)
	}
	d.digest, d.module = digest, b
	r.log.Info("module downloaded", keyModule, d.ref.appName, keyDigest, digest, keyBytes, len(b))
	return nil
}

// finish ends a download: later chunks are strays, waiters are released.
// A download that failed because its chunks did not fit leaves nothing on
// disk; one that stalled or lost its tasks keeps its chunks to resume.
func (r *downloads) finish(d *download) {
	d.mu.Lock()
	d.closed = true
	if d.part != nil && (errors.Is(d.err, ErrBadChunks) || errors.Is(d.err, ErrModuleUnavailable) || errors.Is(d.err, modcache.ErrMismatch)) {
		_ = d.part.Remove()
	}
	d.mu.Unlock()
	r.mu.Lock()
	if r.flights[d.ref.appName] == d {
		delete(r.flights, d.ref.appName)
	}
	r.mu.Unlock()
	d.cancel(nil)
	close(d.done)
}

// deliver stores a chunk (or records why it cannot be), then wakes run.
// It reports false when the download no longer takes chunks.
func (d *download) deliver(c wire.Chunk, r *downloads) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.part == nil || d.closed || d.committing {
		return false
	}
	switch {
	case c.Error != "":
		d.fatal = fmt.Errorf("%w: %s", ErrModuleUnavailable, c.Error)
	default:
		d.store(c, r)
	}
	select {
	case d.notify <- struct{}{}:
	default:
	}
	return true
}

// store checks a chunk against the download and writes it. Called with
// d.mu held.
func (d *download) store(c wire.Chunk, r *downloads) {
	if err := d.fits(c, r.maxBytes); err != nil {
		r.stats.rejected.Add(1)
		if errors.Is(err, ErrModuleTooLarge) {
			d.fatal = err
			return
		}
		d.bad = err
		if err := d.part.Reset(); err != nil {
			d.fatal = err
		}
		return
	}
	added, err := d.part.Put(int(c.ChunkIdx), c.Data)
	switch {
	case err != nil:
		d.fatal = fmt.Errorf("proplet: module download: %w", err)
	case added:
		r.stats.chunks.Add(1)
		d.fresh = true
	default:
		r.stats.duplicates.Add(1)
	}
}

// fits checks a chunk against what the download knows (and records the
// total and digest the first chunk brings). Called with d.mu held.
func (d *download) fits(c wire.Chunk, maxBytes int64) error {
	total, idx, m := int(c.TotalChunks), int(c.ChunkIdx), d.part.Meta()
	want := d.ref.digest
	if want == "" {
		want = m.Digest
	}
	switch {
	case total <= 0 || total > modcache.MaxChunks:
		return fmt.Errorf("chunk %d of %s: total_chunks %d outside 1..%d", idx, c.AppName, total, modcache.MaxChunks)
	case idx < 0 || idx >= total:
		return fmt.Errorf("chunk of %s: index %d outside 0..%d", c.AppName, idx, total-1)
	case m.Total != 0 && total != m.Total:
		return fmt.Errorf("chunk %d of %s: total_chunks %d, earlier chunks said %d", idx, c.AppName, total, m.Total)
	case c.Digest != "" && want != "" && c.Digest != want:
		return fmt.Errorf("chunk %d of %s: digest %s, want %s", idx, c.AppName, c.Digest, want)
	case c.Size > maxBytes || d.part.Bytes()+int64(len(c.Data)) > maxBytes:
		return fmt.Errorf("%w: %s is larger than %d bytes", ErrModuleTooLarge, c.AppName, maxBytes)
	}
	if m.Total != 0 {
		return nil
	}
	if want == "" {
		want = c.Digest
	}
	size := d.ref.size
	if size == 0 {
		size = c.Size
	}
	d.total = total
	return d.part.SetMeta(modcache.Meta{AppName: d.ref.appName, Digest: want, Size: size, Total: total})
}

// take returns and clears what deliver recorded.
func (d *download) take() (fresh bool, bad, fatal error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fresh, bad, fatal = d.fresh, d.bad, d.fatal
	d.fresh, d.bad = false, nil
	return fresh, bad, fatal
}

// discard drops every chunk after a mismatch found on commit, as deliver
// does for a chunk that does not fit.
func (d *download) discard(cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bad = cause
	if err := d.part.Reset(); err != nil {
		d.fatal = err
	}
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

func (d *download) complete() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.part.Complete()
}

// missing lists the chunks to ask for: after a Reset every one, by index;
// nil (all) while the total was never known.
func (d *download) missing() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.part.Meta().Total == 0 {
		return indexes(d.total)
	}
	return d.part.Missing()
}

// all lists every chunk by index once the total was ever known, so that
// the engine does not take the request for a duplicate of a transfer still
// under way; nil (all) before.
func (d *download) all() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return indexes(d.total)
}

func indexes(total int) []int {
	if total == 0 {
		return nil
	}
	out := make([]int, total)
	for i := range out {
		out[i] = i
	}
	return out
}
