package proplet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
)

// engineRig is the engine side of module delivery, real parts only: the
// MODULES object store, the event store with its CHUNKS stream, the
// command handler, EDGE_IN with the inbound consumer that hands
// registry/proplet requests to the chunk server, and the chunk server
// publishing through the engine's paho connection. A test may look at each
// request (and answer it itself) before the chunk server gets it.
type engineRig struct {
	t       testing.TB
	ns      *natsserver.Server
	store   *events.JetStream
	modules *artifacts.Store
	server  *outbound.ChunkServer
	forger  paho.Client // a test client that publishes forged chunks
	resume  chan struct{}
	// resumeOnce lets a read held at rigOptions.pauseAt go on.
	resumeOnce func()

	mu       sync.Mutex
	requests []wire.ModuleRequest
	hook     func(wire.ModuleRequest) bool // false: the chunk server does not see it
	aliases  map[string]string             // names the resolver knows, → digest
}

type rigOptions struct {
	chunkSize int
	window    int
	// pauseAt, when not zero, holds the engine's first read of a module at
	// that many bytes until the test calls resume.
	pauseAt int64
}

func newEngineRig(t testing.TB, o rigOptions) *engineRig {
	t.Helper()
	ns := natstest.Start(t)
	nc, js := natstest.Connect(t, ns)
	ctx := context.Background()
	store, err := events.NewJetStream(ctx, nc, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	modules, err := artifacts.New(ctx, js, artifacts.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rig := &engineRig{t: t, ns: ns, store: store, modules: modules, aliases: map[string]string{}}
	h := service.NewHandler(store, events.DefaultCodec(), service.SystemClock{}, service.NewULIDs())
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("JETPROP_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	pub, err := outbound.NewPublisher(ctx, outbound.PublisherConfig{URL: ns.MQTTURL(), ClientID: "engine", Topics: topics}, log)
	if err != nil {
		t.Fatal(err)
	}
	transfers := mqtt.NewTransfers(h)
	var opener outbound.ModuleOpener = modules
	rig.resume = make(chan struct{})
	if o.pauseAt > 0 {
		opener = &pausingOpener{ModuleOpener: modules, at: o.pauseAt, resume: rig.resume}
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(rig.resume) }) })
	rig.resumeOnce = func() { once.Do(func() { close(rig.resume) }) }
	rig.server = outbound.NewChunkServer(outbound.ChunkPorts{Resolver: rig, Opener: opener, Publisher: pub, Progress: transfers, Tasks: transfers},
		outbound.ChunkConfig{ChunkSize: o.chunkSize, MaxPayload: int(nc.MaxPayload()), Window: o.window}, log)
	in, err := mqtt.NewInbound(ctx, mqtt.InboundPorts{JetStream: js, Commands: h, Seer: service.NewLiveness(service.SystemClock{}, time.Minute), ModuleRequests: rig.route},
		mqtt.InboundConfig{Topics: topics, Replicas: 1}, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { rig.server.Run(runCtx) })
	wg.Go(func() { in.Run(runCtx) })
	t.Cleanup(func() { cancel(); wg.Wait(); pub.Close() })
	rig.forger = connectClient(t, ns.MQTTURL(), "forger")
	return rig
}

// ResolveModule resolves stored digests and the test's aliases; it only
// stats the object store, never reads a module whole.
func (r *engineRig) ResolveModule(ctx context.Context, ref string) (string, int64, error) {
	r.mu.Lock()
	if d, ok := r.aliases[ref]; ok {
		ref = d
	}
	r.mu.Unlock()
	size, ok, err := r.modules.Stat(ctx, ref)
	if err != nil {
		return "", 0, err
	}
	if !ok {
		return "", 0, fmt.Errorf("%w: %s", domain.ErrModuleNotFound, ref)
	}
	return ref, size, nil
}

// route is the inbound consumer's registry handler.
func (r *engineRig) route(ctx context.Context, req wire.ModuleRequest) error {
	r.mu.Lock()
	r.requests = append(r.requests, req)
	hook := r.hook
	r.mu.Unlock()
	if hook != nil && !hook(req) {
		return nil
	}
	return r.server.Request(ctx, req)
}

func (r *engineRig) setHook(h func(wire.ModuleRequest) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hook = h
}

func (r *engineRig) alias(name, digest string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.aliases[name] = digest
}

// requestsFor returns the registry requests seen for app_name.
func (r *engineRig) requestsFor(appName string) []wire.ModuleRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wire.ModuleRequest
	for _, q := range r.requests {
		if q.AppName == appName {
			out = append(out, q)
		}
	}
	return out
}

// put stores a module and returns its digest.
func (r *engineRig) put(module []byte) string {
	r.t.Helper()
	digest, _, err := r.modules.Put(context.Background(), bytes.NewReader(module))
	if err != nil {
		r.t.Fatal(err)
	}
	return digest
}

// transfer folds the CHUNKS events of a module's transfer to target.
func (r *engineRig) transfer(digest, target string) (engine.Transfer, int) {
	r.t.Helper()
	agg := events.Aggregate{Kind: events.KindChunk, ID: strings.TrimPrefix(digest, "sha256:") + "." + target}
	envs, err := r.store.Load(context.Background(), agg)
	if err != nil {
		r.t.Fatal(err)
	}
	tr, err := engine.Fold(events.DefaultCodec(), engine.Transfer{}, envs)
	if err != nil {
		r.t.Fatal(err)
	}
	return tr, len(envs)
}

// waitTransfer waits until a transfer round completed.
func (r *engineRig) waitTransfer(digest, target string) engine.Transfer {
	r.t.Helper()
	var tr engine.Transfer
	natstest.CheckFor(r.t, wait, func() error {
		tr, _ = r.transfer(digest, target)
		if !tr.Completed {
			return fmt.Errorf("transfer %+v", tr)
		}
		return nil
	})
	return tr
}

// forge publishes chunks as they are, on the proplet's own chunk topic.
func (r *engineRig) forge(propletID string, chunks ...wire.Chunk) {
	r.t.Helper()
	for _, c := range chunks {
		b, _ := json.Marshal(c)
		tok := r.forger.Publish(topics.Topic(wire.PropletChunkTopic(propletID)), 1, false, b)
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			r.t.Errorf("forge chunk: %v", tok.Error())
		}
	}
}

// chunksOf cuts a module as the chunk server does.
func chunksOf(appName string, module []byte, size int) []wire.Chunk {
	total := (len(module) + size - 1) / size
	out := make([]wire.Chunk, total)
	for i := range out {
		out[i] = wire.Chunk{AppName: appName, ChunkIdx: wire.Int(i), TotalChunks: wire.Int(total),
			Data: module[i*size : min((i+1)*size, len(module))], Digest: digestOf(module), Size: int64(len(module))}
	}
	return out
}

func connectClient(t testing.TB, url, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func digestOf(b []byte) string {
	return domain.DigestOf(b)
}

// cached lists the digests in a proplet's module cache, and the chunk
// files of its downloads in progress.
func cached(t testing.TB, dataDir string) (digests []string, partial int) {
	t.Helper()
	des, _ := os.ReadDir(filepath.Join(dataDir, "modules", "sha256"))
	for _, de := range des {
		digests = append(digests, "sha256:"+de.Name())
	}
	return digests, partialChunks(dataDir)
}

// partialChunks counts the chunk files of a proplet's downloads in progress.
func partialChunks(dataDir string) int {
	files, _ := filepath.Glob(filepath.Join(dataDir, "modules", "partial", "*", "[0-9]*"))
	n := 0
	for _, f := range files {
		if !strings.HasSuffix(f, ".tmp") {
			n++
		}
	}
	return n
}

// fileDigest hashes a file.
func fileDigest(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return digestOf(b)
}

// pausingOpener holds the first module read at byte at until resume is
// closed: a test sees the chunks before it arrive and acts before the rest
// are sent, whatever the machine's speed.
type pausingOpener struct {
	outbound.ModuleOpener
	at     int64
	resume chan struct{}
	once   sync.Once
}

func (o *pausingOpener) Open(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	rc, n, err := o.ModuleOpener.Open(ctx, digest)
	if err != nil {
		return rc, n, err
	}
	first := false
	o.once.Do(func() { first = true })
	if !first {
		return rc, n, nil
	}
	return &pausingReader{ReadCloser: rc, left: o.at, resume: o.resume}, n, nil
}

type pausingReader struct {
	io.ReadCloser
	left   int64
	resume chan struct{}
}

func (r *pausingReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		<-r.resume
		r.left = -1
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.ReadCloser.Read(p)
	if r.left > 0 {
		r.left -= int64(n)
	}
	return n, err
}
