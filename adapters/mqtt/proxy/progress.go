package proxy

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/engine"
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
// server's TransferCommands, which in the engine record events and here,
// with no event store, log progress per module. Tasks belong to the
// Propeller manager: failing one is not the proxy's business.
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

var _ mqtt.TransferCommands = (*progress)(nil)

// Transfer records one step of a transfer.
func (p *progress) Transfer(_ context.Context, cmd engine.TransferCommand) (engine.Transfer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live == nil {
		p.live = map[string]*transfer{}
	}
	switch c := cmd.(type) {
	case engine.RequestTransfer:
		p.requested(c)
	case engine.RecordSent:
		p.sent(c)
	case engine.CompleteTransfer:
		p.completed(c.ID)
	case engine.FailTransfer:
		delete(p.live, c.ID) // the chunk server logs why
		p.stats.failed.Add(1)
	}
	return engine.Transfer{}, nil
}

// Task ignores task commands.
func (p *progress) Task(context.Context, engine.TaskCommand) (engine.Task, error) {
	return engine.Task{}, nil
}

func (p *progress) requested(c engine.RequestTransfer) {
	s := c.Spec
	p.live[c.ID] = &transfer{app: s.AppName, digest: s.Digest, requested: s.Requested, start: time.Now()}
	p.log.Info("sending module", logApp, s.AppName, logDigest, s.Digest, logSize, s.Size,
		"chunks", s.Requested, "total_chunks", s.Total, "chunk_size", s.ChunkSize, "transfer", c.ID)
}

func (p *progress) sent(c engine.RecordSent) {
	n := c.To - c.From + 1
	p.stats.chunks.Add(uint64(n))
	t := p.live[c.ID]
	if t == nil {
		return
	}
	t.sent += n
	p.log.Info("module progress", logApp, t.app, "sent", t.sent, "of", t.requested,
		"percent", 100*t.sent/max(t.requested, 1), "transfer", c.ID)
}

func (p *progress) completed(id string) {
	p.stats.delivered.Add(1)
	t := p.live[id]
	delete(p.live, id)
	if t == nil {
		return
	}
	p.log.Info("module delivered", logApp, t.app, logDigest, t.digest, "chunks", t.sent,
		"took", time.Since(t.start).Round(time.Millisecond), "transfer", id)
}
