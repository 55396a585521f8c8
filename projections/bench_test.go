package projections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/replay"
)

// BenchmarkReplayWorkflows: replay of the WORKFLOWS stream from JetStream
// into the workflows read model (decode + fold, what a restart does), next
// to a raw ordered consumer reading the same messages in the same run.
//
//	go test -run '^$' -bench ReplayWorkflows -benchtime 5x ./projections/
func BenchmarkReplayWorkflows(b *testing.B) {
	nc, js := natstest.Connect(b, natstest.Start(b))
	ctx := context.Background()
	store, err := events.NewJetStream(ctx, nc, events.StreamOptions{})
	if err != nil {
		b.Fatal(err)
	}

	total := 0
	for i := range 200 { // 200 workflows of 50 steps: ~20k events
		id := fmt.Sprintf("wf%d", i)
		evs := replay.DriveWorkflow(b, id, replay.FanOutSpec(50), time.Now())
		envs := make([]events.Envelope, len(evs))
		for j, ev := range evs {
			if envs[j], err = events.Wrap(events.WorkflowAggregate(id), ulid.Make().String(), events.Meta{Time: time.Now()}, ev); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := store.Append(ctx, events.WorkflowAggregate(id), 0, envs...); err != nil {
			b.Fatal(err)
		}
		total += len(envs)
	}
	last, _ := store.LastSeq(ctx, events.KindWorkflow)
	n := int(last)
	b.Logf("%d workflow events stored", n)
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			cons, err := js.OrderedConsumer(ctx, events.KindWorkflow.Stream(), jetstream.OrderedConsumerConfig{})
			if err != nil {
				b.Fatal(err)
			}
			it, err := cons.Messages()
			if err != nil {
				b.Fatal(err)
			}
			for range n {
				if _, err := it.Next(); err != nil {
					b.Fatal(err)
				}
			}
			it.Stop()
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("fold", func(b *testing.B) {
		for b.Loop() {
			p := projections.NewWorkflows(events.DefaultCodec())
			if err := projections.Catchup(ctx, store, p); err != nil {
				b.Fatal(err)
			}
			if all, total := p.List(0, 1); total != 200 || all[0].State != engine.WorkflowCompleted {
				b.Fatalf("replayed %d workflows", total)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
