package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
)

// BenchmarkEventsReplayCheck runs 'jetprop events replay --check' the way
// an operator does: against a real server (embedded nats-server, JetStream
// store, HTTP API), the events read over GET /events. The histories have
// the shapes a real data directory has and the synthetic histories of
// engine/replaycheck's benchmark lack: many small tasks, and wide
// workflows, whose state grows with their steps (a check that copies the
// state per event is quadratic in them: 900 events/s on a real directory
// with such workflows, issue 11).
//
//	go test -run '^$' -bench EventsReplayCheck -benchtime 3x ./cmd/jetprop/
func BenchmarkEventsReplayCheck(b *testing.B) {
	b.Run("Tasks5000", func(b *testing.B) {
		s := apitest.Start(b, apitest.Config{})
		recordTasks(b, s, 5000)
		benchReplayCheck(b, s)
	})
	b.Run("FanOut2000", func(b *testing.B) {
		s := apitest.Start(b, apitest.Config{})
		recordFanOut(b, s, "fan", 2000)
		benchReplayCheck(b, s)
	})
}

func benchReplayCheck(b *testing.B, s *apitest.Stack) {
	vars := serverEnv(s)
	var r replayReport
	for b.Loop() {
		out := jetprop(b.Context(), vars, "", "events", "replay", "--check", "-o", "json")
		if out.code != 0 {
			b.Fatalf("exit %d: %s %s", out.code, out.stderr, out.stdout)
		}
		if err := json.Unmarshal([]byte(out.stdout), &r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(r.Events())*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(r.Events()), "events/op")
}

// recordTasks records n tasks, each created, scheduled, started and
// completed, as the engine and a proplet would.
func recordTasks(b *testing.B, s *apitest.Stack, n int) {
	b.Helper()
	s.Announce(b, "p1")
	for i := range n {
		id := "t" + strconv.Itoa(i)
		for _, cmd := range []engine.TaskCommand{
			engine.CreateTask{ID: id, Spec: events.TaskCreated{Name: "add", ImageURL: "docker.io/jetprop/add:1", Inputs: []string{"1", "2"}}},
			engine.ScheduleTask{ID: id, Device: "p1"},
			engine.MarkStarted{ID: id, Attempt: 1},
			engine.RecordResult{ID: id, Device: "p1", Attempt: 1, Result: json.RawMessage(`"3"`)},
		} {
			if _, err := s.Handler.Task(b.Context(), cmd); err != nil {
				b.Fatalf("%T: %v", cmd, err)
			}
		}
	}
}

// recordFanOut records a finished workflow of n steps: a root, n-2 steps
// on its result, a sink after all of them.
func recordFanOut(b *testing.B, s *apitest.Stack, id string, n int) {
	b.Helper()
	spec := engine.WorkflowSpec{Name: "fan", Steps: []engine.StepSpec{{Name: "root", Module: "add:1"}}}
	var mid []string
	for i := range n - 2 {
		name := fmt.Sprintf("s%d", i)
		mid = append(mid, name)
		spec.Steps = append(spec.Steps, engine.StepSpec{Name: name, Module: "add:1", DependsOn: []string{"root"}})
	}
	spec.Steps = append(spec.Steps, engine.StepSpec{Name: "sink", Module: "add:1", DependsOn: mid})
	wf := func(cmd engine.WorkflowCommand) {
		if _, err := s.Handler.Workflow(b.Context(), cmd); err != nil {
			b.Fatalf("%T: %v", cmd, err)
		}
	}
	run := func(step string) {
		task := id + "-" + step + "-1"
		wf(engine.StartStep{ID: id, Step: step, Attempt: 1, TaskID: task})
		wf(engine.StepFinished{ID: id, Step: step, Attempt: 1, TaskID: task, Result: json.RawMessage(`"1"`)})
	}
	wf(engine.CreateWorkflow{ID: id, Spec: spec, At: s.Handler.Now()})
	run("root")
	for _, name := range mid {
		wf(engine.StartStep{ID: id, Step: name, Attempt: 1, TaskID: id + "-" + name + "-1"})
	}
	for _, name := range mid {
		wf(engine.StepFinished{ID: id, Step: name, Attempt: 1, TaskID: id + "-" + name + "-1", Result: json.RawMessage(`"1"`)})
	}
	run("sink")
}
