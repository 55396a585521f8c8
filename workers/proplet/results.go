package proplet

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/workers/journal"
)

// A result on the proplet's own topics is kept until the engine acks it
// (wire.ResultAck): the broker's PUBACK says the broker has it, not that
// the engine recorded it. The result is kept in the journal before it is
// first sent, so it survives a crash, and sent again at QoS 0 after
// ResultResend, then twice as long each time, at most resendMax, until
// the ack comes. One loop (resendLoop) sends them all: it wakes every
// tick, and takes the acks onMessage queues for it, since onMessage runs
// on paho's router goroutine and must not wait for the journal.

// resendMax is the longest wait between two copies of a result.
const resendMax = 2 * time.Minute

// ackQueue is how many acks may wait for resendLoop; one that finds the
// queue full is dropped, and the next copy of its result is acked again.
const ackQueue = 1024

// unacked are the results sent and not acked yet, by task id; their
// messages are in the journal.
type unacked struct {
	mu   sync.Mutex
	due  map[string]*resend
	acks chan wire.ResultAck
}

// resend is when to send a result again.
type resend struct {
	attempt int
	next    time.Time
	wait    time.Duration // after the next send
}

// acked reports whether the engine acks the results of an attempt: on the
// proplet's own topics, for the attempts its starts number (see answers).
func (p *Proplet) acked(attempt int) bool { return !p.cfg.SharedTopics && attempt > 0 }

// keepResult keeps a result in the journal until its ack, and schedules
// it to be sent again. A result the journal cannot keep is sent once.
func (p *Proplet) keepResult(taskID string, attempt int, msg []byte) {
	dropped, err := p.journal.KeepResult(taskID, attempt, msg)
	p.droppedResults(dropped)
	if err != nil {
		p.log.Error("result not kept in the journal: it is sent once, not again until acked", keyTask, taskID, keyErr, err)
		return
	}
	p.schedule(taskID, attempt, time.Now().Add(p.cfg.ResultResend))
}

// droppedResults logs the results dropped to stay within the bound: the
// engine never acked them, and they are not sent again.
func (p *Proplet) droppedResults(dropped []journal.Result) {
	for _, r := range dropped {
		p.log.Warn("unacked result dropped: more results wait for the engine's ack than the bound allows",
			keyTask, r.TaskID, keyAttempt, r.Attempt, keyBound, p.cfg.UnackedResults)
		p.stopResending(r.TaskID, r.Attempt)
	}
}

// stopResending stops sending a task's result again, unless what is due is of a
// newer attempt than the one given.
func (p *Proplet) stopResending(taskID string, attempt int) {
	p.unacked.mu.Lock()
	defer p.unacked.mu.Unlock()
	if e := p.unacked.due[taskID]; e != nil && e.attempt <= attempt {
		delete(p.unacked.due, taskID)
	}
}

func (p *Proplet) schedule(taskID string, attempt int, next time.Time) {
	p.unacked.mu.Lock()
	defer p.unacked.mu.Unlock()
	p.unacked.due[taskID] = &resend{attempt: attempt, next: next, wait: 2 * p.cfg.ResultResend}
}

// scheduleKept schedules the results a previous run kept and never had
// acked, to be sent again as soon as the proplet is connected.
func (p *Proplet) scheduleKept() {
	now := time.Now()
	for _, r := range p.journal.Results() {
		p.schedule(r.TaskID, r.Attempt, now)
	}
}

// onResultAck queues an ack on the proplet's own topic for resendLoop.
func (p *Proplet) onResultAck(topic string, payload []byte, device string) {
	a, err := wire.DecodeResultAck(payload)
	switch {
	case device != p.id:
		p.badMessage(topic, errUnexpectedTopic) // acks come on our own topic only
		return
	case err != nil:
		p.badMessage(topic, err)
		return
	}
	select {
	case p.unacked.acks <- a:
	default:
		p.log.Debug("result ack dropped: the queue is full; the result is sent again and acked again", keyTask, a.TaskID)
	}
}

// resendLoop takes acks and sends unacked results again until ctx is done.
func (p *Proplet) resendLoop(ctx context.Context) {
	tick := time.NewTicker(min(max(p.cfg.ResultResend/4, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-p.unacked.acks:
			p.resultAcked(a)
		case now := <-tick.C:
			for _, r := range p.dueResults(now) {
				p.resendResult(ctx, r)
			}
		}
	}
}

// resultAcked forgets a result the engine acked.
func (p *Proplet) resultAcked(a wire.ResultAck) {
	p.stopResending(a.TaskID, a.Attempt)
	dropped, err := p.journal.ResultAcked(a.TaskID, a.Attempt)
	if err != nil {
		p.log.Error("acked result not dropped from the journal: a restart sends it again", keyTask, a.TaskID, keyErr, err)
		return
	}
	if dropped {
		p.log.Debug("result acked", keyTask, a.TaskID, keyAttempt, a.Attempt)
	}
}

// dueResults returns the results to send again now, and schedules their
// next copy.
func (p *Proplet) dueResults(now time.Time) []journal.Result {
	p.unacked.mu.Lock()
	defer p.unacked.mu.Unlock()
	var out []journal.Result
	for id, e := range p.unacked.due {
		if now.Before(e.next) {
			continue
		}
		e.next, e.wait = now.Add(e.wait), min(2*e.wait, resendMax)
		out = append(out, journal.Result{TaskID: id, Attempt: e.attempt})
	}
	return out
}

// resendResult sends a kept result again at QoS 0: a copy that is lost is
// followed by the next one.
func (p *Proplet) resendResult(ctx context.Context, r journal.Result) {
	kept, ok := p.journal.Result(r.TaskID)
	if !ok || kept.Attempt != r.Attempt {
		p.stopResending(r.TaskID, r.Attempt) // acked, dropped or replaced meanwhile
		return
	}
	tok, err := p.send(ctx, wire.SuffixResults, 0, json.RawMessage(kept.Message))
	if err == nil {
		err = failedAlready(tok)
	}
	if err != nil {
		p.log.Debug("unacked result not sent again; trying later", keyTask, r.TaskID, keyErr, err)
		return
	}
	p.resent.Add(1)
	p.log.Debug("result sent again: the engine has not acked it", keyTask, r.TaskID, keyAttempt, r.Attempt)
}

// ResultsResent counts the copies of unacked results sent again.
func (p *Proplet) ResultsResent() uint64 { return p.resent.Load() }

// Unacked counts the results waiting for the engine's ack.
func (p *Proplet) Unacked() int {
	p.unacked.mu.Lock()
	defer p.unacked.mu.Unlock()
	return len(p.unacked.due)
}
