package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/apitest"
)

// replayHistories records workflows (a retried step, a fan-out step, one
// left running) and a task on the stack, the way the engine's process
// managers and the MQTT adapter drive the handler.
func replayHistories(t *testing.T, s *apitest.Stack) {
	t.Helper()
	ctx := t.Context()
	s.Announce(t, "p1")
	s.Announce(t, "p2")
	wf := func(cmds ...engine.WorkflowCommand) {
		t.Helper()
		for _, cmd := range cmds {
			if _, err := s.Handler.Workflow(ctx, cmd); err != nil {
				t.Fatalf("%T: %v", cmd, err)
			}
		}
	}
	step := func(name string, deps ...string) engine.StepSpec {
		return engine.StepSpec{Name: name, Module: "app:v1", DependsOn: deps}
	}
	retried := step("a")
	retried.Retry = &engine.RetryPolicy{MaxAttempts: 2}
	fan := step("f")
	fan.Placement = engine.StepPlacement{Broadcast: true}
	wf(engine.CreateWorkflow{ID: "w1", Spec: engine.WorkflowSpec{Name: "retry", Deadline: "1h", Steps: []engine.StepSpec{retried, step("b", "a")}}, At: s.Handler.Now()},
		engine.StartStep{ID: "w1", Step: "a", Attempt: 1, TaskID: "w1-a-1"},
		engine.StepFinished{ID: "w1", Step: "a", TaskID: "w1-a-1", Error: "boom"},
		engine.RetryTimerFired{ID: "w1", Step: "a", Attempt: 2},
		engine.StartStep{ID: "w1", Step: "a", Attempt: 2, TaskID: "w1-a-2"},
		engine.StepFinished{ID: "w1", Step: "a", TaskID: "w1-a-2", Result: json.RawMessage(`"1"`)},
		engine.StartStep{ID: "w1", Step: "b", Attempt: 1, TaskID: "w1-b-1"},
		engine.StepFinished{ID: "w1", Step: "b", TaskID: "w1-b-1", Result: json.RawMessage(`"2"`)})
	wf(engine.CreateWorkflow{ID: "w2", Spec: engine.WorkflowSpec{Name: "fan", Steps: []engine.StepSpec{fan}}, At: s.Handler.Now(), Held: true},
		engine.ReleaseWorkflow{ID: "w2"},
		engine.StartStep{ID: "w2", Step: "f", Attempt: 1, Shards: []events.Shard{{TaskID: "w2-p1", Device: "p1"}, {TaskID: "w2-p2", Device: "p2"}}},
		engine.StepFinished{ID: "w2", Step: "f", TaskID: "w2-p2", Result: json.RawMessage(`2`)},
		engine.StepFinished{ID: "w2", Step: "f", TaskID: "w2-p1", Result: json.RawMessage(`1`)})
	wf(engine.CreateWorkflow{ID: "w3", Spec: engine.WorkflowSpec{Name: "running", Steps: []engine.StepSpec{step("a")}}, At: s.Handler.Now()},
		engine.StartStep{ID: "w3", Step: "a", Attempt: 1, TaskID: "w3-a-1"})
	for _, cmd := range []engine.TaskCommand{
		engine.CreateTask{ID: "t1", Spec: events.TaskCreated{Name: "add", ImageURL: "docker.io/jetprop/add:1"}},
		engine.ScheduleTask{ID: "t1", Device: "p1"},
		engine.MarkStarted{ID: "t1", Attempt: 1},
		engine.RecordResult{ID: "t1", Device: "p1", Result: json.RawMessage(`"3"`)},
	} {
		if _, err := s.Handler.Task(ctx, cmd); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
}

// tamper appends a hand-made event to agg's history, straight into its stream.
func tamper(t *testing.T, s *apitest.Stack, agg events.Aggregate, id string, ev events.Event) uint64 {
	t.Helper()
	v, err := s.Store.Version(t.Context(), agg)
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Wrap(agg, id, events.Meta{Time: time.Now()}, ev)
	if err != nil {
		t.Fatal(err)
	}
	seq, err := s.Store.Append(t.Context(), agg, v, env)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// storedEvents counts the events of every stream.
func storedEvents(t *testing.T, s *apitest.Stack) int {
	t.Helper()
	n := 0
	for _, k := range events.Kinds() {
		seq, err := s.Store.LastSeq(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		n += int(seq)
	}
	return n
}

func TestCLI_EventsReplayCheck(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	replayHistories(t, s)
	stored := storedEvents(t, s)

	out := jetprop(ctx, vars, "", "events", "replay", "--check").ok(t)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^wf +WORKFLOWS +3 +(\d+) +(\d+) +0$`),
		regexp.MustCompile(`(?m)^task +TASKS +1 +4 +4 +0$`),
		regexp.MustCompile(`(?m)^dev +DEVICES +2 +2 +2 +0$`),
		regexp.MustCompile(fmt.Sprintf(`(?m)^total +6 +%d +%d +0$`, stored, stored)),
		regexp.MustCompile(fmt.Sprintf(`(?m)^%d events of 6 aggregates checked through the deciders in \S+ \(\d+ events/s\)$`, stored)),
	} {
		if !want.MatchString(out) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	if strings.Contains(out, "divergence") {
		t.Fatalf("divergence in a clean history:\n%s", out)
	}

	var r replayReport
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "events", "replay", "--check", "-o", "json").ok(t)), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Check || r.Events() != stored || r.Checked() != stored || r.Divergences == nil || len(r.Divergences) != 0 || r.Seconds <= 0 {
		t.Fatalf("JSON report %+v", r)
	}

	// Two hand-made events no decider would record: a non-final failure of
	// a step that has no retry, and a start of an attempt never scheduled.
	wfSeq := tamper(t, s, events.WorkflowAggregate("w3"), "bad-wf", events.WorkflowStepFailed{Step: "a", Attempt: 1, Reason: "boom"})
	taskSeq := tamper(t, s, events.TaskAggregate("t1"), "bad-task", events.TaskStarted{Device: "p2", Attempt: 7})
	if out := jetprop(ctx, vars, "", "events", "replay").ok(t); !strings.Contains(out, "folded (no --check)") {
		t.Fatalf("replay without --check:\n%s", out)
	}
	res := jetprop(ctx, vars, "", "events", "replay", "--check")
	res.fails(t, exitError, "jetprop: 2 of 6 histories diverge")
	for _, want := range []string{
		fmt.Sprintf("divergence wf/w3: event 2, at seq %d\n", wfSeq),
		`  command  StepFinished {"ID":"w3","Step":"a","Attempt":1,"TaskID":"w3-a-1"`,
		`  recorded workflow.step_failed {"step":"a","attempt":1,"reason":"boom"}`,
		`  decided  workflow.step_failed {"step":"a","attempt":1,"reason":"boom","final":true}`,
		fmt.Sprintf("divergence task/t1: event 4, at seq %d\n", taskSeq),
		`  recorded task.started {"device":"p2","attempt":7}`,
		"  decided  no events",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("no %q in\n%s", want, res.stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^wf +WORKFLOWS +3 +\d+ +\d+ +1$`).MatchString(res.stdout) {
		t.Errorf("no divergence counted for wf:\n%s", res.stdout)
	}
}

func TestCLI_EventsReplayErrors(t *testing.T) {
	jetprop(t.Context(), nil, "", "events", "replay", "--check", "--server", "http://127.0.0.1:1").fails(t, exitError, "jetprop: ")
	jetprop(t.Context(), nil, "", "events", "replay", "extra").fails(t, exitUsage, "unexpected arguments")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	jetprop(ctx, nil, "", "events", "replay", "--server", "http://127.0.0.1:1").fails(t, exitError, "context canceled")
}
