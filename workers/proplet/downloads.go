package proplet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/workers/modcache"
)

// Module delivery errors; their text ends up in the task's result.
var (
	// ErrModuleUnavailable: the module source (the engine, or Propeller's
	// proxy) answered with an error chunk.
	ErrModuleUnavailable = errors.New("proplet: registry error")
	// ErrDownloadStalled: no new chunk came in Config.ChunkRetries quiet
	// periods in a row, each followed by a request for the missing chunks.
	ErrDownloadStalled = errors.New("proplet: module download stalled")
	// ErrBadChunks: the chunks did not fit together (an index outside
	// total_chunks, total_chunks changing, another digest, or a module that
	// does not hash to its digest), again after discarding them and
	// downloading afresh.
	ErrBadChunks = errors.New("proplet: bad module chunks")
)

// errNoWaiters ends a download whose every task was stopped; its chunks
// stay on disk for the next one.
var errNoWaiters = errors.New("proplet: no task waits for the module any more")

// maxQuiet caps the quiet period, which doubles after each one without a
// new chunk.
const maxQuiet = 30 * time.Second

// moduleRef is the module a task asks for over the registry topics.
type moduleRef struct {
	appName string // image_url, verbatim: chunks come back under it
	digest  string // expected "sha256:<hex>", "" when unknown
	size    int64  // expected, 0 when unknown
	taskID  string
}

// DeliveryStats counts module delivery over the registry topics.
type DeliveryStats struct {
	CacheHits  uint64 // starts served from the module cache, no request
	Downloads  uint64 // downloads begun (shared by the tasks that joined them)
	Requests   uint64 // registry/proplet requests published
	Chunks     uint64 // chunks stored
	Duplicates uint64 // chunks already stored, ignored
	Rejected   uint64 // chunks that did not fit their download
	Stray      uint64 // chunks for a module no task waits for
}

type deliveryCounters struct {
	cacheHits, downloads, requests, chunks, duplicates, rejected, stray atomic.Uint64
}

func (c *deliveryCounters) snapshot() DeliveryStats {
	return DeliveryStats{
		CacheHits: c.cacheHits.Load(), Downloads: c.downloads.Load(), Requests: c.requests.Load(),
		Chunks: c.chunks.Load(), Duplicates: c.duplicates.Load(), Rejected: c.rejected.Load(), Stray: c.stray.Load(),
	}
}

// downloads fetches modules over Propeller's downloads topics: it asks on
// downloads/proplet and assembles the chunks that come back, on
// downloads/server/<proplet id> (the jetprop engine) or downloads/server
// (Propeller's proxy), into the module cache. Tasks that need the same
// module share one download.
type downloads struct {
	id       string
	cache    *modcache.Cache
	request  func(ctx context.Context, req wire.ModuleRequest) error
	base     context.Context // parent of every download
	quiet    time.Duration
	retries  int
	maxBytes int64
	log      *slog.Logger
	stats    deliveryCounters

	mu      sync.Mutex
	flights map[string]*download // by app_name
	wg      sync.WaitGroup       // download goroutines
}

// download is one module being assembled, owned by its run goroutine; the
// MQTT router hands it chunks through deliver.
type download struct {
	ref    moduleRef // of the task that began it
	ctx    context.Context
	cancel context.CancelCauseFunc
	// guarded by downloads.mu
	tasks     []string // tasks waiting
	abandoned bool     // every task left; run is ending

	mu         sync.Mutex
	part       *modcache.Partial // nil until run opened it
	total      int               // total_chunks once known, kept across a Reset
	closed     bool              // run ended: chunks are strays
	committing bool              // run assembles: chunks are ignored
	fresh      bool              // chunks stored since run last looked
	bad        error             // chunks that do not fit: discarded, to fetch afresh
	fatal      error             // error chunk, too large, disk failure
	notify     chan struct{}     // capacity 1: something changed

	done   chan struct{} // closed when run ended; then digest, module, err are set
	digest string
	module []byte
	err    error
}

// fetch returns the digest and bytes of the module ref names: from the
// cache when its digest is known and cached, else from a download, shared
// with the other tasks that need the same app_name or digest.
func (r *downloads) fetch(ctx context.Context, ref moduleRef) (string, []byte, error) {
	if ref.digest == "" && domain.ValidDigest(ref.appName) {
		ref.digest = ref.appName
	}
	if ref.digest != "" {
		if !domain.ValidDigest(ref.digest) {
			return "", nil, fmt.Errorf("proplet: start digest %q is not sha256:<64 hex digits>", ref.digest)
		}
		if b, err := r.cache.Read(ref.digest); err == nil {
			r.stats.cacheHits.Add(1)
			return ref.digest, b, nil
		} else if !errors.Is(err, modcache.ErrNotFound) {
			r.log.Warn("module cache read failed; downloading", keyDigest, ref.digest, keyErr, err)
		}
	}
	if ref.size > r.maxBytes {
		return "", nil, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrModuleTooLarge, ref.appName, ref.size, r.maxBytes)
	}
	d, err := r.join(ctx, ref)
	if err != nil {
		return "", nil, err
	}
	defer r.leave(d, ref.taskID)
	select {
	case <-d.done:
	case <-ctx.Done():
		return "", nil, context.Cause(ctx)
	}
	if d.err != nil {
		return "", nil, d.err
	}
	if ref.digest != "" && d.digest != ref.digest {
		return "", nil, fmt.Errorf("%w: %s delivered %s, the task wants %s", ErrBadChunks, ref.appName, d.digest, ref.digest)
	}
	return d.digest, d.module, nil
}

// join finds the download of ref's app_name (or digest), or begins one. A
// download every task left is waited for before a new one begins, so two
// never share a partial on disk.
func (r *downloads) join(ctx context.Context, ref moduleRef) (*download, error) {
	for {
		r.mu.Lock()
		d := r.flights[ref.appName]
		if d == nil && ref.digest != "" {
			d = r.byDigest(ref.digest)
		}
		if d != nil && d.abandoned {
			r.mu.Unlock()
			select {
			case <-d.done:
				continue
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
		if d == nil {
			d = r.begin(ref)
		}
		d.tasks = append(d.tasks, ref.taskID)
		r.mu.Unlock()
		return d, nil
	}
}

// byDigest finds a download expecting digest. Called with r.mu held.
func (r *downloads) byDigest(digest string) *download {
	for _, d := range r.flights {
		if d.ref.digest == digest {
			return d
		}
	}
	return nil
}

// begin starts the download of ref. Called with r.mu held.
func (r *downloads) begin(ref moduleRef) *download {
	ctx, cancel := context.WithCancelCause(r.base)
	d := &download{ref: ref, ctx: ctx, cancel: cancel, notify: make(chan struct{}, 1), done: make(chan struct{})}
	r.flights[ref.appName] = d
	r.stats.downloads.Add(1)
	r.wg.Go(func() { r.run(d) })
	return d
}

// leave removes a task from a download; the last one to leave ends it.
func (r *downloads) leave(d *download, taskID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, id := range d.tasks {
		if id == taskID {
			d.tasks = append(d.tasks[:i], d.tasks[i+1:]...)
			break
		}
	}
	if len(d.tasks) == 0 {
		d.abandoned = true
		d.cancel(errNoWaiters)
	}
}

// wait waits for every download to end (once their tasks were stopped).
func (r *downloads) wait() { r.wg.Wait() }

// Stats returns the delivery counters.
func (r *downloads) Stats() DeliveryStats { return r.stats.snapshot() }

// onChunk hands a chunk to its download. It runs on paho's router
// goroutine: it decodes, writes one file and signals, never waits.
func (r *downloads) onChunk(payload []byte) error {
	c, err := decodeChunk(payload)
	if err != nil {
		return err
	}
	if c.AppName == "" {
		return fmt.Errorf("%w: chunk without app_name", wire.ErrInvalid)
	}
	r.mu.Lock()
	d := r.flights[c.AppName]
	r.mu.Unlock()
	if d == nil || !d.deliver(c, r) {
		r.stats.stray.Add(1)
	}
	return nil
}

// task is the task id a request names: the engine fails it when the
// module cannot be had.
func (r *downloads) task(d *download) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(d.tasks) > 0 {
		return d.tasks[0]
	}
	return d.ref.taskID
}

// ask publishes a request for chunks (nil: all of them).
func (r *downloads) ask(d *download, chunks []int) {
	req := wire.ModuleRequest{AppName: d.ref.appName, PropletID: r.id, TaskID: r.task(d), Chunks: chunks}
	r.stats.requests.Add(1)
	if err := r.request(d.ctx, req); err != nil && d.ctx.Err() == nil {
		r.log.Warn("module request not confirmed by the broker (sent again after the quiet period)",
			keyModule, d.ref.appName, keyErr, err)
	}
}

// quietPeriod is how long to wait for a chunk after n quiet periods in a row.
func (r *downloads) quietPeriod(n int) time.Duration {
	return min(r.quiet<<min(n, 16), maxQuiet)
}
