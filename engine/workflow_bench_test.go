package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// benchSpec is a fan-out/fan-in DAG of n steps: a root, n-2 steps on it,
// a sink on all of them.
func benchSpec(n int) engine.WorkflowSpec {
	spec := engine.WorkflowSpec{Name: "bench", Steps: []engine.StepSpec{{Name: "root", Module: "m:1", Inputs: []string{"1"}}}}
	var mid []string
	for i := range n - 2 {
		name := fmt.Sprintf("s%d", i)
		mid = append(mid, name)
		spec.Steps = append(spec.Steps, engine.StepSpec{Name: name, Module: "m:1", Inputs: []string{"${steps.root.result}"}, DependsOn: []string{"root"}})
	}
	spec.Steps = append(spec.Steps, engine.StepSpec{Name: "sink", Module: "m:1", DependsOn: mid})
	return spec
}

// runWorkflow drives one workflow of spec to its end through the pure
// decider, the way the process manager does (starts and results in
// batches), and returns its events.
func runWorkflow(tb testing.TB, id string, spec engine.WorkflowSpec) []events.Event {
	var w engine.Workflow
	var all []events.Event
	seq := uint64(0)
	do := func(cmd engine.WorkflowCommand) {
		evs, err := engine.DecideWorkflow(w, cmd)
		if err != nil {
			tb.Fatal(err)
		}
		envs := make([]events.Envelope, len(evs))
		for i := range evs {
			seq++
			envs[i] = events.Envelope{Aggregate: events.WorkflowAggregate(id), Seq: seq, Time: t0}
		}
		w = w.ApplyAll(envs, evs)
		all = append(all, evs...)
	}
	do(engine.CreateWorkflow{ID: id, Spec: spec, At: t0})
	for !w.State.Terminal() {
		p := engine.Next(w)
		var starts, results []engine.WorkflowCommand
		for _, st := range p.Start {
			starts = append(starts, engine.StartStep{ID: id, Step: st.Step, Attempt: st.Attempt, TaskID: id + "-" + st.Step})
		}
		if len(starts) > 0 {
			do(engine.Batch{ID: id, Commands: starts})
		}
		for _, s := range w.Steps {
			if s.State == engine.StepRunning {
				results = append(results, engine.StepFinished{ID: id, Step: s.Name, Attempt: s.Attempt, Result: json.RawMessage(`"7"`)})
			}
		}
		if len(results) > 0 {
			do(engine.Batch{ID: id, Commands: results})
		}
	}
	return all
}

// BenchmarkDecideWorkflow: decider throughput in memory, events decided
// and folded per second, for workflows of 10 and 1,000 steps.
//
//	go test -run '^$' -bench DecideWorkflow ./engine/
func BenchmarkDecideWorkflow(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("steps=%d", n), func(b *testing.B) {
			spec := benchSpec(n)
			count := 0
			for b.Loop() {
				count += len(runWorkflow(b, "wf", spec))
			}
			b.ReportMetric(float64(count)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkReplayWorkflows: replay of the WORKFLOWS stream from JetStream
// into the workflows read model (decode + fold, what a restart does), next
// to a raw ordered consumer reading the same messages in the same run.
//
//	go test -run '^$' -bench ReplayWorkflows -benchtime 5x ./engine/
func BenchmarkReplayWorkflows(b *testing.B) {
	nc, js := natstest.Connect(b, natstest.Start(b))
	ctx := context.Background()
	store, err := events.NewJetStream(ctx, nc, events.StreamOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ids := engine.NewULIDs()
	total := 0
	for i := range 200 { // 200 workflows of 50 steps: ~20k events
		id := fmt.Sprintf("wf%d", i)
		evs := runWorkflow(b, id, benchSpec(50))
		envs := make([]events.Envelope, len(evs))
		for j, ev := range evs {
			if envs[j], err = events.Wrap(events.WorkflowAggregate(id), ids.New(), events.Meta{Time: time.Now()}, ev); err != nil {
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
			p := projections.NewWorkflows(reg)
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
