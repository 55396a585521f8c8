package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

func TestParseSpec(t *testing.T) {
	yamlSpec := `name: p
steps:
  - name: sum
    module: add:1
    function: add
    inputs: [10, 20]
    env: {DEBUG: 1, QUIET: yes}
  - name: show
    module: echo:1
    depends_on: [sum]
    inputs: ["${steps.sum.result}"]
    retry: {max_attempts: 3, initial_backoff: 1s}
    placement:
      selector: {os: linux}
      min_success: 1
`
	spec, err := parseSpec("p.yaml", []byte(yamlSpec))
	if err != nil {
		t.Fatal(err)
	}
	sum, show := spec.Steps[0], spec.Steps[1]
	if strings.Join(sum.Inputs, ",") != "10,20" || sum.Env["DEBUG"] != "1" || sum.Env["QUIET"] != "true" {
		t.Fatalf("numbers and booleans not read as strings: %+v", sum)
	}
	if show.Retry == nil || show.Retry.MaxAttempts != 3 || show.Placement.Selector["os"] != "linux" || show.Placement.MinSuccess != 1 {
		t.Fatalf("show %+v", show)
	}

	asJSON, _ := json.MarshalIndent(spec, "", "\t") // tabs: JSON is read as YAML
	fromJSON, err := parseSpec("p.json", asJSON)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := json.MarshalIndent(fromJSON, "", "\t"); !bytes.Equal(again, asJSON) {
		t.Fatalf("JSON round trip:\n%s\n---\n%s", again, asJSON)
	}
}

func TestParseSpec_Errors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown step field", "name: p\nsteps:\n  - name: a\n    module: m:1\n  - name: b\n    module: m:1\n    dependson: [a]\n",
			[]string{`p.yaml:7: unknown field "dependson" in steps[1] (did you mean "depends_on"?)`}},
		{"unknown top-level field", "name: p\nfail-fast: true\nsteps: [{name: a, module: m:1}]\n",
			[]string{`p.yaml:2: unknown field "fail-fast" in the workflow (did you mean "fail_fast"?)`}},
		{"unknown field far from any", "name: p\nsteps:\n  - {name: a, module: m:1, colour: red}\n",
			[]string{`p.yaml:3: unknown field "colour" in steps[0] (fields there: depends_on, env, function,`}},
		{"unknown retry field", "name: p\nsteps:\n  - name: a\n    module: m:1\n    retry: {max_attempt: 2}\n",
			[]string{`p.yaml:5: unknown field "max_attempt" in steps[0].retry (did you mean "max_attempts"?)`}},
		{"several unknown fields", "name: p\nsteps:\n  - name: a\n    modul: m:1\n    timout: 1s\n",
			[]string{`p.yaml:4: unknown field "modul"`, `p.yaml:5: unknown field "timout"`}},
		{"cycle", "name: p\nsteps:\n  - {name: a, module: m:1, depends_on: [b]}\n  - {name: b, module: m:1, depends_on: [a]}\n",
			[]string{`p.yaml: workflow "p": cycle: a → b → a`}},
		{"invalid values", "name: p\nsteps:\n  - {name: a, module: m:1, timeout: 30, run_if: sometimes}\n",
			[]string{`run_if "sometimes"`, `timeout "30" is not a duration`}},
		{"syntax", "name: p\nsteps:\n  - name: a\n   module: m:1\n", []string{"p.yaml: yaml: line 3: did not find expected"}},
		{"duplicate key", "name: p\nname: q\nsteps: []\n", []string{"p.yaml: yaml: unmarshal errors: line 2:", `"name" already set`}},
		{"wrong type", "name: p\nsteps:\n  - name: a\n    module: m:1\n    retry: 3\n", []string{"p.yaml:5: steps.retry: want a mapping, got a number"}},
		{"steps not a list", "name: p\nsteps: a\n", []string{"p.yaml:2: steps: want a list, got a string"}},
		{"not a mapping", "- a\n- b\n", []string{"p.yaml: want a mapping (name:, steps:), got a list"}},
		{"empty", "\n  \n", []string{"p.yaml: the file is empty"}},
		{"json typo", `{"name": "p", "steps": [{"name": "a", "module": "m:1", "inptus": ["1"]}]}`,
			[]string{`p.yaml:1: unknown field "inptus" in steps[0] (did you mean "inputs"?)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSpec("p.yaml", []byte(tc.src))
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// FuzzParseSpec: any input is a spec or an error wrapping ErrInvalid, never
// a panic; a spec read is valid and reads back the same from its JSON.
func FuzzParseSpec(f *testing.F) {
	files, _ := filepath.Glob("../../examples/workflows/*")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Add([]byte(twoSteps))
	f.Add([]byte(`{"name": "p", "steps": [{"name": "a", "module": "m:1", "inptus": ["1"]}]}`))
	f.Add([]byte("name: p\nsteps:\n  - {name: a, module: m:1, retry: 3}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		spec, err := parseSpec("f.yaml", src)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := spec.Validate(); err != nil {
			t.Fatalf("read an invalid spec: %v", err)
		}
		b, _ := json.Marshal(spec)
		again, err := parseSpec("f.json", b)
		if b2, _ := json.Marshal(again); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("JSON round trip: %v\n%s\n%s", err, b, b2)
		}
	})
}

// TestExamples_Workflows loads and validates every example workflow.
func TestExamples_Workflows(t *testing.T) {
	files, _ := filepath.Glob("../../examples/workflows/*")
	if len(files) == 0 {
		t.Fatal("no example workflows")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			spec, err := readSpec(&env{}, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range spec.Steps {
				if _, err := os.Stat(filepath.Join("../../examples", moduleName(st.Module), moduleName(st.Module)+".wasm")); err != nil {
					t.Errorf("step %s: module %s is not one of examples/: %v", st.Name, st.Module, err)
				}
			}
		})
	}
}

// TestDocs_WorkflowSpecs validates every YAML block of docs/workflows.md.
func TestDocs_WorkflowSpecs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/workflows.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("no yaml blocks")
	}
	for i, b := range blocks {
		if _, err := parseSpec(fmt.Sprintf("docs/workflows.md block %d", i+1), b[1]); err != nil {
			t.Error(err)
		}
	}
}

// moduleName is the name of a name:tag reference.
func moduleName(ref string) string {
	name, _, _ := strings.Cut(ref, ":")
	return name
}

var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// sampleWorkflow is a failed workflow with a step of every kind: completed,
// failed after retries, skipped, and a fan-out step.
func sampleWorkflow() engine.Workflow {
	spec := engine.WorkflowSpec{Name: "pipeline", Steps: []engine.StepSpec{
		{Name: "greet", Module: "echo:1"},
		{Name: "shout", Module: "uppercase:1", Retry: &engine.RetryPolicy{MaxAttempts: 3}},
		{Name: "report", Module: "echo:1"},
		{Name: "survey", Module: "echo:1", Placement: engine.StepPlacement{Broadcast: true}},
	}}
	return engine.Workflow{
		ID: "wf1", Spec: spec, State: engine.WorkflowFailed, Reason: "failed steps: shout",
		CreatedAt: t0, FinishedAt: t0.Add(5 * time.Second), Seq: 9,
		Steps: []engine.Step{
			{Name: "greet", State: engine.StepCompleted, Attempt: 1, TaskID: "wf1-greet-1", Result: json.RawMessage(`"hello from jetprop\n"`),
				StartedAt: t0.Add(100 * time.Millisecond), FinishedAt: t0.Add(350 * time.Millisecond)},
			{Name: "shout", State: engine.StepFailed, Attempt: 3, TaskID: "wf1-shout-3", Error: "wasm trap: unreachable",
				StartedAt: t0.Add(3 * time.Second), FinishedAt: t0.Add(4500 * time.Millisecond)},
			{Name: "report", State: engine.StepSkipped, Error: "dependency shout failed", FinishedAt: t0.Add(4500 * time.Millisecond)},
			{Name: "survey", State: engine.StepCompleted, Attempt: 1, Result: json.RawMessage(`["` + strings.Repeat("x", 70) + `",null]`),
				StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(2 * time.Second), Shards: []engine.Shard{
					{TaskID: "s1", Device: "edge-1", State: engine.StepCompleted, Result: json.RawMessage(`"21.5"`)},
					{TaskID: "s2", Device: "edge-2", State: engine.StepFailed, Error: "offline"},
				}},
		},
	}
}

func TestPrintWorkflow(t *testing.T) {
	var out bytes.Buffer
	if err := printWorkflow(&out, sampleWorkflow(), deviceCache{"wf1-greet-1": "p1"}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := `Workflow: wf1
Name:     pipeline
State:    failed
Reason:   failed steps: shout
Created:  2025-03-04T10:00:00Z
Finished: 2025-03-04T10:00:05Z (after 5s)

STEP    STATE      ATTEMPT  DEVICE     STARTED   FINISHED  DURATION  RESULT / ERROR
greet   completed  1        p1         10:00:00  10:00:00  250ms     hello from jetprop
shout   failed     3/3      -          10:00:03  10:00:04  1.5s      wasm trap: unreachable
report  skipped    -        -          -         10:00:04  -         dependency shout failed
survey  completed  1        2 devices  10:00:01  10:00:02  1s        ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…
  └     completed           edge-1                                   21.5
  └     failed              edge-2                                   offline
`
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}

	schedule := engine.Workflow{ID: "wf2", Spec: engine.WorkflowSpec{Name: "nightly", Cron: "0 30 2 * * *", Timezone: "Europe/Paris"},
		Source: "cron:wf0", CreatedAt: t0}
	out.Reset()
	if err := printWorkflow(&out, schedule, nil, t0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\nCron:     0 30 2 * * * (Europe/Paris); each firing starts a run of its own\nSource:   cron:wf0\n") {
		t.Fatalf("schedule:\n%s", out.String())
	}
}

func TestPrintChanges(t *testing.T) {
	final := sampleWorkflow()
	running := sampleWorkflow()
	running.State, running.Reason, running.FinishedAt, running.Seq = engine.WorkflowRunning, "", time.Time{}, 4
	running.Steps = []engine.Step{
		final.Steps[0],
		{Name: "shout", State: engine.StepBackoff, Attempt: 1, TaskID: "wf1-shout-1", Error: "wasm trap: unreachable",
			StartedAt: t0.Add(400 * time.Millisecond), FinishedAt: t0.Add(500 * time.Millisecond)},
		{Name: "report"},
		{Name: "survey", State: engine.StepRunning, Attempt: 1, StartedAt: t0.Add(time.Second), Shards: []engine.Shard{
			{TaskID: "s1", Device: "edge-1", State: engine.StepCompleted, Result: json.RawMessage(`"21.5"`)},
			{TaskID: "s2", Device: "edge-2", State: engine.StepRunning},
		}},
	}
	running.UpdatedAt = t0.Add(1500 * time.Millisecond)
	final.UpdatedAt = final.FinishedAt
	devices := deviceCache{"wf1-greet-1": "p1", "wf1-shout-3": "p2"}

	var out bytes.Buffer
	for _, step := range [][2]engine.Workflow{{{}, running}, {running, final}} {
		if err := printChanges(&out, step[0], step[1], devices); err != nil {
			t.Fatal(err)
		}
	}
	want := `10:00:00 workflow wf1 (pipeline): 4 steps, running
10:00:00 greet            running   attempt 1 on p1
10:00:00 greet            completed hello from jetprop (250ms)
10:00:00 shout            running   attempt 1/3
10:00:00 shout            backoff   wasm trap: unreachable (attempt 1 of 3 failed; next in 1s)
10:00:01 survey           running   attempt 1 on 2 devices
10:00:01 survey@edge-1    completed 21.5
10:00:03 shout            running   attempt 3/3 on p2
10:00:04 shout            failed    wasm trap: unreachable (1.5s)
10:00:04 report           skipped   dependency shout failed
10:00:05 survey@edge-2    failed    offline
10:00:02 survey           completed ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx… (1s)
10:00:05 workflow failed after 5s: failed steps: shout
`
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestWorkflowTable(t *testing.T) {
	done := sampleWorkflow()
	running := engine.Workflow{ID: "wf2", Spec: engine.WorkflowSpec{Name: "nightly"}, CreatedAt: t0.Add(time.Minute),
		Steps: []engine.Step{{Name: "a", State: engine.StepCompleted}, {Name: "b", State: engine.StepRunning}}}
	page := httpapi.WorkflowList{Limit: 2, Total: 3, Workflows: []httpapi.Workflow{{Workflow: running}, {Workflow: done}}}
	var out bytes.Buffer
	if err := workflowTable(&out, page, t0.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := `ID   NAME      STATE    STEPS  CREATED               DURATION
wf2  nightly   running  1/2    2025-03-04T10:01:00Z  30s
wf1  pipeline  failed   4/4    2025-03-04T10:00:00Z  5s
(2 of 3 workflows; more with --offset 2)
`
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestShorten(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"HELLO\n", 10, "HELLO"},
		{"a\nb\tc", 10, `a\nb\tc`},
		{"héllo wörld", 6, "héllo…"},
		{"exact", 5, "exact"},
	}
	for _, tc := range tests {
		if got := shorten(tc.in, tc.max); got != tc.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestOutcome(t *testing.T) {
	if err := outcome(engine.Workflow{ID: "w", State: engine.WorkflowCompleted}); err != nil {
		t.Fatal(err)
	}
	err := outcome(engine.Workflow{ID: "w", State: engine.WorkflowTimedOut, Reason: "deadline passed"})
	if err == nil || err.Error() != "workflow w timed out: deadline passed" {
		t.Fatalf("outcome %v", err)
	}
}

// pushExamples pushes the example modules as echo:1, uppercase:1 and add:1.
func pushExamples(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, name := range []string{"echo", "uppercase", "add"} {
		jetprop(t.Context(), vars, "", "artifact", "push", filepath.Join("../../examples", name, name+".wasm"), "--name", name+":1").ok(t)
	}
}

const twoSteps = `name: shout
steps:
  - name: greet
    module: echo:1
    inputs: ["hello from jetprop"]
  - name: shout
    module: uppercase:1
    depends_on: [greet]
    stdin_from: greet
`

func TestCLI_WorkflowRoundTrip(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	pushExamples(t, vars)

	out := jetprop(ctx, vars, twoSteps, "workflow", "apply", "-f", "-").ok(t)
	id := strings.TrimSpace(out)
	if out != id+"\n" || strings.ContainsAny(id, " \t") || id == "" {
		t.Fatalf("apply printed %q, want the id alone", out)
	}
	file := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(file, []byte(twoSteps), 0o644); err != nil {
		t.Fatal(err)
	}
	second := strings.TrimSpace(jetprop(ctx, vars, "", "workflow", "apply", "--file", file).ok(t))

	table := jetprop(ctx, vars, "", "workflow", "get", id).ok(t)
	for _, want := range []string{"Workflow: " + id, "Name:     shout", "State:    running"} {
		if !strings.Contains(table, want) {
			t.Errorf("get lacks %q:\n%s", want, table)
		}
	}
	if rows := tableRows(table); len(rows) != 3 || rows[1] != "greet pending - - - - - -" || rows[2] != "shout pending - - - - - -" {
		t.Fatalf("steps %q", rows)
	}
	var w httpapi.Workflow
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "workflow", "get", "--json", id).ok(t)), &w); err != nil || w.ID != id || w.Spec.Steps[1].StdinFrom != "greet" {
		t.Fatalf("get --json: %+v %v", w, err)
	}

	list := strings.Split(strings.TrimSpace(jetprop(ctx, vars, "", "workflow", "ls").ok(t)), "\n")
	if len(list) != 3 || !strings.HasPrefix(list[1], second+" ") || !strings.HasPrefix(list[2], id+" ") || !strings.Contains(list[2], " running ") {
		t.Fatalf("ls, newest first:\n%s", strings.Join(list, "\n"))
	}
	var page httpapi.WorkflowList
	if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "workflow", "ls", "-o", "json", "--limit", "1").ok(t)), &page); err != nil || page.Total != 2 || len(page.Workflows) != 1 {
		t.Fatalf("ls -o json: %+v %v", page, err)
	}

	if out := jetprop(ctx, vars, "", "workflow", "cancel", id, "--reason", "changed my mind").ok(t); out != id+" cancelled\n" {
		t.Fatalf("cancel printed %q", out)
	}
	table = jetprop(ctx, vars, "", "workflow", "get", id).ok(t)
	if !strings.Contains(table, "State:    cancelled\nReason:   changed my mind\n") || !strings.Contains(table, "\ngreet  skipped") {
		t.Fatalf("cancelled:\n%s", table)
	}
	r := jetprop(ctx, vars, "", "workflow", "watch", id)
	r.fails(t, exitError, "jetprop: workflow "+id+" cancelled: changed my mind")
	if !strings.Contains(r.stdout, "workflow "+id+" (shout): 2 steps, cancelled") || !strings.Contains(r.stdout, "workflow cancelled after") {
		t.Fatalf("watch printed:\n%s", r.stdout)
	}
	jetprop(ctx, vars, "", "workflow", "get", "nosuch").fails(t, exitError, "not found (HTTP 404)")
}

// tableRows returns the rows of the step table (after the header's blank
// line), their fields joined by one space.
func tableRows(out string) []string {
	_, table, _ := strings.Cut(out, "\n\n")
	var rows []string
	for l := range strings.SplitSeq(strings.TrimSpace(table), "\n") {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
	}
	return rows
}

// TestCLI_WorkflowWatch plays the process manager's part through the
// service (each step started as a task and finished) while watch follows.
func TestCLI_WorkflowWatch(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	pushExamples(t, vars)
	id := strings.TrimSpace(jetprop(ctx, vars, twoSteps, "workflow", "apply", "-f", "-").ok(t))

	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- jetpropTo(ctx, &out, &errOut, vars, "", "workflow", "watch", id) }()
	natstest.CheckFor(t, apitest.Timeout, func() error {
		if !strings.Contains(out.String(), "2 steps, running") {
			return errors.New("watch has not begun")
		}
		return nil
	})
	for _, step := range []struct{ name, result string }{{"greet", `"hello from jetprop\n"`}, {"shout", `"HELLO FROM JETPROP\n"`}} {
		task := engine.StepTaskID(id, step.name, 1)
		if _, err := s.Service.Workflow(ctx, engine.StartStep{ID: id, Step: step.name, Attempt: 1, TaskID: task}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Service.Workflow(ctx, engine.StepFinished{ID: id, Step: step.name, Attempt: 1, TaskID: task, Result: json.RawMessage(step.result)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("watch exited %d: %s\n%s", code, errOut.String(), out.String())
		}
	case <-time.After(apitest.Timeout):
		t.Fatalf("watch did not end:\n%s", out.String())
	}
	for _, want := range []string{" greet            completed hello from jetprop", " shout            completed HELLO FROM JETPROP", " workflow completed after "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("watch lacks %q:\n%s", want, out.String())
		}
	}
	if rows := tableRows(jetprop(ctx, vars, "", "workflow", "get", id).ok(t)); len(rows) != 3 || !strings.HasSuffix(rows[2], " HELLO FROM JETPROP") {
		t.Fatalf("get rows %q", rows)
	}
	if out := jetprop(ctx, vars, "", "workflow", "cancel", id).ok(t); out != id+" had already ended: completed\n" {
		t.Fatalf("cancel of an ended workflow printed %q", out)
	}
}

func TestCLI_WorkflowApplyErrors(t *testing.T) {
	s := apitest.Start(t, apitest.Config{})
	ctx, vars := t.Context(), serverEnv(s)
	pushExamples(t, vars)
	dir := t.TempDir()
	write := func(name, src string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"typo", []string{"-f", write("typo.yaml", strings.Replace(twoSteps, "depends_on", "dependson", 1))}, exitError,
			`typo.yaml:8: unknown field "dependson" in steps[1] (did you mean "depends_on"?)`},
		{"cycle", []string{"-f", write("cycle.yaml", twoSteps+"  - {name: a, module: echo:1, depends_on: [b]}\n  - {name: b, module: echo:1, depends_on: [a]}\n")}, exitError,
			`cycle.yaml: workflow "shout": cycle: a → b → a`},
		{"unknown module", []string{"-f", write("unknown.json", `{"name": "x", "steps": [{"name": "a", "module": "nosuch:1"}]}`)}, exitError,
			"image nosuch:1 is not in the catalog"},
		{"missing file", []string{"-f", filepath.Join(dir, "none.yaml")}, exitError, "no such file"},
		{"no file flag", nil, exitUsage, "-f FILE is required"},
		{"argument", []string{"x.yaml"}, exitUsage, `unexpected arguments ["x.yaml"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := jetprop(ctx, vars, "", append([]string{"workflow", "apply"}, tc.args...)...)
			r.fails(t, tc.code, tc.want)
			if r.stdout != "" {
				t.Fatalf("stdout %q", r.stdout)
			}
		})
	}
	if out := jetprop(ctx, vars, "", "workflow", "ls").ok(t); strings.Count(out, "\n") != 1 {
		t.Fatalf("a refused spec left a workflow:\n%s", out)
	}
}

// startUp runs `jetprop up` with one local proplet on random ports until
// the test ends, and returns the client environment once the proplet is
// alive.
func startUp(t *testing.T) map[string]string {
	t.Helper()
	return startUpIn(t, t.TempDir())
}

// startUpIn is startUp on the data directory dir.
func startUpIn(t *testing.T, dir string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- jetpropTo(ctx, &stdout, &stderr, nil, "", "up", "--data", dir, "--http", "127.0.0.1:0",
			"--nats-port", "-1", "--mqtt-port", "-1", "--proplets", "1", "--log-level", "error")
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("up exited %d: %s", code, stderr.String())
		}
	})
	api := regexp.MustCompile(`http +(http://\S+)`)
	var url string
	natstest.CheckFor(t, 2*apitest.Timeout, func() error {
		m := api.FindStringSubmatch(stdout.String())
		if m == nil {
			return errors.New("not up yet: " + stderr.String())
		}
		url = m[1]
		return nil
	})
	vars := map[string]string{"JETPROP_SERVER": url}
	natstest.CheckFor(t, apitest.Timeout, func() error {
		if !strings.Contains(jetprop(ctx, vars, "", "proplets", "list").stdout, "alive") {
			return errors.New("no proplet alive yet")
		}
		return nil
	})
	return vars
}

// TestCLI_WorkflowEndToEnd runs the example workflows on a real single box
// (`jetprop up`: engine, process manager, MQTT, a wazero proplet).
func TestCLI_WorkflowEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a whole server")
	}
	vars := startUp(t)
	ctx := t.Context()
	pushExamples(t, vars)

	t.Run("two steps", func(t *testing.T) {
		id := strings.TrimSpace(jetprop(ctx, vars, twoSteps, "workflow", "apply", "-f", "-").ok(t))
		out := jetprop(ctx, vars, "", "workflow", "watch", id).ok(t)
		if !strings.Contains(out, "HELLO FROM JETPROP") || !strings.Contains(out, "workflow completed after") {
			t.Fatalf("watch printed:\n%s", out)
		}
		rows := tableRows(jetprop(ctx, vars, "", "workflow", "get", id).ok(t))
		if len(rows) != 3 || !strings.HasPrefix(rows[2], "shout completed 1 ") || !strings.HasSuffix(rows[2], " HELLO FROM JETPROP") {
			t.Fatalf("get rows %q", rows)
		}
	})
	t.Run("pipeline example", func(t *testing.T) {
		id := strings.TrimSpace(jetprop(ctx, vars, "", "workflow", "apply", "-f", "../../examples/workflows/pipeline.yaml").ok(t))
		jetprop(ctx, vars, "", "workflow", "watch", id).ok(t)
		var w httpapi.Workflow
		if err := json.Unmarshal([]byte(jetprop(ctx, vars, "", "workflow", "get", id, "--json").ok(t)), &w); err != nil {
			t.Fatal(err)
		}
		results := map[string]string{}
		for _, s := range w.Steps {
			text, _ := resultText(s.Result)
			results[s.Name] = text
		}
		if results["shout"] != "HELLO FROM JETPROP\n" || results["double"] != "60" || results["report"] != "shout: HELLO FROM JETPROP\n\ndouble: 60\n" {
			t.Fatalf("results %q", results)
		}
	})
	t.Run("failure", func(t *testing.T) {
		fail := filepath.Join(t.TempDir(), "fail.wasm")
		if err := os.WriteFile(fail, wasmfixtures.Fail(), 0o644); err != nil {
			t.Fatal(err)
		}
		jetprop(ctx, vars, "", "artifact", "push", fail, "--name", "fail:1").ok(t)
		// A backoff long enough for watch to see the step between its attempts.
		spec := `{"name": "doomed", "steps": [
			{"name": "boom", "module": "fail:1", "retry": {"max_attempts": 2, "initial_backoff": "500ms"}},
			{"name": "after", "module": "echo:1", "depends_on": ["boom"]}]}`
		id := strings.TrimSpace(jetprop(ctx, vars, spec, "workflow", "apply", "-f", "-").ok(t))
		r := jetprop(ctx, vars, "", "workflow", "watch", id)
		r.fails(t, exitError, "jetprop: workflow "+id+" failed: failed steps: boom")
		for _, want := range []string{"boom             backoff", "(attempt 1 of 2 failed; next in 500ms)", "boom             running   attempt 2/2",
			"boom             failed", "after            skipped   dependency boom failed"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("watch lacks %q:\n%s", want, r.stdout)
			}
		}
	})
	t.Run("fan-out example with apply --watch", func(t *testing.T) {
		r := jetprop(ctx, vars, "", "workflow", "apply", "--watch", "-f", "../../examples/workflows/fanout.yaml")
		id := strings.TrimSpace(r.ok(t))
		if strings.Contains(id, "\n") || !strings.Contains(r.stderr, "collect          completed [\"SURVEY\\N\"]") {
			t.Fatalf("stdout %q, stderr:\n%s", r.stdout, r.stderr)
		}
	})
}
