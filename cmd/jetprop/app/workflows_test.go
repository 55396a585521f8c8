package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/replaycheck"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/replay"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// pushFixtures stores the test modules as artifacts name:1.
func pushFixtures(t testing.TB, a *app.App) {
	t.Helper()
	c := client.New(a.HTTPURL(), nil)
	for name, mod := range map[string][]byte{
		"add": wasmfixtures.Add(), "echo": wasmfixtures.Echo(), "uppercase": wasmfixtures.Uppercase(),
		"fail": wasmfixtures.Fail(), "loop": wasmfixtures.Loop(),
	} {
		if _, err := c.PushArtifact(t.Context(), name, "1", bytes.NewReader(mod), 0, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRecordReplay records every stream of the running app and replays
// the recording offline: the folds give the app's own read models, the
// deciders reproduce every event, and the process manager would decide
// the same from the replayed states as from the live ones.
func checkRecordReplay(t *testing.T, a *app.App) {
	t.Helper()
	ctx := t.Context()
	envs, err := replay.Record(ctx, a.Store(), events.Kinds()...)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := replay.WriteJSONL(&buf, envs); err != nil {
		t.Fatal(err)
	}
	back, err := replay.ReadJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	codec := events.DefaultCodec()
	wfs, err := replay.ReplayWorkflows(codec, back)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := replay.ReplayTasks(codec, back)
	if err != nil {
		t.Fatal(err)
	}
	devices, err := replay.ReplayDevices(codec, back)
	if err != nil {
		t.Fatal(err)
	}
	var up []engine.Device
	for _, d := range a.Devices().Up() {
		up = append(up, devices[d.ID])
	}
	offline := engine.Observed{Task: func(id string) (engine.Task, bool) { t, ok := tasks[id]; return t, ok }, Devices: up}
	live := engine.Observed{Task: a.Tasks().Get, Devices: a.Devices().Up()}
	for id, w := range wfs {
		got, _ := a.Service().GetWorkflow(id)
		if !sameJSON(t, w, got) {
			t.Errorf("workflow %s replayed differs from the live read model", id)
		}
		if !sameJSON(t, engine.Reconcile(w, offline), engine.Reconcile(got, live)) {
			t.Errorf("workflow %s: offline decisions differ from live ones", id)
		}
	}
	for id, tk := range tasks {
		if got, ok := a.Tasks().Get(id); ok && !sameJSON(t, tk, got) {
			t.Errorf("task %s replayed differs from the live read model", id)
		}
	}
	res, err := replaycheck.History(codec, back)
	if err != nil || len(res.Divergences) > 0 || res.Checked() != len(back) {
		t.Fatalf("replay check: %d of %d events reproduced, divergences %+v, %v", res.Checked(), len(back), res.Divergences, err)
	}
	t.Logf("recorded %d events; replayed offline to the same %d workflows and %d tasks", len(back), len(wfs), len(tasks))
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

// waitWorkflow waits until workflow id ends and returns it (watching the
// read model's version, so waiting costs the engine nothing).
func waitWorkflow(t testing.TB, a *app.App, id string, timeout time.Duration) engine.Workflow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	wfs := a.Workflows()
	for {
		if _, ended, _ := wfs.Version(id); ended {
			w, _ := wfs.Get(id)
			return w
		}
		if err := wfs.WaitFor(ctx, wfs.LastSeq()+1); err != nil {
			w, _ := wfs.Get(id)
			t.Fatalf("workflow %s did not end within %s: %+v", id, timeout, w)
		}
	}
}

func stepResult(t testing.TB, w engine.Workflow, name string) string {
	t.Helper()
	s, ok := w.Step(name)
	if !ok {
		t.Fatalf("no step %s", name)
	}
	return string(s.Result)
}

func TestApp_Workflow_DataPassing(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 2))
	waitDevices(t, a, 2)
	pushFixtures(t, a)
	spec := engine.WorkflowSpec{
		Name: "pipe",
		Steps: []engine.StepSpec{
			{Name: "sum", Module: "add:1", Function: "add", Inputs: []string{"2", "3"}},
			{Name: "more", Module: "add:1", Function: "add", Inputs: []string{"${steps.sum.result}", "10"}, DependsOn: []string{"sum"}},
			{Name: "say", Module: "echo:1", Inputs: []string{"hello from jetprop"}},
			{Name: "shout", Module: "uppercase:1", StdinFrom: "say", DependsOn: []string{"say"}},
		},
	}
	// Watch the start messages on their way to the proplets, on each
	// proplet's own topic (MQTT topics are NATS subjects with / as .).
	topic := wire.Topics{Tenant: "t1", Channel: "c1"}.Topic(wire.OwnTopic(wire.SuffixStart, "+"))
	starts, err := a.Conn().SubscribeSync(wire.Subject(topic))
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.Service().CreateWorkflow(t.Context(), spec, service.WorkflowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w = waitWorkflow(t, a, w.ID, 30*time.Second)
	if w.State != engine.WorkflowCompleted {
		t.Fatalf("workflow %s: %s", w.State, w.Reason)
	}
	more, _ := w.Step("more")
	sentParents := ""
	for {
		m, err := starts.NextMsg(time.Second)
		if err != nil {
			break
		}
		var req wire.StartRequest
		if json.Unmarshal(m.Data, &req) == nil && req.ID == more.TaskID {
			sentParents = string(req.ParentResults)
		}
	}
	if sentParents != `{"sum":"5"}` {
		t.Errorf("start of step more carried parent_results %q, want {\"sum\":\"5\"}", sentParents)
	}
	if got := stepResult(t, w, "more"); got != `"15"` {
		t.Errorf("more = %s, want \"15\"", got)
	}
	if got := stepResult(t, w, "shout"); got != `"HELLO FROM JETPROP\n"` {
		t.Errorf("shout = %s", got)
	}
	// The task of a step carries the workflow, and Propeller's parent_results.
	s, _ := w.Step("more")
	task, err := a.Service().GetTask(s.TaskID)
	if err != nil || task.Workflow != w.ID || string(task.ParentResults["sum"]) != `"5"` {
		t.Fatalf("task %+v %v", task, err)
	}
	checkRecordReplay(t, a)
}

func TestApp_Workflow_FanOutRetryFailFast(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 3))
	waitDevices(t, a, 3)
	pushFixtures(t, a)
	ctx := t.Context()

	fan, err := a.Service().CreateWorkflow(ctx, engine.WorkflowSpec{
		Name: "fan",
		Steps: []engine.StepSpec{
			{Name: "all", Module: "add:1", Function: "add", Inputs: []string{"1", "1"}, Placement: engine.StepPlacement{Broadcast: true}},
			{Name: "after", Module: "echo:1", Inputs: []string{"${steps.all.result}"}, DependsOn: []string{"all"}},
		},
	}, service.WorkflowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := waitWorkflow(t, a, fan.ID, 30*time.Second)
	if w.State != engine.WorkflowCompleted || stepResult(t, w, "all") != `["2","2","2"]` {
		t.Fatalf("fan-out: %s %s all=%s", w.State, w.Reason, stepResult(t, w, "all"))
	}
	if s, _ := w.Step("all"); len(s.Shards) != 3 {
		t.Fatalf("shards %+v", s.Shards)
	}

	ff, err := a.Service().CreateWorkflow(ctx, engine.WorkflowSpec{
		Name: "failfast", FailFast: true,
		Steps: []engine.StepSpec{
			{Name: "bad", Module: "fail:1", Retry: &engine.RetryPolicy{MaxAttempts: 2, InitialBackoff: "100ms"}},
			{Name: "slow", Module: "loop:1", Function: "loop"},
			{Name: "child", Module: "add:1", Function: "add", Inputs: []string{"1", "2"}, DependsOn: []string{"bad"}},
		},
	}, service.WorkflowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w = waitWorkflow(t, a, ff.ID, 30*time.Second)
	bad, _ := w.Step("bad")
	child, _ := w.Step("child")
	if w.State != engine.WorkflowFailed || bad.Attempt != 2 || bad.State != engine.StepFailed || child.State != engine.StepSkipped {
		t.Fatalf("fail-fast: %s %q bad=%+v child=%+v", w.State, w.Reason, bad, child)
	}
	// The sibling that never ends on its own is stopped.
	natstest.CheckFor(t, 15*time.Second, func() error {
		w, _ := a.Service().GetWorkflow(ff.ID)
		slow, _ := w.Step("slow")
		if !slow.State.Terminal() {
			return fmt.Errorf("slow is %s", slow.State)
		}
		task, _ := a.Service().GetTask(slow.TaskID)
		if !task.State.Terminal() {
			return fmt.Errorf("slow's task is %s", task.State)
		}
		return nil
	})
	checkRecordReplay(t, a)
}

func TestApp_Workflow_TimeoutAndDeadline(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 1))
	waitDevices(t, a, 1)
	pushFixtures(t, a)
	ctx := t.Context()
	w, err := a.Service().CreateWorkflow(ctx, engine.WorkflowSpec{
		Name:  "timeout",
		Steps: []engine.StepSpec{{Name: "spin", Module: "loop:1", Function: "loop", Timeout: "300ms"}},
	}, service.WorkflowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w = waitWorkflow(t, a, w.ID, 20*time.Second)
	if s, _ := w.Step("spin"); w.State != engine.WorkflowFailed || s.State != engine.StepFailed {
		t.Fatalf("timeout: %s %s %+v", w.State, w.Reason, s)
	}

	d, err := a.Service().CreateWorkflow(ctx, engine.WorkflowSpec{
		Name: "deadline", Deadline: "500ms",
		Steps: []engine.StepSpec{{Name: "spin", Module: "loop:1", Function: "loop"}},
	}, service.WorkflowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d = waitWorkflow(t, a, d.ID, 20*time.Second)
	if d.State != engine.WorkflowTimedOut {
		t.Fatalf("deadline: %s %s", d.State, d.Reason)
	}
}

// TestApp_Workflow_TimerSurvivesRestart: a retry backoff pending when the
// engine stops fires after it starts again, and the sequential mode waits
// for each step.
func TestApp_Workflow_TimerSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	a := startApp(t, testConfig(dir, 1))
	waitDevices(t, a, 1)
	pushFixtures(t, a)
	w, err := a.Service().CreateWorkflow(t.Context(), engine.WorkflowSpec{
		Name: "restart", Mode: engine.ModeSequential,
		Steps: []engine.StepSpec{
			{Name: "first", Module: "add:1", Function: "add", Inputs: []string{"1", "2"}},
			{Name: "flaky", Module: "fail:1", Retry: &engine.RetryPolicy{MaxAttempts: 2, InitialBackoff: "1500ms"}},
			{Name: "last", Module: "add:1", Function: "add", Inputs: []string{"3", "4"}, RunIf: engine.RunIfAlways},
		},
	}, service.WorkflowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 15*time.Second, func() error {
		w, _ := a.Service().GetWorkflow(w.ID)
		if s, _ := w.Step("flaky"); s.State != engine.StepBackoff {
			return fmt.Errorf("flaky is %s", s.State)
		}
		return nil
	})
	a.Close()
	b := startApp(t, testConfig(dir, 1))
	got := waitWorkflow(t, b, w.ID, 30*time.Second)
	flaky, _ := got.Step("flaky")
	first, _ := got.Step("first")
	last, _ := got.Step("last")
	if got.State != engine.WorkflowFailed || flaky.Attempt != 2 || last.State != engine.StepCompleted {
		t.Fatalf("after restart: %s %q flaky=%+v last=%+v", got.State, got.Reason, flaky, last)
	}
	if !first.FinishedAt.Before(flaky.StartedAt) || last.StartedAt.Before(flaky.FinishedAt) {
		t.Fatalf("sequential steps overlap: first %v–%v, flaky %v–%v, last %v", first.StartedAt, first.FinishedAt, flaky.StartedAt, flaky.FinishedAt, last.StartedAt)
	}
}

// TestApp_Workflow_Cron: a cron workflow starts a run every firing until
// it is cancelled.
func TestApp_Workflow_Cron(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 1))
	waitDevices(t, a, 1)
	pushFixtures(t, a)
	ctx := t.Context()
	sched, err := a.Service().CreateWorkflow(ctx, engine.WorkflowSpec{
		Name: "tick", Cron: "* * * * * *", Timezone: "Europe/Berlin",
		Steps: []engine.StepSpec{{Name: "sum", Module: "add:1", Function: "add", Inputs: []string{"1", "1"}}},
	}, service.WorkflowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runs := func(id string) (n, done int) {
		all, _ := a.Service().ListWorkflows(0, 0)
		for _, w := range all {
			if w.Source == "cron:"+id {
				n++
				if w.State == engine.WorkflowCompleted {
					done++
				}
			}
		}
		return n, done
	}
	natstest.CheckFor(t, 15*time.Second, func() error {
		if n, done := runs(sched.ID); done < 2 {
			return fmt.Errorf("%d runs, %d completed", n, done)
		}
		return nil
	})
	if _, err := a.Service().CancelWorkflow(ctx, sched.ID, ""); err != nil {
		t.Fatal(err)
	}
	before, _ := runs(sched.ID)
	// Timers fire one at a time, in the order they fell due, and a firing
	// handled once the cancel shows adds no run. A schedule created now has
	// its second run a second after any firing of "tick" the cancel had not
	// removed yet: once that run shows, the firing that was being handled
	// when the cancel was recorded (the one that may still add a run) and
	// at least one later firing of "tick", if any was left, were handled.
	marker, err := a.Service().CreateWorkflow(ctx, engine.WorkflowSpec{
		Name: "marker", Cron: "* * * * * *",
		Steps: []engine.StepSpec{{Name: "sum", Module: "add:1", Function: "add", Inputs: []string{"1", "1"}}},
	}, service.WorkflowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 15*time.Second, func() error {
		if n, _ := runs(marker.ID); n < 2 {
			return fmt.Errorf("%d runs of the marker schedule", n)
		}
		return nil
	})
	if after, _ := runs(sched.ID); after > before+1 {
		t.Fatalf("runs went on after cancel: %d -> %d (one firing in flight may land)", before, after)
	}
	w, _ := a.Service().GetWorkflow(sched.ID)
	if w.State != engine.WorkflowCancelled || w.Steps[0].State != engine.StepSkipped {
		t.Fatalf("schedule %s %+v", w.State, w.Steps)
	}
}

// TestApp_PropellerJobAndWorkflow: Propeller's API end to end. A
// sequential job runs nothing until started, then each task after the one
// before; a fail-fast dependent of a failed task is skipped (state 5), not
// left pending; POST /workflows starts its roots by itself.
func TestApp_PropellerJobAndWorkflow(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 2))
	waitDevices(t, a, 2)
	pushFixtures(t, a)
	base := a.HTTPURL()

	type ptask struct {
		ID        string          `json:"id"`
		Step      string          `json:"step"`
		State     int             `json:"state"`
		Results   json.RawMessage `json:"results"`
		StartTime time.Time       `json:"start_time"`
		Finish    time.Time       `json:"finish_time"`
	}
	type job struct {
		JobID string  `json:"job_id"`
		State int     `json:"state"`
		Tasks []ptask `json:"tasks"`
	}
	var j job
	mustJSON(t, call(t, "POST", base+"/jobs", map[string]any{
		"name": "nightly", "execution_mode": "sequential",
		"tasks": []map[string]any{
			{"id": "first", "name": "add", "image_url": "add:1", "inputs": []int{1, 2}},
			{"id": "second", "name": "add", "image_url": "add:1", "inputs": []int{3, 4}},
		},
	}, 201), &j)
	mustJSON(t, call(t, "GET", base+"/jobs/"+j.JobID, nil, 200), &j)
	for _, tk := range j.Tasks {
		if tk.State != 0 {
			t.Fatalf("a held job ran %+v", tk)
		}
	}
	released := time.Now()
	call(t, "POST", base+"/jobs/"+j.JobID+"/start", nil, 200)
	w := waitWorkflow(t, a, j.JobID, 30*time.Second)
	mustJSON(t, call(t, "GET", base+"/jobs/"+j.JobID, nil, 200), &j)
	if w.State != engine.WorkflowCompleted || j.State != 3 || len(j.Tasks) != 2 {
		t.Fatalf("job %s: %+v", w.State, j)
	}
	for _, tk := range j.Tasks { // held: nothing started before the start call
		if tk.StartTime.Before(released) {
			t.Fatalf("task %s of a held job started at %v, before the job was started at %v", tk.ID, tk.StartTime, released)
		}
	}
	if first, second := j.Tasks[0], j.Tasks[1]; string(first.Results) != `"3"` || string(second.Results) != `"7"` || second.StartTime.Before(first.Finish) {
		t.Fatalf("sequential job did not wait: %+v", j.Tasks)
	}

	var wf struct {
		ID    string  `json:"id"`
		Tasks []ptask `json:"tasks"`
	}
	mustJSON(t, call(t, "POST", base+"/workflows", map[string]any{
		"tasks": []map[string]any{
			{"id": "root", "name": "_start", "image_url": "fail:1"},
			{"id": "child", "name": "add", "image_url": "add:1", "inputs": []int{1, 1}, "depends_on": []string{"root"}},
			{"id": "cleanup", "name": "add", "image_url": "add:1", "inputs": []int{1, 1}, "depends_on": []string{"root"}, "run_if": "failure"},
		},
	}, 201), &wf)
	got := waitWorkflow(t, a, wf.ID, 30*time.Second)
	states := map[string]engine.StepState{}
	for _, s := range got.Steps {
		states[s.Name] = s.State
	}
	if got.State != engine.WorkflowFailed || states["child"] != engine.StepSkipped || states["cleanup"] != engine.StepCompleted {
		t.Fatalf("propeller workflow %s: %v", got.State, states)
	}
	mustJSON(t, call(t, "GET", base+"/workflows/"+wf.ID, nil, 200), &wf)
	for _, tk := range wf.Tasks {
		if tk.Step == "child" && tk.State != 5 {
			t.Fatalf("skipped dependent shows state %d, want 5 (Skipped)", tk.State)
		}
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

// TestApp_Workflow_TwoReplicas: two engines on one NATS server both run the
// process manager; a workflow still runs each step attempt once, and when
// the engine it was created on stops, the other one finishes it.
func TestApp_Workflow_TwoReplicas(t *testing.T) {
	ns := natstest.Start(t)
	replica := func() *app.App {
		cfg := testConfig(t.TempDir(), 0)
		cfg.NATSURL, cfg.MQTTURL = ns.EngineURL(), ns.EngineMQTTURL()
		a, err := app.Start(context.Background(), cfg, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Close)
		return a
	}
	a, b := replica(), replica()
	for range 3 {
		startProplet(t, ns.MQTTURL(), "t1", "c1", t.TempDir())
	}
	waitDevices(t, a, 3)
	waitDevices(t, b, 3)
	pushFixtures(t, a)
	spec := chainSpec(15)
	spec.Steps = append(spec.Steps,
		engine.StepSpec{Name: "fan", Module: "add:1", Function: "add", Inputs: []string{"${steps.c14.result}", "1"}, Placement: engine.StepPlacement{Broadcast: true}},
		engine.StepSpec{Name: "flaky", Module: "fail:1", Retry: &engine.RetryPolicy{MaxAttempts: 3, InitialBackoff: "200ms"}},
		engine.StepSpec{Name: "last", Module: "echo:1", Inputs: []string{"${steps.fan.result}"}, RunIf: engine.RunIfAlways},
	)
	w, err := a.Service().CreateWorkflow(t.Context(), spec, service.WorkflowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 20*time.Second, func() error { // let both work on it, then stop the first
		if cur, _ := b.Service().GetWorkflow(w.ID); !slices.ContainsFunc(cur.Steps, func(s engine.Step) bool { return s.Name == "c5" && s.State.Terminal() }) {
			return fmt.Errorf("not far enough yet")
		}
		return nil
	})
	a.Close()
	got := waitWorkflow(t, b, w.ID, 60*time.Second)
	last, _ := got.Step("last")
	flaky, _ := got.Step("flaky")
	if got.State != engine.WorkflowFailed || stepResult(t, got, "c14") != `"15"` || stepResult(t, got, "fan") != `["16","16","16"]` ||
		flaky.Attempt != 3 || last.State != engine.StepCompleted {
		t.Fatalf("workflow %s %q; steps %+v", got.State, got.Reason, got.Steps)
	}
	// One task per step attempt (per device for the fan-out): none twice.
	all, _ := b.Tasks().List(0, 1<<20)
	perStep := map[string]int{}
	for _, tk := range all {
		if tk.Workflow == w.ID {
			perStep[fmt.Sprintf("%s/%d", tk.Step, tk.StepAttempt)]++
		}
	}
	for key, n := range perStep {
		if want := map[bool]int{true: 3, false: 1}[strings.HasPrefix(key, "fan/")]; n != want {
			t.Errorf("step attempt %s ran as %d tasks, want %d", key, n, want)
		}
	}
	if len(perStep) != 15+1+3+1 {
		t.Errorf("%d step attempts ran, want 20: %v", len(perStep), perStep)
	}
}
