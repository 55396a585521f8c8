package proplet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/workers/runtime"
)

// resultMessage is wire.Result as a proplet sends it: error is null on
// success (wire.Result would send "").
type resultMessage struct {
	TaskID    string          `json:"task_id"`
	PropletID string          `json:"proplet_id"`
	Results   json.RawMessage `json:"results"`
	Error     *string         `json:"error"`
	Attempt   int             `json:"attempt,omitempty"`
	// Interrupted: a restart or a shutdown of the proplet cut the task
	// short (errRestarted, ErrShutdown); the engine tries it again.
	Interrupted bool `json:"interrupted,omitempty"`
}

// runTask runs one task to its end and publishes the result. The task
// leaves the running set before its result goes out, so a manager that
// starts the same id again once it has the result is not ignored.
func (p *Proplet) runTask(ctx context.Context, t *task) {
	start := time.Now()
	if t.answer {
		p.sendAccepted(t.req.ID, t.req.Attempt)
	}
	p.log.Info("task started", keyTask, t.req.ID, keyFunction, t.req.Name, keyDaemon, t.req.Daemon, keyAttempt, t.req.Attempt)
	var out string
	var err error
	if ctx.Err() == nil { // not stopped before it began
		out, err = p.execute(ctx, t)
	}
	t.settleNow()
	if ctx.Err() != nil {
		err = context.Cause(ctx) // stopped or shutting down, whatever the guest said
	}
	p.forget(t)
	p.countEnd(time.Since(start), err)
	p.log.Info("task ended", keyTask, t.req.ID, keyTook, time.Since(start), keyErr, logError(err))
	if p.cfg.SharedTopics && errors.Is(err, ErrStopped) {
		p.stoppedQuietly(t.req)
		return
	}
	p.publishResult(t.req, out, err)
}

// stoppedQuietly ends a task stopped on Propeller's shared topics without
// a result, as Propeller's proplet does: its manager would record the
// task failed, fail the rest of its job and run a workflow's run_if
// "failure" steps. jetprop's engine records a stop when it sends it, so it
// needs no result either. On the proplet's own topics the result "stopped"
// is sent, kept and acked like any other: it tells the engine the attempt
// is over on the device.
func (p *Proplet) stoppedQuietly(req wire.StartRequest) {
	if err := p.journal.Finished(req.ID, req.Attempt); err != nil {
		p.log.Error("task not finished in the journal: a restart will report it interrupted", keyTask, req.ID, keyErr, err)
	}
	p.resultStored(req)
}

// forget removes a finished task from the running set. An answered task
// is ending until its result is stored (see newest), so that a start of
// the same attempt sent again meanwhile is accepted again, not run.
func (p *Proplet) forget(t *task) {
	p.mu.Lock()
	if p.tasks[t.req.ID] == t {
		delete(p.tasks, t.req.ID)
	}
	if t.answer {
		p.ending[t.req.ID] = max(p.ending[t.req.ID], t.req.Attempt)
	}
	p.mu.Unlock()
	t.cancel(nil)
}

// resultStored ends an answered task's ending: the journal has it done,
// or its result could not be stored (a start sent again runs it again).
func (p *Proplet) resultStored(req wire.StartRequest) {
	p.mu.Lock()
	if a, ok := p.ending[req.ID]; ok && a == req.Attempt {
		delete(p.ending, req.ID)
	}
	p.mu.Unlock()
}

func (p *Proplet) execute(ctx context.Context, t *task) (string, error) {
	req := t.req
	if req.Latent {
		return p.deploy(ctx, t)
	}
	if err := checkLimits(req); err != nil {
		return "", err
	}
	module, digest, err := p.module(ctx, req)
	if err != nil {
		return "", err
	}
	return p.rt.Run(ctx, runtime.Job{
		Digest:           digest,
		Module:           module,
		Function:         req.Name,
		Inputs:           req.Inputs,
		Env:              req.Env,
		Args:             req.CLIArgs,
		Stdin:            req.Stdin,
		Timeout:          p.timeout(req),
		MemoryLimitPages: p.memoryPages(req),
	})
}

// module returns the inline file, or fetches image_url: http(s) directly,
// anything else from the module cache or over the registry topics. digest
// is the hex sha256 the runtime's compile cache is keyed by, when the
// module was verified against it ("" lets the runtime hash the module).
func (p *Proplet) module(ctx context.Context, req wire.StartRequest) (module []byte, digest string, err error) {
	switch {
	case len(req.File) > 0:
		return req.File, "", nil
	case req.ImageURL == "":
		return nil, "", ErrNoModule
	case wire.IsHTTPURL(req.ImageURL):
		module, err = p.http.Fetch(ctx, req.ImageURL)
		return module, "", err
	}
	d, module, err := p.downloads.fetch(ctx, moduleRef{appName: req.ImageURL, digest: req.Digest, size: req.Size, taskID: req.ID})
	if err != nil {
		return nil, "", err
	}
	return module, domain.DigestHex(d), nil
}

// maxTimeoutMS is the largest timeout_ms a time.Duration holds.
const maxTimeoutMS = math.MaxInt64 / int64(time.Millisecond)

// checkLimits is the last line behind the engine's checks at create (a
// start from another manager, or a hand-made one, may carry anything): a
// memory limit above wasm32's maximum is refused, not lowered, and a
// timeout too large to count is refused rather than overflowing into none.
func checkLimits(req wire.StartRequest) error {
	switch {
	case req.MemoryMiB > MaxMemoryMiB:
		return fmt.Errorf("%w: %w: memory_mib %d is above wasm32's maximum of %d MiB",
			ErrBadLimits, runtime.ErrMemoryLimit, req.MemoryMiB, MaxMemoryMiB)
	case req.TimeoutMS > maxTimeoutMS:
		return fmt.Errorf("%w: timeout_ms %d is too large to count", ErrBadLimits, req.TimeoutMS)
	}
	return nil
}

// timeout: timeout_ms when given; daemons have none; others the default.
func (p *Proplet) timeout(req wire.StartRequest) time.Duration {
	switch {
	case req.TimeoutMS > 0:
		return time.Duration(req.TimeoutMS) * time.Millisecond
	case req.Daemon:
		return 0
	default:
		return p.cfg.DefaultTimeout
	}
}

func (p *Proplet) memoryPages(req wire.StartRequest) uint32 {
	if req.MemoryMiB > 0 {
		return mibToPages(req.MemoryMiB)
	}
	return mibToPages(p.cfg.DefaultMemoryMiB)
}

// publishResult sends the result at QoS >= 1 and, once paho holds it in
// the session store (a crash from then on resends it), finishes the task in
// the journal. It waits for the broker until the proplet shuts down (plus
// a grace period); an unconfirmed result stays in the session store and is
// resent after a reconnect or restart.
func (p *Proplet) publishResult(req wire.StartRequest, out string, err error) {
	msg := p.result(req.ID, req.Attempt, out, err)
	if p.answers(req) {
		if b, err := json.Marshal(msg); err == nil {
			p.keepResult(req.ID, req.Attempt, b)
		}
	}
	tok, err := p.send(p.pubCtx, wire.SuffixResults, p.resultQoS(), msg)
	if err == nil && stored(tok) {
		if err := p.journal.Finished(req.ID, req.Attempt); err != nil {
			p.log.Error("task not finished in the journal: a restart will report it interrupted", keyTask, req.ID, keyErr, err)
		}
		p.log.Debug("result stored", keyTask, req.ID)
	}
	p.resultStored(req)
	if err == nil {
		err = wait(p.pubCtx, tok)
	}
	if err != nil {
		p.log.Error("result not confirmed by the broker", keyTask, req.ID, keyErr, err)
	}
}

// result is the result message of a task. Its text (the output, or the
// error's) is cut with a marker to fit MaxResultBytes encoded, so the
// engine never drops it as too large.
func (p *Proplet) result(taskID string, attempt int, out string, err error) resultMessage {
	msg := resultMessage{TaskID: taskID, PropletID: p.id, Attempt: attempt}
	if err != nil {
		text := fitText(err.Error(), MaxResultBytes)
		msg.Error, msg.Results = &text, json.RawMessage(`""`) // as Propeller's proplet: results is a string, "" on error
		msg.Interrupted = errors.Is(err, errRestarted) || errors.Is(err, ErrShutdown)
	} else {
		msg.Results = wire.StringResult(fitText(out, MaxResultBytes))
	}
	return msg
}

// sendAccepted tells the engine that this proplet has an attempt of a
// task: journaled, and running or run. It hands the accept to paho at QoS
// 1 and does not wait for the broker: paho keeps it in the session store
// until the broker has it (resending it after a reconnect), and a start
// whose accept is lost all the same is sent again by the engine and
// accepted again.
func (p *Proplet) sendAccepted(taskID string, attempt int) {
	a := wire.Accepted{TaskID: taskID, Attempt: attempt, PropletID: p.id}
	tok, err := p.send(p.pubCtx, wire.SuffixAccepted, 1, a)
	if err == nil {
		err = failedAlready(tok)
	}
	if err != nil {
		p.log.Warn("accept not sent: the engine will send the start again", keyTask, taskID, keyAttempt, attempt, keyErr, err)
		return
	}
	p.log.Debug("accept sent", keyTask, taskID, keyAttempt, attempt)
}

// failedAlready returns the error of a token that has already failed
// (paho fails a publish at once when it is not connected), nil otherwise.
func failedAlready(tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	default:
		return nil
	}
}

// resultQoS: results go at least at QoS 1, so the session store keeps them.
func (p *Proplet) resultQoS() byte { return max(1, p.cfg.QoS) }

// stored reports whether paho put a QoS >= 1 publish in the session store:
// it does so as soon as it has given the message an id, and fails before
// that only when it is not connected or out of ids.
func stored(tok paho.Token) bool {
	pt, ok := tok.(*paho.PublishToken)
	return ok && pt.MessageID() != 0
}
