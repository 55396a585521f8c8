package events_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
)

// BenchmarkAppend compares a store append (sync, expected last subject
// sequence, msg id, headers) with a raw JetStream publish of the same body in
// the same run, and an in-memory append.
//
//	go test -run '^$' -bench Append -benchtime 20000x ./events/
func BenchmarkAppend(b *testing.B) {
	s := natstest.Start(b)
	nc, js := natstest.Connect(b, s)
	ctx := context.Background()
	store, err := events.NewJetStream(ctx, nc, events.StreamOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ids := service.NewULIDs()
	body := events.TaskFailed{Attempt: 1, Reason: "benchmark"}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	b.Run("store-jetstream", func(b *testing.B) { benchStore(b, store, ids, body, at) })
	b.Run("store-memory", func(b *testing.B) { benchStore(b, events.NewMemory(), ids, body, at) })
	b.Run("raw-publish", func(b *testing.B) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}}); err != nil {
			b.Fatal(err)
		}
		data := []byte(`{"attempt":1,"reason":"benchmark"}`)
		b.ResetTimer()
		for i := range b.N {
			if _, err := js.Publish(ctx, fmt.Sprintf("raw.%d", i%1000), data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

func benchStore(b *testing.B, store events.Store, ids service.IDs, body events.Event, at time.Time) {
	ctx := context.Background()
	last := map[string]uint64{}
	run := ids.New() // fresh aggregates for every run of the benchmark function
	b.ResetTimer()
	for i := range b.N {
		agg := events.TaskAggregate(fmt.Sprintf("%s-%d", run, i%1000))
		env, err := events.Wrap(agg, ids.New(), events.Meta{Time: at}, body)
		if err != nil {
			b.Fatal(err)
		}
		seq, err := store.Append(ctx, agg, last[agg.ID], env)
		if err != nil {
			b.Fatal(err)
		}
		last[agg.ID] = seq
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReplay measures replay of the TASKS stream through an ordered consumer.
func BenchmarkReplay(b *testing.B) {
	s := natstest.Start(b)
	nc, _ := natstest.Connect(b, s)
	ctx := context.Background()
	store, err := events.NewJetStream(ctx, nc, events.StreamOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ids := service.NewULIDs()
	const n = 20000
	for i := range n {
		agg := events.TaskAggregate(fmt.Sprintf("r%d", i))
		env, _ := events.Wrap(agg, ids.New(), events.Meta{Time: time.Now()}, events.TaskDeleted{})
		if _, err := store.Append(ctx, agg, 0, env); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		count := 0
		if err := store.Replay(ctx, events.KindTask, 0, func(events.Envelope) error { count++; return nil }); err != nil || count != n {
			b.Fatalf("replayed %d, %v", count, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkJetStream_Load measures Load of a task aggregate of 3 and of 20
// events (a task's usual history, and a long one), cycling over 500
// aggregates so most reads miss the server's caches of recent messages;
// and LoadLatest, when the direct load reaches the leader's sequence and
// when it lags (the walk through the leader).
//
//	go test -run '^$' -bench 'Load' -benchmem ./events/
func BenchmarkJetStream_Load(b *testing.B) {
	s := natstest.Start(b)
	nc, _ := natstest.Connect(b, s)
	ctx := context.Background()
	store, err := events.NewJetStream(ctx, nc, events.StreamOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{3, 20} {
		aggs := loadAggregates(b, store, fmt.Sprintf("load%d", n), 500, n)
		for _, load := range []struct {
			name string
			fn   func(context.Context, events.Aggregate) ([]events.Envelope, error)
		}{{"Load", store.Load}, {"LoadLatest", store.LoadLatest}, {"LoadLatest/from-leader", laggingLoad(b, nc)}} {
			b.Run(fmt.Sprintf("%s/events=%d", load.name, n), func(b *testing.B) {
				for i := range b.N {
					evs, err := load.fn(ctx, aggs[i%len(aggs)])
					if err != nil || len(evs) != n {
						b.Fatalf("%s = %d events, %v; want %d", load.name, len(evs), err, n)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "loads/s")
			})
		}
	}
}

// loadAggregates appends n events to each of count task aggregates.
func loadAggregates(b *testing.B, store events.Store, prefix string, count, n int) []events.Aggregate {
	ctx := context.Background()
	ids := service.NewULIDs()
	aggs := make([]events.Aggregate, count)
	for i := range aggs {
		aggs[i] = events.TaskAggregate(fmt.Sprintf("%s-%d", prefix, i))
		var last uint64
		for range n {
			env, err := events.Wrap(aggs[i], ids.New(), events.Meta{Time: time.Now()}, events.TaskFailed{Attempt: 1, Reason: "benchmark"})
			if err != nil {
				b.Fatal(err)
			}
			if last, err = store.Append(ctx, aggs[i], last, env); err != nil {
				b.Fatal(err)
			}
		}
	}
	return aggs
}

// laggingLoad is LoadLatest of a store whose direct load always lags (it
// finds nothing): every load walks the subject through the leader.
func laggingLoad(b *testing.B, nc *nats.Conn) func(context.Context, events.Aggregate) ([]events.Envelope, error) {
	store, err := events.NewJetStream(context.Background(), nc, events.StreamOptions{})
	if err != nil {
		b.Fatal(err)
	}
	events.SetDirectLoad(store, func(context.Context, events.Aggregate) ([]events.Envelope, error) { return nil, nil })
	return store.LoadLatest
}
