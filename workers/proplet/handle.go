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
	case wire.SuffixInvoke:
		p.onInvoke(m.Topic(), m.Payload())
	case wire.SuffixResultAck:
		p.onResultAck(m.Topic(), m.Payload(), device)
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
	if dup && !p.answers(req) && p.reportedInterrupted(req) {
		p.log.Info("redelivered start of a task reported interrupted ignored", keyTask, req.ID, keyAttempt, req.Attempt)
		return true
	}
	return p.accept(req)
}

// answers reports whether a start is answered with an accept and judged
// by its attempt (see admit): on the proplet's own topics, where jetprop's
// engine sends it, which numbers attempts from 1. Starts on the shared
// topics (Propeller's manager, which sends no attempt) get no accept and
// are delivered by the broker at the configured QoS.
func (p *Proplet) answers(req wire.StartRequest) bool {
	return !p.cfg.SharedTopics && req.Attempt > 0
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
// already running (or, for a start it answers, unless admit says no). A
// task the journal cannot record is failed with that error rather than run
// without crash protection.
func (p *Proplet) accept(req wire.StartRequest) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	answer := p.answers(req)
	if answer && !p.admit(req) {
		return true
	}
	if _, running := p.tasks[req.ID]; running && !answer {
		p.log.Info("duplicate start ignored: task already running", keyTask, req.ID)
		return true
	}
	ctx, cancel := context.WithCancelCause(p.taskCtx)
	if p.early.take(req.ID, time.Now()) {
		p.log.Info("start after its stop: reporting it stopped", keyTask, req.ID)
		cancel(ErrStopped)
	}
	journaled := true
	if err := p.journal.Accepted(req.ID, req.Attempt, journalStart(req)); err != nil {
		cancel(fmt.Errorf("proplet: %w", err))
		journaled = false
	}
	t := &task{req: req, cancel: cancel, answer: answer && journaled, started: time.Now(), settled: make(chan struct{})}
	p.tasks[req.ID] = t
	p.wg.Go(func() { p.runTask(ctx, t) })
	return true
}

// admit judges a start it answers by its attempt against the newest one
// running, ending or done here, and reports whether to run it. An older
// attempt is ignored (the engine has moved on; a start of it is a late
// copy). The same attempt is accepted again and not run: the engine sends
// a start until it hears the accept, and the first accept may have been
// lost. A newer attempt runs, stopping an older one still running (the
// engine gave up on that one). Called with p.mu held.
func (p *Proplet) admit(req wire.StartRequest) bool {
	newest, known := p.newest(req.ID)
	switch {
	case known && req.Attempt < newest:
		p.log.Debug("start of an older attempt ignored", keyTask, req.ID, keyAttempt, req.Attempt, keyNewest, newest)
		return false
	case known && req.Attempt == newest:
		p.log.Info("start of an attempt running or run here: accepted again", keyTask, req.ID, keyAttempt, req.Attempt)
		p.wg.Go(func() { p.sendAccepted(req.ID, req.Attempt) })
		return false
	}
	if old := p.tasks[req.ID]; old != nil {
		p.log.Info("newer attempt: stopping the older one", keyTask, req.ID, keyAttempt, req.Attempt, keyOlder, old.req.Attempt)
		old.cancel(fmt.Errorf("%w: attempt %d", ErrSuperseded, req.Attempt))
	}
	return true
}

// newest is the newest attempt of a task running, ending (its result on
// the way) or done here. Called with p.mu held.
func (p *Proplet) newest(taskID string) (attempt int, known bool) {
	attempt, known = p.journal.Done(taskID)
	if a, ok := p.ending[taskID]; ok && (!known || a > attempt) {
		attempt, known = a, true
	}
	if t := p.tasks[taskID]; t != nil && (!known || t.req.Attempt > attempt) {
		attempt, known = t.req.Attempt, true
	}
	return attempt, known
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
	t, ended := p.tasks[req.ID], false
	if t == nil {
		ended = p.ended(req.ID)
	}
	if t == nil && !ended {
		p.early.add(req.ID, time.Now())
	}
	p.mu.Unlock()
	switch {
	case ended:
		p.log.Debug("stop for a task that ended here ignored", keyTask, req.ID)
		return
	case t == nil:
		p.log.Debug("stop for a task not running here (kept briefly in case its start follows)", keyTask, req.ID)
		return
	case req.Attempt > 0 && req.Attempt != t.req.Attempt:
		p.log.Debug("stop for another attempt ignored", keyTask, req.ID, keyAttempt, req.Attempt)
		return
	}
	p.log.Info("stopping task", keyTask, req.ID)
	t.cancel(ErrStopped)
}

// ended reports, on the proplet's own topics, whether a task that is not
// running has run here. A stop for it is late, not early: the engine may
// send a stop more than once (it travels at QoS 0), and a copy must not
// stop the next attempt. Called with p.mu held.
func (p *Proplet) ended(taskID string) bool {
	if p.cfg.SharedTopics {
		return false
	}
	_, known := p.newest(taskID)
	return known
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
