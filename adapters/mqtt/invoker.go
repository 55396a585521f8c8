package mqtt

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// The invocation records: stream INVOCATIONS, subject jp.inv.<task id>,
// one message per invocation (its id the Nats-Msg-Id), the newest
// MaxInvocationsKept per task for InvocationsMaxAge.
const (
	InvocationStream   = "INVOCATIONS"
	invocationSubjects = "jp.inv.>"
	// MaxInvocationsKept bounds the invocations kept per task (and listed).
	MaxInvocationsKept = 1000
	// InvocationsMaxAge is how long an invocation record is kept.
	InvocationsMaxAge = 7 * 24 * time.Hour
	// maxRecordsInFlight bounds the records published and not yet
	// acknowledged; a record over it is dropped and counted.
	maxRecordsInFlight = 4096
)

func invocationSubject(taskID string) string { return "jp.inv." + taskID }

// InvokerPorts are what invoking needs: the engine's NATS connection (it
// hears every device's invoke_results on core NATS subjects), JetStream
// for the records, the sender of invoke messages, and the devices' read
// model (which topics a device listens on).
type InvokerPorts struct {
	NC      *nats.Conn
	Sender  Notifier
	Devices DeviceReader
}

// Invoker sends invocations of latent tasks to their devices and waits for
// the answers. Every engine replica subscribes to the invoke_results
// topics (shared and own) on core NATS, so whichever replica holds the
// HTTP request hears its answer, matched by invocation id and device; the
// others drop it. An answer counts only from a device the invocation went
// to (the device of its own topic, else the proplet_id it claims on the
// shared one); any other is ignored and counted (Ignored). Each
// invocation is recorded once answered or timed out, by one asynchronous
// publish to INVOCATIONS, not awaited by the caller.
type Invoker struct {
	ports  InvokerPorts
	js     jetstream.JetStream
	topics wire.Topics
	log    *slog.Logger
	subs   []*nats.Subscription

	mu      sync.Mutex
	pending map[string]*waiter // by invocation id

	// RecordErrors counts records not stored.
	RecordErrors atomic.Uint64
	ignored      [len(InvokeIgnoredReasons)]atomic.Uint64
}

// Reasons an invoke answer is ignored (Invoker.Ignored).
const (
	// InvokeIgnoredUnmatched: no call here waits for its invocation id
	// (another replica's call, or one that timed out).
	InvokeIgnoredUnmatched = "unmatched"
	// InvokeIgnoredForeign: the invocation was not sent to the device that
	// answered (or its own topic and the proplet_id it claims differ).
	InvokeIgnoredForeign = "foreign"
	// InvokeIgnoredDuplicate: the device answered this invocation already.
	InvokeIgnoredDuplicate = "duplicate"
	// InvokeIgnoredMalformed: the answer does not decode.
	InvokeIgnoredMalformed = "malformed"
)

// InvokeIgnoredReasons lists every reason, in the order of Ignored's keys.
var InvokeIgnoredReasons = [...]string{InvokeIgnoredUnmatched, InvokeIgnoredForeign, InvokeIgnoredDuplicate, InvokeIgnoredMalformed}

// Ignored returns the invoke answers this replica ignored, by reason
// (every reason present).
func (i *Invoker) Ignored() map[string]uint64 {
	out := make(map[string]uint64, len(InvokeIgnoredReasons))
	for k, r := range InvokeIgnoredReasons {
		out[r] = i.ignored[k].Load()
	}
	return out
}

func (i *Invoker) ignore(reason string) {
	for k, r := range InvokeIgnoredReasons {
		if r == reason {
			i.ignored[k].Add(1)
			return
		}
	}
	panic("mqtt: unknown invoke ignore reason " + reason)
}

// waiter is one call waiting for its answers: the devices it was sent to
// and where their answers go (room for one per device).
type waiter struct {
	asked map[string]*asked
	ch    chan wire.InvokeResult
}

// asked is one device an invocation went to: whether it listens on its
// own topics (then it must answer there) and whether it has answered.
type asked struct{ own, answered bool }

// NewInvoker creates the INVOCATIONS stream (replicas copies) and
// subscribes to the answers.
func NewInvoker(ctx context.Context, ports InvokerPorts, topics wire.Topics, replicas int, log *slog.Logger) (*Invoker, error) {
	js, err := jetstream.New(ports.NC, jetstream.WithPublishAsyncMaxPending(maxRecordsInFlight))
	if err != nil {
		return nil, fmt.Errorf("mqtt: invoker: %w", err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: InvocationStream, Subjects: []string{invocationSubjects}, Storage: jetstream.FileStorage,
		MaxMsgsPerSubject: MaxInvocationsKept, MaxAge: InvocationsMaxAge, Replicas: max(1, replicas),
		Duplicates: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("mqtt: invoker: stream %s: %w", InvocationStream, err)
	}
	i := &Invoker{ports: ports, js: js, topics: topics, log: log, pending: map[string]*waiter{}}
	for _, suffix := range []string{wire.SuffixInvokeResults, wire.OwnTopic(wire.SuffixInvokeResults, "+")} {
		sub, err := ports.NC.Subscribe(wire.Subject(topics.Topic(suffix)), i.onAnswer)
		if err != nil {
			i.Close()
			return nil, fmt.Errorf("mqtt: invoker: subscribe: %w", err)
		}
		i.subs = append(i.subs, sub)
	}
	return i, ports.NC.Flush()
}

// Close stops hearing answers; calls waiting time out.
func (i *Invoker) Close() {
	for _, s := range i.subs {
		_ = s.Unsubscribe()
	}
}

func (i *Invoker) onAnswer(m *nats.Msg) {
	r, err := wire.DecodeInvokeResult(m.Data)
	if err != nil {
		i.ignore(InvokeIgnoredMalformed)
		return
	}
	device, own, ok := i.answeredBy(m.Subject, r.PropletID)
	i.mu.Lock()
	w := i.pending[r.InvocationID]
	var a *asked
	answered := false
	if w != nil && ok {
		if a = w.asked[device]; a != nil && a.own != own {
			a = nil // a device on its own topics answers there
		}
		if a != nil {
			answered, a.answered = a.answered, true
		}
	}
	i.mu.Unlock()
	switch {
	case w == nil:
		i.ignore(InvokeIgnoredUnmatched)
	case a == nil:
		i.ignore(InvokeIgnoredForeign)
	case answered:
		i.ignore(InvokeIgnoredDuplicate)
	default:
		r.PropletID = device
		w.ch <- r // room for every device asked, each answering once
	}
}

// answeredBy is the device an answer is from, and whether it came on the
// device's own topic: there, the device of the topic (the broker lets
// only that device publish there when devices have credentials), which
// must agree with the proplet_id it claims; on the shared topic, the
// proplet_id it claims. False when they disagree or it names none.
func (i *Invoker) answeredBy(subject, claimed string) (device string, own, ok bool) {
	suffix, err := i.topics.Suffix(wire.Topic(subject))
	if err != nil {
		return "", false, false
	}
	_, dev := wire.SplitOwn(suffix)
	id, err := sender(dev, claimed)
	return id, dev != "", err == nil && id != ""
}

// Invoke runs one invocation of t (Task.Invocable must hold) on its device
// and waits for the answer, call.Timeout (DefaultInvokeTimeout when zero)
// or ctx. A failed run is an error wrapping domain.ErrUpstream with the
// device's reason; no answer in time wraps domain.ErrTimeout. The
// invocation is recorded either way.
func (i *Invoker) Invoke(ctx context.Context, t engine.Task, call engine.InvokeCall) (engine.Invocation, error) {
	invs, errs := i.InvokeAll(ctx, t.ID, []engine.Task{t}, call)
	return invs[0], errs[0]
}

// InvokeAll runs one invocation on each of tasks (latent tasks running on
// distinct devices: the runs of one broadcast task), all under one
// invocation id, and waits for every answer until the call's timeout; a
// device that does not answer in time times out alone. The i-th answer
// and error are tasks[i]'s, as Invoke's; each is recorded under recordAs.
func (i *Invoker) InvokeAll(ctx context.Context, recordAs string, tasks []engine.Task, call engine.InvokeCall) ([]engine.Invocation, []error) {
	id, now := newInvocationID(), time.Now().UTC()
	invs, errs := make([]engine.Invocation, len(tasks)), make([]error, len(tasks))
	w := &waiter{asked: make(map[string]*asked, len(tasks)), ch: make(chan wire.InvokeResult, len(tasks))}
	index := make(map[string]int, len(tasks))
	for k, t := range tasks {
		invs[k] = engine.Invocation{ID: id, TaskID: recordAs, Device: t.Device, Function: call.Function, At: now}
		w.asked[t.Device], index[t.Device] = &asked{own: i.ownTopics(t.Device)}, k
	}
	i.mu.Lock()
	i.pending[id] = w
	i.mu.Unlock()
	defer func() {
		i.mu.Lock()
		delete(i.pending, id)
		i.mu.Unlock()
	}()
	waiting := 0
	for k, t := range tasks {
		if errs[k] = i.send(ctx, t, w.asked[t.Device].own, id, call); errs[k] == nil {
			waiting++
		}
	}
	i.await(ctx, w.ch, waiting, call.Timeout, index, invs, errs)
	for k := range invs {
		invs[k].TookMS = cmp.Or(invs[k].TookMS, float64(time.Since(now).Microseconds())/1000)
		if err := errs[k]; err == nil || errors.Is(err, domain.ErrUpstream) || errors.Is(err, domain.ErrTimeout) {
			i.record(invs[k])
		}
	}
	return invs, errs
}

// ownTopics reports whether device listens (and answers) on its own
// topics.
func (i *Invoker) ownTopics(device string) bool {
	if i.ports.Devices == nil {
		return false
	}
	dev, ok := i.ports.Devices.Get(device)
	return ok && dev.OwnTopics
}

func (i *Invoker) send(ctx context.Context, t engine.Task, own bool, id string, call engine.InvokeCall) error {
	req := wire.InvokeRequest{ID: t.ID, InvocationID: id, Inputs: call.Inputs, Env: call.Env, PropletID: t.Device,
		Function: call.Function, Stdin: call.Stdin, DeployWaitMS: deployWait(call.Timeout).Milliseconds()}
	if req.Inputs == nil {
		req.Inputs = wire.Strings{} // Propeller's manager sends a list
	}
	if err := i.ports.Sender.Notify(ctx, topic(wire.SuffixInvoke, t.Device, own), req); err != nil {
		return fmt.Errorf("%w: invoke %s: %w", domain.ErrUnavailable, t.ID, err)
	}
	return nil
}

// deployWait is how long a proplet still deploying the task may hold a
// call of timeout before answering "being deployed": half of it, so the
// answer comes in time, at most wire.MaxDeployWait.
func deployWait(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		timeout = engine.DefaultInvokeTimeout
	}
	return min(timeout/2, wire.MaxDeployWait)
}

// await takes n answers into invs and errs (by device, through index)
// until the timeout or ctx; the devices still silent then get
// domain.ErrTimeout (or ctx's error).
func (i *Invoker) await(ctx context.Context, ch chan wire.InvokeResult, n int, timeout time.Duration, index map[string]int, invs []engine.Invocation, errs []error) {
	if timeout <= 0 {
		timeout = engine.DefaultInvokeTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	done := make([]bool, len(invs))
	for ; n > 0; n-- {
		select {
		case r := <-ch:
			k := index[r.PropletID]
			done[k], errs[k] = true, answer(&invs[k], r)
		case <-timer.C:
			timedOut(invs, errs, done, timeout, nil)
			return
		case <-ctx.Done():
			timedOut(invs, errs, done, timeout, ctx.Err())
			return
		}
	}
}

// answer fills inv from the device's answer r; a failed run is an error.
func answer(inv *engine.Invocation, r wire.InvokeResult) error {
	inv.TookMS = float64(time.Since(inv.At).Microseconds()) / 1000
	if !r.Failed() {
		inv.Result = r.Text()
		return nil
	}
	inv.Error = string(r.Error)
	err := fmt.Errorf("%w: invocation %s of task %s failed on %s: %s", domain.ErrUpstream, inv.ID, inv.TaskID, r.PropletID, r.Error)
	switch {
	case r.Deploying():
		return fmt.Errorf("%w (%w, %w)", err, engine.ErrNotDeployed, engine.ErrDeploying)
	case r.NotDeployed():
		return fmt.Errorf("%w (%w)", err, engine.ErrNotDeployed)
	}
	return err
}

// timedOut marks every invocation sent and not answered (errs nil, not
// done) as timed out, or failed with cause when the caller went away.
func timedOut(invs []engine.Invocation, errs []error, done []bool, timeout time.Duration, cause error) {
	for k := range invs {
		if done[k] || errs[k] != nil {
			continue
		}
		if cause != nil {
			errs[k] = cause
			continue
		}
		invs[k].TimedOut, invs[k].Error = true, "timed out after "+timeout.String()
		errs[k] = fmt.Errorf("%w: invocation %s of task %s: no answer from %s within %s", domain.ErrTimeout, invs[k].ID, invs[k].TaskID, invs[k].Device, timeout)
	}
}

// record publishes the invocation's record without waiting for its ack;
// failures are counted (RecordErrors) and logged.
func (i *Invoker) record(inv engine.Invocation) {
	kept := inv
	if len(kept.Result) > engine.MaxInvocationResultKept {
		kept.Result = kept.Result[:engine.MaxInvocationResultKept]
	}
	b, err := json.Marshal(kept)
	if err == nil {
		var f jetstream.PubAckFuture
		f, err = i.js.PublishAsync(invocationSubject(inv.TaskID), b, jetstream.WithMsgID(inv.ID+"."+inv.Device))
		if err == nil {
			go i.settle(f, inv.ID)
			return
		}
	}
	i.recordFailed(inv.ID, err)
}

func (i *Invoker) settle(f jetstream.PubAckFuture, id string) {
	select {
	case <-f.Ok():
	case err := <-f.Err():
		i.recordFailed(id, err)
	}
}

func (i *Invoker) recordFailed(id string, err error) {
	i.RecordErrors.Add(1)
	i.log.Warn("invocation not recorded", "invocation_id", id, "err", err)
}

// Invocations returns the newest invocations of a task recorded, at most
// limit (MaxInvocationsKept), oldest first.
func (i *Invoker) Invocations(ctx context.Context, taskID string, limit int) ([]engine.Invocation, error) {
	cons, err := i.js.OrderedConsumer(ctx, InvocationStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{invocationSubject(taskID)}})
	if err != nil {
		return nil, fmt.Errorf("%w: invocations: %w", domain.ErrUnavailable, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: invocations: %w", domain.ErrUnavailable, err)
	}
	n := int(info.NumPending)
	out := make([]engine.Invocation, 0, n)
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("%w: invocations: %w", domain.ErrUnavailable, err)
		}
		got := 0
		for m := range batch.Messages() {
			var inv engine.Invocation
			if json.Unmarshal(m.Data(), &inv) == nil {
				out = append(out, inv)
			}
			got++
		}
		if got == 0 {
			break
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// newInvocationID is a random UUID (version 4), as Propeller's manager
// makes its invocation ids.
func newInvocationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
