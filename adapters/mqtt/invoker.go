package mqtt

import (
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
// HTTP request hears its answer, matched by invocation id; the others drop
// it. Each invocation is recorded once answered or timed out, by one
// asynchronous publish to INVOCATIONS, not awaited by the caller.
type Invoker struct {
	ports  InvokerPorts
	js     jetstream.JetStream
	topics wire.Topics
	log    *slog.Logger
	subs   []*nats.Subscription

	mu      sync.Mutex
	pending map[string]chan wire.InvokeResult

	// Unmatched counts answers no call here waits for (another replica's,
	// or late); Malformed answers that do not decode; RecordErrors records
	// not stored.
	Unmatched, Malformed, RecordErrors atomic.Uint64
}

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
	i := &Invoker{ports: ports, js: js, topics: topics, log: log, pending: map[string]chan wire.InvokeResult{}}
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
		i.Malformed.Add(1)
		return
	}
	i.mu.Lock()
	ch := i.pending[r.InvocationID]
	i.mu.Unlock()
	if ch == nil {
		i.Unmatched.Add(1)
		return
	}
	select {
	case ch <- r:
	default: // answered already (a broadcast copy, a duplicate)
	}
}

// Invoke runs one invocation of t (Task.Invocable must hold) on its device
// and waits for the answer, call.Timeout (DefaultInvokeTimeout when zero)
// or ctx. A failed run is an error wrapping domain.ErrUpstream with the
// device's reason; no answer in time wraps domain.ErrTimeout. The
// invocation is recorded either way.
func (i *Invoker) Invoke(ctx context.Context, t engine.Task, call engine.InvokeCall) (engine.Invocation, error) {
	inv := engine.Invocation{ID: newInvocationID(), TaskID: t.ID, Device: t.Device, Function: call.Function, At: time.Now().UTC()}
	ch := make(chan wire.InvokeResult, 1)
	i.mu.Lock()
	i.pending[inv.ID] = ch
	i.mu.Unlock()
	defer func() {
		i.mu.Lock()
		delete(i.pending, inv.ID)
		i.mu.Unlock()
	}()
	err := i.send(ctx, t, inv.ID, call)
	if err == nil {
		err = i.await(ctx, ch, call.Timeout, &inv)
	}
	inv.TookMS = float64(time.Since(inv.At).Microseconds()) / 1000
	if err == nil || errors.Is(err, domain.ErrUpstream) || errors.Is(err, domain.ErrTimeout) {
		i.record(inv)
	}
	return inv, err
}

func (i *Invoker) send(ctx context.Context, t engine.Task, id string, call engine.InvokeCall) error {
	own := false
	if i.ports.Devices != nil {
		dev, ok := i.ports.Devices.Get(t.Device)
		own = ok && dev.OwnTopics
	}
	req := wire.InvokeRequest{ID: t.ID, InvocationID: id, Inputs: call.Inputs, Env: call.Env, PropletID: t.Device,
		Function: call.Function, Stdin: call.Stdin}
	if req.Inputs == nil {
		req.Inputs = wire.Strings{} // Propeller's manager sends a list
	}
	if err := i.ports.Sender.Notify(ctx, topic(wire.SuffixInvoke, t.Device, own), req); err != nil {
		return fmt.Errorf("%w: invoke %s: %w", domain.ErrUnavailable, t.ID, err)
	}
	return nil
}

func (i *Invoker) await(ctx context.Context, ch chan wire.InvokeResult, timeout time.Duration, inv *engine.Invocation) error {
	if timeout <= 0 {
		timeout = engine.DefaultInvokeTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		inv.Device = r.PropletID
		if r.Failed() {
			inv.Error = string(r.Error)
			err := fmt.Errorf("%w: invocation %s of task %s failed on %s: %s", domain.ErrUpstream, inv.ID, inv.TaskID, r.PropletID, r.Error)
			if r.NotDeployed() {
				err = fmt.Errorf("%w (%w)", err, engine.ErrNotDeployed)
			}
			return err
		}
		inv.Result = r.Text()
		return nil
	case <-timer.C:
		inv.TimedOut, inv.Error = true, "timed out after "+timeout.String()
		return fmt.Errorf("%w: invocation %s of task %s: no answer from %s within %s", domain.ErrTimeout, inv.ID, inv.TaskID, inv.Device, timeout)
	case <-ctx.Done():
		return ctx.Err()
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
		f, err = i.js.PublishAsync(invocationSubject(inv.TaskID), b, jetstream.WithMsgID(inv.ID))
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
