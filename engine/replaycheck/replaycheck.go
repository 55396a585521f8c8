package replaycheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// ErrHistoryOrder reports an aggregate's event whose stream sequence does
// not follow the one before it.
var ErrHistoryOrder = errors.New("history out of order")

// Divergence is the first recorded event of an aggregate's history that
// today's deciders do not reproduce.
type Divergence struct {
	Aggregate events.Aggregate `json:"aggregate"`
	Seq       uint64           `json:"seq"`   // stream sequence of the recorded event (0: the history ended)
	Index     int              `json:"index"` // its position in the aggregate's history, from 0
	Command   string           `json:"command,omitempty"`
	Want      string           `json:"want"` // recorded: type and JSON body
	Got       string           `json:"got"`  // decided: type and JSON body, an error, or nothing
	State     bool             `json:"state,omitempty"`
}

func (d Divergence) String() string {
	at := fmt.Sprintf("seq %d", d.Seq)
	if d.Seq == 0 {
		at = "the end of its history"
	}
	what := "event"
	if d.State {
		what = "final state"
	}
	s := fmt.Sprintf("%s: %s %d, at %s", d.Aggregate, what, d.Index, at)
	if d.Command != "" {
		s += "\n  command  " + d.Command
	}
	return s + "\n  recorded " + d.Want + "\n  decided  " + d.Got
}

// KindCount counts what a check saw of one kind.
type KindCount struct {
	Kind        events.Kind `json:"kind"`
	Aggregates  int         `json:"aggregates"`
	Events      int         `json:"events"`  // recorded events read
	Checked     int         `json:"checked"` // recorded events the deciders reproduced
	Divergences int         `json:"divergences"`
	Skipped     bool        `json:"skipped,omitempty"` // a kind without a decider
}

// Result is what a replay check found.
type Result struct {
	Kinds       []KindCount  `json:"kinds"`
	Divergences []Divergence `json:"divergences"`
}

// Aggregates is how many aggregates were read.
func (r Result) Aggregates() int { return r.sum(func(k KindCount) int { return k.Aggregates }) }

// Events is how many events were read.
func (r Result) Events() int { return r.sum(func(k KindCount) int { return k.Events }) }

// Checked is how many events the deciders reproduced.
func (r Result) Checked() int { return r.sum(func(k KindCount) int { return k.Checked }) }

func (r Result) sum(f func(KindCount) int) int {
	n := 0
	for _, k := range r.Kinds {
		n += f(k)
	}
	return n
}

// History checks recorded histories: envs holds the events of one
// aggregate or more, each aggregate's in stream order.
func History(codec *events.Codec, envs []events.Envelope) (Result, error) {
	c := New(codec)
	for _, e := range envs {
		if err := c.Add(e); err != nil {
			return Result{}, err
		}
	}
	return c.Finish(), nil
}

// Streams checks every history of the given kinds (all when none are
// given) stored in store, up to the last event stored when it starts
// reading each kind.
func Streams(ctx context.Context, store events.Store, codec *events.Codec, kinds ...events.Kind) (Result, error) {
	if len(kinds) == 0 {
		kinds = events.Kinds()
	}
	c := New(codec)
	for _, k := range kinds {
		if err := store.Replay(ctx, k, 1, c.Add); err != nil {
			return Result{}, fmt.Errorf("replay %s: %w", k.Stream(), err)
		}
	}
	return c.Finish(), nil
}

// Checker runs recorded histories through today's deciders, to catch
// a decider that is not deterministic or that changed. At each position of
// an aggregate's history it derives the command the recorded event implies
// (task.scheduled: ScheduleTask; workflow.step_failed: StepFinished, else
// AttemptTimedOut; ...), decides it on the state folded from the record so
// far, and compares the decided events (type and JSON value; envelope
// metadata is ignored) with the recorded events that follow. What a
// command causes on its own (skipped steps, a workflow's terminal event, a
// fan-out step's outcome after its last shard, an artifact deleted with
// its last tag) is matched as part of that command's batch, so a decider
// that now adds, drops or changes a consequence diverges. A history is
// reported at its first difference and not checked further; one that
// decides the same must also fold to the same state (as JSON) from the
// decided events as from the recorded ones.
//
// Every kind the engine decides is checked: task, dev, wf, chunk (module
// transfers), art, token and secret. Events of other kinds are counted
// and skipped.
//
// The check cannot see a field the command copies from the event (a
// step's result, a failure's reason): it reproduces itself. It sees what
// the deciders add: attempt numbers, Final flags, devices, quorums and
// results of fan-out steps, consequences, refusals and no-ops. A
// workflow's creation time is read back from its recorded deadline
// (DeadlineAt minus the spec's deadline; the service reads its clock for
// it apart from the envelope's time), else it is the envelope's time.
//
// Events come one at a time, as a stream replay delivers them; aggregates
// may interleave. The check keeps two states per aggregate, and the events
// of a batch until its last one arrives. Not safe for concurrent use.
type Checker struct {
	codec    *events.Codec
	foldOnly bool
	aggs     map[events.Aggregate]historyCheck
	order    []events.Aggregate
	skipped  map[events.Kind]*KindCount
}

// Option adjusts a Checker.
type Option func(*Checker)

// FoldOnly checks only that every event decodes and folds: no deciders.
// A divergence is then an event that does not decode.
func FoldOnly() Option { return func(c *Checker) { c.foldOnly = true } }

// New returns an empty check.
func New(codec *events.Codec, opts ...Option) *Checker {
	c := &Checker{codec: codec, aggs: map[events.Aggregate]historyCheck{}, skipped: map[events.Kind]*KindCount{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Add checks the next recorded event of env's aggregate as far as the
// events so far allow.
func (c *Checker) Add(env events.Envelope) error {
	h, ok := c.aggs[env.Aggregate]
	if !ok {
		h = newHistoryCheck(env.Aggregate, c.foldOnly)
		if h == nil {
			c.skip(env.Aggregate.Kind)
			return nil
		}
		c.aggs[env.Aggregate] = h
		c.order = append(c.order, env.Aggregate)
	}
	ev, err := c.codec.Decode(env)
	return h.add(recorded{env: env, ev: ev, err: err})
}

func (c *Checker) skip(k events.Kind) {
	n := c.skipped[k]
	if n == nil {
		n = &KindCount{Kind: k, Skipped: true}
		c.skipped[k] = n
	}
	n.Events++
}

// Finish checks what is left (a batch the histories end in the middle of
// diverges) and the final states, and returns the result. Kinds are in
// events.Kinds order, then the skipped ones; divergences in the order
// their aggregates first appeared, by kind.
func (c *Checker) Finish() Result {
	counts := map[events.Kind]*KindCount{}
	byKind := map[events.Kind][]Divergence{}
	for _, agg := range c.order {
		h := c.aggs[agg]
		d, checked := h.finish()
		n := counts[agg.Kind]
		if n == nil {
			n = &KindCount{Kind: agg.Kind}
			counts[agg.Kind] = n
		}
		n.Aggregates++
		n.Events += h.events()
		n.Checked += checked
		if d != nil {
			n.Divergences++
			byKind[agg.Kind] = append(byKind[agg.Kind], *d)
		}
	}
	r := Result{Kinds: []KindCount{}, Divergences: []Divergence{}}
	for _, k := range events.Kinds() {
		if n := counts[k]; n != nil {
			r.Kinds = append(r.Kinds, *n)
			r.Divergences = append(r.Divergences, byKind[k]...)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.skipped)) {
		r.Kinds = append(r.Kinds, *c.skipped[k])
	}
	return r
}

// historyCheck checks the history of one aggregate.
type historyCheck interface {
	add(recorded) error
	finish() (*Divergence, int)
	events() int
}

func newHistoryCheck(agg events.Aggregate, foldOnly bool) historyCheck {
	switch agg.Kind {
	case events.KindTask:
		return newHistory(agg, foldOnly, engine.DecideTask, taskCommands)
	case events.KindDevice:
		return newHistory(agg, foldOnly, engine.DecideDevice, deviceCommands)
	case events.KindWorkflow:
		return newHistory(agg, foldOnly, engine.DecideWorkflow, workflowCommands)
	case events.KindChunk:
		return newHistory(agg, foldOnly, engine.DecideTransfer, transferCommands)
	case events.KindArtifact:
		return newHistory(agg, foldOnly, engine.DecideArtifact, artifactCommands)
	case events.KindToken:
		return newHistory(agg, foldOnly, engine.DecideToken, tokenCommands)
	case events.KindSecret:
		return newHistory(agg, foldOnly, engine.DecideSecret, secretCommands)
	}
	return nil
}

// recorded is one stored event and its decoded body (or why it does not
// decode).
type recorded struct {
	env events.Envelope
	ev  events.Event
	err error
}

// impliedFunc returns the commands that may have caused the recorded
// events at the head of rec (rec[0] decoded), in the order to try them.
// With more set, it may return errMore to wait for the next event.
type impliedFunc[S, C any] func(agg events.Aggregate, s S, rec []recorded, more bool) ([]C, error)

// errMore asks for the next recorded event before the commands can be derived.
var errMore = errors.New("need the next event")

// outcome is what one candidate command decided.
type outcome struct {
	cmd   any
	evs   []events.Event
	data  [][]byte
	err   error
	match int // how many of the pending recorded events it reproduces
}

func (o *outcome) decided() bool { return o.err == nil && len(o.evs) > 0 }

// history checks one aggregate of state S and commands C.
type history[S engine.Foldable[S], C any] struct {
	agg      events.Aggregate
	foldOnly bool
	decide   func(S, C) ([]events.Event, error)
	implied  impliedFunc[S, C]

	rec, dec S          // folded from the recorded events, from the decided ones
	buf      []recorded // recorded events, buf[start:] not yet matched
	start    int
	index    int       // position in the history of buf[start]
	tried    []outcome // the head's candidates, kept while their batch is incomplete
	div      *Divergence
	checked  int
	count    int
	last     uint64
}

func newHistory[S engine.Foldable[S], C any](agg events.Aggregate, foldOnly bool, decide func(S, C) ([]events.Event, error), implied impliedFunc[S, C]) *history[S, C] {
	return &history[S, C]{agg: agg, foldOnly: foldOnly, decide: decide, implied: implied}
}

func (h *history[S, C]) events() int { return h.count }

func (h *history[S, C]) add(r recorded) error {
	if h.count > 0 && r.env.Seq <= h.last {
		return fmt.Errorf("%w: %s event %s has sequence %d after %d", ErrHistoryOrder, h.agg, r.env.ID, r.env.Seq, h.last)
	}
	h.count, h.last = h.count+1, r.env.Seq
	if h.div != nil {
		return nil
	}
	if h.start == len(h.buf) {
		h.buf, h.start = h.buf[:0], 0
	}
	h.buf = append(h.buf, r)
	h.advance(false)
	return nil
}

func (h *history[S, C]) finish() (*Divergence, int) {
	h.advance(true)
	if h.div == nil && !h.foldOnly {
		h.compareStates()
	}
	return h.div, h.checked
}

func (h *history[S, C]) pending() []recorded { return h.buf[h.start:] }

// advance matches as many pending events as it can; final says no more
// events will come.
func (h *history[S, C]) advance(final bool) {
	for h.div == nil && h.start < len(h.buf) && h.step(final) {
	}
}

// step matches the batch at the head of the pending events, or diverges.
// It reports false when the batch needs more events.
func (h *history[S, C]) step(final bool) bool {
	head := h.buf[h.start]
	switch {
	case head.err != nil:
		h.diverge(outcome{err: fmt.Errorf("the recorded event does not decode: %w", head.err)})
		return false
	case h.foldOnly:
		fold(&h.rec, head.env, head.ev)
		h.consumed(1)
		return true
	case h.tried == nil && !h.candidates(final):
		return false
	}
	o, wait := h.pick(final)
	switch {
	case wait:
		return false
	case o.decided() && o.match == len(o.evs):
		h.apply(o)
	default:
		h.diverge(*o)
	}
	return true
}

// candidates decides the commands the head implies.
func (h *history[S, C]) candidates(final bool) bool {
	cmds, err := h.implied(h.agg, h.rec, h.pending(), !final)
	switch {
	case errors.Is(err, errMore):
		return false
	case err != nil:
		h.diverge(outcome{err: fmt.Errorf("no command derives from it: %w", err)})
		return false
	}
	h.tried = h.decideAll(cmds)
	return true
}

func (h *history[S, C]) decideAll(cmds []C) []outcome {
	out := make([]outcome, len(cmds))
	for i, cmd := range cmds {
		o := &out[i]
		o.cmd = cmd
		o.evs, o.err = h.decide(h.rec, cmd)
		o.data = make([][]byte, len(o.evs))
		for j, ev := range o.evs {
			if o.data[j], o.err = json.Marshal(ev); o.err != nil {
				break
			}
		}
	}
	if len(out) == 0 {
		return []outcome{{err: errNoCommand}}
	}
	return out
}

var errNoCommand = errors.New("no command records this event first: it only follows from an event the decider did not emit")

// pick returns the first candidate that reproduces its whole batch; else,
// unless final, whether one may still do so with more events; else the
// candidate that reproduced the most.
func (h *history[S, C]) pick(final bool) (best *outcome, wait bool) {
	rec := h.pending()
	for i := range h.tried {
		o := &h.tried[i]
		o.match = matchLen(o, rec)
		if o.decided() && o.match == len(o.evs) {
			return o, false
		}
	}
	for i := range h.tried {
		o := &h.tried[i]
		if !final && o.decided() && o.match == len(rec) {
			return nil, true
		}
		if best == nil || o.decided() && (!best.decided() || o.match > best.match) {
			best = o
		}
	}
	return best, false
}

func matchLen(o *outcome, rec []recorded) int {
	if !o.decided() {
		return 0
	}
	m := 0
	for m < len(o.evs) && m < len(rec) && sameEvent(o.evs[m].EventType(), o.data[m], rec[m]) {
		m++
	}
	return m
}

// sameEvent compares a decided event with a recorded one: same type and
// the same JSON value (insignificant space and key order aside).
func sameEvent(typ string, data []byte, r recorded) bool {
	if r.err != nil || typ != r.env.Type {
		return false
	}
	return bytes.Equal(data, r.env.Data) || jsonEqual(data, r.env.Data)
}

func jsonEqual(a, b []byte) bool {
	va, oka := decodeAny(a)
	vb, okb := decodeAny(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}

func decodeAny(b []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	return v, d.Decode(&v) == nil
}

// apply folds a matched batch: the recorded events into rec, the decided
// ones (with the recorded envelopes' metadata) into dec.
func (h *history[S, C]) apply(o *outcome) {
	rec := h.pending()
	for i, ev := range o.evs {
		fold(&h.rec, rec[i].env, rec[i].ev)
		fold(&h.dec, rec[i].env, ev)
	}
	h.consumed(len(o.evs))
}

// ownedFolder is a state that can fold an event in place (a workflow:
// Apply copies its steps, ApplyOwned does not).
type ownedFolder interface {
	ApplyOwned(events.Envelope, events.Event)
}

// fold applies ev to *s, in place when the state allows it: a history
// check owns both its states and hands them to deciders only by value,
// which never write to them, so no earlier state needs to stay valid.
// Apply's copy would make checking a workflow of n steps cost n per
// event, n² per history.
func fold[S engine.Foldable[S]](s *S, env events.Envelope, ev events.Event) {
	if o, ok := any(s).(ownedFolder); ok {
		o.ApplyOwned(env, ev)
		return
	}
	*s = (*s).Apply(env, ev)
}

func (h *history[S, C]) consumed(n int) {
	h.start += n
	h.index += n
	h.checked += n
	h.tried = nil
}

func (h *history[S, C]) diverge(o outcome) {
	d := &Divergence{Aggregate: h.agg, Index: h.index + o.match, Want: "nothing: the history ends here"}
	if o.cmd != nil {
		d.Command = describeCommand(o.cmd)
	}
	if rec := h.pending(); o.match < len(rec) {
		d.Seq, d.Want = rec[o.match].env.Seq, describeEvent(rec[o.match].env.Type, rec[o.match].env.Data)
	}
	switch {
	case o.err != nil:
		d.Got = "error: " + o.err.Error()
	case o.match < len(o.evs):
		d.Got = describeEvent(o.evs[o.match].EventType(), o.data[o.match])
	default:
		d.Got = "no events: the command changes nothing in this state"
	}
	h.div, h.tried = d, nil
	h.buf, h.start = nil, 0
}

// compareStates checks that the decided events fold to the state the
// recorded ones fold to.
func (h *history[S, C]) compareStates() {
	if h.checked == 0 {
		return
	}
	want, werr := json.Marshal(h.rec)
	got, gerr := json.Marshal(h.dec)
	if werr == nil && gerr == nil && bytes.Equal(want, got) {
		return
	}
	h.div = &Divergence{
		Aggregate: h.agg, Seq: h.last, Index: h.index - 1, State: true,
		Want: describeState(want, werr), Got: describeState(got, gerr),
	}
}

func describeEvent(typ string, data []byte) string { return typ + " " + string(data) }

func describeState(b []byte, err error) string {
	if err != nil {
		return "state does not encode: " + err.Error()
	}
	return "state " + string(b)
}

func describeCommand(cmd any) string {
	b, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Sprintf("%T", cmd)
	}
	return reflect.TypeOf(cmd).Name() + " " + string(b)
}

func cmds[C any](cs ...C) ([]C, error) { return cs, nil }

// taskCommands derives task commands from task events.
func taskCommands(agg events.Aggregate, t engine.Task, rec []recorded, more bool) ([]engine.TaskCommand, error) {
	id := agg.ID
	switch e := rec[0].ev.(type) {
	case events.TaskCreated:
		return cmds[engine.TaskCommand](engine.CreateTask{ID: id, Spec: e})
	case events.TaskModuleAttached:
		return cmds[engine.TaskCommand](engine.AttachModule{ID: id, Module: e.Module, Size: e.ModuleSize})
	case events.TaskUpdated:
		return cmds[engine.TaskCommand](engine.UpdateTask{ID: id, Update: e})
	case events.TaskScheduled:
		return cmds[engine.TaskCommand](engine.ScheduleTask{ID: id, Device: e.Device})
	case events.TaskStarted:
		c := engine.MarkStarted{ID: id, Attempt: e.Attempt}
		if e.Accepted {
			c.Device = e.Device
		}
		return cmds[engine.TaskCommand](c)
	case events.TaskUndelivered:
		if len(rec) == 1 && more {
			return nil, errMore // the new device is in the task.scheduled that follows
		}
		c := engine.ReplaceTask{ID: id, Attempt: e.Attempt, Reason: e.Reason}
		if len(rec) > 1 {
			if s, ok := rec[1].ev.(events.TaskScheduled); ok {
				c.Device = s.Device
			}
		}
		return cmds[engine.TaskCommand](c)
	case events.TaskLost:
		if len(rec) == 1 && more {
			return nil, errMore // the next attempt's device is in the task.scheduled that follows
		}
		return cmds(lostCommand(id, t, e, rec))
	case events.TaskLateResult:
		return cmds[engine.TaskCommand](engine.RecordResult{ID: id, Device: e.Device, Attempt: e.Attempt, Result: e.Result, Error: e.Error})
	case events.TaskCompleted:
		return cmds[engine.TaskCommand](engine.RecordResult{ID: id, Device: e.Device, Attempt: e.Attempt, Result: e.Result})
	case events.TaskFailed:
		return cmds[engine.TaskCommand](engine.RecordResult{ID: id, Device: e.Device, Attempt: e.Attempt, Error: e.Reason},
			engine.FailTask{ID: id, Attempt: e.Attempt, Reason: e.Reason})
	case events.TaskStopped:
		return cmds[engine.TaskCommand](engine.StopTask{ID: id, Reason: e.Reason})
	case events.TaskDeleted:
		return cmds[engine.TaskCommand](engine.DeleteTask{ID: id})
	}
	return nil, nil
}

// lostCommand is the command behind a task.lost: a result that said
// interrupted, or a LoseTask (a deadline's grace is read back from the
// recorded deadline). The next attempt's device is the task.scheduled
// that follows in the batch, if one does.
func lostCommand(id string, t engine.Task, e events.TaskLost, rec []recorded) engine.TaskCommand {
	next := ""
	if len(rec) > 1 {
		if s, ok := rec[1].ev.(events.TaskScheduled); ok {
			next = s.Device
		}
	}
	if e.Cause == engine.LostInterrupted {
		return engine.RecordResult{ID: id, Device: e.Device, Attempt: e.Attempt, Error: e.Reason, Interrupted: true, Next: next}
	}
	c := engine.LoseTask{ID: id, Attempt: e.Attempt, Device: e.Device, Cause: e.Cause, Reason: e.Reason, Next: next, Now: rec[0].env.Time}
	if e.Cause == engine.LostDeadline {
		c.Grace = e.Deadline.Sub(t.StartedAt.Add(t.Timeout()))
		c.Now = e.Deadline // the decision was at the deadline or after it
	}
	return c
}

// deviceCommands derives device commands from device events.
func deviceCommands(agg events.Aggregate, _ engine.Device, rec []recorded, _ bool) ([]engine.DeviceCommand, error) {
	id := agg.ID
	switch e := rec[0].ev.(type) {
	case events.DeviceAnnounced:
		return cmds[engine.DeviceCommand](engine.Announce{ID: id, Namespace: e.Namespace, Metadata: e.Metadata, OwnTopics: e.OwnTopics, Accepts: e.Accepts})
	case events.DeviceAlive:
		return cmds[engine.DeviceCommand](engine.Heartbeat{ID: id, Namespace: e.Namespace, OwnTopics: e.OwnTopics})
	case events.DeviceUnreachable:
		return cmds[engine.DeviceCommand](engine.MarkUnreachable{ID: id, Reason: e.Reason})
	case events.DeviceReachable:
		return cmds[engine.DeviceCommand](engine.MarkReachable{ID: id})
	case events.DeviceOffline:
		return cmds[engine.DeviceCommand](engine.MarkOffline{ID: id, Reason: e.Reason, LastWill: e.LastWill})
	case events.DeviceProvisioned:
		return cmds[engine.DeviceCommand](engine.ProvisionDevice{ID: id, KeyHash: e.KeyHash, Legacy: e.Legacy})
	case events.DeviceRevoked:
		return cmds[engine.DeviceCommand](engine.RevokeDevice{ID: id, Reason: e.Reason})
	case events.DeviceRemoved:
		return cmds[engine.DeviceCommand](engine.RemoveDevice{ID: id})
	}
	return nil, nil
}

// workflowCommands derives workflow commands from workflow events. Skipped
// steps and terminal events other than cancelled and timed out only
// follow from other events. A failed attempt comes from a result or from a
// timeout; a fan-out step's outcome follows from its last shard.
func workflowCommands(agg events.Aggregate, w engine.Workflow, rec []recorded, _ bool) ([]engine.WorkflowCommand, error) {
	id := agg.ID
	switch e := rec[0].ev.(type) {
	case events.WorkflowCreated:
		c, err := createFromEvent(id, rec[0].env, e)
		return []engine.WorkflowCommand{c}, err
	case events.WorkflowReleased:
		return cmds[engine.WorkflowCommand](engine.ReleaseWorkflow{ID: id})
	case events.WorkflowStepStarted:
		return cmds[engine.WorkflowCommand](engine.StartStep{ID: id, Step: e.Step, Attempt: e.Attempt, TaskID: e.TaskID, Shards: e.Shards})
	case events.WorkflowShardFinished:
		return cmds[engine.WorkflowCommand](engine.StepFinished{ID: id, Step: e.Step, Attempt: e.Attempt, TaskID: e.TaskID, Result: e.Result, Error: e.Error})
	case events.WorkflowStepCompleted:
		return cmds[engine.WorkflowCommand](engine.StepFinished{ID: id, Step: e.Step, Attempt: e.Attempt, TaskID: stepTask(w, e.Step), Result: e.Result})
	case events.WorkflowStepFailed:
		return cmds[engine.WorkflowCommand](engine.StepFinished{ID: id, Step: e.Step, Attempt: e.Attempt, TaskID: stepTask(w, e.Step), Error: e.Reason},
			engine.AttemptTimedOut{ID: id, Step: e.Step, Attempt: e.Attempt, Reason: e.Reason})
	case events.WorkflowRetryFired:
		return cmds[engine.WorkflowCommand](engine.RetryTimerFired{ID: id, Step: e.Step, Attempt: e.Attempt})
	case events.WorkflowCancelled:
		return cmds[engine.WorkflowCommand](engine.CancelWorkflow{ID: id, Reason: e.Reason})
	case events.WorkflowTimedOut:
		return cmds[engine.WorkflowCommand](engine.DeadlineExpired{ID: id})
	case events.WorkflowStepSkipped, events.WorkflowCompleted, events.WorkflowFailed:
		// On its own (not in its cause's batch): recorded by Settle, which
		// decides only what the state calls for.
		return cmds[engine.WorkflowCommand](engine.Settle{ID: id})
	}
	return nil, nil
}

func stepTask(w engine.Workflow, step string) string {
	s, _ := w.Step(step)
	return s.TaskID
}

// createFromEvent is the CreateWorkflow of a workflow.created: its time is
// the recorded deadline minus the spec's deadline, else the envelope's.
func createFromEvent(id string, env events.Envelope, e events.WorkflowCreated) (engine.CreateWorkflow, error) {
	c := engine.CreateWorkflow{ID: id, At: env.Time, Held: e.Held, Source: e.Source, RequestDigest: e.RequestDigest}
	if err := json.Unmarshal(e.Spec, &c.Spec); err != nil {
		return c, fmt.Errorf("the spec does not decode: %w", err)
	}
	if d, err := time.ParseDuration(c.Spec.Deadline); err == nil && !e.DeadlineAt.IsZero() {
		c.At = e.DeadlineAt.Add(-d)
	}
	return c, nil
}

// transferCommands derives module transfer commands from transfer events.
func transferCommands(agg events.Aggregate, _ engine.Transfer, rec []recorded, _ bool) ([]engine.TransferCommand, error) {
	id := agg.ID
	switch e := rec[0].ev.(type) {
	case events.TransferRequested:
		return cmds[engine.TransferCommand](engine.RequestTransfer{ID: id, Spec: e})
	case events.TransferSent:
		return cmds[engine.TransferCommand](engine.RecordSent{ID: id, From: e.From, To: e.To})
	case events.TransferCompleted:
		return cmds[engine.TransferCommand](engine.CompleteTransfer{ID: id})
	case events.TransferFailed:
		return cmds[engine.TransferCommand](engine.FailTransfer{ID: id, Reason: e.Reason})
	}
	return nil, nil
}

// artifactCommands derives artifact commands from artifact events. A
// module stored under the name is tagged in the same batch: the tag is
// the next event's.
func artifactCommands(agg events.Aggregate, a engine.Artifact, rec []recorded, more bool) ([]engine.ArtifactCommand, error) {
	name := agg.ID
	switch e := rec[0].ev.(type) {
	case events.ArtifactStored:
		if len(rec) < 2 && more {
			return nil, errMore
		}
		tag := engine.DefaultTag
		if len(rec) > 1 {
			if t, ok := rec[1].ev.(events.ArtifactTagged); ok {
				tag = t.Tag
			}
		}
		return cmds[engine.ArtifactCommand](engine.TagArtifact{Name: name, Tag: tag, Digest: e.Digest, Size: e.Size, MediaType: e.MediaType, Source: e.Source})
	case events.ArtifactTagged:
		m := a.Modules[e.Digest]
		return cmds[engine.ArtifactCommand](engine.TagArtifact{Name: name, Tag: e.Tag, Digest: e.Digest, Size: m.Size, MediaType: m.MediaType, Source: m.Source})
	case events.ArtifactUntagged:
		return cmds[engine.ArtifactCommand](engine.UntagArtifact{Name: name, Tag: e.Tag}, engine.DeleteArtifact{Name: name})
	case events.ArtifactDeleted:
		return cmds[engine.ArtifactCommand](engine.DeleteArtifact{Name: name})
	}
	return nil, nil
}

// tokenCommands derives token commands from token events.
func tokenCommands(agg events.Aggregate, _ engine.Token, rec []recorded, _ bool) ([]engine.TokenCommand, error) {
	switch e := rec[0].ev.(type) {
	case events.TokenCreated:
		return cmds[engine.TokenCommand](engine.CreateToken{ID: agg.ID, Name: e.Name, Role: e.Role, Hash: e.Hash, By: e.CreatedBy})
	case events.TokenRevoked:
		return cmds[engine.TokenCommand](engine.RevokeToken{ID: agg.ID, By: e.RevokedBy})
	}
	return nil, nil
}

// secretCommands derives secret commands from secret events.
func secretCommands(agg events.Aggregate, _ engine.Secret, rec []recorded, _ bool) ([]engine.SecretCommand, error) {
	switch e := rec[0].ev.(type) {
	case events.SecretSet:
		return cmds[engine.SecretCommand](engine.SetSecret{Name: agg.ID, Ciphertext: e.Ciphertext, KeyID: e.KeyID, By: e.SetBy})
	case events.SecretDeleted:
		return cmds[engine.SecretCommand](engine.DeleteSecret{Name: agg.ID, By: e.DeletedBy})
	}
	return nil, nil
}
