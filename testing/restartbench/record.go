package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/upproc"
)

// history shapes: a task is 4 events; one task in taskPerWorkflow comes
// with a workflow of wfSteps sequential steps (2 events a step, 2 more).
const (
	devices         = 50
	taskPerWorkflow = 100
	wfSteps         = 10
	writers         = 32
)

// record appends about n events to the streams of the stopped server's
// data directory, through the engine's command handler, writers at a
// time. It runs the embedded nats-server on the directory itself: a
// running engine would react to the history (start workflow steps,
// dispatch tasks to devices that are not there).
func record(ctx context.Context, s *upproc.Server, n int) (int, error) {
	pw, err := os.ReadFile(filepath.Join(s.DataDir(), app.EngineSecretFile))
	if err != nil {
		return 0, err
	}
	ns, err := natsserver.Start(ctx, natsserver.Config{DataDir: s.DataDir(), NATSPort: -1, MQTTPort: -1, EnginePassword: strings.TrimSpace(string(pw))})
	if err != nil {
		return 0, err
	}
	defer ns.Shutdown()
	nc, err := ns.Connect()
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	store, err := events.NewJetStream(ctx, nc, events.StreamOptions{})
	if err != nil {
		return 0, err
	}
	var count atomic.Int64
	h := service.NewHandler(countingStore{store, &count}, events.DefaultCodec(), service.SystemClock{}, service.NewULIDs())
	for i := range devices {
		if _, err := h.Device(ctx, engine.Announce{ID: fmt.Sprintf("dev-%03d", i), OwnTopics: true, Accepts: true}); err != nil {
			return 0, err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for range writers {
		g.Go(func() error {
			for count.Load() < int64(n) {
				if err := unit(gctx, h, int(next.Add(1))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	err = g.Wait()
	return int(count.Load()), err
}

// unit records task i, and every taskPerWorkflow tasks a workflow.
func unit(ctx context.Context, h *service.Handler, i int) error {
	id := fmt.Sprintf("task-%08d", i)
	dev := fmt.Sprintf("dev-%03d", i%devices)
	for _, cmd := range []engine.TaskCommand{
		engine.CreateTask{ID: id, Spec: events.TaskCreated{Name: "add", ImageURL: "docker.io/jetprop/add:1", Inputs: []string{"1", "2"}}},
		engine.ScheduleTask{ID: id, Device: dev},
		engine.MarkStarted{ID: id, Attempt: 1, Device: dev},
		engine.RecordResult{ID: id, Device: dev, Attempt: 1, Result: json.RawMessage(`"3"`)},
	} {
		if _, err := h.Task(ctx, cmd); err != nil {
			return fmt.Errorf("%T %s: %w", cmd, id, err)
		}
	}
	if i%taskPerWorkflow != 0 {
		return nil
	}
	return workflow(ctx, h, fmt.Sprintf("wf-%08d", i))
}

func workflow(ctx context.Context, h *service.Handler, id string) error {
	spec := engine.WorkflowSpec{Name: "chain", Mode: engine.ModeSequential}
	for s := range wfSteps {
		spec.Steps = append(spec.Steps, engine.StepSpec{Name: fmt.Sprintf("s%d", s), Module: "add:1", Function: "add", Inputs: []string{"1", "1"}})
	}
	cmds := []engine.WorkflowCommand{engine.CreateWorkflow{ID: id, Spec: spec, At: h.Now()}}
	for s := range wfSteps {
		name, task := fmt.Sprintf("s%d", s), fmt.Sprintf("%s-s%d-1", id, s)
		cmds = append(cmds, engine.StartStep{ID: id, Step: name, Attempt: 1, TaskID: task},
			engine.StepFinished{ID: id, Step: name, Attempt: 1, TaskID: task, Result: json.RawMessage(`2`)})
	}
	for _, cmd := range cmds {
		if _, err := h.Workflow(ctx, cmd); err != nil {
			return fmt.Errorf("%T %s: %w", cmd, id, err)
		}
	}
	return nil
}

// countingStore counts the events appended.
type countingStore struct {
	events.Store
	n *atomic.Int64
}

func (c countingStore) Append(ctx context.Context, agg events.Aggregate, expected uint64, evs ...events.Envelope) (uint64, error) {
	seq, err := c.Store.Append(ctx, agg, expected, evs...)
	if err == nil {
		c.n.Add(int64(len(evs)))
	}
	return seq, err
}
