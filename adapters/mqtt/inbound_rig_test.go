package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
)

// edgeRig is Inbound on a real embedded nats-server with the real
// handler, event store and liveness: what the app wires, without the rest.
type edgeRig struct {
	ns      *natsserver.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	store   *events.JetStream
	handler *service.Handler
	live    *service.Liveness
	in      *mqtt.Inbound
}

func newEdgeRig(tb testing.TB, cfg mqtt.InboundConfig) *edgeRig {
	tb.Helper()
	return newEdgeRigOn(tb, cfg, nil)
}

// newEdgeRigOn is newEdgeRig with the handler reading the store through
// wrap (nil: the store itself).
func newEdgeRigOn(tb testing.TB, cfg mqtt.InboundConfig, wrap func(events.Store) events.Store) *edgeRig {
	tb.Helper()
	ns := natstest.Start(tb)
	nc, js := natstest.Connect(tb, ns)
	ctx := context.Background()
	store, err := events.NewJetStream(ctx, nc, events.StreamOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var through events.Store = store
	if wrap != nil {
		through = wrap(store)
	}
	r := &edgeRig{ns: ns, nc: nc, js: js, store: store,
		handler: service.NewHandler(through, events.DefaultCodec(), service.SystemClock{}, service.NewULIDs()),
		live:    service.NewLiveness(service.SystemClock{}, time.Hour),
	}
	cfg.Topics, cfg.Replicas = edgeTopics, 1
	ports := mqtt.InboundPorts{JetStream: js, Commands: r.handler, Seer: r.live, Refusals: r.handler}
	if r.in, err = mqtt.NewInbound(ctx, ports, cfg, slog.New(slog.DiscardHandler)); err != nil {
		tb.Fatal(err)
	}
	return r
}

// run runs Inbound until the returned stop is called (or the test ends).
func (r *edgeRig) run(tb testing.TB) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.in.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("Run: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

// settled is how many messages Inbound has settled for good.
func (r *edgeRig) settled() uint64 {
	s := r.in.Stats()
	return s.Recorded + s.Malformed + s.Ignored
}

// edgeMsg is one message a device publishes.
type edgeMsg struct {
	topic string
	data  []byte
}

// device builds the messages of one device, on its own topics or, when
// shared, on Propeller's shared topics with its id in the payload.
type device struct {
	id     string
	shared bool
}

// fleet is devices dev-<run>-<i>, every fourth on Propeller's shared topics.
func fleet(run string, n int) []device {
	ds := make([]device, n)
	for i := range ds {
		ds[i] = device{id: fmt.Sprintf("dev-%s-%d", run, i), shared: i%4 == 3}
	}
	return ds
}

func (d device) msg(suffix string, payload map[string]any) edgeMsg {
	payload["proplet_id"] = d.id
	b, err := json.Marshal(payload)
	if err != nil {
		panic(err)
	}
	if !d.shared {
		suffix = wire.OwnTopic(suffix, d.id)
	}
	return edgeMsg{topic: edgeTopics.Topic(suffix), data: b}
}

func (d device) create() edgeMsg {
	return d.msg(wire.SuffixCreate, map[string]any{"namespace": "fleet"})
}

func (d device) alive(status string) edgeMsg {
	return d.msg(wire.SuffixAlive, map[string]any{"status": status, "namespace": "fleet"})
}

func (d device) result(task string) edgeMsg {
	return d.msg(wire.SuffixResults, map[string]any{"task_id": task, "results": task, "attempt": 1})
}

// publish stores msgs in EDGE_IN in order and waits for the stream's acks.
func (r *edgeRig) publish(tb testing.TB, msgs []edgeMsg) {
	tb.Helper()
	for i, m := range msgs {
		if _, err := r.js.PublishAsync(wire.Subject(m.topic), m.data); err != nil {
			tb.Fatalf("publish %d: %v", i, err)
		}
		if i%1024 == 1023 {
			r.publishComplete(tb)
		}
	}
	r.publishComplete(tb)
}

func (r *edgeRig) publishComplete(tb testing.TB) {
	tb.Helper()
	select {
	case <-r.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("EDGE_IN did not ack the messages published")
	}
}

// scheduleTasks creates task ids[i] and schedules it on device of(i),
// workers at a time, as the API does.
func (r *edgeRig) scheduleTasks(tb testing.TB, ids []string, of func(i int) string) {
	tb.Helper()
	ctx := context.Background()
	forEach(tb, len(ids), 16, func(i int) error {
		spec := events.TaskCreated{Name: "main", ImageURL: "fleet:1"}
		if _, err := r.handler.Task(ctx, engine.CreateTask{ID: ids[i], Spec: spec}); err != nil {
			return err
		}
		_, err := r.handler.Task(ctx, engine.ScheduleTask{ID: ids[i], Device: of(i)})
		return err
	})
}

// forEach calls fn for 0..n-1 on `workers` goroutines and fails on the
// first error.
func forEach(tb testing.TB, n, workers int, fn func(i int) error) {
	tb.Helper()
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					errs <- fmt.Errorf("%d: %w", i, err)
					return
				}
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			tb.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
}

// task loads a task's state from the store.
func (r *edgeRig) task(tb testing.TB, id string) engine.Task {
	tb.Helper()
	return loadState[engine.Task](tb, r.store, events.TaskAggregate(id))
}

// device loads a device's state from the store.
func (r *edgeRig) device(tb testing.TB, id string) engine.Device {
	tb.Helper()
	return loadState[engine.Device](tb, r.store, events.DeviceAggregate(id))
}

func loadState[S engine.Foldable[S]](tb testing.TB, store events.Store, agg events.Aggregate) S {
	tb.Helper()
	var s S
	envs, err := store.Load(context.Background(), agg)
	if err != nil {
		tb.Fatalf("load %s: %v", agg, err)
	}
	if s, err = engine.Fold(events.DefaultCodec(), s, envs); err != nil {
		tb.Fatalf("fold %s: %v", agg, err)
	}
	return s
}
