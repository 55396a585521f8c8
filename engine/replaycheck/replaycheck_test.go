package replaycheck_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/replaycheck"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/replay"
)

// sim drives a handler at random the way jetprop's adapters and process
// managers do: proplets come and go, artifacts are tagged and untagged,
// modules are sent, plain tasks run, and workflows run their steps as
// tasks (fan-out steps one task per device) with results, failures,
// retries, attempt timeouts, cancels, deadlines and redelivered commands.
type sim struct {
	t       testing.TB
	rng     *rand.Rand
	h       *service.Handler
	clock   *replay.FixedClock
	devices []string
	prefix  string          // of the ids of tasks and workflows
	w       engine.Workflow // the workflow running
	inbox   []action
	queued  map[string]bool
}

// action is something that happens later, once (or again: a redelivery).
type action struct {
	key string
	do  func()
}

func newSim(t testing.TB, store events.Store, seed uint64) *sim {
	clock := replay.NewFixedClock(t0, time.Second)
	return &sim{
		t: t, rng: rand.New(rand.NewPCG(seed, 7)), clock: clock, prefix: fmt.Sprintf("s%d-", seed),
		h: service.NewHandler(store, codec, clock, replay.NewSeqIDs(fmt.Sprintf("s%d-", seed))),
	}
}

func (s *sim) run(workflows int) {
	for i := range 3 + s.rng.IntN(3) {
		s.devices = append(s.devices, fmt.Sprintf("%sd%d", s.prefix, i))
		s.device(engine.Announce{ID: s.devices[i], Namespace: "lab", Metadata: events.DeviceMetadata{Hostname: s.devices[i], Tags: []string{"edge"}}})
	}
	for i := range workflows {
		switch s.rng.IntN(5) {
		case 0:
			s.plainTask(fmt.Sprintf("%st%d", s.prefix, i))
		case 1:
			s.artifact()
		case 2:
			s.transfer(i)
		case 3:
			s.churn()
		}
		s.workflow(fmt.Sprintf("%swf%d", s.prefix, i))
	}
	s.tokens()
	s.secrets()
}

// secrets sets a secret twice, deletes it and sets it again.
func (s *sim) secrets() {
	s.t.Helper()
	name := s.prefix + "db"
	for i, cmd := range []engine.SecretCommand{
		engine.SetSecret{Name: name, Ciphertext: []byte("sealed-1"), KeyID: "k1"},
		engine.SetSecret{Name: name, Ciphertext: []byte("sealed-2"), KeyID: "k1", By: "tk"},
		engine.DeleteSecret{Name: name, By: "tk"},
		engine.SetSecret{Name: name, Ciphertext: []byte("sealed-3"), KeyID: "k2"},
	} {
		if _, err := s.h.Secret(testCtx(s.t), cmd); err != nil {
			s.t.Fatalf("secret command %d %T: %v", i, cmd, err)
		}
	}
}

// tokens creates an admin and an operator token and revokes the second.
func (s *sim) tokens() {
	s.t.Helper()
	admin, ci := s.prefix+"tk-admin", s.prefix+"tk-ci"
	for _, cmd := range []engine.TokenCommand{
		engine.CreateToken{ID: admin, Name: "bootstrap", Role: domain.RoleAdmin, Hash: engine.HashToken(admin)},
		engine.CreateToken{ID: ci, Name: "ci", Role: domain.RoleOperator, Hash: engine.HashToken(ci), By: admin},
		engine.RevokeToken{ID: ci, By: admin},
	} {
		if _, err := s.h.Token(testCtx(s.t), cmd); err != nil {
			s.t.Fatalf("%T: %v", cmd, err)
		}
	}
}

// Commands. Refusals the real callers meet and ignore are allowed.
func (s *sim) task(cmd engine.TaskCommand) {
	s.t.Helper()
	if _, err := s.h.Task(testCtx(s.t), cmd); err != nil && !errors.Is(err, domain.ErrStale) && !errors.Is(err, domain.ErrInvalidState) {
		s.t.Fatalf("%T %+v: %v", cmd, cmd, err)
	}
}

func (s *sim) device(cmd engine.DeviceCommand) {
	s.t.Helper()
	if _, err := s.h.Device(testCtx(s.t), cmd); err != nil {
		s.t.Fatalf("%T: %v", cmd, err)
	}
}

func (s *sim) wf(cmd engine.WorkflowCommand) {
	s.t.Helper()
	w, err := s.h.Workflow(testCtx(s.t), cmd)
	if err != nil {
		s.t.Fatalf("%T %+v: %v", cmd, cmd, err)
	}
	s.w = w
}

func (s *sim) later(key string, do func()) {
	if !s.queued[key] {
		s.queued[key] = true
		s.inbox = append(s.inbox, action{key: key, do: do})
	}
}

func (s *sim) pick(xs ...string) string { return xs[s.rng.IntN(len(xs))] }

func (s *sim) churn() {
	d := s.pick(s.devices...)
	switch s.rng.IntN(3) {
	case 0:
		s.device(engine.Heartbeat{ID: d, Namespace: "lab"})
	case 1:
		s.device(engine.MarkOffline{ID: d, Reason: "last will"})
	default:
		s.device(engine.Announce{ID: d, Namespace: "lab", Metadata: events.DeviceMetadata{Hostname: d, OS: s.pick("linux", "zephyr")}})
	}
}

func (s *sim) plainTask(id string) {
	spec := events.TaskCreated{Name: "add", Inputs: []string{"1", "2"}}
	if s.rng.IntN(2) == 0 {
		spec.Module, spec.ModuleSize = dA, 100
	}
	s.task(engine.CreateTask{ID: id, Spec: spec})
	if spec.Module == "" {
		s.task(engine.AttachModule{ID: id, Module: dB, Size: 200})
	}
	for attempt := 1; attempt <= 1+s.rng.IntN(2); attempt++ {
		dev := s.pick(s.devices...)
		s.task(engine.ScheduleTask{ID: id, Device: dev})
		s.task(engine.MarkStarted{ID: id, Attempt: attempt})
		switch s.rng.IntN(4) {
		case 0:
			s.task(engine.StopTask{ID: id})
		case 1:
			s.task(engine.RecordResult{ID: id, Device: dev, Error: "wasm trap"})
		case 2:
			s.task(engine.FailTask{ID: id, Reason: "module cannot be delivered"})
		default:
			s.task(engine.RecordResult{ID: id, Device: dev, Result: json.RawMessage(`"3"`)})
			s.task(engine.RecordResult{ID: id, Device: dev, Result: json.RawMessage(`"3"`)}) // redelivered
		}
	}
	if s.rng.IntN(2) == 0 {
		s.task(engine.DeleteTask{ID: id})
	}
}

func (s *sim) artifact() {
	sizes := map[string]int64{dA: 100, dB: 200, dC: 300}
	name := s.prefix + s.pick("vision", "audio")
	for range 1 + s.rng.IntN(4) {
		var err error
		switch s.rng.IntN(4) {
		case 0:
			_, err = s.h.Artifact(testCtx(s.t), engine.UntagArtifact{Name: name, Tag: s.pick("latest", "v1")})
		case 1:
			_, err = s.h.Artifact(testCtx(s.t), engine.DeleteArtifact{Name: name})
		default:
			d := s.pick(dA, dB, dC)
			_, err = s.h.Artifact(testCtx(s.t), engine.TagArtifact{Name: name, Tag: s.pick("latest", "v1"), Digest: d, Size: sizes[d], Source: "upload"})
		}
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			s.t.Fatal(err)
		}
	}
}

func (s *sim) transfer(i int) {
	id := dA + "." + s.pick(s.devices...)
	do := func(cmd engine.TransferCommand) {
		if _, err := s.h.Transfer(testCtx(s.t), cmd); err != nil {
			s.t.Fatalf("%T: %v", cmd, err)
		}
	}
	do(engine.RequestTransfer{ID: id, Spec: events.TransferRequested{AppName: "add", Digest: dA, Total: 4, Requested: 4, TaskID: fmt.Sprintf("t%d", i)}})
	do(engine.RecordSent{ID: id, From: 0, To: 1})
	if s.rng.IntN(3) == 0 {
		do(engine.FailTransfer{ID: id, Reason: "proplet gone"})
		return
	}
	do(engine.RecordSent{ID: id, From: 2, To: 3})
	do(engine.CompleteTransfer{ID: id})
	do(engine.CompleteTransfer{ID: id})
}

func (s *sim) spec() engine.WorkflowSpec {
	spec := replay.RandomSpec(s.rng)
	if s.rng.IntN(3) == 0 {
		spec.Deadline = "1h30m"
	}
	for i := range spec.Steps {
		if s.rng.IntN(4) == 0 {
			spec.Steps[i].Placement = engine.StepPlacement{Broadcast: true, MinSuccess: s.rng.IntN(3)}
		}
	}
	return spec
}

func (s *sim) workflow(id string) {
	s.t.Helper()
	s.inbox, s.queued = nil, map[string]bool{}
	held := s.rng.IntN(4) == 0
	s.wf(engine.CreateWorkflow{ID: id, Spec: s.spec(), At: s.clock.Now(), Held: held, Source: "workflow"})
	if held {
		s.later("release", func() { s.wf(engine.ReleaseWorkflow{ID: id}) })
	}
	for range 100000 {
		s.plan(engine.Next(s.w))
		if s.rng.IntN(40) == 0 {
			s.later("end", func() {
				if s.rng.IntN(2) == 0 {
					s.wf(engine.CancelWorkflow{ID: id, Reason: "by request"})
				} else {
					s.wf(engine.DeadlineExpired{ID: id})
				}
			})
		}
		if len(s.inbox) == 0 {
			return
		}
		k := s.rng.IntN(len(s.inbox))
		a := s.inbox[k]
		if s.rng.IntN(5) != 0 { // else delivered again later
			s.inbox = slices.Delete(s.inbox, k, k+1)
		}
		a.do()
	}
	s.t.Fatalf("workflow %s did not settle", id)
}

func (s *sim) plan(p engine.Plan) {
	for _, st := range p.Start {
		if st.Spec.Placement.FanOut() {
			s.startFanOut(st)
		} else {
			s.startOne(st)
		}
	}
	for _, rt := range p.Retry {
		s.later(fmt.Sprintf("timer %s %d", rt.Step, rt.Attempt), func() {
			s.wf(engine.RetryTimerFired{ID: s.w.ID, Step: rt.Step, Attempt: rt.Attempt})
		})
	}
	for _, sp := range p.Stop {
		st, _ := s.w.Step(sp.Step)
		for _, tid := range st.TaskIDs() {
			s.later("stop "+tid, func() {
				s.task(engine.StopTask{ID: tid, Reason: "workflow ended"})
				s.wf(engine.StepFinished{ID: s.w.ID, Step: sp.Step, Attempt: sp.Attempt, TaskID: tid, Error: "stopped"})
			})
		}
	}
}

// runTask creates and schedules the task of one attempt on dev.
func (s *sim) runTask(tid, dev string, st engine.StepStart) {
	s.task(engine.CreateTask{ID: tid, Spec: events.TaskCreated{
		Name: "main", Module: dA, Inputs: st.Inputs, Workflow: s.w.ID, Step: st.Step, StepAttempt: st.Attempt, ParentResults: st.ParentResults,
	}})
	s.task(engine.ScheduleTask{ID: tid, Device: dev})
}

// finish queues the outcome of one task: a result, an error or nothing.
func (s *sim) finish(tid, dev string, st engine.StepStart) {
	id := s.w.ID
	result := json.RawMessage(fmt.Sprintf(`"%s@%s"`, tid, dev))
	switch s.rng.IntN(6) {
	case 0:
		return // lost: a timeout or the end of the workflow settles it
	case 1, 2:
		s.later("result "+tid, func() {
			s.task(engine.RecordResult{ID: tid, Device: dev, Attempt: 1, Error: "boom"})
			s.wf(engine.StepFinished{ID: id, Step: st.Step, Attempt: st.Attempt, TaskID: tid, Error: "boom"})
		})
	default:
		s.later("result "+tid, func() {
			s.task(engine.MarkStarted{ID: tid, Attempt: 1})
			s.task(engine.RecordResult{ID: tid, Device: dev, Attempt: 1, Result: result})
			s.wf(engine.StepFinished{ID: id, Step: st.Step, Attempt: st.Attempt, TaskID: tid, Result: result})
		})
	}
}

func (s *sim) timeout(st engine.StepStart, tids ...string) {
	id := s.w.ID
	s.later(fmt.Sprintf("timeout %s %d", st.Step, st.Attempt), func() {
		for _, tid := range tids {
			s.task(engine.FailTask{ID: tid, Reason: "attempt timed out"})
		}
		s.wf(engine.AttemptTimedOut{ID: id, Step: st.Step, Attempt: st.Attempt, Reason: "attempt timed out after 30s"})
	})
}

func (s *sim) startOne(st engine.StepStart) {
	tid := fmt.Sprintf("%s-%s-%d", s.w.ID, st.Step, st.Attempt)
	dev := s.pick(s.devices...)
	s.runTask(tid, dev, st)
	s.wf(engine.StartStep{ID: s.w.ID, Step: st.Step, Attempt: st.Attempt, TaskID: tid})
	s.finish(tid, dev, st)
	if s.rng.IntN(4) == 0 {
		s.timeout(st, tid)
	}
}

func (s *sim) startFanOut(st engine.StepStart) {
	n := max(st.Spec.Placement.MinSuccess, 1+s.rng.IntN(len(s.devices)))
	var shards []events.Shard
	var tids []string
	for _, i := range s.rng.Perm(len(s.devices))[:n] {
		sh := events.Shard{TaskID: fmt.Sprintf("%s-%s-%d-%s", s.w.ID, st.Step, st.Attempt, s.devices[i]), Device: s.devices[i]}
		s.runTask(sh.TaskID, sh.Device, st)
		shards, tids = append(shards, sh), append(tids, sh.TaskID)
	}
	s.wf(engine.StartStep{ID: s.w.ID, Step: st.Step, Attempt: st.Attempt, Shards: shards})
	for _, sh := range shards {
		s.finish(sh.TaskID, sh.Device, st)
	}
	if s.rng.IntN(5) == 0 {
		s.timeout(st, tids...)
	}
}

// simulated returns the store of a random scenario of the given size.
func simulated(t testing.TB, seed uint64, workflows int) *events.Memory {
	t.Helper()
	store := events.NewMemory()
	newSim(t, store, seed).run(workflows)
	return store
}

func wantClean(t *testing.T, r replaycheck.Result) {
	t.Helper()
	for _, d := range r.Divergences {
		t.Errorf("divergence %s", d)
	}
	if r.Checked() != r.Events() || r.Events() == 0 {
		t.Fatalf("checked %d of %d events: %+v", r.Checked(), r.Events(), r.Kinds)
	}
}

func TestStreams_RandomHistories(t *testing.T) {
	seeds := uint64(150)
	if testing.Short() {
		seeds = 20
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			store := simulated(t, seed, 4)
			r, err := replaycheck.Streams(testCtx(t), store, codec)
			if err != nil {
				t.Fatal(err)
			}
			wantClean(t, r)
		})
	}
}

func TestStreams_Counts(t *testing.T) {
	store := simulated(t, 1000, 40)
	r, err := replaycheck.Streams(testCtx(t), store, codec)
	if err != nil {
		t.Fatal(err)
	}
	wantClean(t, r)
	for _, k := range events.Kinds() {
		envs, err := replay.Record(testCtx(t), store, k)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, e := range envs {
			ids[e.Aggregate.ID] = true
		}
		i := slices.IndexFunc(r.Kinds, func(c replaycheck.KindCount) bool { return c.Kind == k })
		if i < 0 || len(envs) == 0 {
			t.Fatalf("kind %s: %d events, counts %+v", k, len(envs), r.Kinds)
		}
		want := replaycheck.KindCount{Kind: k, Aggregates: len(ids), Events: len(envs), Checked: len(envs)}
		if r.Kinds[i] != want {
			t.Errorf("kind %s: %+v, want %+v", k, r.Kinds[i], want)
		}
	}
	seen := map[string]bool{}
	envs, _ := replay.Record(testCtx(t), store, events.KindWorkflow)
	for _, e := range envs {
		seen[e.Type] = true
	}
	for _, typ := range []string{"workflow.shard_finished", "workflow.retry_fired", "workflow.step_skipped", "workflow.released",
		"workflow.cancelled", "workflow.timed_out", "workflow.completed", "workflow.failed"} {
		if !seen[typ] {
			t.Errorf("the scenario has no %s", typ)
		}
	}
}

func TestStreams_JetStream(t *testing.T) {
	js := newJetStream(t)
	newSim(t, js, 77).run(4)
	r, err := replaycheck.Streams(testCtx(t), js, codec)
	if err != nil {
		t.Fatal(err)
	}
	wantClean(t, r)
	n := 0
	for _, k := range events.Kinds() {
		seq, err := js.LastSeq(testCtx(t), k)
		if err != nil {
			t.Fatal(err)
		}
		n += int(seq)
	}
	if r.Events() != n {
		t.Fatalf("checked %d events of %d stored", r.Events(), n)
	}
}

// recorded runs fn on a handler over a fresh store and returns agg's history.
func recorded(t *testing.T, agg events.Aggregate, fn func(h *service.Handler)) []events.Envelope {
	t.Helper()
	store := events.NewMemory()
	fn(newHandler(store, "ev-"))
	envs := load(t, store, agg)
	if r, err := replaycheck.History(codec, envs); err != nil || len(r.Divergences) != 0 {
		t.Fatalf("untampered history: %v %+v", err, r.Divergences)
	}
	return envs
}

func mustWF(t *testing.T, h *service.Handler, cmds ...engine.WorkflowCommand) {
	t.Helper()
	for _, cmd := range cmds {
		if _, err := h.Workflow(testCtx(t), cmd); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
}

// Histories of one workflow "w" (and of task "t", device "d", artifact
// "vision") that the tampering cases below change.
var (
	retrySpec = engine.WorkflowSpec{Name: "retry", Steps: []engine.StepSpec{
		{Name: "a", Module: "app:v1", Retry: &engine.RetryPolicy{MaxAttempts: 2}},
		{Name: "b", Module: "app:v1", DependsOn: []string{"a"}},
	}}
	fanSpec = engine.WorkflowSpec{Name: "fan", Steps: []engine.StepSpec{
		{Name: "f", Module: "app:v1", Placement: engine.StepPlacement{Broadcast: true}},
	}}
)

func retryHistory(h *service.Handler, t *testing.T) {
	mustWF(t, h,
		engine.CreateWorkflow{ID: "w", Spec: retrySpec, At: t0},
		engine.StartStep{ID: "w", Step: "a", Attempt: 1, TaskID: "ta1"},
		engine.StepFinished{ID: "w", Step: "a", TaskID: "ta1", Error: "boom"}, // step_failed, not final
		engine.RetryTimerFired{ID: "w", Step: "a", Attempt: 2},
		engine.StartStep{ID: "w", Step: "a", Attempt: 2, TaskID: "ta2"},
		engine.StepFinished{ID: "w", Step: "a", TaskID: "ta2", Error: "boom"}, // step_failed final, b skipped, workflow failed
	)
}

func fanHistory(h *service.Handler, t *testing.T) {
	mustWF(t, h,
		engine.CreateWorkflow{ID: "w", Spec: fanSpec, At: t0},
		engine.StartStep{ID: "w", Step: "f", Attempt: 1, Shards: []events.Shard{{TaskID: "t1", Device: "d1"}, {TaskID: "t2", Device: "d2"}}},
		engine.StepFinished{ID: "w", Step: "f", TaskID: "t1", Result: json.RawMessage(`1`)},
		engine.StepFinished{ID: "w", Step: "f", TaskID: "t2", Result: json.RawMessage(`2`)}, // shard_finished, step_completed [1,2], completed
	)
}

func indexOf(envs []events.Envelope, typ string, nth int) int {
	for i, e := range envs {
		if e.Type == typ {
			if nth == 0 {
				return i
			}
			nth--
		}
	}
	panic("no " + typ)
}

func setData(e *events.Envelope, from, to string) {
	if !strings.Contains(string(e.Data), from) {
		panic(fmt.Sprintf("%s has no %s", e.Data, from))
	}
	e.Data = json.RawMessage(strings.Replace(string(e.Data), from, to, 1))
}

func TestHistory_Tampered(t *testing.T) {
	wf := events.WorkflowAggregate("w")
	tests := []struct {
		name    string
		agg     events.Aggregate
		history func(*service.Handler, *testing.T)
		// tamper changes envs and returns the position the check must stop at.
		tamper  func([]events.Envelope) ([]events.Envelope, int)
		wantEnd bool   // the divergence is past the end of the history
		want    string // in the divergence's Want
		got     string // in its Got
	}{
		{
			name: "final flag set on a failure that is retried", agg: wf, history: retryHistory,
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				i := indexOf(envs, "workflow.step_failed", 0)
				setData(&envs[i], `"reason":"boom"`, `"reason":"boom","final":true`)
				return envs, i
			},
			want: `"final":true`, got: `workflow.step_failed {"step":"a","attempt":1,"reason":"boom"}`,
		},
		{
			name: "final flag dropped from the last failure", agg: wf, history: retryHistory,
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				i := indexOf(envs, "workflow.step_failed", 1)
				setData(&envs[i], `,"final":true`, ``)
				return envs, i
			},
			want: `"attempt":2,"reason":"boom"}`, got: `"final":true`,
		},
		{
			name: "skipped step dropped", agg: wf, history: retryHistory,
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				i := indexOf(envs, "workflow.step_skipped", 0)
				return slices.Delete(envs, i, i+1), i
			},
			want: "workflow.failed", got: `workflow.step_skipped {"step":"b","reason":"dependency a failed"}`,
		},
		{
			name: "terminal event dropped", agg: wf, history: retryHistory,
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				return envs[:len(envs)-1], len(envs) - 1
			},
			wantEnd: true, want: "nothing: the history ends here", got: "workflow.failed",
		},
		{
			name: "consequence with no cause", agg: wf, history: retryHistory,
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				extra := envs[len(envs)-1]
				return slices.Insert(envs, 2, extra), 2
			},
			want: "workflow.failed", got: "no events",
		},
		{
			name: "duplicate start", agg: wf, history: retryHistory,
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				return slices.Insert(envs, 2, envs[1]), 2
			},
			want: "workflow.step_started", got: "no events",
		},
		{
			name: "retry fired for the wrong attempt", agg: wf, history: retryHistory,
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				i := indexOf(envs, "workflow.retry_fired", 0)
				setData(&envs[i], `"attempt":2`, `"attempt":3`)
				return envs, i
			},
			want: `"attempt":3`, got: "no events",
		},
		{
			name: "fan-out result changed", agg: wf, history: fanHistory,
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				i := indexOf(envs, "workflow.step_completed", 0)
				setData(&envs[i], `[1,2]`, `[2,1]`)
				return envs, i
			},
			want: `"result":[2,1]`, got: `"result":[1,2]`,
		},
		{
			name: "shard result changed", agg: wf, history: fanHistory,
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				setData(&envs[indexOf(envs, "workflow.shard_finished", 0)], `"result":1`, `"result":7`)
				return envs, indexOf(envs, "workflow.step_completed", 0)
			},
			want: `"result":[1,2]`, got: `"result":[7,2]`,
		},
		{
			name: "event that does not decode", agg: wf, history: fanHistory,
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				i := indexOf(envs, "workflow.shard_finished", 1)
				setData(&envs[i], `"attempt":1`, `"attempt":"one"`)
				return envs, i
			},
			want: `"attempt":"one"`, got: "does not decode",
		},
		{
			name: "deadline without a deadline in the spec", agg: wf,
			history: func(h *service.Handler, t *testing.T) {
				s := fanSpec
				s.Deadline = "1h"
				mustWF(t, h, engine.CreateWorkflow{ID: "w", Spec: s, At: t0.Add(-time.Minute)}, engine.DeadlineExpired{ID: "w"})
			},
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				setData(&envs[0], `"deadline":"1h",`, ``)
				return envs, 0
			},
			want: `"deadline_at":"2026-11-21T12:59:00Z"`, got: `workflow.created {"spec":{"name":"fan","steps"`,
		},
		{
			name: "task attempt skipped", agg: events.TaskAggregate("t"),
			history: func(h *service.Handler, t *testing.T) {
				mustTask(t, h, engine.CreateTask{ID: "t", Spec: events.TaskCreated{Name: "add", Module: dA}})
				mustTask(t, h, engine.ScheduleTask{ID: "t", Device: "d1"})
				mustTask(t, h, engine.StopTask{ID: "t"})
				mustTask(t, h, engine.ScheduleTask{ID: "t", Device: "d2"})
				mustTask(t, h, engine.RecordResult{ID: "t", Device: "d2", Result: json.RawMessage(`"3"`)})
			},
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				i := indexOf(envs, "task.scheduled", 1)
				setData(&envs[i], `"attempt":2`, `"attempt":3`)
				return envs, i
			},
			want: `"attempt":3`, got: `task.scheduled {"device":"d2","attempt":2}`,
		},
		{
			name: "result of a finished task", agg: events.TaskAggregate("t"),
			history: func(h *service.Handler, t *testing.T) {
				mustTask(t, h, engine.CreateTask{ID: "t", Spec: events.TaskCreated{Name: "add", Module: dA}})
				mustTask(t, h, engine.ScheduleTask{ID: "t", Device: "d1"})
				mustTask(t, h, engine.RecordResult{ID: "t", Device: "d1", Result: json.RawMessage(`"3"`)})
			},
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				return append(envs, envs[len(envs)-1]), len(envs)
			},
			want: "task.completed", got: "no events",
		},
		{
			name: "announce that changes nothing", agg: events.DeviceAggregate("d"),
			history: func(h *service.Handler, t *testing.T) {
				mustDevice(t, h, engine.Announce{ID: "d", Namespace: "lab"})
				mustDevice(t, h, engine.MarkOffline{ID: "d", Reason: "last will"})
			},
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				return slices.Insert(envs, 1, envs[0]), 1
			},
			want: "device.announced", got: "no events",
		},
		{
			name: "artifact deleted with its last tag", agg: events.ArtifactAggregate("vision"),
			history: func(h *service.Handler, t *testing.T) {
				for _, cmd := range []engine.ArtifactCommand{
					engine.TagArtifact{Name: "vision", Tag: "v1", Digest: dA, Size: 100},
					engine.TagArtifact{Name: "vision", Tag: "v2", Digest: dB, Size: 200},
					engine.UntagArtifact{Name: "vision", Tag: "v1"},
					engine.UntagArtifact{Name: "vision", Tag: "v2"},
				} {
					if _, err := h.Artifact(testCtx(t), cmd); err != nil {
						t.Fatal(err)
					}
				}
			},
			tamper: func(envs []events.Envelope) ([]events.Envelope, int) {
				return envs[:len(envs)-1], len(envs) - 1
			},
			wantEnd: true, want: "nothing", got: "artifact.deleted",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			envs, at := tc.tamper(recorded(t, tc.agg, func(h *service.Handler) { tc.history(h, t) }))
			for i := range envs {
				envs[i].Seq = uint64(10 * (i + 1))
			}
			r, err := replaycheck.History(codec, envs)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Divergences) != 1 {
				t.Fatalf("divergences %+v", r.Divergences)
			}
			d := r.Divergences[0]
			wantSeq := uint64(10 * (at + 1))
			if tc.wantEnd {
				wantSeq = 0
			}
			if d.Aggregate != tc.agg || d.Index != at || d.Seq != wantSeq || d.State ||
				!strings.Contains(d.Want, tc.want) || !strings.Contains(d.Got, tc.got) {
				t.Fatalf("divergence %+v\nwant index %d seq %d, want %q got %q", d, at, wantSeq, tc.want, tc.got)
			}
			if r.Checked() > at || r.Events() != len(envs) || r.Kinds[0].Divergences != 1 {
				t.Fatalf("counts %+v, want at most %d checked", r.Kinds, at)
			}
		})
	}
}

// TestHistory_TamperProperty tampers with random recorded workflow
// histories: a dropped consequence or a flipped Final flag must diverge
// exactly where it was.
func TestHistory_TamperProperty(t *testing.T) {
	consequence := map[string]bool{"workflow.step_skipped": true, "workflow.completed": true, "workflow.failed": true}
	tampered := 0
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 11))
		all, err := replay.Record(testCtx(t), simulated(t, seed, 4), events.KindWorkflow)
		if err != nil {
			t.Fatal(err)
		}
		byAgg := map[string][]events.Envelope{}
		for _, e := range all {
			byAgg[e.Aggregate.ID] = append(byAgg[e.Aggregate.ID], e)
		}
		for _, id := range slices.Sorted(maps.Keys(byAgg)) {
			envs := byAgg[id]
			var at []int
			for i, e := range envs {
				if consequence[e.Type] || e.Type == "workflow.step_failed" {
					at = append(at, i)
				}
			}
			if len(at) == 0 {
				continue
			}
			i := at[rng.IntN(len(at))]
			envs = slices.Clone(envs)
			if envs[i].Type == "workflow.step_failed" {
				envs[i].Data = flipFinal(t, envs[i].Data)
			} else {
				envs = slices.Delete(envs, i, i+1)
			}
			r, err := replaycheck.History(codec, envs)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Divergences) != 1 || r.Divergences[0].Index != i {
				t.Fatalf("seed %d, %s: tampered at %d (%s), divergences %+v", seed, id, i, types(envs), r.Divergences)
			}
			tampered++
		}
	}
	if tampered < 100 {
		t.Fatalf("only %d histories tampered", tampered)
	}
}

func flipFinal(t *testing.T, data json.RawMessage) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m["final"] == true {
		delete(m, "final")
	} else {
		m["final"] = true
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHistory_TimedOutFanOut(t *testing.T) {
	envs := recorded(t, events.WorkflowAggregate("w"), func(h *service.Handler) {
		mustWF(t, h,
			engine.CreateWorkflow{ID: "w", Spec: fanSpec, At: t0},
			engine.StartStep{ID: "w", Step: "f", Attempt: 1, Shards: []events.Shard{{TaskID: "t1", Device: "d1"}, {TaskID: "t2", Device: "d2"}}},
			engine.StepFinished{ID: "w", Step: "f", TaskID: "t1", Result: json.RawMessage(`1`)},
			engine.AttemptTimedOut{ID: "w", Step: "f", Attempt: 1, Reason: "timed out"},
		)
	})
	if got := types(envs); !slices.Equal(got, []string{"workflow.created", "workflow.step_started", "workflow.shard_finished", "workflow.step_failed", "workflow.failed"}) {
		t.Fatalf("history %v", got)
	}
	// Only a timeout explains a fan-out step's failure after one success
	// of two; its reason is the record's.
	setData(&envs[3], `"reason":"timed out"`, `"reason":"boom"`)
	r, err := replaycheck.History(codec, envs)
	if err != nil || len(r.Divergences) != 0 {
		t.Fatalf("a timeout with another reason: %v %+v", err, r.Divergences)
	}
	envs[3].Type = "workflow.step_completed"
	envs[3].Data = json.RawMessage(`{"step":"f","attempt":1,"result":[1]}`)
	r, _ = replaycheck.History(codec, envs)
	if len(r.Divergences) != 1 || r.Divergences[0].Index != 3 || !strings.Contains(r.Divergences[0].Command, "StepFinished") {
		t.Fatalf("a completion after one of two shards: %+v", r.Divergences)
	}
}

func TestReplayCheck_Interleaved(t *testing.T) {
	store := simulated(t, 3, 10)
	all, err := replay.Record(testCtx(t), store)
	if err != nil {
		t.Fatal(err)
	}
	// Any interleaving of the aggregates' histories checks the same, even
	// an artifact's stored and tagged events arriving apart.
	rng := rand.New(rand.NewPCG(3, 3))
	byAgg := map[events.Aggregate][]events.Envelope{}
	var aggs []events.Aggregate
	for _, e := range all {
		if _, ok := byAgg[e.Aggregate]; !ok {
			aggs = append(aggs, e.Aggregate)
		}
		byAgg[e.Aggregate] = append(byAgg[e.Aggregate], e)
	}
	c := replaycheck.New(codec)
	for len(aggs) > 0 {
		i := rng.IntN(len(aggs))
		envs := byAgg[aggs[i]]
		if err := c.Add(envs[0]); err != nil {
			t.Fatal(err)
		}
		if byAgg[aggs[i]] = envs[1:]; len(envs) == 1 {
			aggs = slices.Delete(aggs, i, i+1)
		}
	}
	r := c.Finish()
	wantClean(t, r)
	if r.Events() != len(all) {
		t.Fatalf("%d events checked of %d", r.Events(), len(all))
	}
}

func TestReplayCheck_Errors(t *testing.T) {
	envs := recorded(t, events.WorkflowAggregate("w"), func(h *service.Handler) { retryHistory(h, t) })
	envs[2].Seq = envs[1].Seq
	if _, err := replaycheck.History(codec, envs); !errors.Is(err, replaycheck.ErrHistoryOrder) {
		t.Fatalf("err = %v, want ErrHistoryOrder", err)
	}
	other := events.Envelope{ID: "x", Type: "gadget.made", Aggregate: events.Aggregate{Kind: "gadget", ID: "g"}, Seq: 1, Data: json.RawMessage(`{}`)}
	r, err := replaycheck.History(codec, []events.Envelope{other})
	if err != nil || len(r.Kinds) != 1 || r.Kinds[0] != (replaycheck.KindCount{Kind: "gadget", Events: 1, Skipped: true}) {
		t.Fatalf("unknown kind: %v %+v", err, r)
	}
}

func TestReplayCheck_FoldOnly(t *testing.T) {
	envs := recorded(t, events.WorkflowAggregate("w"), func(h *service.Handler) { retryHistory(h, t) })
	setData(&envs[indexOf(envs, "workflow.step_failed", 0)], `"reason":"boom"`, `"reason":"boom","final":true`)
	check := func() replaycheck.Result {
		c := replaycheck.New(codec, replaycheck.FoldOnly())
		for _, e := range envs {
			if err := c.Add(e); err != nil {
				t.Fatal(err)
			}
		}
		return c.Finish()
	}
	if r := check(); len(r.Divergences) != 0 || r.Checked() != len(envs) {
		t.Fatalf("fold only: %+v", r)
	}
	envs[4].Data = json.RawMessage(`{"step":`)
	if r := check(); len(r.Divergences) != 1 || r.Divergences[0].Index != 4 || r.Checked() != 4 {
		t.Fatalf("fold only, an event that does not decode: %+v", r)
	}
}

func TestDivergence_String(t *testing.T) {
	d := replaycheck.Divergence{Aggregate: events.WorkflowAggregate("w"), Seq: 7, Index: 3, Command: "StepFinished {}", Want: "a", Got: "b"}
	want := "wf/w: event 3, at seq 7\n  command  StepFinished {}\n  recorded a\n  decided  b"
	if d.String() != want {
		t.Fatalf("%q", d.String())
	}
}

func ExampleHistory() {
	ctx := context.Background()
	store := events.NewMemory()
	h := service.NewHandler(store, events.DefaultCodec(), service.SystemClock{}, service.NewULIDs())
	if _, err := h.Task(ctx, engine.CreateTask{ID: "t1", Spec: events.TaskCreated{Name: "add", ImageURL: "docker.io/jetprop/add:1"}}); err != nil {
		panic(err)
	}
	if _, err := h.Task(ctx, engine.ScheduleTask{ID: "t1", Device: "pi-1"}); err != nil {
		panic(err)
	}
	envs, _ := store.Load(ctx, events.TaskAggregate("t1"))
	r, _ := replaycheck.History(events.DefaultCodec(), envs)
	fmt.Println(r.Checked(), "of", r.Events(), "events reproduced,", len(r.Divergences), "divergences")

	// A decider that once counted attempts from 2.
	envs[1].Data = json.RawMessage(`{"device":"pi-1","attempt":2}`)
	r, _ = replaycheck.History(events.DefaultCodec(), envs)
	fmt.Println(r.Divergences[0])
	// Output:
	// 2 of 2 events reproduced, 0 divergences
	// task/t1: event 1, at seq 2
	//   command  ScheduleTask {"ID":"t1","Device":"pi-1"}
	//   recorded task.scheduled {"device":"pi-1","attempt":2}
	//   decided  task.scheduled {"device":"pi-1","attempt":1}
}

// benchEvents are recorded histories of at least 100k events, made once.
var benchEvents []events.Envelope

func BenchmarkReplayCheck(b *testing.B) {
	for seed := uint64(0); len(benchEvents) < 100000; seed++ {
		envs, err := replay.Record(testCtx(b), simulated(b, seed, 50))
		if err != nil {
			b.Fatal(err)
		}
		benchEvents = append(benchEvents, envs...) // every id starts with the seed
	}
	for b.Loop() {
		r, err := replaycheck.History(codec, benchEvents)
		if err != nil || len(r.Divergences) != 0 {
			b.Fatal(err, r.Divergences)
		}
	}
	b.ReportMetric(float64(len(benchEvents))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(benchEvents)), "events/op")
}

// TestHistory_IdempotentCreates: creates under an idempotency key record
// the request's digest, and replay gives it back to the command.
func TestHistory_IdempotentCreates(t *testing.T) {
	const digest = "sha256:9b3154e9c75b738510e16fe0a33b636f6d377b06439615252f79ea6053bdcaf7"
	envs := recorded(t, events.WorkflowAggregate("w"), func(h *service.Handler) {
		mustWF(t, h, engine.CreateWorkflow{ID: "w", Spec: fanSpec, At: t0, RequestDigest: digest})
	})
	if r, err := replaycheck.History(codec, envs); err != nil || len(r.Divergences) != 0 {
		t.Fatalf("a workflow created under a key: %v %+v", err, r.Divergences)
	}
}
