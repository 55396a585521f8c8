package proplet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/workers/journal"
	"github.com/jetprop/jetprop/workers/modcache"
	"github.com/jetprop/jetprop/workers/runtime"
)

// Task errors; their text is what the result's error field carries.
var (
	// ErrStopped ends a task the manager stopped.
	ErrStopped = errors.New("stopped")
	// ErrShutdown ends the tasks still running when the proplet shuts down.
	ErrShutdown = errors.New("interrupted: proplet shutting down")
	// ErrSuperseded ends an attempt of a task when a newer attempt of it
	// starts here.
	ErrSuperseded = errors.New("superseded by a newer attempt")
	// ErrBadLimits: a start asks for a memory limit or a timeout out of
	// range (memory errors also unwrap to runtime.ErrMemoryLimit).
	ErrBadLimits = errors.New("proplet: task limits out of range")
	// ErrRunTwice: Run was called a second time.
	ErrRunTwice = errors.New("proplet: Run called twice")
)

// shutdownGrace is how long results and the offline status may take to
// reach the broker once Run's context is done.
const shutdownGrace = 3 * time.Second

// Log keys.
const (
	keyProplet    = "proplet_id"
	keyTask       = "task_id"
	keyTopic      = "topic"
	keyErr        = "err"
	keyBroker     = "broker"
	keyTarget     = "target"
	keyFunction   = "function"
	keyDaemon     = "daemon"
	keyAttempt    = "attempt"
	keyTook       = "took"
	keyRetryIn    = "retry_in"
	keyComponent  = "component"
	keyTorn       = "torn_bytes"
	keyCorrupt    = "corrupt_records"
	keyDropped    = "dropped_bytes"
	keyMessages   = "messages"
	keyModule     = "module"
	keyDigest     = "digest"
	keyBytes      = "bytes"
	keyChunks     = "chunks"
	keyTotal      = "total_chunks"
	keyRound      = "round"
	keyNewest     = "newest_attempt"
	keyOlder      = "older_attempt"
	keyReason     = "reason"
	keyBound      = "bound"
	keyInvocation = "invocation_id"
)

// Proplet is an edge worker: it announces itself over MQTT, runs the wasm
// tasks a manager starts, and publishes their results.
type Proplet struct {
	cfg       Config
	log       *slog.Logger
	id        string
	topics    wire.Topics
	meta      wire.Metadata
	rt        runtime.Runtime
	wazero    atomic.Pointer[runtime.Wazero] // rt when in process, for Stats
	http      Fetcher
	downloads *downloads       // its cache is opened by Run
	client    paho.Client      // made by Run, around the journal's store
	tls       *tls.Config      // of the MQTT connection; nil for plain TCP
	journal   *journal.Journal // open while Run runs

	connected chan struct{}          // OnConnect → announce loop
	broker    atomic.Pointer[string] // the broker of the latest connection attempt, for logs
	ready     chan struct{}          // closed once the first connect has resumed the session
	started   atomic.Bool
	// interrupted: tasks reported interrupted at start-up, id → attempt; a
	// redelivery of their start is not run again.
	interrupted map[string]int

	mu        sync.Mutex
	tasks     map[string]*task     // running, by task id
	latent    map[string]*deployed // latent tasks deployed, by task id
	invokes   chan struct{}        // a slot per invocation running (MaxConcurrentInvokes)
	ending    map[string]int       // answered tasks ended, their result not yet stored: id → attempt
	early     earlyStops           // stops that came before their start
	unacked   unacked              // results kept until the engine acks them
	closing   bool
	taskCtx   context.Context // parent of every task
	stopTasks context.CancelCauseFunc
	pubCtx    context.Context // bounds publishing; ends shutdownGrace after Run's ctx
	stopPub   context.CancelFunc
	wg        sync.WaitGroup // task goroutines, and accepts sent again

	malformed   atomic.Uint64
	tasksRun    atomic.Uint64
	tasksFailed atomic.Uint64
	connects    atomic.Uint64
	resent      atomic.Uint64 // copies of unacked results sent again
	warned      sync.Map      // topic → struct{}: malformed input logged once per topic
}

type task struct {
	req     wire.StartRequest
	cancel  context.CancelCauseFunc
	answer  bool      // send an accept when it starts
	started time.Time // for its metrics
	agg     aggregate // its metrics so far; under Proplet.mu
	// settled closes when a latent task is deployed or the task ends:
	// invocations held while it deploys wait for it (see holdInvoke).
	settled chan struct{}
	settle  sync.Once
}

// settleNow closes t.settled, once.
func (t *task) settleNow() { t.settle.Do(func() { close(t.settled) }) }

// New validates cfg, settles the proplet id (generating and persisting one
// in DataDir when EntityID is empty) and checks the external runtime if
// any. Nothing is opened or connected until Run.
func New(cfg Config, log *slog.Logger) (*Proplet, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("proplet: data dir: %w", err)
	}
	id, err := propletID(cfg)
	if err != nil {
		return nil, err
	}
	rt, err := externalRuntime(cfg)
	if err != nil {
		return nil, err
	}
	tlsc, err := cfg.mqttTLS()
	if err != nil {
		return nil, fmt.Errorf("proplet: mqtt tls: %w", err)
	}
	if cfg.MQTTInsecureSkipVerify && cfg.TLS == nil {
		log.Warn("the MQTT broker's certificate is not verified (--mqtt-insecure-skip-verify, PROPLET_MQTT_TLS_INSECURE_SKIP_VERIFY)")
	}
	p := &Proplet{
		cfg: cfg, log: log.With(keyProplet, id), id: id, rt: rt, tls: tlsc,
		topics:    wire.Topics{Tenant: cfg.Tenant, Channel: cfg.Channel},
		meta:      metadata(cfg.ExternalRuntime),
		http:      &httpFetcher{client: http.DefaultClient, maxBytes: int64(cfg.MaxModuleMiB) << 20},
		connected: make(chan struct{}, 1),
		ready:     make(chan struct{}),
		tasks:     map[string]*task{},
		latent:    map[string]*deployed{},
		invokes:   make(chan struct{}, MaxConcurrentInvokes),
		ending:    map[string]int{},
		early:     earlyStops{},
		unacked:   unacked{due: map[string]*resend{}, acks: make(chan wire.ResultAck, ackQueue)},
	}
	p.downloads = p.newDownloads()
	return p, nil
}

func propletID(cfg Config) (string, error) {
	if cfg.EntityID != "" {
		return cfg.EntityID, nil
	}
	return loadOrCreateID(cfg.DataDir)
}

// externalRuntime checks the external runtime binary early; it holds no
// resources. The in-process runtime is made by Run, which closes it.
func externalRuntime(cfg Config) (runtime.Runtime, error) {
	if cfg.ExternalRuntime == "" {
		return nil, nil
	}
	return runtime.NewExternal(cfg.ExternalRuntime)
}

func (p *Proplet) openRuntime(ctx context.Context) error {
	if p.rt != nil {
		return nil
	}
	rt, err := runtime.NewWazero(ctx, runtime.Options{
		CacheDir:         filepath.Join(p.cfg.DataDir, "wazero-cache"),
		MemoryLimitPages: mibToPages(p.cfg.DefaultMemoryMiB),
		Tiered:           !p.cfg.TieredOff,
	})
	if err != nil {
		return fmt.Errorf("proplet: wasm runtime: %w", err)
	}
	p.rt = rt
	p.wazero.Store(rt)
	return nil
}

func mibToPages(mib int) uint32 {
	return uint32(min(mib, MaxMemoryMiB)) * (1 << 20 / runtime.PageSize)
}

func (p *Proplet) newDownloads() *downloads {
	return &downloads{
		id: p.id, request: p.requestModule, quiet: p.cfg.ChunkTimeout, retries: p.cfg.ChunkRetries,
		maxBytes: int64(p.cfg.MaxModuleMiB) << 20, log: p.log, flights: map[string]*download{},
	}
}

// openModules opens the module cache in DataDir/modules for the downloads.
// Called once the task context exists, before connecting.
func (p *Proplet) openModules() error {
	cache, err := modcache.Open(filepath.Join(p.cfg.DataDir, "modules"), int64(p.cfg.ModuleCacheMiB)<<20)
	if err != nil {
		return fmt.Errorf("proplet: %w", err)
	}
	p.downloads.cache, p.downloads.base = cache, p.taskCtx
	return nil
}

// requestModule publishes a module request on registry/proplet at QoS >= 1
// and waits for the broker's acknowledgement at most one quiet period.
func (p *Proplet) requestModule(ctx context.Context, req wire.ModuleRequest) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ChunkTimeout)
	defer cancel()
	return p.publish(ctx, wire.SuffixModuleRequest, p.resultQoS(), req)
}

// Delivery returns the module delivery counters.
func (p *Proplet) Delivery() DeliveryStats { return p.downloads.Stats() }

// ID is the proplet id: MQTT client id, username and proplet_id on the wire.
func (p *Proplet) ID() string { return p.id }

// Malformed counts inbound messages that could not be decoded.
func (p *Proplet) Malformed() uint64 { return p.malformed.Load() }

// Running lists the ids of the tasks running now, sorted.
func (p *Proplet) Running() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, 0, len(p.tasks))
	for id := range p.tasks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Run opens the journal in DataDir and queues a failed result for every
// task a previous run left unfinished, then connects (retrying until the
// broker answers), serves starts and stops, and heartbeats until ctx is
// done. It then stops the running tasks (publishing their results within a
// short grace period), publishes an offline status, disconnects, closes the
// journal and the runtime, and returns nil. Every goroutine it starts has
// ended when it returns. It fails early only when the wasm runtime or the
// journal cannot be set up (journal.ErrLocked: another proplet uses
// DataDir). Run may be called once.
func (p *Proplet) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	if err := p.openRuntime(ctx); err != nil {
		return err
	}
	defer p.rt.Close(context.WithoutCancel(ctx))
	if err := p.openJournal(); err != nil {
		return err
	}
	defer p.closeJournal()
	p.scheduleKept()
	p.client = paho.NewClient(p.clientOptions())
	p.initContexts(ctx)
	defer p.stopPub()
	if err := p.openModules(); err != nil {
		return err
	}
	var loops sync.WaitGroup
	loops.Go(func() { p.announceLoop(ctx) })
	loops.Go(func() { p.resendLoop(ctx) })
	loops.Go(func() { p.metricsLoop(ctx) })
	p.connect(ctx)
	<-ctx.Done()
	p.stopAllTasks()
	p.downloads.wait()
	loops.Wait()
	p.goOffline()
	return nil
}

func (p *Proplet) initContexts(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	base := context.WithoutCancel(ctx)
	p.taskCtx, p.stopTasks = context.WithCancelCause(base)
	p.pubCtx, p.stopPub = context.WithCancel(base)
}

// stopAllTasks refuses new tasks, cancels the running ones and waits for
// them; their results may take shutdownGrace to publish.
func (p *Proplet) stopAllTasks() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.stopTasks(ErrShutdown)
	grace := time.AfterFunc(shutdownGrace, p.stopPub)
	defer grace.Stop()
	p.wg.Wait()
}
