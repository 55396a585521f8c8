package mqtt

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/outbound"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// ModuleSource gives module bytes by digest.
type ModuleSource interface {
	Get(ctx context.Context, digest string) ([]byte, error)
}

// TaskReader is the read model the dispatcher looks tasks up in.
type TaskReader interface {
	Get(id string) (engine.Task, bool)
	Active() []engine.Task
	WaitFor(ctx context.Context, seq uint64) error
}

// Sender publishes manager messages on a topic suffix (an
// *outbound.Publisher).
type Sender interface {
	Publish(ctx context.Context, suffix string, v any) error
}

// DeviceReader is the read model of devices: it says which topics a device
// listens on.
type DeviceReader interface {
	Get(id string) (engine.Device, bool)
}

// SecretResolver opens the secrets a task's env refers to (the service's
// ResolveSecrets): their values by name. Its errors name a secret, never a
// value.
type SecretResolver interface {
	ResolveSecrets(ctx context.Context, names []string) (map[string]string, error)
}

// Quarantine says which tasks are quarantined and takes the task events
// the dispatcher cannot decode (an *events.Quarantine).
type Quarantine interface {
	Add(r events.Quarantined) bool
	Get(agg events.Aggregate) (events.Quarantined, bool)
}

// DispatcherPorts are what the dispatcher follows, reads and acts through.
type DispatcherPorts struct {
	Store    events.Store  // the TASKS stream it follows
	Codec    *events.Codec // decodes what it follows
	Tasks    TaskReader
	Commands Commands
	Modules  ModuleSource
	Sender   Sender
	Devices  DeviceReader // nil: every device listens on the shared topics
	// Resolver imports the module of a task that names only an image (an
	// OCI reference) before the start is sent, so registry errors fail the
	// task; nil leaves such images to the proplet.
	Resolver outbound.ModuleResolver
	// Secrets puts the values of the secrets a task's env refers to
	// (${secret:NAME}) into its start message, which then goes only to
	// the device's own topic; nil fails every task that refers to one.
	Secrets SecretResolver
	// Quarantine: nothing is sent for a quarantined task, and a task event
	// that does not decode quarantines its task; nil ends Run on such an
	// event.
	Quarantine Quarantine
	// Latency observes dispatch and result latencies; nil observes none.
	Latency Latencies
	// Replacer moves an attempt whose device did not accept its start
	// within AcceptTimeout to another device. With it, a start to a device
	// on its own topics is sent again until the device accepts it (the
	// accept, not the send, starts the attempt); nil: the send starts it.
	Replacer Replacer
	// Handled tells how far the engine has handled the device messages
	// stored in EDGE_IN (an *Inbound). With it, an attempt is replaced
	// only once every message stored when its accept timed out has been
	// handled: an accept held up in EDGE_IN (a leader election that
	// stalls the inbound's writes) is not taken for no accept, which would
	// run the task on two devices. nil: replaced at the timeout.
	Handled Handled
	// Shares says which tasks this replica dispatches: its share of the
	// work among engine replicas (an *leases.Leases). Nothing is sent, sent
	// again or replaced for a task outside it; when the share grows, the
	// scheduled tasks of the new part are sent. nil: every task.
	Shares Shares
}

// Shares is this replica's share of the tasks.
type Shares interface {
	Owns(key string) bool
	// Gained is signalled when the share has grown.
	Gained() <-chan struct{}
}

// Replacer ends an attempt never accepted by its device and places the
// task again (the service's ReplaceUndelivered).
type Replacer interface {
	ReplaceUndelivered(ctx context.Context, id string, attempt int, reason string) error
}

// Handled tells how far the device messages of EDGE_IN have been handled.
type Handled interface {
	// EdgeProgress returns the stream sequence up to which every device
	// message has been handled (the engine's work consumer's ack floor)
	// and the last sequence stored.
	EdgeProgress(ctx context.Context) (handled, stored uint64, err error)
}

// DispatcherConfig tunes the dispatcher.
type DispatcherConfig struct {
	Workers     int   // parallel dispatches; one task always goes to the same worker (default 8)
	InlineLimit int64 // largest module sent inline in the start message; larger ones go by chunks
	Retry       time.Duration
	// AcceptTimeout is how long a device on its own topics has to accept
	// a start before the task goes elsewhere (default 30 s). The start is
	// sent again meanwhile, after ResendAfter, then twice as long each
	// time (default 1 s).
	AcceptTimeout time.Duration
	ResendAfter   time.Duration
}

func (c *DispatcherConfig) setDefaults() {
	c.Workers = cmp.Or(max(c.Workers, 0), 8)
	c.Retry = cmp.Or(max(c.Retry, 0), time.Second)
	c.AcceptTimeout = cmp.Or(max(c.AcceptTimeout, 0), 30*time.Second)
	c.ResendAfter = cmp.Or(max(c.ResendAfter, 0), time.Second)
}

// Dispatcher is the process manager that turns task.scheduled into a start
// message (then MarkStarted) and task.stopped into a stop message.
type Dispatcher struct {
	ports DispatcherPorts
	cfg   DispatcherConfig
	log   *slog.Logger
	cache moduleCache

	mu      sync.Mutex
	sent    map[string]int // task id -> last attempt whose start was sent
	waiting map[string]*unaccepted
	marks   map[string]uint64 // replacements waiting for EDGE_IN to be handled up to here
	stops   map[string]*stopResend

	inlineBytes atomic.Uint64 // module bytes sent inline in starts
	seen        atomic.Uint64 // stream sequence of the last TASKS event Run looked at
}

// NewDispatcher wires a dispatcher.
func NewDispatcher(ports DispatcherPorts, cfg DispatcherConfig, log *slog.Logger) *Dispatcher {
	cfg.setDefaults()
	return &Dispatcher{ports: ports, cfg: cfg, log: log, cache: moduleCache{max: 64 << 20}}
}

type job struct {
	env events.Envelope
	ev  events.Event
	op  jobOp
}

// jobOp is what a job asks of its worker beyond following its event.
type jobOp int

const (
	opEvent   jobOp = iota // dispatch the event
	opResend               // send the attempt's start again: not accepted yet
	opReplace              // the accept timed out: place the task elsewhere
)

// Run dispatches tasks left scheduled by an earlier run, then follows the
// TASKS stream from `from` until ctx is done.
func (d *Dispatcher) Run(ctx context.Context, from uint64) error {
	queues := make([]chan job, d.cfg.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan job, 256)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queues[i] {
				d.dispatch(ctx, j)
			}
		}()
	}
	defer func() {
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}()
	route := func(j job) {
		h := fnv.New32a()
		h.Write([]byte(j.env.Aggregate.ID))
		select {
		case queues[h.Sum32()%uint32(len(queues))] <- j:
		case <-ctx.Done():
		}
	}
	if d.accepting() {
		wg.Go(func() { d.sweep(ctx, route) })
	}
	if d.ports.Shares == nil {
		d.adopt(route, opEvent)
	} else {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-d.ports.Shares.Gained():
					// Run passed by the events of the part gained while it
					// was another's (or while its lease ran out): adopt
					// finds them in the read model, once that has applied
					// every event Run has seen.
					if err := d.ports.Tasks.WaitFor(ctx, d.seen.Load()); err != nil {
						return
					}
					d.adopt(route, opResend)
				}
			}
		})
	}
	err := d.ports.Store.Subscribe(ctx, events.KindTask, from, func(env events.Envelope) error {
		d.seen.Store(max(d.seen.Load(), env.Seq)) // before owns: see the Gained case above
		if !d.owns(env.Aggregate.ID) {
			return nil
		}
		switch env.Type {
		case events.TaskCompleted{}.EventType(), events.TaskFailed{}.EventType():
			d.observeResult(env)
		case events.TaskScheduled{}.EventType(), events.TaskStopped{}.EventType():
			ev, err := d.ports.Codec.Decode(env)
			if err != nil {
				return d.hold(err)
			}
			route(job{env: env, ev: ev})
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// adopt sends the start of every scheduled task in this replica's share:
// at start those an earlier run left (op opEvent), and when the share grows
// those of the part gained (opResend: this process may have sent them
// before it lost that part, and must send them again all the same).
func (d *Dispatcher) adopt(route func(job), op jobOp) {
	for _, t := range d.ports.Tasks.Active() {
		if t.State == engine.TaskScheduled && d.owns(t.ID) && !d.quarantined(t.ID) {
			route(job{env: events.Envelope{Aggregate: events.TaskAggregate(t.ID), Seq: t.Seq}, ev: events.TaskScheduled{Device: t.Device, Attempt: t.Attempt}, op: op})
		}
	}
}

// owns reports whether task id is in this replica's share of the work.
func (d *Dispatcher) owns(id string) bool {
	return d.ports.Shares == nil || d.ports.Shares.Owns(id)
}

// quarantined reports whether task id is quarantined: its commands are
// refused, so nothing is sent for it.
func (d *Dispatcher) quarantined(id string) bool {
	if d.ports.Quarantine == nil {
		return false
	}
	_, held := d.ports.Quarantine.Get(events.TaskAggregate(id))
	return held
}

// hold quarantines the task of an event that does not decode, so Run goes
// on with the next; without a quarantine err ends Run.
func (d *Dispatcher) hold(err error) error {
	r, ok := events.Unreadable(err)
	if !ok || d.ports.Quarantine == nil {
		return err
	}
	d.ports.Quarantine.Add(r)
	return nil
}

func (d *Dispatcher) dispatch(ctx context.Context, j job) {
	for ctx.Err() == nil {
		if d.quarantined(j.env.Aggregate.ID) {
			return
		}
		err := d.try(ctx, j)
		if err == nil {
			return
		}
		d.log.Warn("dispatch failed; retrying", "task", j.env.Aggregate.ID, "event", j.env.Type, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(d.cfg.Retry):
		}
	}
}

func (d *Dispatcher) try(ctx context.Context, j job) error {
	id := j.env.Aggregate.ID
	if !d.owns(id) {
		return nil // another replica's now: it sends what is owed
	}
	if j.op == opReplace {
		ev := j.ev.(events.TaskScheduled)
		return d.replace(ctx, id, ev)
	}
	switch ev := j.ev.(type) {
	case events.TaskStopped:
		own, accepted := d.listener(ev.Device)
		if j.op == opResend {
			if t, ok := d.ports.Tasks.Get(id); !ok || t.State != engine.TaskStopped || t.Attempt != ev.Attempt {
				return nil // restarted or deleted since: the stop is done with
			}
		}
		req := wire.StopRequest{ID: id, PropletID: ev.Device}
		if own {
			req.Attempt = ev.Attempt
		}
		if err := d.ports.Sender.Publish(ctx, topic(wire.SuffixStop, ev.Device, own), req); err != nil {
			return err
		}
		if accepted && j.op != opResend {
			d.stopping(id, ev)
		}
		return nil
	case events.TaskScheduled:
		if err := d.ports.Tasks.WaitFor(ctx, j.env.Seq); err != nil {
			return err
		}
		t, ok := d.ports.Tasks.Get(id)
		if !ok || t.State != engine.TaskScheduled || t.Attempt != ev.Attempt || (j.op != opResend && d.wasSent(id, t.Attempt)) {
			return nil // deleted, stopped, rescheduled, accepted or sent already: nothing to send
		}
		own, accepted := d.listener(t.Device)
		req, err := d.startRequest(ctx, t, own)
		if errors.Is(err, errUndeliverable) || errors.Is(err, errSecrets) {
			_, ferr := d.ports.Commands.Task(ctx, engine.FailTask{ID: id, Attempt: t.Attempt, Reason: err.Error()})
			return ferr
		}
		if err != nil {
			return err
		}
		if err := d.ports.Sender.Publish(ctx, topic(wire.SuffixStart, t.Device, own), req); err != nil {
			return err
		}
		d.markSent(id, t.Attempt)
		d.inlineBytes.Add(uint64(len(req.File)))
		d.observeDispatch(j)
		if accepted {
			d.await(id, t.Device, t.Attempt, j.op == opResend)
			return nil // the device's accept starts the attempt
		}
		_, err = d.ports.Commands.Task(ctx, engine.MarkStarted{ID: id, Attempt: t.Attempt})
		return err
	}
	return nil
}

// topic is where a manager message for device goes: its own topic when it
// listens there (own: jetprop's proplet), else the shared one (Propeller's).
// One start reaches one device either way: Propeller's proplets ignore a
// start for another.
func topic(suffix, device string, own bool) string {
	if own {
		return wire.OwnTopic(suffix, device)
	}
	return suffix
}

// listener says how device takes manager messages: own when it listens
// on its own topics, accepted when a start to it counts only once it
// accepts it (it answers starts, and a Replacer is set).
func (d *Dispatcher) listener(device string) (own, accepted bool) {
	if d.ports.Devices == nil {
		return false, false
	}
	dev, ok := d.ports.Devices.Get(device)
	return ok && dev.OwnTopics, ok && dev.AnswersStarts() && d.accepting()
}

// wasSent reports whether this process already sent the attempt's start (the
// read model may not show MarkStarted yet when a duplicate job arrives).
func (d *Dispatcher) wasSent(id string, attempt int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sent[id] >= attempt
}

func (d *Dispatcher) markSent(id string, attempt int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sent == nil || len(d.sent) > 100_000 {
		d.sent = map[string]int{}
	}
	d.sent[id] = attempt
}

// errUndeliverable marks module problems that fail the task instead of being retried.
var errUndeliverable = errors.New("module cannot be delivered")

// errSecrets marks a task whose secrets cannot go in its start message: it
// fails instead of being retried.
var errSecrets = errors.New("secrets cannot be delivered")

// startRequest builds the start message of task t for its device, which
// listens on its own topics when own is true.
func (d *Dispatcher) startRequest(ctx context.Context, t engine.Task, own bool) (wire.StartRequest, error) {
	req := wire.StartRequest{
		ID: t.ID, Name: t.Name, State: engine.TaskScheduled.PropellerState(), ImageURL: t.ImageURL,
		Inputs: t.Inputs, CLIArgs: t.CLIArgs, Daemon: t.Daemon, Latent: t.Latent, PropletID: t.Device,
		Attempt: t.Attempt, TimeoutMS: t.TimeoutMS, MemoryMiB: t.MemoryMiB, Stdin: t.Stdin,
	}
	var err error
	if req.Env, err = d.env(ctx, t, own); err != nil {
		return req, err
	}
	if len(t.ParentResults) > 0 {
		pr, err := json.Marshal(t.ParentResults)
		if err != nil {
			return req, fmt.Errorf("%w: parent results: %v", errUndeliverable, err)
		}
		req.ParentResults = pr
	}
	digest, size := t.Module, t.ModuleSize
	if digest == "" && d.ports.Resolver != nil && !wire.IsHTTPURL(t.ImageURL) {
		var err error
		if digest, size, err = d.ports.Resolver.ResolveModule(ctx, t.ImageURL); err != nil {
			if ctx.Err() != nil {
				return req, err
			}
			return req, fmt.Errorf("%w: image %s: %v", errUndeliverable, t.ImageURL, err)
		}
	}
	if digest == "" {
		return req, nil // an http(s) URL: the proplet fetches it
	}
	req.Digest, req.Size = digest, size
	if d.cfg.InlineLimit > 0 && size > d.cfg.InlineLimit {
		// Too large to go inline: the proplet asks for it by digest on the
		// registry topics and gets it in chunks.
		req.ImageURL = digest
		return req, nil
	}
	b, err := d.cache.get(ctx, digest, d.ports.Modules)
	if errors.Is(err, domain.ErrModuleNotFound) {
		return req, fmt.Errorf("%w: %v", errUndeliverable, err)
	}
	if err != nil {
		return req, err
	}
	req.File, req.ImageURL = b, "" // the module itself: nothing for the proplet to fetch
	return req, nil
}

// env is the task's env as its start message carries it: with the values
// of the secrets it refers to put in, which happens here and nowhere else,
// and only for a device that listens on its own topics (on Propeller's
// shared topics every device reads every start). The task keeps the
// references; errors name secrets, never values.
func (d *Dispatcher) env(ctx context.Context, t engine.Task, own bool) (map[string]string, error) {
	names, err := engine.SecretRefs(t.Env)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", errSecrets, err)
	case len(names) == 0:
		return t.Env, nil
	case !own:
		return nil, fmt.Errorf("%w: env refers to secret %s, and proplet %s listens on Propeller's shared topics, where every device could read them; "+
			"a task with secrets runs only on a device that listens on its own topics (a jetprop proplet)", errSecrets, quoted(names), t.Device)
	case d.ports.Secrets == nil:
		return nil, fmt.Errorf("%w: env refers to secret %s, and this server resolves no secrets", errSecrets, quoted(names))
	}
	values, err := d.ports.Secrets.ResolveSecrets(ctx, names)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errSecrets, err)
	}
	return engine.ResolveSecrets(t.Env, values), nil
}

// quoted lists names quoted, comma separated.
func quoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// moduleCache keeps recently sent modules in memory, bounded in bytes.
type moduleCache struct {
	mu   sync.Mutex
	max  int64
	size int64
	m    map[string][]byte
}

func (c *moduleCache) get(ctx context.Context, digest string, src ModuleSource) ([]byte, error) {
	c.mu.Lock()
	b, ok := c.m[digest]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := src.Get(ctx, digest)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || c.size+int64(len(b)) > c.max {
		c.m, c.size = map[string][]byte{}, 0
	}
	c.m[digest] = b
	c.size += int64(len(b))
	return b, nil
}
