package mqtt_test

// Hand-written fakes of the ports of Dispatcher and Inbound, for the unit
// tests that run without a nats-server. Every fake appends what it was asked
// to one recorder, so a test states the exact sequence of calls it expects.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// errModuleNotFound is the condition ModuleSource reports for a digest it
// does not hold.
var errModuleNotFound = domain.ErrModuleNotFound

// errTransient is an infrastructure error: retried, never a verdict.
var errTransient = errors.New("transient: broker unavailable")

// waitTimeout bounds every wait on a condition; it only matters when a test fails.
const waitTimeout = 10 * time.Second

// Calls that failed, as the recorder shows them.
type (
	failedStart struct{ ID string }
	failedGet   struct{ Digest string }
	failedCmd   struct{ Cmd any }
	seen        struct{ ID string }
	gone        struct{ ID string }
)

// recorder keeps the calls the fakes saw, in order, and wakes waiters.
type recorder struct {
	mu      sync.Mutex
	calls   []any
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(call any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) snapshot() ([]any, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls), r.changed
}

// waitFor waits until cond holds for the calls so far and returns them.
func (r *recorder) waitFor(t *testing.T, what string, cond func([]any) bool) []any {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		calls, changed := r.snapshot()
		if cond(calls) {
			return calls
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s; calls so far:\n%s", what, formatCalls(calls))
		}
	}
}

func formatCalls(calls []any) string {
	var b strings.Builder
	for i, c := range calls {
		fmt.Fprintf(&b, "  %d: %T %+v\n", i, c, c)
	}
	if b.Len() == 0 {
		return "  (none)\n"
	}
	return b.String()
}

// failures is a countdown of calls to fail; zero: none.
type failures struct {
	mu sync.Mutex
	n  int
}

func (f *failures) next() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		return false
	}
	f.n--
	return true
}

// fakeSender is the Sender port: it records the messages it was given.
type fakeSender struct {
	rec   *recorder
	fails failures // starts to fail with errTransient before the first success

	mu     sync.Mutex
	topics []string // the suffix of every message sent, in order
}

var _ mqtt.Sender = (*fakeSender)(nil)

func (s *fakeSender) Publish(_ context.Context, suffix string, v any) error {
	if req, ok := v.(wire.StartRequest); ok && s.fails.next() {
		s.rec.add(failedStart{req.ID})
		return errTransient
	}
	s.mu.Lock()
	s.topics = append(s.topics, suffix)
	s.mu.Unlock()
	s.rec.add(v)
	return nil
}

func (s *fakeSender) sentOn() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.topics)
}

// fakeCommands is the Commands port: it records every command and answers
// with err (nil: success), after failing the first `fails` with errTransient.
type fakeCommands struct {
	rec   *recorder
	err   error
	fails failures
}

var _ mqtt.Commands = (*fakeCommands)(nil)

func (c *fakeCommands) Task(_ context.Context, cmd engine.TaskCommand) (engine.Task, error) {
	return engine.Task{}, c.answer(cmd)
}

func (c *fakeCommands) Device(_ context.Context, cmd engine.DeviceCommand) (engine.Device, error) {
	return engine.Device{}, c.answer(cmd)
}

func (c *fakeCommands) answer(cmd any) error {
	if c.fails.next() {
		c.rec.add(failedCmd{cmd})
		return errTransient
	}
	c.rec.add(cmd)
	return c.err
}

// fakeTasks is the TaskReader port: a read model the test sets. WaitFor
// blocks until the test has applied the sequence, as a projection does.
type fakeTasks struct {
	mu      sync.Mutex
	byID    map[string]engine.Task
	applied uint64
	changed chan struct{}
	waited  []uint64
	active  chan struct{} // closed by the first Active call
	once    sync.Once
}

var _ mqtt.TaskReader = (*fakeTasks)(nil)

func newFakeTasks() *fakeTasks {
	return &fakeTasks{byID: map[string]engine.Task{}, changed: make(chan struct{}), active: make(chan struct{})}
}

// put applies t as of t.Seq.
func (f *fakeTasks) put(t engine.Task) { f.apply(t.Seq, func() { f.byID[t.ID] = t }) }

// remove applies the deletion of id at seq (a projection forgets deleted tasks).
func (f *fakeTasks) remove(id string, seq uint64) { f.apply(seq, func() { delete(f.byID, id) }) }

func (f *fakeTasks) apply(seq uint64, change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
	f.applied = max(f.applied, seq)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeTasks) Get(id string) (engine.Task, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.byID[id]
	return t, ok
}

func (f *fakeTasks) Active() []engine.Task {
	defer f.once.Do(func() { close(f.active) })
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.Task
	for _, t := range f.byID {
		if t.State.Active() {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b engine.Task) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (f *fakeTasks) WaitFor(ctx context.Context, seq uint64) error {
	for {
		f.mu.Lock()
		f.waited = append(f.waited, seq)
		done, changed := f.applied >= seq, f.changed
		f.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

func (f *fakeTasks) waitedFor(seq uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.waited, seq)
}

// fakeModules is the ModuleSource port: modules by digest.
type fakeModules struct {
	rec   *recorder
	mods  map[string][]byte
	fails failures // Get calls to fail with errTransient first
}

var _ mqtt.ModuleSource = (*fakeModules)(nil)

func (m *fakeModules) Get(_ context.Context, digest string) ([]byte, error) {
	if m.fails.next() {
		m.rec.add(failedGet{digest})
		return nil, errTransient
	}
	b, ok := m.mods[digest]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errModuleNotFound, digest)
	}
	return b, nil
}

// fakeResolver is the ModuleResolver port: image references it knows, and
// a registry error for any other.
type fakeResolver map[string]resolved

type resolved struct {
	digest string
	size   int64
}

var _ outbound.ModuleResolver = fakeResolver(nil)

func (r fakeResolver) ResolveModule(_ context.Context, ref string) (string, int64, error) {
	m, ok := r[ref]
	if !ok {
		return "", 0, fmt.Errorf("oci: %s: manifest unknown", ref)
	}
	return m.digest, m.size, nil
}

// fakeSeer is the Seer port.
type fakeSeer struct{ rec *recorder }

var _ mqtt.Seer = fakeSeer{}

func (s fakeSeer) Seen(id string) { s.rec.add(seen{id}) }
func (s fakeSeer) Gone(id string) { s.rec.add(gone{id}) }

// fakeJetStream is the EdgeJetStream port: it records what Inbound asked
// for and hands Run's message handlers to the test through handlers.
type fakeJetStream struct {
	streamErr, lookupErr, consumerErr, resetErr, consumeErr error
	ackFloor                                                map[string]uint64 // consumer -> its ack floor

	mu        sync.Mutex
	stream    jetstream.StreamConfig
	consumers map[string]jetstream.ConsumerConfig
	steps     []string // the calls in order
	handlers  chan namedHandler
}

// namedHandler is the message handler Run gave one consumer.
type namedHandler struct {
	consumer string
	handle   jetstream.MessageHandler
}

var _ mqtt.EdgeJetStream = (*fakeJetStream)(nil)

func newFakeJetStream() *fakeJetStream {
	return &fakeJetStream{consumers: map[string]jetstream.ConsumerConfig{}, handlers: make(chan namedHandler, 2)}
}

func (js *fakeJetStream) step(s string) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.steps = append(js.steps, s)
}

func (js *fakeJetStream) consumer(name string) jetstream.ConsumerConfig {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.consumers[name]
}

func (js *fakeJetStream) CreateOrUpdateStream(_ context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	js.step("stream " + cfg.Name)
	js.mu.Lock()
	defer js.mu.Unlock()
	js.stream = cfg
	return nil, js.streamErr // Inbound does not use the stream handle
}

func (js *fakeJetStream) Consumer(_ context.Context, stream, name string) (jetstream.Consumer, error) {
	js.step("lookup " + stream + "/" + name)
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.lookupErr != nil {
		return nil, js.lookupErr
	}
	if _, ok := js.consumers[name]; !ok {
		return nil, jetstream.ErrConsumerNotFound
	}
	return fakeConsumer{js, name}, nil
}

func (js *fakeJetStream) CreateOrUpdateConsumer(_ context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	js.step("consumer " + stream + "/" + cfg.Durable)
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.consumerErr != nil {
		return nil, js.consumerErr
	}
	js.consumers[cfg.Durable] = cfg
	return fakeConsumer{js, cfg.Durable}, nil
}

func (js *fakeJetStream) ResetConsumer(_ context.Context, stream, consumer string) (*jetstream.ConsumerResetResponse, error) {
	js.step("reset " + stream + "/" + consumer)
	return &jetstream.ConsumerResetResponse{}, js.resetErr
}

// fakeConsumer implements Consume and CachedInfo; any other call panics,
// which would show that Inbound started using it.
type fakeConsumer struct {
	js   *fakeJetStream
	name string
}

func (c fakeConsumer) Consume(h jetstream.MessageHandler, _ ...jetstream.PullConsumeOpt) (jetstream.ConsumeContext, error) {
	c.js.step("consume " + c.name)
	if c.js.consumeErr != nil {
		return nil, c.js.consumeErr
	}
	c.js.handlers <- namedHandler{consumer: c.name, handle: h}
	return &fakeConsumeContext{js: c.js, name: c.name, drained: make(chan struct{})}, nil
}

func (c fakeConsumer) CachedInfo() *jetstream.ConsumerInfo {
	c.js.mu.Lock()
	defer c.js.mu.Unlock()
	info := &jetstream.ConsumerInfo{Stream: mqtt.EdgeStream, Name: c.name, Config: c.js.consumers[c.name]}
	info.AckFloor.Stream = c.js.ackFloor[c.name]
	return info
}

func (fakeConsumer) Fetch(int, ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	panic("unexpected Fetch")
}
func (fakeConsumer) FetchBytes(int, ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	panic("unexpected FetchBytes")
}
func (fakeConsumer) FetchNoWait(int) (jetstream.MessageBatch, error) { panic("unexpected FetchNoWait") }
func (fakeConsumer) Messages(...jetstream.PullMessagesOpt) (jetstream.MessagesContext, error) {
	panic("unexpected Messages")
}
func (fakeConsumer) Next(...jetstream.FetchOpt) (jetstream.Msg, error) { panic("unexpected Next") }
func (fakeConsumer) Info(context.Context) (*jetstream.ConsumerInfo, error) {
	panic("unexpected Info")
}

// fakeConsumeContext closes at once when drained.
type fakeConsumeContext struct {
	js      *fakeJetStream
	name    string
	once    sync.Once
	drained chan struct{}
}

func (c *fakeConsumeContext) Stop() { c.Drain() }
func (c *fakeConsumeContext) Drain() {
	c.once.Do(func() { c.js.step("drain " + c.name); close(c.drained) })
}
func (c *fakeConsumeContext) Closed() <-chan struct{} { return c.drained }

// fakeMsg is one EDGE_IN message; it records how it was settled.
type fakeMsg struct {
	subject string
	data    []byte
	seq     uint64

	mu      sync.Mutex
	settled []string      // "ack", "nak 1s", ...
	done    chan struct{} // closed when first settled
}

var _ jetstream.Msg = (*fakeMsg)(nil)

func newFakeMsg(topic string, data string, seq uint64) *fakeMsg {
	return &fakeMsg{subject: wire.Subject(topic), data: []byte(data), seq: seq, done: make(chan struct{})}
}

func (m *fakeMsg) settle(how string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settled = append(m.settled, how)
	if len(m.settled) == 1 {
		close(m.done)
	}
	return nil
}

// waitSettled waits until Inbound's worker has settled m.
func (m *fakeMsg) waitSettled(t *testing.T) {
	t.Helper()
	select {
	case <-m.done:
	case <-time.After(waitTimeout):
		t.Fatalf("message %d on %s was not settled", m.seq, m.subject)
	}
}

func (m *fakeMsg) outcome() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.settled)
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.seq, Consumer: m.seq}, Stream: mqtt.EdgeStream}, nil
}
func (m *fakeMsg) Data() []byte                       { return m.data }
func (m *fakeMsg) Headers() nats.Header               { return nil }
func (m *fakeMsg) Subject() string                    { return m.subject }
func (m *fakeMsg) Reply() string                      { return "" }
func (m *fakeMsg) Ack() error                         { return m.settle("ack") }
func (m *fakeMsg) DoubleAck(context.Context) error    { return m.settle("double ack") }
func (m *fakeMsg) Nak() error                         { return m.settle("nak") }
func (m *fakeMsg) NakWithDelay(d time.Duration) error { return m.settle("nak " + d.String()) }
func (m *fakeMsg) InProgress() error                  { return m.settle("in progress") }
func (m *fakeMsg) Term() error                        { return m.settle("term") }
func (m *fakeMsg) TermWithReason(reason string) error { return m.settle("term: " + reason) }
