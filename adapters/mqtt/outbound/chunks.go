package outbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine/domain"
)

// DefaultChunkSize is Propeller's chunk size.
const DefaultChunkSize = 512000

// ModuleResolver turns what a proplet asked for (a digest, a name:tag, an
// OCI reference) into a stored module's digest and size, importing it first
// when needed.
type ModuleResolver interface {
	ResolveModule(ctx context.Context, ref string) (digest string, size int64, err error)
}

// ModuleOpener streams a stored module.
type ModuleOpener interface {
	Open(ctx context.Context, digest string) (io.ReadCloser, int64, error)
}

// Transfer is one round of a module's delivery to one target.
type Transfer struct {
	ID        string // "<digest hex>.<target>" (see transferID)
	AppName   string // what the proplet asked for
	Digest    string
	Size      int64
	ChunkSize int
	Total     int // chunks of the whole module
	Requested int // chunks to send in this round
	TaskID    string
}

// Progress records what happens to transfers: the engine appends events,
// the proxy logs and counts. An error is logged; the transfer goes on.
type Progress interface {
	Requested(ctx context.Context, t Transfer) error
	Sent(ctx context.Context, id string, from, to int) error
	Completed(ctx context.Context, id string) error
	Failed(ctx context.Context, id, reason string) error
}

// TaskFailer fails the task a module could not be delivered for.
type TaskFailer interface {
	FailTask(ctx context.Context, id, reason string) error
}

// ChunkPublisher publishes chunks (a *Publisher).
type ChunkPublisher interface {
	PublishAsync(suffix string, v any) (paho.Token, error)
	Wait(ctx context.Context, suffix string, tok paho.Token) error
}

// ChunkPorts are what the chunk server reads from and reports to.
type ChunkPorts struct {
	Resolver  ModuleResolver
	Opener    ModuleOpener
	Publisher ChunkPublisher
	Progress  Progress
	Tasks     TaskFailer // nil: the tasks are not ours to fail (the proxy)
}

// ChunkConfig tunes module delivery.
type ChunkConfig struct {
	ChunkSize  int // raw bytes a chunk (default 512000, capped by MaxPayload)
	MaxPayload int // the broker's max payload; chunks are sized to fit it base64-encoded
	Workers    int // transfers served at once (default 4)
	Window     int // chunks in flight per transfer (default 8)
	// Timeout bounds one transfer (default DefaultTransferTimeout). The
	// module is streamed from the object store while its chunks go out,
	// and nats.go cuts an object read at 5 s unless its context has a
	// deadline: without one, a module that takes longer to publish fails.
	Timeout time.Duration
}

// DefaultTransferTimeout bounds one transfer unless configured.
const DefaultTransferTimeout = 10 * time.Minute

// ChunkSizeFor returns the largest raw chunk whose message fits maxPayload.
func ChunkSizeFor(want, maxPayload int) int {
	if want <= 0 {
		want = DefaultChunkSize
	}
	if maxPayload <= 0 {
		return want
	}
	fit := (maxPayload - 4096) / 4 * 3 // base64 and the JSON around it
	return max(min(want, fit), 1024)
}

// ChunkServer answers registry/proplet requests with Chunk messages, the
// way Propeller's proxy does, from the MODULES object store: to the
// requesting jetprop proplet alone when it says who it is, else on the
// shared topic. Only the chunks asked for are sent.
type ChunkServer struct {
	ports ChunkPorts
	cfg   ChunkConfig
	log   *slog.Logger

	queue    chan wire.ModuleRequest
	mu       sync.Mutex
	inflight map[string]bool // target/app_name of whole transfers queued or running

	sentBytes atomic.Uint64 // module bytes handed to the broker in chunks
}

// SentBytes is how many module bytes went out in chunks.
func (c *ChunkServer) SentBytes() uint64 { return c.sentBytes.Load() }

func (c *ChunkConfig) setDefaults() {
	c.ChunkSize = ChunkSizeFor(c.ChunkSize, c.MaxPayload)
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Window <= 0 {
		c.Window = 8
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTransferTimeout
	}
}

// NewChunkServer wires a chunk server.
func NewChunkServer(ports ChunkPorts, cfg ChunkConfig, log *slog.Logger) *ChunkServer {
	cfg.setDefaults()
	return &ChunkServer{ports: ports, cfg: cfg, log: log,
		queue: make(chan wire.ModuleRequest, 256), inflight: map[string]bool{}}
}

// ChunkSize is the raw size of the chunks sent.
func (c *ChunkServer) ChunkSize() int { return c.cfg.ChunkSize }

// ErrBusy reports a full request queue: the request is retried later.
var ErrBusy = errors.New("mqtt: chunk server busy")

// Request queues a registry request; it does not wait for the transfer.
func (c *ChunkServer) Request(_ context.Context, req wire.ModuleRequest) error {
	key := target(req) + "/" + req.AppName
	c.mu.Lock()
	if len(req.Chunks) == 0 && c.inflight[key] {
		c.mu.Unlock()
		return nil // the whole module is on its way already
	}
	if len(req.Chunks) == 0 {
		c.inflight[key] = true
	}
	c.mu.Unlock()
	select {
	case c.queue <- req:
		return nil
	default:
		c.done(req)
		return ErrBusy
	}
}

func (c *ChunkServer) done(req wire.ModuleRequest) {
	if len(req.Chunks) == 0 {
		c.mu.Lock()
		delete(c.inflight, target(req)+"/"+req.AppName)
		c.mu.Unlock()
	}
}

// Run serves queued requests until ctx is done.
func (c *ChunkServer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case req := <-c.queue:
					c.serve(ctx, req)
					c.done(req)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func target(req wire.ModuleRequest) string {
	if req.PropletID != "" {
		return req.PropletID
	}
	return "shared"
}

func (c *ChunkServer) topic(req wire.ModuleRequest) string {
	if req.PropletID != "" {
		return wire.PropletChunkTopic(req.PropletID)
	}
	return wire.SuffixChunk
}

// transferID is "<digest hex>.<target>"; before the digest is known, a hash
// of the name asked for stands in.
func transferID(digest, appName, tgt string) string {
	if h, ok := strings.CutPrefix(digest, domain.DigestPrefix); ok {
		return h + "." + tgt
	}
	sum := sha256.Sum256([]byte(appName))
	return "ref-" + hex.EncodeToString(sum[:8]) + "." + tgt
}

func (c *ChunkServer) serve(ctx context.Context, req wire.ModuleRequest) {
	digest, size, err := c.ports.Resolver.ResolveModule(ctx, req.AppName)
	if err != nil {
		c.fail(ctx, req, transferID("", req.AppName, target(req)), err)
		return
	}
	id := transferID(digest, req.AppName, target(req))
	total := int((size + int64(c.cfg.ChunkSize) - 1) / int64(c.cfg.ChunkSize))
	wanted := wantedChunks(req.Chunks, total)
	t := Transfer{ID: id, AppName: req.AppName, Digest: digest, Size: size, ChunkSize: c.cfg.ChunkSize,
		Total: total, Requested: len(wanted), TaskID: req.TaskID}
	if err := c.ports.Progress.Requested(ctx, t); err != nil {
		c.log.Warn("record transfer request", "transfer", id, "err", err)
	}
	if err := c.send(ctx, req, id, digest, size, total, wanted); err != nil {
		c.fail(ctx, req, id, err)
		return
	}
	if err := c.ports.Progress.Completed(ctx, id); err != nil {
		c.log.Warn("record transfer completion", "transfer", id, "err", err)
	}
}

// wantedChunks returns the sorted, distinct indexes asked for below total
// (all of them when none were named).
func wantedChunks(asked []int, total int) []int {
	if len(asked) == 0 {
		all := make([]int, total)
		for i := range all {
			all[i] = i
		}
		return all
	}
	out := slices.DeleteFunc(slices.Clone(asked), func(i int) bool { return i < 0 || i >= total })
	slices.Sort(out)
	return slices.Compact(out)
}

// send streams the module and publishes the wanted chunks, at most Window
// in flight, recording each run of consecutive chunks sent.
func (c *ChunkServer) send(ctx context.Context, req wire.ModuleRequest, id, digest string, size int64, total int, wanted []int) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	rc, _, err := c.ports.Opener.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	w := &window{ctx: ctx, pub: c.ports.Publisher, suffix: c.topic(req), max: c.cfg.Window}
	buf := make([]byte, c.cfg.ChunkSize)
	run := runRecorder{ctx: ctx, progress: c.ports.Progress, id: id, log: c.log}
	next := 0 // index of the chunk the reader is at
	for _, idx := range wanted {
		for ; next < idx; next++ { // skip chunks not asked for
			if _, err := io.CopyN(io.Discard, rc, int64(c.cfg.ChunkSize)); err != nil {
				return fmt.Errorf("read module %s: %w", digest, err)
			}
		}
		n, err := io.ReadFull(rc, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("read chunk %d of %s: %w", idx, digest, err)
		}
		next++
		chunk := wire.Chunk{AppName: req.AppName, ChunkIdx: wire.Int(idx), TotalChunks: wire.Int(total),
			Data: slices.Clone(buf[:n]), Digest: digest, Size: size}
		if err := w.push(chunk); err != nil {
			return err
		}
		c.sentBytes.Add(uint64(n))
		run.add(idx)
	}
	if err := w.drain(); err != nil {
		return err
	}
	run.flush()
	return nil
}

func (c *ChunkServer) fail(ctx context.Context, req wire.ModuleRequest, id string, cause error) {
	if ctx.Err() != nil {
		return
	}
	reason := fmt.Sprintf("module %q cannot be delivered: %v", req.AppName, cause)
	c.log.Warn("module delivery failed", "app_name", req.AppName, "proplet", req.PropletID, "err", cause)
	if err := c.ports.Progress.Failed(ctx, id, reason); err != nil {
		c.log.Warn("record transfer failure", "transfer", id, "err", err)
	}
	if req.PropletID != "" {
		tok, err := c.ports.Publisher.PublishAsync(c.topic(req), wire.Chunk{AppName: req.AppName, Error: reason})
		if err == nil {
			err = c.ports.Publisher.Wait(ctx, c.topic(req), tok)
		}
		if err != nil {
			c.log.Warn("tell proplet of a failed delivery", "proplet", req.PropletID, "err", err)
		}
	}
	if req.TaskID != "" && c.ports.Tasks != nil {
		if err := c.ports.Tasks.FailTask(ctx, req.TaskID, reason); err != nil {
			c.log.Warn("fail task after a failed delivery", "task", req.TaskID, "err", err)
		}
	}
}

// window bounds the publishes awaiting their acknowledgement.
type window struct {
	ctx    context.Context
	pub    ChunkPublisher
	suffix string
	max    int
	toks   []paho.Token
}

func (w *window) push(v wire.Chunk) error {
	if len(w.toks) >= w.max {
		if err := w.pub.Wait(w.ctx, w.suffix, w.toks[0]); err != nil {
			return err
		}
		w.toks = w.toks[1:]
	}
	tok, err := w.pub.PublishAsync(w.suffix, v)
	if err != nil {
		return err
	}
	w.toks = append(w.toks, tok)
	return nil
}

func (w *window) drain() error {
	for _, t := range w.toks {
		if err := w.pub.Wait(w.ctx, w.suffix, t); err != nil {
			return err
		}
	}
	w.toks = nil
	return nil
}

// runRecorder turns the chunk indexes sent into transfer.sent runs.
type runRecorder struct {
	ctx      context.Context
	progress Progress
	id       string
	log      *slog.Logger
	from, to int
	open     bool
}

// recordEvery is the longest run recorded in one event, so a long
// transfer shows progress as it goes.
const recordEvery = 32

func (r *runRecorder) add(idx int) {
	if r.open && idx == r.to+1 && idx-r.from < recordEvery {
		r.to = idx
		return
	}
	r.flush()
	r.from, r.to, r.open = idx, idx, true
}

func (r *runRecorder) flush() {
	if !r.open {
		return
	}
	r.open = false
	if err := r.progress.Sent(r.ctx, r.id, r.from, r.to); err != nil {
		r.log.Warn("record chunks sent", "transfer", r.id, "err", err)
	}
}
