package proplet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/workers/runtime"
)

// MaxConcurrentInvokes bounds the invocations a proplet runs at once, over
// all its latent tasks. Each runs on its own instance of the warm compiled
// module, so invocations never wait for one another below the bound; an
// invocation above it is answered at once with ErrInvokeBusy (the caller
// may try again) rather than queued behind the others.
const MaxConcurrentInvokes = 64

var (
	// ErrNotDeployed answers an invocation of a task that is not deployed
	// here as a latent task. Its text holds Propeller's ("has not been
	// precompiled"), which Propeller's manager looks for to try another
	// proplet or deploy the task again.
	ErrNotDeployed = errors.New(wire.NotPrecompiled + "; deploy it as a latent task first")
	// ErrDeploying answers an invocation of a latent task accepted here
	// whose module is still being fetched or compiled: it holds
	// Propeller's text too, and wire.Deploying, so that jetprop's engine
	// waits rather than deploying it again.
	ErrDeploying = errors.New(wire.NotPrecompiled + " yet: it " + wire.Deploying + " here")
	// ErrInvokeBusy answers an invocation over MaxConcurrentInvokes.
	ErrInvokeBusy = fmt.Errorf("proplet busy: %d invocations running (max)", MaxConcurrentInvokes)
)

// deployed is a latent task kept warm: its module (compiled and pinned by
// the runtime when it can), run again on a fresh instance per invocation.
type deployed struct {
	req     wire.StartRequest
	ctx     context.Context // the task's: a stop ends its invocations too
	module  []byte
	digest  string
	timeout time.Duration
	pages   uint32
}

// invokeResultMessage is wire.InvokeResult as Propeller's proplet sends it:
// results a string ("" on failure), error null on success.
type invokeResultMessage struct {
	TaskID       string  `json:"task_id"`
	InvocationID string  `json:"invocation_id"`
	PropletID    string  `json:"proplet_id"`
	Results      string  `json:"results"`
	Error        *string `json:"error"`
}

// deploy fetches and compiles a latent task's module, keeps it for
// invocations until the task is stopped (ctx ends), then forgets it. It
// runs nothing; like Propeller's proplet it sends no result on success,
// and the stop ends it as any stopped task.
func (p *Proplet) deploy(ctx context.Context, t *task) (string, error) {
	req := t.req
	if err := checkLimits(req); err != nil {
		return "", err
	}
	module, digest, err := p.module(ctx, req)
	if err != nil {
		return "", err
	}
	if digest == "" {
		digest = runtime.Digest(module)
	}
	d := &deployed{req: req, ctx: ctx, module: module, digest: digest, timeout: p.timeout(req), pages: p.memoryPages(req)}
	if prep, ok := p.rt.(runtime.Preparer); ok {
		release, err := prep.Prepare(ctx, d.job(wire.InvokeRequest{}))
		if err != nil {
			return "", err
		}
		defer release()
	}
	p.mu.Lock()
	p.latent[req.ID] = d
	p.mu.Unlock()
	t.settleNow()
	p.log.Info("latent task deployed", keyTask, req.ID, keyFunction, req.Name, keyDigest, digest)
	<-ctx.Done()
	p.mu.Lock()
	if p.latent[req.ID] == d {
		delete(p.latent, req.ID)
	}
	p.mu.Unlock()
	return "", context.Cause(ctx)
}

// job is one invocation: the call's inputs replace the task's when given,
// its env is added to the task's, its function replaces the task's name.
func (d *deployed) job(inv wire.InvokeRequest) runtime.Job {
	j := runtime.Job{
		Digest: d.digest, Module: d.module, Function: d.req.Name, Inputs: d.req.Inputs, Env: d.req.Env,
		Args: d.req.CLIArgs, Stdin: d.req.Stdin, Timeout: d.timeout, MemoryLimitPages: d.pages,
	}
	if len(inv.Inputs) > 0 {
		j.Inputs = inv.Inputs
	}
	if len(inv.Env) > 0 {
		j.Env = maps.Clone(d.req.Env)
		if j.Env == nil {
			j.Env = map[string]string{}
		}
		maps.Copy(j.Env, inv.Env)
	}
	if inv.Function != "" {
		j.Function = inv.Function
	}
	if inv.Stdin != nil {
		j.Stdin = inv.Stdin
	}
	return j
}

// onInvoke runs an invocation of a latent task in its own goroutine (the
// router goroutine must not wait) and answers it; above
// MaxConcurrentInvokes it answers ErrInvokeBusy at once.
func (p *Proplet) onInvoke(topic string, payload []byte) {
	req, err := wire.DecodeInvoke(payload)
	if err != nil {
		p.badMessage(topic, err)
		return
	}
	if !p.addressed(req.PropletID, req.Broadcast) {
		return
	}
	p.mu.Lock()
	d, closing := p.latent[req.ID], p.closing
	t := p.tasks[req.ID]
	p.mu.Unlock()
	accepted := t != nil && t.req.Latent
	switch {
	case closing:
		return
	case d == nil && accepted && req.DeployWait() > 0:
		p.holdInvoke(req, t)
		return
	case d == nil && accepted:
		p.wg.Go(func() { p.answerInvoke(req, "", fmt.Errorf("task %s %w", req.ID, ErrDeploying)) })
		return
	case d == nil:
		p.wg.Go(func() { p.answerInvoke(req, "", fmt.Errorf("task %s %w", req.ID, ErrNotDeployed)) })
		return
	}
	if !p.takeInvoke(req) {
		return
	}
	p.wg.Go(func() {
		defer func() { <-p.invokes }()
		p.runInvoke(req, d)
	})
}

// takeInvoke takes one of MaxConcurrentInvokes; when none is free it
// answers ErrInvokeBusy and reports false.
func (p *Proplet) takeInvoke(req wire.InvokeRequest) bool {
	select {
	case p.invokes <- struct{}{}:
		return true
	default:
		p.wg.Go(func() { p.answerInvoke(req, "", ErrInvokeBusy) })
		return false
	}
}

func (p *Proplet) runInvoke(req wire.InvokeRequest, d *deployed) {
	out, err := p.rt.Run(d.ctx, d.job(req))
	if err != nil && d.ctx.Err() != nil {
		err = context.Cause(d.ctx)
	}
	p.answerInvoke(req, out, err)
}

// holdInvoke runs an invocation of latent task t, accepted here and still
// deploying, as soon as it is deployed, if that is within the call's
// DeployWait; else (or if the deploy fails) it answers as an invocation
// arriving then would. The held call takes its slot of
// MaxConcurrentInvokes while it waits, so held calls are bounded too.
func (p *Proplet) holdInvoke(req wire.InvokeRequest, t *task) {
	if !p.takeInvoke(req) {
		return
	}
	p.wg.Go(func() {
		defer func() { <-p.invokes }()
		timer := time.NewTimer(req.DeployWait())
		defer timer.Stop()
		select {
		case <-t.settled:
		case <-timer.C:
		case <-p.pubCtx.Done():
			return
		}
		p.mu.Lock()
		d, now := p.latent[req.ID], p.tasks[req.ID]
		p.mu.Unlock()
		switch {
		case d != nil:
			p.runInvoke(req, d)
		case now != nil && now.req.Latent:
			p.answerInvoke(req, "", fmt.Errorf("task %s %w", req.ID, ErrDeploying))
		default:
			p.answerInvoke(req, "", fmt.Errorf("task %s %w", req.ID, ErrNotDeployed))
		}
	})
}

// answerInvoke publishes the answer at QoS 0 and does not wait: an
// invocation is a synchronous call whose caller times out and may call
// again, so a lost answer costs what a retry costs; QoS 1 would put every
// answer through the journal's session store.
func (p *Proplet) answerInvoke(req wire.InvokeRequest, out string, err error) {
	msg := invokeResultMessage{TaskID: req.ID, InvocationID: req.InvocationID, PropletID: p.id}
	if err != nil {
		text := fitText(err.Error(), MaxResultBytes)
		msg.Error = &text
	} else {
		msg.Results = fitText(out, MaxResultBytes)
	}
	tok, err := p.send(p.pubCtx, wire.SuffixInvokeResults, 0, msg)
	if err == nil {
		err = failedAlready(tok)
	}
	if err != nil {
		p.log.Warn("invoke answer not sent", keyTask, req.ID, keyInvocation, req.InvocationID, keyErr, err)
	}
}

// Deployed lists the ids of the latent tasks deployed here, sorted.
func (p *Proplet) Deployed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.latent))
}
