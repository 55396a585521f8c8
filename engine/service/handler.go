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
// wrong decision (a refusal or no-op decided on a cached state is decided
// again on the stored one).
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

// NewHandler returns a command handler over store.
func NewHandler(store events.Store, codec *events.Codec, clock Clock, ids IDs, opts ...HandlerOption) *Handler {
	h := &Handler{
		store: store, codec: codec, clock: clock, ids: ids,
		quarantine: events.NewQuarantine(),
		tasks:      newStateCache[engine.Task](8192),
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

func execute[S engine.Foldable[S]](ctx context.Context, h *Handler, agg events.Aggregate, c *stateCache[S], decide func(S) ([]events.Event, error)) (S, error) {
	var zero S
	reload := false
	for range DefaultRetries {
		if err := h.quarantine.Check(agg); err != nil {
			return zero, err
		}
		s, cached := c.get(agg.ID)
		if !cached || reload {
			var err error
			if s, err = load[S](ctx, h, agg); err != nil {
				return zero, h.unreadable(agg, err)
			}
			cached = false
		}
		evs, err := decide(s)
		if cached && (err != nil || len(evs) == 0) {
			// Only an append is checked against the store: confirm a
			// refusal or a no-op decided on a cached state, which another
			// writer may have moved on.
			v, verr := h.store.Version(ctx, agg)
			if verr != nil {
				return zero, verr
			}
			if v != s.LastSeq() {
				reload = true
				continue
			}
		}
		if err != nil || len(evs) == 0 {
			c.put(agg.ID, s)
			return s, err
		}
		envs, err := h.append(ctx, agg, s.LastSeq(), evs)
		if errors.Is(err, events.ErrConflict) {
			c.drop(agg.ID)
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

func load[S engine.Foldable[S]](ctx context.Context, h *Handler, agg events.Aggregate) (S, error) {
	var s S
	envs, err := h.store.Load(ctx, agg)
	if err != nil {
		return s, err
	}
	return engine.Fold(h.codec, s, envs)
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
