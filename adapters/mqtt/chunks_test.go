package mqtt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

var topics = wire.Topics{Tenant: "t", Channel: "c"}

// digestResolver resolves digests of stored modules only.
type digestResolver struct{ store *artifacts.Store }

func (r digestResolver) ResolveModule(ctx context.Context, ref string) (string, int64, error) {
	b, err := r.store.Get(ctx, ref)
	if err != nil {
		return "", 0, err
	}
	return ref, int64(len(b)), nil
}

// byteOpener streams a stored module from its bytes.
type byteOpener struct{ store *artifacts.Store }

func (o byteOpener) Open(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	b, err := o.store.Get(ctx, digest)
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), err
}

type chunkRig struct {
	server  *outbound.ChunkServer
	store   events.Store
	handler *service.Handler
	modules *artifacts.Store
	url     string
}

func newChunkRig(t *testing.T, chunkSize int) *chunkRig {
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
	h := service.NewHandler(store, events.DefaultCodec(), service.SystemClock{}, service.NewULIDs())
	pub, err := outbound.NewPublisher(ctx, outbound.PublisherConfig{URL: ns.MQTTURL(), ClientID: "engine-test", Topics: topics}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	tr := mqtt.NewTransfers(h)
	srv := outbound.NewChunkServer(outbound.ChunkPorts{Resolver: digestResolver{modules}, Opener: byteOpener{modules}, Publisher: pub, Progress: tr, Tasks: tr},
		outbound.ChunkConfig{ChunkSize: chunkSize, MaxPayload: int(nc.MaxPayload())}, slog.New(slog.DiscardHandler))
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &chunkRig{server: srv, store: store, handler: h, modules: modules, url: ns.MQTTURL()}
}

// collector subscribes to a chunk topic and keeps what arrives.
type collector struct {
	mu     sync.Mutex
	chunks map[int][]byte
	counts map[int]int
	errs   []string
	total  int
	digest string
}

func collect(t *testing.T, url, id, suffix string) *collector {
	t.Helper()
	c := &collector{chunks: map[int][]byte{}, counts: map[int]int{}}
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(true))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(50) })
	tok := cl.Subscribe(topics.Topic(suffix), 1, func(_ paho.Client, m paho.Message) {
		ch, err := wire.DecodeChunk(m.Payload())
		if err != nil {
			t.Errorf("decode chunk: %v", err)
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if ch.Error != "" {
			c.errs = append(c.errs, ch.Error)
			return
		}
		c.chunks[int(ch.ChunkIdx)] = ch.Data
		c.counts[int(ch.ChunkIdx)]++
		c.total, c.digest = int(ch.TotalChunks), ch.Digest
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return c
}

func (c *collector) assembled() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total == 0 || len(c.chunks) != c.total {
		return nil, fmt.Errorf("%d of %d chunks", len(c.chunks), c.total)
	}
	var out []byte
	for i := range c.total {
		out = append(out, c.chunks[i]...)
	}
	return out, nil
}

func TestChunkServer_DeliversToOneProplet(t *testing.T) {
	rig := newChunkRig(t, 64<<10)
	ctx := context.Background()
	mod := wasmfixtures.Padded(wasmfixtures.Add(), 300<<10)
	digest, _, err := rig.modules.Put(ctx, bytes.NewReader(mod))
	if err != nil {
		t.Fatal(err)
	}
	mine := collect(t, rig.url, "p1-sub", wire.PropletChunkTopic("p1"))
	shared := collect(t, rig.url, "shared-sub", wire.SuffixChunk)
	if err := rig.server.Request(ctx, wire.ModuleRequest{AppName: digest, PropletID: "p1"}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	natstest.CheckFor(t, 10*time.Second, func() error { got, err = mine.assembled(); return err })
	if domain.DigestOf(got) != digest || mine.digest != digest {
		t.Fatalf("assembled %s (chunks say %s), want %s", domain.DigestOf(got), mine.digest, digest)
	}
	if len(shared.chunks) != 0 {
		t.Fatalf("%d chunks went to the shared topic", len(shared.chunks))
	}

	// A resumed transfer asks for the missing chunks only.
	if err := rig.server.Request(ctx, wire.ModuleRequest{AppName: digest, PropletID: "p1", Chunks: []int{1, 3, 99}}); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		mine.mu.Lock()
		defer mine.mu.Unlock()
		if mine.counts[1] != 2 || mine.counts[3] != 2 {
			return fmt.Errorf("resent counts %v", mine.counts)
		}
		return nil
	})
	for i, n := range mine.counts {
		if i != 1 && i != 3 && n != 1 {
			t.Fatalf("chunk %d sent %d times", i, n)
		}
	}
	hexd := digest[len("sha256:"):]
	natstest.CheckFor(t, 10*time.Second, func() error {
		evs, err := rig.store.Load(ctx, events.Aggregate{Kind: events.KindChunk, ID: hexd + ".p1"})
		if err != nil {
			return err
		}
		tr, err := engine.Fold(events.DefaultCodec(), engine.Transfer{}, evs)
		if err != nil {
			return err
		}
		if tr.Rounds != 2 || !tr.Completed || tr.Sent != 2 || tr.SentAll != tr.Total+2 {
			return fmt.Errorf("transfer %+v", tr)
		}
		return nil
	})
}

func TestChunkServer_SharedTopicForPropeller(t *testing.T) {
	rig := newChunkRig(t, 0)
	ctx := context.Background()
	mod := wasmfixtures.Padded(wasmfixtures.Add(), 1<<20)
	digest, _, err := rig.modules.Put(ctx, bytes.NewReader(mod))
	if err != nil {
		t.Fatal(err)
	}
	shared := collect(t, rig.url, "propeller-proplet", wire.SuffixChunk)
	if err := rig.server.Request(ctx, wire.ModuleRequest{AppName: digest}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	natstest.CheckFor(t, 10*time.Second, func() error { got, err = shared.assembled(); return err })
	if !bytes.Equal(got, mod) || shared.total != 3 {
		t.Fatalf("assembled %d bytes in %d chunks", len(got), shared.total)
	}
	if rig.server.ChunkSize() != outbound.DefaultChunkSize {
		t.Fatalf("chunk size %d", rig.server.ChunkSize())
	}
}

func TestChunkServer_UnknownModuleFailsTask(t *testing.T) {
	rig := newChunkRig(t, 0)
	ctx := context.Background()
	mine := collect(t, rig.url, "p2-sub", wire.PropletChunkTopic("p2"))
	if _, err := rig.handler.Device(ctx, engine.Announce{ID: "p2"}); err != nil {
		t.Fatal(err)
	}
	task, err := rig.handler.Task(ctx, engine.CreateTask{ID: "t1", Spec: events.TaskCreated{Name: "run", ImageURL: "vision:9"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rig.handler.Task(ctx, engine.ScheduleTask{ID: task.ID, Device: "p2"}); err != nil {
		t.Fatal(err)
	}
	if err := rig.server.Request(ctx, wire.ModuleRequest{AppName: "vision:9", PropletID: "p2", TaskID: "t1"}); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		mine.mu.Lock()
		defer mine.mu.Unlock()
		if len(mine.errs) != 1 {
			return errors.New("no error chunk yet")
		}
		return nil
	})
	natstest.CheckFor(t, 10*time.Second, func() error {
		evs, err := rig.store.Load(ctx, events.TaskAggregate("t1"))
		if err != nil {
			return err
		}
		last := evs[len(evs)-1]
		var failed events.TaskFailed
		if last.Type != "task.failed" || json.Unmarshal(last.Data, &failed) != nil || failed.Reason == "" {
			return fmt.Errorf("last event %s %s", last.Type, last.Data)
		}
		return nil
	})
}
