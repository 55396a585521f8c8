package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
)

// Workflow benchmarks on one box: the engine with its embedded nats-server
// and 4 in-process proplets running `add` over MQTT.
//
//	go test -run '^$' -bench 'Workflow' -benchtime 3x ./cmd/jetprop/app/
//
// FanOut1000 runs a 1,000-step fan-out/fan-in workflow (a root, 998
// parallel steps on their inputs, a sink depending on all of them);
// Tasks1000 runs the same 1,000 `add` calls as individual tasks (created
// and started 16 at a time, the way a client would), for comparison;
// Chain50 runs a 50-step sequential chain, each step adding 1 to the
// result of the one before. Each reports ms/step (wall time over steps).
func BenchmarkWorkflow(b *testing.B) {
	a := startApp(b, testConfig(b.TempDir(), 4))
	waitDevices(b, a, 4)
	pushFixtures(b, a)
	b.Run("FanOut1000", func(b *testing.B) { benchWorkflow(b, a, fanOutSpec(1000), 1000) })
	b.Run("Tasks1000", func(b *testing.B) { benchTasks(b, a, 1000) })
	b.Run("Chain50", func(b *testing.B) { benchWorkflow(b, a, chainSpec(50), 50) })
}

func fanOutSpec(n int) engine.WorkflowSpec {
	spec := engine.WorkflowSpec{Name: "fan", Steps: []engine.StepSpec{{Name: "root", Module: "add:1", Function: "add", Inputs: []string{"1", "1"}}}}
	var all []string
	for i := range n - 2 {
		name := fmt.Sprintf("s%d", i)
		all = append(all, name)
		spec.Steps = append(spec.Steps, engine.StepSpec{
			Name: name, Module: "add:1", Function: "add", Inputs: []string{"${steps.root.result}", fmt.Sprint(i)}, DependsOn: []string{"root"},
		})
	}
	spec.Steps = append(spec.Steps, engine.StepSpec{Name: "sink", Module: "add:1", Function: "add", Inputs: []string{"1", "2"}, DependsOn: all})
	return spec
}

func chainSpec(n int) engine.WorkflowSpec {
	spec := engine.WorkflowSpec{Name: "chain", Mode: engine.ModeSequential}
	for i := range n {
		in := "0"
		if i > 0 {
			in = fmt.Sprintf("${steps.c%d.result}", i-1)
		}
		spec.Steps = append(spec.Steps, engine.StepSpec{Name: fmt.Sprintf("c%d", i), Module: "add:1", Function: "add", Inputs: []string{in, "1"}})
	}
	return spec
}

func benchWorkflow(b *testing.B, a *app.App, spec engine.WorkflowSpec, steps int) {
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		w, err := a.Service().CreateWorkflow(context.Background(), spec, service.WorkflowOptions{})
		if err != nil {
			b.Fatal(err)
		}
		w = waitWorkflow(b, a, w.ID, 5*time.Minute)
		total += time.Since(start)
		if w.State != engine.WorkflowCompleted {
			b.Fatalf("workflow %s: %s", w.State, w.Reason)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N*steps), "ms/step")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/workflow")
}

func benchTasks(b *testing.B, a *app.App, n int) {
	svc := a.Service()
	ctx := context.Background()
	mod, err := svc.GetArtifact(ctx, "add:1")
	if err != nil {
		b.Fatal(err)
	}
	spec := events.TaskCreated{Name: "add", Inputs: []string{"1", "2"}, Module: mod.Digest, ModuleSize: mod.Size}
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		work := make(chan int, n)
		for i := range n {
			work <- i
		}
		close(work)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range work {
					t, err := svc.CreateTask(ctx, spec, nil)
					if err == nil {
						_, err = svc.StartTask(ctx, t.ID)
					}
					if err == nil {
						wctx, cancel := context.WithTimeout(ctx, time.Minute)
						t, err = svc.WaitTask(wctx, t.ID)
						cancel()
					}
					if err != nil || t.State != engine.TaskCompleted {
						b.Errorf("task: %v %s", err, t.Error)
						return
					}
				}
			})
		}
		wg.Wait()
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N*n), "ms/step")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/workflow")
}
