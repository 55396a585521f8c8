package mqtt

import (
	"context"
	"fmt"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
)

// Latencies is told how long dispatching and results take (the metrics
// registry's histograms); nil observes nothing.
type Latencies interface {
	// ObserveDispatch: from task.scheduled stored to its start message
	// handed to the broker, the first time.
	ObserveDispatch(d time.Duration)
	// ObserveResult: from task.started stored to the task's result
	// stored (task.completed or task.failed), by outcome (completed,
	// failed): the turnaround of an attempt as the engine sees it.
	ObserveResult(outcome string, d time.Duration)
}

// observeDispatch observes the first send of an attempt's start; an
// adopted or resent one (no event time, or a resend) is not a dispatch.
func (d *Dispatcher) observeDispatch(j job) {
	if d.ports.Latency == nil || j.op != opEvent || j.env.Time.IsZero() {
		return
	}
	d.ports.Latency.ObserveDispatch(time.Since(j.env.Time))
}

// observeResult observes a task's end, from the time the read model says
// it started; a task not seen started (a lagging read model, a task that
// never ran) is not observed.
func (d *Dispatcher) observeResult(env events.Envelope) {
	if d.ports.Latency == nil {
		return
	}
	outcome := "completed"
	if env.Type == (events.TaskFailed{}).EventType() {
		outcome = "failed"
	}
	t, ok := d.ports.Tasks.Get(env.Aggregate.ID)
	if !ok || t.StartedAt.IsZero() || env.Time.Before(t.StartedAt) || t.State == engine.TaskScheduled {
		return
	}
	d.ports.Latency.ObserveResult(outcome, env.Time.Sub(t.StartedAt))
}

// InlineBytes is how many module bytes went inline in start messages.
func (d *Dispatcher) InlineBytes() uint64 { return d.inlineBytes.Load() }

// ConsumerLag is what a durable consumer of EDGE_IN has not settled yet.
type ConsumerLag struct {
	Consumer   string
	Pending    uint64 // stored, not delivered yet
	AckPending uint64 // delivered, not acked yet
}

// Lag reads the pending counts of the engine's durable consumers of
// EDGE_IN (EdgeConsumer, EdgeLivenessConsumer) from the server.
func (in *Inbound) Lag(ctx context.Context) ([]ConsumerLag, error) {
	var out []ConsumerLag
	for _, name := range []string{EdgeConsumer, EdgeLivenessConsumer} {
		cons, err := in.ports.JetStream.Consumer(ctx, EdgeStream, name)
		if err != nil {
			return out, fmt.Errorf("mqtt: consumer %s: %w", name, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return out, fmt.Errorf("mqtt: consumer %s: %w", name, err)
		}
		out = append(out, ConsumerLag{Consumer: name, Pending: info.NumPending, AckPending: uint64(info.NumAckPending)})
	}
	return out, nil
}
