package proplet

import (
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
)

// errUnexpectedTopic: a message on a topic the proplet does not serve.
var errUnexpectedTopic = errors.New("proplet: unexpected topic")

// onMessage routes an inbound message. It runs on paho's router goroutine,
// so it only decodes and dispatches; tasks run in their own goroutines. The
// message is acknowledged unless the proplet is shutting down and did not
// take it, so the broker keeps it for the next session.
func (p *Proplet) onMessage(_ paho.Client, m paho.Message) {
	suffix, _ := p.topics.Suffix(m.Topic())
	shared, device := wire.SplitOwn(suffix)
	if device != "" && device != p.id {
		shared = "" // another device's topic: not ours to serve
	}
	ack := true
	switch shared {
	case wire.SuffixStart:
		ack = p.onStart(m.Topic(), m.Payload(), m.Duplicate())
	case wire.SuffixStop:
		p.onStop(m.Topic(), m.Payload())
	case wire.SuffixChunk:
		if err := p.downloads.onChunk(m.Payload()); err != nil {
			p.badMessage(m.Topic(), err)
		}
	default:
		p.badMessage(m.Topic(), errUnexpectedTopic)
	}
	if ack {
		m.Ack()
	}
}

// onStart takes a start addressed to us (or broadcast); it returns false
// when the proplet is shutting down and left the message for later. dup
// marks a redelivery by the broker.
func (p *Proplet) onStart(topic string, payload []byte, dup bool) bool {
	req, err := decodeStart(payload)
	if err != nil {
		p.badMessage(topic, err)
		return true
	}
	if !p.addressed(req.PropletID, req.Broadcast) {
		p.log.Debug("start for another proplet ignored", keyTask, req.ID, keyTarget, req.PropletID)
		return true
	}
	if dup && p.reportedInterrupted(req) {
		p.log.Info("redelivered start of a task reported interrupted ignored", keyTask, req.ID, keyAttempt, req.Attempt)
		return true
	}
	return p.accept(req)
}

// reportedInterrupted: the task was accepted by the previous run, which
// died before the broker had its acknowledgement, and this run reported it
// interrupted; running the same attempt again would give it two results.
func (p *Proplet) reportedInterrupted(req wire.StartRequest) bool {
	attempt, ok := p.interrupted[req.ID]
	return ok && attempt == req.Attempt
}

// decodeStart decodes a start leniently: only the id is required here, so
// that any other mistake is reported back to the manager as a failed result.
func decodeStart(b []byte) (wire.StartRequest, error) {
	var req wire.StartRequest
	if err := wire.Decode(b, &req); err != nil {
		return req, err
	}
	if req.ID == "" {
		return req, fmt.Errorf("%w: start without id", wire.ErrInvalid)
	}
	return req, nil
}

func (p *Proplet) addressed(target string, broadcast bool) bool {
	return broadcast || target == "" || target == p.id
}

// accept registers the task, journals it and starts it, unless it is
// already running. A task the journal cannot record is failed with that
// error rather than run without crash protection.
func (p *Proplet) accept(req wire.StartRequest) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	if _, running := p.tasks[req.ID]; running {
		p.log.Info("duplicate start ignored: task already running", keyTask, req.ID)
		return true
	}
	ctx, cancel := context.WithCancelCause(p.taskCtx)
	if p.early.take(req.ID, time.Now()) {
		p.log.Info("start after its stop: reporting it stopped", keyTask, req.ID)
		cancel(ErrStopped)
	}
	if err := p.journal.Accepted(req.ID, req.Attempt, journalStart(req)); err != nil {
		cancel(fmt.Errorf("proplet: %w", err))
	}
	t := &task{req: req, cancel: cancel}
	p.tasks[req.ID] = t
	p.wg.Go(func() { p.runTask(ctx, t) })
	return true
}

// onStop cancels a task running here. Propeller's proplets do not filter
// stops by proplet id; we ignore only stops addressed to another proplet.
func (p *Proplet) onStop(topic string, payload []byte) {
	req, err := wire.DecodeStop(payload)
	if err != nil {
		p.badMessage(topic, err)
		return
	}
	if !p.addressed(req.PropletID, req.Broadcast) {
		return
	}
	p.mu.Lock()
	t := p.tasks[req.ID]
	if t == nil {
		p.early.add(req.ID, time.Now())
	}
	p.mu.Unlock()
	if t == nil {
		p.log.Debug("stop for a task not running here (kept briefly in case its start follows)", keyTask, req.ID)
		return
	}
	p.log.Info("stopping task", keyTask, req.ID)
	t.cancel(ErrStopped)
}

// badMessage counts a malformed message and logs it once per topic (later
// ones at debug level), so a misbehaving sender cannot flood the log.
func (p *Proplet) badMessage(topic string, err error) {
	p.malformed.Add(1)
	if _, seen := p.warned.LoadOrStore(topic, struct{}{}); seen {
		p.log.Debug("malformed message dropped", keyTopic, topic, keyErr, err)
		return
	}
	p.log.Warn("malformed message dropped (further ones on this topic are logged at debug level)", keyTopic, topic, keyErr, err)
}
