package proxy

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
)

// Stats counts what the proxy did.
type Stats struct {
	Requests  uint64 // registry requests received
	Malformed uint64 // requests that did not decode: dropped
	Dropped   uint64 // requests refused because too many were waiting
	Pulls     uint64 // modules downloaded from a registry
	CacheHits uint64 // pulls answered by the cache (the registry was asked what the tag points at)
	Delivered uint64 // transfers whose chunks were all published
	Failed    uint64 // transfers that failed (pull or publish); the proplet is told when it named itself
	Chunks    uint64 // chunks published
}

type counters struct {
	requests, malformed, dropped, pulls, cacheHits, delivered, failed, chunks atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Requests: c.requests.Load(), Malformed: c.malformed.Load(), Dropped: c.dropped.Load(),
		Pulls: c.pulls.Load(), CacheHits: c.cacheHits.Load(), Delivered: c.delivered.Load(),
		Failed: c.failed.Load(), Chunks: c.chunks.Load(),
	}
}

// progress tracks transfers for the logs and the counters: the chunk
// server's Progress, which in the engine records events and here, with no
// event store, logs progress per module. Tasks belong to the Propeller
// manager: failing one is not the proxy's business, so the proxy gives the
// chunk server no TaskFailer.
type progress struct {
	log   *slog.Logger
	stats *counters

	mu   sync.Mutex
	live map[string]*transfer // by transfer id
}

type transfer struct {
	app       string
	digest    string
	requested int
	sent      int
	start     time.Time
}

var _ outbound.Progress = (*progress)(nil)

// Requested logs the start of a transfer.
func (p *progress) Requested(_ context.Context, t outbound.Transfer) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live == nil {
		p.live = map[string]*transfer{}
	}
	p.live[t.ID] = &transfer{app: t.AppName, digest: t.Digest, requested: t.Requested, start: time.Now()}
	p.log.Info("sending module", logApp, t.AppName, logDigest, t.Digest, logSize, t.Size,
		"chunks", t.Requested, "total_chunks", t.Total, "chunk_size", t.ChunkSize, "transfer", t.ID)
	return nil
}

// Sent counts chunks from..to and logs the transfer's progress.
func (p *progress) Sent(_ context.Context, id string, from, to int) error {
	n := to - from + 1
	p.stats.chunks.Add(uint64(n))
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.live[id]
	if t == nil {
		return nil
	}
	t.sent += n
	p.log.Info("module progress", logApp, t.app, "sent", t.sent, "of", t.requested,
		"percent", 100*t.sent/max(t.requested, 1), "transfer", id)
	return nil
}

// Completed counts and logs a delivered module.
func (p *progress) Completed(_ context.Context, id string) error {
	p.stats.delivered.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.live[id]
	delete(p.live, id)
	if t == nil {
		return nil
	}
	p.log.Info("module delivered", logApp, t.app, logDigest, t.digest, "chunks", t.sent,
		"took", time.Since(t.start).Round(time.Millisecond), "transfer", id)
	return nil
}

// Failed counts a failed transfer (the chunk server logs why).
func (p *progress) Failed(_ context.Context, id, _ string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.live, id)
	p.stats.failed.Add(1)
	return nil
}
