package replay_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/replaycheck"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/replay"
)

const (
	wfHistory = "testdata/workflows.jsonl"
	wfGolden  = "testdata/workflows.golden.json"
)

// The golden workflow scenario: data passing, a retried step, run_if
// always, a fan-out with a quorum and one failing device, and fail_fast
// stopping a sibling that never ends on its own.
var goldenSpecs = []engine.WorkflowSpec{
	{Name: "pipeline", Steps: []engine.StepSpec{
		{Name: "resize", Module: "registry.example/resize:1", Function: "run", Inputs: []string{"640"}},
		{Name: "label", Module: "registry.example/label:1", Function: "run", Inputs: []string{"${steps.resize.result}"}, DependsOn: []string{"resize"}},
		{Name: "flaky", Module: "registry.example/flaky:1", Function: "run", Retry: &engine.RetryPolicy{MaxAttempts: 2, InitialBackoff: "2s"}},
		{Name: "notify", Module: "registry.example/notify:1", Function: "run", DependsOn: []string{"label", "flaky"}, RunIf: engine.RunIfAlways},
	}},
	{Name: "fanout", Steps: []engine.StepSpec{
		{Name: "scan", Module: "registry.example/scan:1", Function: "run", Placement: engine.StepPlacement{Broadcast: true, MinSuccess: 2}},
		{Name: "reduce", Module: "registry.example/reduce:1", Function: "run", Inputs: []string{"${steps.scan.result}"}, DependsOn: []string{"scan"}},
	}},
	{Name: "failfast", FailFast: true, Steps: []engine.StepSpec{
		{Name: "bad", Module: "registry.example/bad:1", Function: "run"},
		{Name: "long", Module: "registry.example/long:1", Function: "run", Timeout: "1h"},
		{Name: "after", Module: "registry.example/after:1", Function: "run", DependsOn: []string{"bad"}},
	}},
}

// answer is what the scripted devices say to a task: ok false means an
// error; ok and done false means no answer yet (the task runs on).
func answer(t engine.Task) (result string, ok, done bool) {
	switch {
	case t.Step == "long":
		return "", false, false
	case t.Step == "bad", t.Step == "flaky" && t.StepAttempt == 1, t.Step == "scan" && t.Device == "d2":
		return t.Step + " failed on " + t.Device, false, true
	}
	return fmt.Sprintf("%s@%s(%s)", t.Step, t.Device, strings.Join(t.Inputs, ",")), true, true
}

// runScenario plays the golden scenario on the memory store with the
// real handler, service, read models and process manager, and returns
// the recorded history.
func runScenario(t *testing.T) []events.Envelope {
	ctx := testCtx(t)
	store := events.NewMemory()
	h := service.NewHandler(store, codec, replay.NewFixedClock(t0, 100*time.Millisecond), replay.NewSeqIDs("ev-"))
	tasks, devs, wfs := projections.NewTasks(codec), projections.NewDevices(codec), projections.NewWorkflows(codec)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, p := range []projections.Projection{tasks, devs, wfs} {
		go func() { _ = projections.Follow(fctx, store, p) }()
	}
	sync := func() {
		for _, p := range []interface {
			projections.Projection
			WaitFor(context.Context, uint64) error
		}{tasks, devs, wfs} {
			last, _ := store.LastSeq(ctx, p.Kind())
			if err := p.WaitFor(ctx, last); err != nil {
				t.Fatal(err)
			}
		}
	}
	svc := service.New(h, tasks, devs, nil, service.WithWorkflows(wfs))
	timers := replay.NewTimers()
	pm := service.NewWorkflowManager(svc, timers, nil)
	for _, d := range []string{"d1", "d2", "d3"} {
		if _, err := h.Device(ctx, engine.Announce{ID: d}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for i, spec := range goldenSpecs {
		w, err := svc.Workflow(ctx, engine.CreateWorkflow{ID: fmt.Sprintf("wf%d", i+1), Spec: spec, At: t0})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID)
	}
	sync()
	for round := 0; ; round++ {
		if round == 50 {
			t.Fatal("the scenario did not end")
		}
		running := 0
		for _, id := range ids { // one reconcile pass at a time, in order
			w, _ := svc.GetWorkflow(id)
			if !w.State.Terminal() {
				running++
			}
			for _, a := range engine.Reconcile(w, engine.Observed{Task: tasks.Get, Devices: devs.Up()}) {
				if err := pm.Execute(ctx, w, []engine.Action{a}); err != nil {
					t.Fatal(err)
				}
				sync()
				w, _ = svc.GetWorkflow(id)
			}
		}
		all, _ := tasks.List(0, 1<<20)
		for _, tk := range all {
			if !tk.State.Active() {
				continue
			}
			if r, ok, done := answer(tk); done {
				cmd := engine.RecordResult{ID: tk.ID, Device: tk.Device, Attempt: tk.Attempt, Error: r}
				if ok {
					cmd.Result, cmd.Error = json.RawMessage(fmt.Sprintf("%q", r)), ""
				}
				if _, err := h.Task(ctx, cmd); err != nil {
					t.Fatal(err)
				}
			}
		}
		sync()
		for _, id := range timers.IDs() {
			var f engine.TimerFire
			p, _ := timers.Payload(id)
			_ = json.Unmarshal(p, &f)
			if f.Kind == engine.TimerTimeout {
				continue // an hour: never due in this scenario
			}
			timers.Remove(id)
			if err := pm.FireTimer(ctx, mustMarshal(t, f), t0); err != nil {
				t.Fatal(err)
			}
			sync()
		}
		if running == 0 {
			break
		}
	}
	envs, err := replay.Record(ctx, store, events.KindDevice, events.KindWorkflow, events.KindTask)
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decision is what the process manager would do after one event of the
// history.
type decision struct {
	After    string           `json:"after"` // event type and aggregate
	Workflow string           `json:"workflow"`
	Actions  []actionRecord   `json:"actions"`
	State    string           `json:"state"`
	Steps    map[string]step2 `json:"steps"`
}

type step2 struct {
	State   string `json:"state"`
	Attempt int    `json:"attempt"`
}

type actionRecord struct {
	Type   string        `json:"type"`
	Action engine.Action `json:"action"`
}

type goldenFile struct {
	Events    int                        `json:"events"`
	Decisions []decision                 `json:"decisions"`
	Final     map[string]engine.Workflow `json:"final"`
}

// decide replays a recorded history in time order through the folds and,
// after each event that touches a workflow, asks Reconcile what it would
// do: the decisions must be the golden ones, whatever the process
// manager did live.
func decide(t *testing.T, envs []events.Envelope) goldenFile {
	envs = slices.Clone(envs)
	slices.SortStableFunc(envs, func(a, b events.Envelope) int { return a.Time.Compare(b.Time) })
	wfs, tasks, devs := map[string]engine.Workflow{}, map[string]engine.Task{}, map[string]engine.Device{}
	out := goldenFile{Events: len(envs)}
	for i := 0; i < len(envs); {
		// One append is one batch: the same aggregate and time (the
		// handler reads the clock once per append). Decide after it.
		j := i + 1
		for j < len(envs) && envs[j].Aggregate == envs[i].Aggregate && envs[j].Time.Equal(envs[i].Time) {
			j++
		}
		var wf string
		for _, env := range envs[i:j] {
			ev, err := codec.Decode(env)
			if err != nil {
				t.Fatal(err)
			}
			switch env.Aggregate.Kind {
			case events.KindWorkflow:
				wfs[env.Aggregate.ID] = wfs[env.Aggregate.ID].Apply(env, ev)
				wf = env.Aggregate.ID
			case events.KindTask:
				tasks[env.Aggregate.ID] = tasks[env.Aggregate.ID].Apply(env, ev)
				wf = tasks[env.Aggregate.ID].Workflow
			case events.KindDevice:
				devs[env.Aggregate.ID] = devs[env.Aggregate.ID].Apply(env, ev)
			}
		}
		after := envs[j-1].Type + " " + envs[j-1].Aggregate.ID
		if j-i > 1 {
			after = fmt.Sprintf("%d events to %s", j-i, envs[i].Aggregate)
		}
		i = j
		if wf == "" {
			continue
		}
		up := slices.SortedFunc(maps.Values(devs), func(a, b engine.Device) int { return cmp.Compare(a.ID, b.ID) })
		w := wfs[wf]
		acts := engine.Reconcile(w, engine.Observed{Task: func(id string) (engine.Task, bool) { t, ok := tasks[id]; return t, ok }, Devices: up})
		d := decision{After: after, Workflow: wf, State: w.State.String(), Steps: map[string]step2{}}
		for _, s := range w.Steps {
			d.Steps[s.Name] = step2{State: s.State.String(), Attempt: s.Attempt}
		}
		for _, a := range acts {
			d.Actions = append(d.Actions, actionRecord{Type: fmt.Sprintf("%T", a), Action: a})
		}
		out.Decisions = append(out.Decisions, d)
	}
	out.Final = wfs
	return out
}

// TestReplay_WorkflowsGolden: the recorded history of the scenario replays
// to the golden final states and the golden list of what the process
// manager would issue after every event. -update runs the scenario again
// and rewrites both files.
func TestReplay_WorkflowsGolden(t *testing.T) {
	if *update {
		envs := runScenario(t)
		var buf bytes.Buffer
		if err := replay.WriteJSONL(&buf, envs); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(wfHistory, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		g, _ := json.MarshalIndent(decide(t, envs), "", "  ")
		if err := os.WriteFile(wfGolden, append(g, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d events) and %s", wfHistory, len(envs), wfGolden)
	}
	raw, err := os.ReadFile(wfHistory)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	envs, err := replay.ReadJSONL(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(decide(t, envs), "", "  ")
	want, err := os.ReadFile(wfGolden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Fatalf("replayed decisions differ from %s (run with -update if the change is intended):\n%s", wfGolden, diffLines(append(got, '\n'), want))
	}

	// Every recorded event is what the deciders decide from the events
	// before it.
	res, err := replaycheck.History(codec, envs)
	if err != nil || len(res.Divergences) > 0 || res.Checked() != len(envs) {
		t.Fatalf("replay check: %d of %d events reproduced, divergences %+v, %v", res.Checked(), len(envs), res.Divergences, err)
	}

	// The scenario ended the way it is meant to.
	final, err := replay.ReplayWorkflows(codec, envs)
	if err != nil {
		t.Fatal(err)
	}
	check := func(wf, step string, state engine.StepState, result string) {
		t.Helper()
		s, _ := final[wf].Step(step)
		if s.State != state || result != "" && string(s.Result) != result {
			t.Errorf("%s/%s: %s %s, want %s %s", wf, step, s.State, s.Result, state, result)
		}
	}
	if final["wf1"].State != engine.WorkflowCompleted || final["wf2"].State != engine.WorkflowCompleted || final["wf3"].State != engine.WorkflowFailed {
		t.Errorf("workflows ended %s, %s, %s", final["wf1"].State, final["wf2"].State, final["wf3"].State)
	}
	check("wf1", "label", engine.StepCompleted, "")
	if s, _ := final["wf1"].Step("flaky"); s.Attempt != 2 {
		t.Errorf("flaky ended at attempt %d", s.Attempt)
	}
	check("wf2", "scan", engine.StepCompleted, `["scan@d1()","scan@d3()"]`)
	check("wf3", "long", engine.StepFailed, "")
	check("wf3", "after", engine.StepSkipped, "")
	// A final state replayed is the state folded from the full history.
	if last := decide(t, envs).Final; !reflect.DeepEqual(jsonOf(t, last), jsonOf(t, final)) {
		t.Error("time-ordered replay and per-aggregate replay disagree")
	}
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
