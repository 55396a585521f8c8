package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// chainLength is the number of add steps of the chain workflow: step i
// adds 1 to the result of step i-1, so the last result is chainLength.
const chainLength = 20

// The retried step: attempts in all, and the wait after the first failure.
const (
	retryAttempts = 3
	retryBackoff  = "300ms"
)

// TestKill9_Workflows applies four workflows at once (a chain of
// chainLength add steps passing results on, a broadcast fan-out with a step
// consuming its list, a step that fails every attempt with retries and a
// run_if: always step after it, an echo → uppercase pipe through stdin)
// and kills the server with SIGKILL several times while they run, starting
// it again each time on the same data dir and ports. The kills come at
// random moments (seeded, like TestKill9_AnyMoment): each once the server
// has recorded a random number of events more, except one that lands while
// the failing step waits out a backoff, so that its retry timer must fire
// across the kill. Each workflow must then end exactly as it would have
// without kills: no step started twice, no result lost or applied twice,
// no attempt beyond its retry policy, every completed step's task holding
// the step's result, and `jetprop events replay --check` finding in the
// history what the deciders decide.
//
// The proplets are two bin/proplet processes, which outlive the server:
// every attempt but the failing step's completes on its first try (a
// local proplet would die with the server and fail the task it ran).
//
// JETPROP_WORKFLOW_KILLS sets the most kills (default 3; none once every
// workflow has ended, and each kill past the second waits longer for the
// proplets, whose reconnect backoff grows); JETPROP_CHAOS_SEED replays a
// logged seed.
func TestKill9_Workflows(t *testing.T) {
	skipShort(t)
	began := time.Now()
	seed := chaosSeed(t)
	kills := envInt(t, "JETPROP_WORKFLOW_KILLS", 3)

	p := newPorts(t)
	s := startServer(t, t.TempDir(), p, 0)
	edges := []*edgeProplet{
		startEdgeProplet(t, p.mqtt, "edge-a", "1"),
		startEdgeProplet(t, p.mqtt, "edge-b", "2"),
	}
	for _, e := range edges {
		waitProplet(t, s.api, e.id, "alive", 30*time.Second)
	}
	pushWorkflowFixtures(t, s.api)
	cases := chaosWorkflows(edges)
	since := lastSeqs(t, s.api)
	ids := applyWorkflows(t, s.api, cases)
	applied := time.Now()
	killed := killWhileRunning(t, s, edges, cases, ids, since, kills, rand.New(rand.NewPCG(seed, seed>>1)))

	restarted := time.Now()
	ended := waitWorkflowsEnded(t, s.api, ids, 90*time.Second)
	t.Logf("every workflow ended %s after the last restart, %s after they were applied",
		time.Since(restarted).Round(time.Millisecond), time.Since(applied).Round(time.Millisecond))
	checkEnds(t, cases, ended)
	histories := workflowHistories(t, s.api)
	checkWorkflowHistories(t, ended, histories)
	checkStepTasks(t, s.api, ended, histories)
	out := s.cli("events", "replay", "--check", "--server", s.url)
	t.Logf("jetprop events replay --check:\n%s", out)
	t.Logf("%d kills; the test took %s", killed, time.Since(began).Round(time.Millisecond))
}

// killWhileRunning kills the server up to that many times at random
// moments while the workflows run (see waitForKill; since are the last
// event sequences before they were applied), starting it again each time,
// and returns once the proplets are connected to the last one. It stops
// killing once every workflow has ended.
func killWhileRunning(t *testing.T, s *server, edges []*edgeProplet, cases []chaosWorkflow, ids map[string]string, since map[events.Kind]uint64, kills int, rng *rand.Rand) (done int) {
	t.Helper()
	start := time.Now()
	inBackoff := false // whether a kill landed in a retry backoff
	var killed []int   // each proplet's connections when the server was last killed
	for k := range kills {
		what, backoff := waitForKill(t, s.api, ids, since, k > 0 && !inBackoff, rng, func() {
			if killed != nil {
				waitReconnected(t, edges, killed)
			}
		})
		if what == allEnded {
			t.Logf("the workflows have all ended: no kill after the %d done", k)
			break
		}
		inBackoff = inBackoff || backoff
		s.kill9()
		done++
		killed = connections(edges)
		at := time.Since(start)
		s.restart(0)
		since = lastSeqs(t, s.api)
		t.Logf("kill %d, %s after the workflows were applied (%s); after the restart: %s",
			k+1, at.Round(time.Millisecond), what, progress(t, s.api, cases, ids))
	}
	if !inBackoff {
		t.Logf("no kill landed in a retry backoff")
	}
	if killed != nil {
		waitReconnected(t, edges, killed)
	}
	return done
}

// checkEnds checks the state each workflow ended in.
func checkEnds(t *testing.T, cases []chaosWorkflow, ended map[string]engine.Workflow) {
	t.Helper()
	var errs []error
	for _, c := range cases {
		w := ended[c.name]
		if err := c.check(w); err != nil {
			errs = append(errs, fmt.Errorf("workflow %s (%s): %w\n  %s", c.name, w.ID, err, jsonOf(w.Steps)))
		}
		errs = append(errs, checkAttempts(c.name, w))
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("workflows not as expected:\n%v", err)
	}
}

// chaosWorkflow is one workflow of TestKill9_Workflows: its spec and the
// check of the state it must end in.
type chaosWorkflow struct {
	name  string
	spec  engine.WorkflowSpec
	check func(engine.Workflow) error
}

func chaosWorkflows(edges []*edgeProplet) []chaosWorkflow {
	devices := make([]string, len(edges))
	for i, e := range edges {
		devices[i] = e.id
	}
	return []chaosWorkflow{
		{name: "chain", spec: chainSpec(), check: checkChain},
		{name: "fan", spec: fanSpec(), check: func(w engine.Workflow) error { return checkFan(w, devices) }},
		{name: "retry", spec: retrySpec(), check: checkRetry},
		{name: "pipe", spec: pipeSpec(), check: checkPipe},
	}
}

func chainStep(i int) string { return fmt.Sprintf("s%02d", i) }

// chainSpec: s01 = add(0, 1), then s(i) = add(s(i-1), 1).
func chainSpec() engine.WorkflowSpec {
	spec := engine.WorkflowSpec{Name: "chaos-chain"}
	for i := 1; i <= chainLength; i++ {
		st := engine.StepSpec{Name: chainStep(i), Module: "add:1", Function: "add", Inputs: []string{"0", "1"}}
		if i > 1 {
			prev := chainStep(i - 1)
			st.DependsOn = []string{prev}
			st.Inputs[0] = "${steps." + prev + ".result}"
		}
		spec.Steps = append(spec.Steps, st)
	}
	return spec
}

func fanSpec() engine.WorkflowSpec {
	return engine.WorkflowSpec{Name: "chaos-fan", Steps: []engine.StepSpec{
		{Name: "fan", Module: "add:1", Function: "add", Inputs: []string{"20", "22"}, Placement: engine.StepPlacement{Broadcast: true}},
		{Name: "gather", Module: "echo:1", Inputs: []string{"${steps.fan.result}"}, DependsOn: []string{"fan"}},
	}}
}

func retrySpec() engine.WorkflowSpec {
	return engine.WorkflowSpec{Name: "chaos-retry", Steps: []engine.StepSpec{
		{Name: "boom", Module: "fail:1", Retry: &engine.RetryPolicy{MaxAttempts: retryAttempts, InitialBackoff: retryBackoff}},
		{Name: "cleanup", Module: "echo:1", Inputs: []string{"cleanup"}, DependsOn: []string{"boom"}, RunIf: engine.RunIfAlways},
	}}
}

func pipeSpec() engine.WorkflowSpec {
	return engine.WorkflowSpec{Name: "chaos-pipe", Steps: []engine.StepSpec{
		{Name: "greet", Module: "echo:1", Inputs: []string{"hello chaos"}},
		{Name: "shout", Module: "uppercase:1", StdinFrom: "greet", DependsOn: []string{"greet"}},
	}}
}

// quoted is the JSON string s, as a step's result holds it.
func quoted(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// wantStep fails unless the step ended in state after attempt, with the
// result want (when want is not empty).
func wantStep(w engine.Workflow, name string, state engine.StepState, attempt int, want string) error {
	s, ok := w.Step(name)
	switch {
	case !ok:
		return fmt.Errorf("no step %s", name)
	case s.State != state || s.Attempt != attempt:
		return fmt.Errorf("step %s is %s after attempt %d (%q), want %s after attempt %d", name, s.State, s.Attempt, s.Error, state, attempt)
	case want != "" && string(s.Result) != want:
		return fmt.Errorf("step %s: result %s, want %s", name, s.Result, want)
	}
	return nil
}

func wantWorkflow(w engine.Workflow, state engine.WorkflowState, reason string) error {
	if w.State != state || w.Reason != reason {
		return fmt.Errorf("%s (%q), want %s (%q)", w.State, w.Reason, state, reason)
	}
	return nil
}

// checkChain: every step completed once, with its place in the chain as
// its result: no step ran twice into the chain or lost its input.
func checkChain(w engine.Workflow) error {
	errs := []error{wantWorkflow(w, engine.WorkflowCompleted, "")}
	for i := 1; i <= chainLength; i++ {
		errs = append(errs, wantStep(w, chainStep(i), engine.StepCompleted, 1, quoted(strconv.Itoa(i))))
	}
	return errors.Join(errs...)
}

// checkFan: one shard per proplet, each with add(20, 22), and the list of
// their results handed on.
func checkFan(w engine.Workflow, devices []string) error {
	list := make([]string, len(devices))
	for i := range list {
		list[i] = quoted("42")
	}
	want := "[" + strings.Join(list, ",") + "]"
	errs := []error{
		wantWorkflow(w, engine.WorkflowCompleted, ""),
		wantStep(w, "fan", engine.StepCompleted, 1, want),
		wantStep(w, "gather", engine.StepCompleted, 1, quoted(want+"\n")),
	}
	fan, _ := w.Step("fan")
	var got []string
	for _, sh := range fan.Shards {
		got = append(got, sh.Device)
		if sh.State != engine.StepCompleted || string(sh.Result) != quoted("42") {
			errs = append(errs, fmt.Errorf("shard %s on %s: %s %s %q", sh.TaskID, sh.Device, sh.State, sh.Result, sh.Error))
		}
	}
	if !slices.Equal(got, devices) {
		errs = append(errs, fmt.Errorf("fan ran on %v, want one shard on each of %v", got, devices))
	}
	return errors.Join(errs...)
}

// checkRetry: every attempt of boom failed, the last one for good, and
// the step after it ran anyway.
func checkRetry(w engine.Workflow) error {
	errs := []error{
		wantWorkflow(w, engine.WorkflowFailed, "failed steps: boom"),
		wantStep(w, "boom", engine.StepFailed, retryAttempts, ""),
		wantStep(w, "cleanup", engine.StepCompleted, 1, quoted("cleanup\n")),
	}
	if boom, _ := w.Step("boom"); boom.Error == "" || len(boom.Result) != 0 {
		errs = append(errs, fmt.Errorf("boom failed with error %q and result %s", boom.Error, boom.Result))
	}
	return errors.Join(errs...)
}

func checkPipe(w engine.Workflow) error {
	return errors.Join(
		wantWorkflow(w, engine.WorkflowCompleted, ""),
		wantStep(w, "greet", engine.StepCompleted, 1, quoted("hello chaos\n")),
		wantStep(w, "shout", engine.StepCompleted, 1, quoted("HELLO CHAOS\n")),
	)
}

// checkAttempts fails for a step past the attempts its policy allows.
func checkAttempts(name string, w engine.Workflow) error {
	var errs []error
	for i, s := range w.Steps {
		if allowed := w.Spec.Steps[i].MaxAttempts(); s.Attempt > allowed {
			errs = append(errs, fmt.Errorf("workflow %s: step %s made %d attempts, %d allowed", name, s.Name, s.Attempt, allowed))
		}
	}
	return errors.Join(errs...)
}

// pushWorkflowFixtures stores the modules the workflows run as name:1.
func pushWorkflowFixtures(t *testing.T, c *client.Client) {
	t.Helper()
	for name, mod := range map[string][]byte{
		"add": wasmfixtures.Add(), "echo": wasmfixtures.Echo(),
		"uppercase": wasmfixtures.Uppercase(), "fail": wasmfixtures.Fail(),
	} {
		if _, err := c.PushArtifact(context.Background(), name, "1", bytes.NewReader(mod), int64(len(mod)), nil); err != nil {
			t.Fatalf("push %s:1: %v", name, err)
		}
	}
}

// applyWorkflows creates the workflows concurrently and returns their ids
// by case name.
func applyWorkflows(t *testing.T, c *client.Client, cases []chaosWorkflow) map[string]string {
	t.Helper()
	ids := make([]string, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, wc := range cases {
		wg.Go(func() {
			w, err := c.CreateWorkflow(context.Background(), wc.spec)
			ids[i], errs[i] = w.ID, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("POST /workflows: %v", err)
	}
	out := make(map[string]string, len(cases))
	for i, wc := range cases {
		out[wc.name] = ids[i]
	}
	return out
}

// waitForKill waits for a random moment to kill the server and says what
// it was: once the server has recorded a random number (1 to 30) of task
// and workflow events after the sequences since (taken when it started),
// which spreads the kills over the engine's work whatever the machine's
// speed (a step of the chain is about 7 events). The count goes on once
// the proplets are connected (reconnected waits for that). With inBackoff (from the second kill on, until one has landed in
// a retry backoff: the first comes early in the chain), step boom of the retry workflow in backoff, when called or
// later (a failed attempt that leaves a retry), ends the wait early: then
// the kill comes a random moment into the backoff, so the retry timer has
// to outlive the server; when called, that is without waiting for the
// proplets. It reports whether it did that. Once every workflow has
// ended, it returns allEnded at once.
func waitForKill(t *testing.T, c *client.Client, ids map[string]string, since map[events.Kind]uint64, inBackoff bool, rng *rand.Rand, reconnected func()) (string, bool) {
	t.Helper()
	if boom, _ := current(t, c, ids); inBackoff && boom.State == engine.StepBackoff {
		d := time.Duration(rng.IntN(150)) * time.Millisecond
		time.Sleep(d) // kill timing, not a wait for a condition
		return fmt.Sprintf("boom was in backoff after attempt %d; %s later, the proplets may not be back", boom.Attempt, d), true
	}
	reconnected()
	if _, ended := current(t, c, ids); ended {
		return allEnded, false
	}
	retryID := ids["retry"]
	n := 1 + rng.IntN(30)
	seen, failed := waitEvents(t, c, since, n, 3*time.Second, func(env events.Envelope, ev wfEvent) bool {
		return inBackoff && env.Aggregate.ID == retryID && ev.Type == "workflow.step_failed" && !ev.Final
	})
	switch {
	case failed != nil:
		d := time.Duration(rng.IntN(150)) * time.Millisecond
		time.Sleep(d) // kill timing, not a wait for a condition
		return fmt.Sprintf("%d more events; %s into boom's backoff after attempt %d", seen, d, failed.Attempt), true
	case seen < n:
		return fmt.Sprintf("%d of %d more events in 3s: the workflows are idle", seen, n), false
	}
	return fmt.Sprintf("%d more events", n), false
}

// allEnded is what waitForKill says once every workflow has ended.
const allEnded = "the workflows have all ended"

// current returns step boom of the retry workflow, and whether every
// workflow has ended.
func current(t *testing.T, c *client.Client, ids map[string]string) (engine.Step, bool) {
	t.Helper()
	var boom engine.Step
	ended := true
	for name, id := range ids {
		w, err := c.GetWorkflow(context.Background(), id)
		if err != nil {
			t.Fatalf("GET /workflows/%s: %v", id, err)
		}
		ended = ended && w.State.Terminal()
		if name == "retry" {
			boom, _ = w.Step("boom")
		}
	}
	return boom, ended
}

// lastSeqs returns the sequence of the last task and workflow events
// stored, by kind.
func lastSeqs(t *testing.T, c *client.Client) map[events.Kind]uint64 {
	t.Helper()
	last := map[events.Kind]uint64{}
	err := c.Events(context.Background(), false, func(env events.Envelope) error {
		last[env.Aggregate.Kind] = max(last[env.Aggregate.Kind], env.Seq)
		return nil
	})
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	return last
}

// waitEvents follows the task and workflow events the server records after
// the sequences since (from lastSeqs), until n of them, until a workflow
// event for which stop is true (returned), or until timeout has passed; it
// returns how many it saw.
func waitEvents(t *testing.T, c *client.Client, since map[events.Kind]uint64, n int, timeout time.Duration, stop func(events.Envelope, wfEvent) bool) (int, *wfEvent) {
	t.Helper()
	kinds := []events.Kind{events.KindTask, events.KindWorkflow}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	seen := 0
	var stopped *wfEvent
	errEnough := errors.New("enough events")
	err := c.Events(ctx, true, func(env events.Envelope) error {
		if !slices.Contains(kinds, env.Aggregate.Kind) || env.Seq <= since[env.Aggregate.Kind] {
			return nil
		}
		seen++
		if env.Aggregate.Kind == events.KindWorkflow {
			ev := wfEvent{Type: env.Type, Seq: env.Seq}
			if json.Unmarshal(env.Data, &ev) == nil && stop(env, ev) {
				stopped = &ev
				return errEnough
			}
		}
		if seen == n {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		t.Fatalf("GET /events?follow=true: %v", err)
	}
	return seen, stopped
}

// connections counts the connections each proplet has made so far.
func connections(edges []*edgeProplet) []int {
	n := make([]int, len(edges))
	for i, e := range edges {
		n[i] = e.count("msg=connected")
	}
	return n
}

// waitReconnected waits until every proplet has connected again since it
// had made before[i] connections: to the server started since (a proplet
// that was still reconnecting when a server was killed never connected to
// that one, so counting servers, as TestKill9_AnyMoment does, would not do).
func waitReconnected(t *testing.T, edges []*edgeProplet, before []int) {
	t.Helper()
	natstest.CheckFor(t, 60*time.Second, func() error {
		for i, n := range connections(edges) {
			if n <= before[i] {
				return fmt.Errorf("proplet %s has not connected to the restarted server", edges[i].id)
			}
		}
		return nil
	})
}

// progress describes where each workflow is, for the log.
func progress(t *testing.T, c *client.Client, cases []chaosWorkflow, ids map[string]string) string {
	t.Helper()
	var parts []string
	for _, wc := range cases {
		w, err := c.GetWorkflow(context.Background(), ids[wc.name])
		if err != nil {
			t.Fatalf("GET /workflows/%s: %v", ids[wc.name], err)
		}
		parts = append(parts, wc.name+" "+describe(w.Workflow))
	}
	return strings.Join(parts, "; ")
}

func describe(w engine.Workflow) string {
	done := 0
	var active []string
	for _, s := range w.Steps {
		switch {
		case s.State.Terminal():
			done++
		case s.State != engine.StepPending:
			active = append(active, fmt.Sprintf("%s %s#%d", s.Name, s.State, s.Attempt))
		}
	}
	out := fmt.Sprintf("%s %d/%d steps ended", w.State, done, len(w.Steps))
	if len(active) > 0 {
		out += " (" + strings.Join(active, ", ") + ")"
	}
	return out
}

// waitWorkflowsEnded waits until every workflow has ended and returns them
// by case name.
func waitWorkflowsEnded(t *testing.T, c *client.Client, ids map[string]string, timeout time.Duration) map[string]engine.Workflow {
	t.Helper()
	out := map[string]engine.Workflow{}
	natstest.CheckFor(t, timeout, func() error {
		var left []string
		for name, id := range ids {
			w, err := c.GetWorkflow(context.Background(), id)
			if err != nil {
				return err
			}
			out[name] = w.Workflow
			if !w.State.Terminal() {
				left = append(left, name+" "+describe(w.Workflow))
			}
		}
		if len(left) > 0 {
			slices.Sort(left)
			return fmt.Errorf("%d workflows have not ended: %s", len(left), strings.Join(left, "; "))
		}
		return nil
	})
	return out
}

// wfEvent is what the checks read of a workflow event's data.
type wfEvent struct {
	Type    string
	Seq     uint64
	Step    string         `json:"step"`
	Attempt int            `json:"attempt"`
	TaskID  string         `json:"task_id"`
	Shards  []events.Shard `json:"shards"`
	Final   bool           `json:"final"`
}

// workflowHistories reads every workflow event from GET /events, by
// workflow id, in order.
func workflowHistories(t *testing.T, c *client.Client) map[string][]wfEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := map[string][]wfEvent{}
	err := c.Events(ctx, false, func(env events.Envelope) error {
		if env.Aggregate.Kind != events.KindWorkflow {
			return nil
		}
		ev := wfEvent{Type: env.Type, Seq: env.Seq}
		if err := json.Unmarshal(env.Data, &ev); err != nil {
			return fmt.Errorf("event %d (%s) of workflow %s: %w", env.Seq, env.Type, env.Aggregate.ID, err)
		}
		out[env.Aggregate.ID] = append(out[env.Aggregate.ID], ev)
		return nil
	})
	if err == nil {
		err = ctx.Err() // Events stops quietly when ctx ends
	}
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	return out
}

// checkWorkflowHistories checks each workflow's events: created once,
// ended once and last, each attempt of a step started once and in order
// up to the step's last, each outcome recorded once.
func checkWorkflowHistories(t *testing.T, ended map[string]engine.Workflow, histories map[string][]wfEvent) {
	t.Helper()
	var errs []error
	for name, w := range ended {
		if err := checkHistory(w, histories[w.ID]); err != nil {
			errs = append(errs, fmt.Errorf("workflow %s (%s): %w\n%s", name, w.ID, err, historyText(histories[w.ID])))
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("inconsistent workflow histories:\n%v", err)
	}
}

func checkHistory(w engine.Workflow, h []wfEvent) error {
	var errs []error
	seen := map[string]int{}
	started := map[string]int{} // last attempt started, by step
	for i, ev := range h {
		key := ev.Type + " " + ev.Step
		switch ev.Type {
		case "workflow.step_started":
			if ev.Attempt != started[ev.Step]+1 {
				errs = append(errs, fmt.Errorf("step %s started attempt %d after attempt %d", ev.Step, ev.Attempt, started[ev.Step]))
			}
			started[ev.Step] = ev.Attempt
			key += "#" + strconv.Itoa(ev.Attempt)
		case "workflow.step_failed", "workflow.retry_fired":
			key += "#" + strconv.Itoa(ev.Attempt)
		case "workflow.shard_finished":
			key += " " + ev.TaskID
		case "workflow.completed", "workflow.failed", "workflow.cancelled", "workflow.timed_out":
			key = "end"
			if i != len(h)-1 {
				errs = append(errs, fmt.Errorf("%s is event %d of %d", ev.Type, i+1, len(h)))
			}
		}
		if seen[key]++; seen[key] == 2 {
			errs = append(errs, fmt.Errorf("recorded more than once: %s", key))
		}
	}
	if len(h) == 0 || h[0].Type != "workflow.created" || seen["end"] != 1 {
		errs = append(errs, fmt.Errorf("not created once and ended once"))
	}
	for _, s := range w.Steps {
		if started[s.Name] != s.Attempt {
			errs = append(errs, fmt.Errorf("step %s: attempts up to %d started, the step shows attempt %d", s.Name, started[s.Name], s.Attempt))
		}
	}
	return errors.Join(errs...)
}

func historyText(h []wfEvent) string {
	var b strings.Builder
	for _, ev := range h {
		fmt.Fprintf(&b, "  %d %s %s#%d %s\n", ev.Seq, ev.Type, ev.Step, ev.Attempt, ev.TaskID)
	}
	return b.String()
}

// checkStepTasks checks the tasks the steps ran as: every task of a
// workflow is one of a step's recorded attempts and has ended, and the
// task of every completed step (each device's, for a fan-out step) holds
// the step's result.
func checkStepTasks(t *testing.T, c *client.Client, ended map[string]engine.Workflow, histories map[string][]wfEvent) {
	t.Helper()
	var errs []error
	for _, task := range takeSnapshot(t, c).Tasks {
		errs = append(errs, checkStepTask(task, ended, histories))
	}
	for name, w := range ended {
		for _, s := range w.Steps {
			if s.State == engine.StepCompleted {
				errs = append(errs, checkResultTasks(c, name, s))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("step tasks:\n%v", err)
	}
}

// checkStepTask fails for a task of one of the workflows that no recorded
// step attempt ran as, or that has not ended.
func checkStepTask(task httpapi.Task, ended map[string]engine.Workflow, histories map[string][]wfEvent) error {
	for name, w := range ended {
		if !strings.HasPrefix(task.ID, w.ID+"-") {
			continue
		}
		recorded := slices.ContainsFunc(histories[w.ID], func(ev wfEvent) bool {
			return ev.TaskID == task.ID || slices.ContainsFunc(ev.Shards, func(sh events.Shard) bool { return sh.TaskID == task.ID })
		})
		switch {
		case !recorded:
			return fmt.Errorf("workflow %s: task %s (%s) is no recorded step attempt", name, task.ID, task.Status)
		case task.Status != "completed" && task.Status != "failed":
			return fmt.Errorf("workflow %s ended, its task %s is %s", name, task.ID, task.Status)
		}
		return nil
	}
	return fmt.Errorf("task %s belongs to no workflow of the test: %s", task.ID, jsonOf(task))
}

// checkResultTasks fails unless the tasks of completed step s completed
// with the results the step recorded.
func checkResultTasks(c *client.Client, wf string, s engine.Step) error {
	want := map[string]json.RawMessage{s.TaskID: s.Result}
	if len(s.Shards) > 0 {
		want = map[string]json.RawMessage{}
		for _, sh := range s.Shards {
			want[sh.TaskID] = sh.Result
		}
	}
	var errs []error
	for id, result := range want {
		task, err := c.GetTask(context.Background(), id)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("workflow %s step %s: GET /tasks/%s: %w", wf, s.Name, id, err))
		case task.Status != "completed" || !bytes.Equal(task.Results, result):
			errs = append(errs, fmt.Errorf("workflow %s step %s: task %s is %s with %s (%q), the step recorded %s", wf, s.Name, id, task.Status, task.Results, task.Error, result))
		}
	}
	return errors.Join(errs...)
}
