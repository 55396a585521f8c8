package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/replay"
)

// pmSim is a workflow engine over the memory store with simulated devices:
// the real handler, service, projections and process manager, driven step
// by step.
type pmSim struct {
	t      *testing.T
	ctx    context.Context
	rng    *rand.Rand
	store  *events.Memory
	h      *service.Handler
	svc    *service.Service
	tasks  *projections.Tasks
	devs   *projections.Devices
	wfs    *projections.Workflows
	timers *replay.Timers
	wfm    *service.WorkflowManager
	sent   map[string]json.RawMessage // task id/attempt -> the result a device sent
}

func newPMSim(t *testing.T, seed uint64) *pmSim {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &pmSim{
		t: t, ctx: ctx, rng: rand.New(rand.NewPCG(seed, 7)), store: events.NewMemory(),
		timers: replay.NewTimers(), sent: map[string]json.RawMessage{},
	}
	s.h = service.NewHandler(s.store, codec, replay.NewFixedClock(t0, 10*time.Millisecond), replay.NewSeqIDs(fmt.Sprintf("s%d-", seed)))
	s.tasks, s.devs, s.wfs = projections.NewTasks(codec), projections.NewDevices(codec), projections.NewWorkflows(codec)
	for _, p := range []projections.Projection{s.tasks, s.devs, s.wfs} {
		go func() { _ = projections.Follow(ctx, s.store, p) }()
	}
	s.svc = service.New(s.h, s.tasks, s.devs, nil, service.WithWorkflows(s.wfs))
	s.wfm = service.NewWorkflowManager(s.svc, s.timers, nil)
	for _, d := range []string{"d1", "d2", "d3"} {
		if _, err := s.h.Device(ctx, engine.Announce{ID: d}); err != nil {
			t.Fatal(err)
		}
	}
	s.sync()
	return s
}

// sync waits until the read models show every stored event.
func (s *pmSim) sync() {
	for _, p := range []interface {
		projections.Projection
		WaitFor(context.Context, uint64) error
	}{s.tasks, s.devs, s.wfs} {
		last, err := s.store.LastSeq(s.ctx, p.Kind())
		if err != nil {
			s.t.Fatal(err)
		}
		if err := p.WaitFor(s.ctx, last); err != nil {
			s.t.Fatal(err)
		}
	}
}

// randomSpec is a random DAG of 2 to 6 steps over the features that
// interleave: retries, run_if, fail_fast, timeouts, fan-out with quorum.
func (s *pmSim) randomSpec(i int) engine.WorkflowSpec {
	n := 2 + s.rng.IntN(5)
	spec := engine.WorkflowSpec{Name: fmt.Sprintf("w%d", i), FailFast: s.rng.IntN(3) == 0}
	if s.rng.IntN(4) == 0 {
		spec.Mode = engine.ModeSequential
	}
	for j := range n {
		st := engine.StepSpec{Name: fmt.Sprintf("s%d", j), Module: "registry.example/mod:1", Function: "run"}
		for k := range j {
			if spec.Mode != engine.ModeSequential && s.rng.IntN(3) == 0 {
				st.DependsOn = append(st.DependsOn, fmt.Sprintf("s%d", k))
			}
		}
		if len(st.DependsOn) > 0 || spec.Mode == engine.ModeSequential && j > 0 {
			st.RunIf = []engine.RunIf{engine.RunIfSuccess, engine.RunIfSuccess, engine.RunIfAlways, engine.RunIfFailure}[s.rng.IntN(4)]
		}
		if s.rng.IntN(2) == 0 {
			st.Retry = &engine.RetryPolicy{MaxAttempts: 1 + s.rng.IntN(3), InitialBackoff: "1s"}
		}
		if s.rng.IntN(4) == 0 {
			st.Timeout = "30s"
		}
		if s.rng.IntN(4) == 0 {
			st.Placement = engine.StepPlacement{Broadcast: true, MinSuccess: s.rng.IntN(3)}
		}
		spec.Steps = append(spec.Steps, st)
	}
	return spec
}

// pmPass runs one reconcile of a workflow, crashing after a random number
// of its actions one time in three.
func (s *pmSim) pmPass(id string) {
	w, err := s.svc.GetWorkflow(id)
	if err != nil {
		s.t.Fatal(err)
	}
	acts := engine.Reconcile(w, engine.Observed{Task: s.tasks.Get, Devices: s.devs.Up()})
	crash := s.rng.IntN(3) == 0
	if crash {
		acts = acts[:s.rng.IntN(len(acts)+1)] // the process manager dies here
	}
	if err := s.wfm.Execute(s.ctx, w, acts); err != nil {
		s.t.Fatalf("execute: %v", err)
	}
	if crash { // and a new one starts, knowing only what is stored
		s.wfm = service.NewWorkflowManager(s.svc, s.timers, nil)
	}
}

// deviceReport makes a device answer one of the active tasks: a result,
// an error, the same report twice, or a report of an older attempt.
func (s *pmSim) deviceReport(final bool) bool {
	var active []engine.Task
	all, _ := s.tasks.List(0, 1<<20)
	for _, t := range all {
		if t.State.Active() {
			active = append(active, t)
		}
	}
	if len(active) == 0 {
		return false
	}
	t := active[s.rng.IntN(len(active))]
	cmd := engine.RecordResult{ID: t.ID, Device: t.Device, Attempt: t.Attempt}
	if !final && s.rng.IntN(3) == 0 {
		cmd.Error = "device says no"
	} else {
		cmd.Result = json.RawMessage(fmt.Sprintf(`"r-%s-%d"`, t.ID, t.Attempt))
		s.sent[fmt.Sprintf("%s/%d", t.ID, t.Attempt)] = cmd.Result
	}
	for range 1 + s.rng.IntN(2) {
		if _, err := s.h.Task(s.ctx, cmd); err != nil {
			s.t.Fatalf("result: %v", err)
		}
	}
	if s.rng.IntN(5) == 0 && t.Attempt > 1 { // a late report of an older attempt
		old := cmd
		old.Attempt, old.Result, old.Error = t.Attempt-1, json.RawMessage(`"stale"`), ""
		_, _ = s.h.Task(s.ctx, old)
	}
	return true
}

func (s *pmSim) fireTimer() bool {
	ids := s.timers.IDs()
	if len(ids) == 0 {
		return false
	}
	id := ids[s.rng.IntN(len(ids))]
	p, _ := s.timers.Payload(id)
	if s.rng.IntN(4) > 0 { // sometimes a timer is delivered twice
		s.timers.Remove(id)
	}
	if err := s.wfm.FireTimer(s.ctx, p, t0); err != nil {
		s.t.Fatalf("fire: %v", err)
	}
	return true
}

// TestWorkflowManager_Property: random interleavings of process manager
// passes cut short by crashes, device reports (duplicated, late, failing)
// and timer firings (early, twice) never break the invariants, and every
// workflow ends.
func TestWorkflowManager_Property(t *testing.T) {
	seeds := 30
	if testing.Short() {
		seeds = 8
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s := newPMSim(t, seed)
			var ids []string
			for i := range 3 {
				w, err := s.svc.Workflow(s.ctx, engine.CreateWorkflow{ID: fmt.Sprintf("wf%d", i), Spec: s.randomSpec(i), At: t0})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, w.ID)
			}
			for range 300 {
				switch s.rng.IntN(10) {
				case 0, 1, 2, 3:
					s.pmPass(ids[s.rng.IntN(len(ids))])
				case 4, 5, 6, 7:
					s.deviceReport(false)
				case 8:
					s.fireTimer()
				case 9:
					if s.rng.IntN(10) == 0 {
						_, _ = s.svc.CancelWorkflow(s.ctx, ids[s.rng.IntN(len(ids))], "")
					}
				}
				s.sync()
			}
			s.drain(ids)
			s.check(ids)
			if testing.Verbose() {
				n, _ := s.store.LastSeq(s.ctx, events.KindWorkflow)
				m, _ := s.store.LastSeq(s.ctx, events.KindTask)
				var states []string
				for _, id := range ids {
					w, _ := s.svc.GetWorkflow(id)
					states = append(states, w.State.String())
				}
				t.Logf("%d workflow events, %d task events, workflows %v", n, m, states)
			}
		})
	}
}

// drain lets everything finish: full passes, successful reports, timers.
func (s *pmSim) drain(ids []string) {
	for range 2000 {
		running := 0
		for _, id := range ids {
			if w, _ := s.svc.GetWorkflow(id); !w.State.Terminal() {
				running++
			}
			w, _ := s.svc.GetWorkflow(id)
			if err := s.wfm.Execute(s.ctx, w, engine.Reconcile(w, engine.Observed{Task: s.tasks.Get, Devices: s.devs.Up()})); err != nil {
				s.t.Fatal(err)
			}
		}
		s.sync()
		if s.deviceReport(true) || s.fireTimer() {
			s.sync()
			continue
		}
		if running == 0 {
			return
		}
	}
	for _, id := range ids {
		w, _ := s.svc.GetWorkflow(id)
		s.t.Logf("%s %s held=%v", id, w.State, w.Held)
		for _, st := range w.Steps {
			s.t.Logf("  %s %s attempt %d tasks %v", st.Name, st.State, st.Attempt, st.TaskIDs())
			for _, tid := range st.TaskIDs() {
				tk, _ := s.tasks.Get(tid)
				s.t.Logf("    %s %s", tid, tk.State)
			}
		}
		s.t.Logf("  actions %+v", engine.Reconcile(w, engine.Observed{Task: s.tasks.Get, Devices: s.devs.Up()}))
	}
	s.t.Fatal("workflows did not end")
}

func (s *pmSim) check(ids []string) {
	for _, id := range ids {
		envs, err := s.store.Load(s.ctx, events.WorkflowAggregate(id))
		if err != nil {
			s.t.Fatal(err)
		}
		var w engine.Workflow
		terminal := 0
		completed := map[string]int{}
		for _, env := range envs {
			ev, err := codec.Decode(env)
			if err != nil {
				s.t.Fatal(err)
			}
			switch e := ev.(type) {
			case events.WorkflowStepStarted:
				s.checkDepsTerminal(w, e.Step)
			case events.WorkflowStepCompleted:
				key := fmt.Sprintf("%s/%d", e.Step, e.Attempt)
				if completed[key]++; completed[key] > 1 {
					s.t.Errorf("%s: step attempt %s completed twice", id, key)
				}
				s.checkResult(w, e)
			case events.WorkflowCompleted, events.WorkflowFailed, events.WorkflowCancelled, events.WorkflowTimedOut:
				terminal++
			}
			w = w.Apply(env, ev)
		}
		if terminal != 1 || !w.State.Terminal() {
			s.t.Errorf("%s: %d terminal events, state %s", id, terminal, w.State)
		}
		for _, st := range w.Steps {
			if !st.State.Terminal() {
				s.t.Errorf("%s: step %s ended %s", id, st.Name, st.State)
			}
		}
	}
	// Each task attempt completed at most once.
	all, _ := s.tasks.List(0, 1<<20)
	for _, t := range all {
		envs, _ := s.store.Load(s.ctx, events.TaskAggregate(t.ID))
		done := map[int]int{}
		for _, env := range envs {
			if env.Type == "task.completed" || env.Type == "task.failed" {
				ev, _ := codec.Decode(env)
				a := taskAttemptOf(ev)
				if done[a]++; done[a] > 1 {
					s.t.Errorf("task %s attempt %d ended twice", t.ID, a)
				}
			}
		}
	}
}

func taskAttemptOf(ev events.Event) int {
	switch e := ev.(type) {
	case events.TaskCompleted:
		return e.Attempt
	case events.TaskFailed:
		return e.Attempt
	}
	return -1
}

func (s *pmSim) checkDepsTerminal(w engine.Workflow, step string) {
	deps := w.Spec.Dependencies()
	i := slices.IndexFunc(w.Spec.Steps, func(st engine.StepSpec) bool { return st.Name == step })
	for _, d := range deps[i] {
		if !w.Steps[d].State.Terminal() {
			s.t.Errorf("%s: step %s started while its dependency %s was %s", w.ID, step, w.Steps[d].Name, w.Steps[d].State)
		}
	}
}

// checkResult: a step's result is what its device sent (for a fan-out
// step, the list of what the successful devices sent).
func (s *pmSim) checkResult(w engine.Workflow, e events.WorkflowStepCompleted) {
	st, _ := w.Step(e.Step)
	if len(st.Shards) == 0 {
		if want := s.sent[fmt.Sprintf("%s/%d", st.TaskID, 1)]; !sameJSON(e.Result, want) {
			s.t.Errorf("%s: step %s result %s, device sent %s", w.ID, e.Step, e.Result, want)
		}
		return
	}
	var want []json.RawMessage
	for _, sh := range st.Shards {
		if r, ok := s.sent[fmt.Sprintf("%s/%d", sh.TaskID, 1)]; ok && sh.State != engine.StepFailed {
			want = append(want, r)
		}
	}
	var got []json.RawMessage
	if err := json.Unmarshal(e.Result, &got); err != nil {
		s.t.Fatalf("fan-out result %s: %v", e.Result, err)
	}
	for _, r := range got {
		if !slices.ContainsFunc(want, func(x json.RawMessage) bool { return sameJSON(x, r) }) {
			s.t.Errorf("%s: step %s result %s holds %s no device sent", w.ID, e.Step, e.Result, r)
		}
	}
}

func sameJSON(a, b json.RawMessage) bool { return string(a) == string(b) }
