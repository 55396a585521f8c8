package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// DefaultRetries is how often a command is decided again after a conflict.
const DefaultRetries = 50

// Handler loads an aggregate, decides, appends with the expected sequence
// and retries on conflict. It keeps the states it last wrote in a bounded
// cache; a stale cached state costs one conflict and a reload, never a
// wrong decision. A refusal is never decided on a state that may lag (a
// cached one, or one a replica of the stream answered): it is decided
// again on the state the stream leader confirms (events.Store's
// LoadLatest), and when the leader cannot be read the command fails with
// that error instead (Refusals counts these). A no-op decided on a cached
// state is decided again on the stored one if the aggregate moved on.
//
// A command to a quarantined aggregate, or to one whose stored events turn
// out not to be readable (which quarantines it), is refused with an
// *events.QuarantineError, a domain.ErrQuarantined.
type Handler struct {
	store      events.Store
	codec      *events.Codec
	clock      Clock
	ids        IDs
	quarantine *events.Quarantine
	tasks      *stateCache[engine.Task]
	devices    *stateCache[engine.Device]
	transfers  *stateCache[engine.Transfer]
	workflows  *stateCache[engine.Workflow]
	refusals   refusalStats
	versions   Versions // nil: a cached no-op is checked against the store
}

// Versions says the sequence of an aggregate's last event as a read model
// that follows its stream has folded it; ok is false when the model does
// not know the aggregate.
type Versions func(agg events.Aggregate) (seq uint64, ok bool)

// WithVersions has the handler check a no-op decided on a cached state
// against v (the read models) instead of asking the store: when the model
// has folded exactly the cached state's last event, the no-op stands.
// The model follows the stream a few milliseconds behind; a write of
// another replica in that moment is missed by this one no-op (the next
// command sees it, as a store that answers from a lagging replica would
// too). It saves the store a round trip per heartbeat of an alive device.
func WithVersions(v Versions) HandlerOption {
	return func(h *Handler) { h.versions = v }
}

// HandlerOption adjusts a Handler.
type HandlerOption func(*Handler)

// WithQuarantine shares q with the handler: it refuses commands to the
// aggregates q holds and records there the ones it finds unreadable.
// Without it the handler keeps a quarantine of its own.
func WithQuarantine(q *events.Quarantine) HandlerOption {
	return func(h *Handler) {
		if q != nil {
			h.quarantine = q
		}
	}
}

// deviceCacheSize holds a whole fleet of 10,000 (a device's state is
// about a kilobyte): every heartbeat is a command on its device, and one
// that misses the cache costs a load from the stream. With 4,096 a fleet
// of 10,000 missed on most heartbeats (a tenth of the server's CPU).
const deviceCacheSize = 16384

// taskCacheSize holds the tasks in flight on such a fleet, one each: a
// device's result, and its accept before it, is a command on a task the
// handler wrote when it scheduled it, and one that misses the cache costs
// a load. With 8,192, results of a fleet of 10,000 busy devices missed
// (BenchmarkInbound/results-cached).
const taskCacheSize = 16384

// NewHandler returns a command handler over store.
func NewHandler(store events.Store, codec *events.Codec, clock Clock, ids IDs, opts ...HandlerOption) *Handler {
	h := &Handler{
		store: store, codec: codec, clock: clock, ids: ids,
		quarantine: events.NewQuarantine(),
		tasks:      newStateCache[engine.Task](taskCacheSize),
		devices:    newStateCache[engine.Device](deviceCacheSize),
		transfers:  newStateCache[engine.Transfer](1024),
		workflows:  newStateCache[engine.Workflow](1024),
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Quarantine is the quarantine the handler refuses commands by.
func (h *Handler) Quarantine() *events.Quarantine { return h.quarantine }

// IDs returns the handler's id source (for new task ids).
func (h *Handler) IDs() IDs { return h.ids }

// Now returns the handler's clock reading.
func (h *Handler) Now() time.Time { return h.clock.Now() }

// Task executes a task command and returns the task's new state.
func (h *Handler) Task(ctx context.Context, cmd engine.TaskCommand) (engine.Task, error) {
	agg := events.TaskAggregate(cmd.TaskID())
	if err := agg.Validate(); err != nil {
		return engine.Task{}, fmt.Errorf("%w: %v", domain.ErrInvalid, err)
	}
	return execute(ctx, h, agg, h.tasks, func(t engine.Task) ([]events.Event, error) { return engine.DecideTask(t, cmd) })
}

// Device executes a device command and returns the device's new state.
func (h *Handler) Device(ctx context.Context, cmd engine.DeviceCommand) (engine.Device, error) {
	agg := events.DeviceAggregate(cmd.DeviceID())
	if err := agg.Validate(); err != nil {
		return engine.Device{}, fmt.Errorf("%w: %v", domain.ErrInvalid, err)
	}
	return execute(ctx, h, agg, h.devices, func(d engine.Device) ([]events.Event, error) { return engine.DecideDevice(d, cmd) })
}

// Workflow executes a workflow command and returns the workflow's new state.
func (h *Handler) Workflow(ctx context.Context, cmd engine.WorkflowCommand) (engine.Workflow, error) {
	agg := events.WorkflowAggregate(cmd.WorkflowID())
	if err := agg.Validate(); err != nil {
		return engine.Workflow{}, fmt.Errorf("%w: %v", domain.ErrInvalid, err)
	}
	return execute(ctx, h, agg, h.workflows, func(w engine.Workflow) ([]events.Event, error) { return engine.DecideWorkflow(w, cmd) })
}

// Transfer executes a module transfer command.
func (h *Handler) Transfer(ctx context.Context, cmd engine.TransferCommand) (engine.Transfer, error) {
	agg := events.Aggregate{Kind: events.KindChunk, ID: cmd.TransferID()}
	if err := agg.Validate(); err != nil {
		return engine.Transfer{}, fmt.Errorf("%w: %v", domain.ErrInvalid, err)
	}
	return execute(ctx, h, agg, h.transfers, func(t engine.Transfer) ([]events.Event, error) { return engine.DecideTransfer(t, cmd) })
}

// source is where execute reads the state it decides on.
type source int

const (
	fromCache  source = iota // the state this handler last wrote, else the store
	fromStore                // Load: in a cluster, possibly a replica that lags
	fromLeader               // LoadLatest: confirmed by the stream leader
)

// execute loads, decides and appends with the expected sequence, which
// checks every decision that writes. A decision that writes nothing is
// checked here: a refusal decided on a state that did not come from the
// stream leader is decided again on one that did (a cache or a replica
// that lags may miss what another replica wrote), and a no-op decided on
// a cached state is decided again if the aggregate has moved on.
func execute[S engine.Foldable[S]](ctx context.Context, h *Handler, agg events.Aggregate, c *stateCache[S], decide func(S) ([]events.Event, error)) (S, error) {
	var zero S
	src := fromCache
	for range DefaultRetries {
		if err := h.quarantine.Check(agg); err != nil {
			return zero, err
		}
		s, read, err := state(ctx, h, agg, c, src)
		if err != nil {
			if src == fromLeader {
				h.refusals.unconfirmed.Add(1)
			}
			return zero, h.unreadable(agg, err)
		}
		evs, err := decide(s)
		if read == fromLeader {
			h.refusals.count(err)
		}
		if err != nil || len(evs) == 0 {
			next, again, verr := h.recheck(ctx, agg, s.LastSeq(), read, err)
			if verr != nil {
				return zero, verr
			}
			if again {
				src = next
				continue
			}
			c.put(agg.ID, s)
			return s, err
		}
		envs, err := h.append(ctx, agg, s.LastSeq(), evs)
		if errors.Is(err, events.ErrConflict) {
			c.drop(agg.ID)
			src = fromCache
			continue
		}
		if err != nil {
			c.drop(agg.ID)
			return s, err
		}
		// Apply the events as stored (decoded from their JSON), so the
		// state returned is the one a replay computes.
		if s, err = engine.Fold(h.codec, s, envs); err != nil {
			c.drop(agg.ID)
			return s, h.unreadable(agg, err)
		}
		c.put(agg.ID, s)
		return s, nil
	}
	return zero, fmt.Errorf("%s: gave up after %d conflicts: %w", agg, DefaultRetries, events.ErrConflict)
}

// state reads agg's state from src, and tells where it came from: a
// cache miss reads the store.
func state[S engine.Foldable[S]](ctx context.Context, h *Handler, agg events.Aggregate, c *stateCache[S], src source) (S, source, error) {
	if src == fromCache {
		if s, ok := c.get(agg.ID); ok {
			return s, fromCache, nil
		}
		src = fromStore
	}
	load := h.store.Load
	if src == fromLeader {
		load = h.store.LoadLatest
	}
	var s S
	envs, err := load(ctx, agg)
	if err != nil {
		return s, src, err
	}
	s, err = engine.Fold(h.codec, s, envs)
	return s, src, err
}

// recheck tells whether a decision that writes nothing (refusal err, or
// a no-op) must be decided again, and on what: a refusal on the leader's
// state, a no-op on a cached state that is not the stored one on the
// store's.
func (h *Handler) recheck(ctx context.Context, agg events.Aggregate, seq uint64, read source, err error) (source, bool, error) {
	switch {
	case err != nil && read != fromLeader:
		return fromLeader, true, nil
	case err == nil && read == fromCache:
		if h.versions != nil {
			switch v, ok := h.versions(agg); {
			case ok && v == seq:
				return 0, false, nil // the model folded what the cache holds
			case ok && v > seq:
				return fromStore, true, nil // moved on: decide on the store's
			}
		}
		v, verr := h.store.Version(ctx, agg)
		if verr != nil {
			return 0, false, verr
		}
		return fromStore, v != seq, nil
	}
	return 0, false, nil
}

// unreadable quarantines agg when err says one of its stored messages
// cannot be read, and returns the refusal; other errors stand.
func (h *Handler) unreadable(agg events.Aggregate, err error) error {
	r, ok := events.Unreadable(err)
	if !ok {
		return err
	}
	h.quarantine.Add(r)
	if qerr := h.quarantine.Check(agg); qerr != nil {
		return qerr
	}
	return &events.QuarantineError{Record: r}
}

func (h *Handler) append(ctx context.Context, agg events.Aggregate, expected uint64, evs []events.Event) ([]events.Envelope, error) {
	meta := metaFrom(ctx, h.clock.Now())
	envs := make([]events.Envelope, len(evs))
	for i, ev := range evs {
		env, err := events.Wrap(agg, h.ids.New(), meta, ev)
		if err != nil {
			return nil, err
		}
		envs[i] = env
	}
	last, err := h.store.Append(ctx, agg, expected, envs...)
	if err != nil {
		return nil, err
	}
	for i := range envs {
		envs[i].Seq = last - uint64(len(envs)-1-i)
	}
	return envs, nil
}
