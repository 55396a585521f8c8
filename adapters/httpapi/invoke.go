package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
)

// Invoker runs invocations of latent tasks on their devices and lists the
// recorded ones (an *mqtt.Invoker).
type Invoker interface {
	Invoke(ctx context.Context, t engine.Task, call engine.InvokeCall) (engine.Invocation, error)
	InvokeAll(ctx context.Context, recordAs string, tasks []engine.Task, call engine.InvokeCall) ([]engine.Invocation, []error)
	Invocations(ctx context.Context, taskID string, limit int) ([]engine.Invocation, error)
}

// WithInvoker serves POST /tasks/{id}/invoke and GET
// /tasks/{id}/invocations; without it they answer 501.
func WithInvoker(inv Invoker) Option { return func(a *api) { a.invoker = inv } }

// InvokeRequest is the body of POST /tasks/{id}/invoke: Propeller's inputs
// and env, plus jetprop's function (default: the task's name), stdin
// (base64) and timeout_ms (default engine.DefaultInvokeTimeout, at most
// engine.MaxInvokeTimeout). An empty body invokes with the task's own.
type InvokeRequest struct {
	Inputs    wire.Strings      `json:"inputs,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Function  string            `json:"function,omitempty"`
	Stdin     []byte            `json:"stdin,omitempty"`
	TimeoutMS int64             `json:"timeout_ms,omitempty"`
}

// InvokeAnswer is the answer of POST /tasks/{id}/invoke: Propeller's
// {"invoked": true, "results": "..."} plus jetprop's invocation id, device
// and time taken. A broadcast task's call adds Proplets, one answer per
// device its last run is deployed on (sorted by device); its top-level
// fields are the first device's that succeeded (Propeller's manager
// answers one device's result), and invoked says whether any did.
type InvokeAnswer struct {
	Invoked      bool           `json:"invoked"`
	Results      string         `json:"results"`
	InvocationID string         `json:"invocation_id"`
	PropletID    string         `json:"proplet_id"`
	TookMS       float64        `json:"took_ms"`
	Proplets     []DeviceAnswer `json:"proplets,omitempty"`
	Error        string         `json:"error,omitempty"` // a broadcast on which no device succeeded
}

// DeviceAnswer is one device's answer to a broadcast invocation: its
// results, or the error it answered, or that it did not answer in time
// (timed_out, error "timed out after ..."). Each is recorded.
type DeviceAnswer struct {
	PropletID string  `json:"proplet_id"`
	TaskID    string  `json:"task_id"`
	Invoked   bool    `json:"invoked"`
	Results   string  `json:"results"`
	Error     string  `json:"error,omitempty"`
	TimedOut  bool    `json:"timed_out,omitempty"`
	TookMS    float64 `json:"took_ms"`
}

// InvocationList is the answer of GET /tasks/{id}/invocations.
type InvocationList struct {
	Invocations []engine.Invocation `json:"invocations"`
}

func (req InvokeRequest) call() (engine.InvokeCall, error) {
	c := engine.InvokeCall{Function: req.Function, Inputs: req.Inputs, Env: req.Env, Stdin: req.Stdin}
	if req.TimeoutMS < 0 || req.TimeoutMS > engine.MaxInvokeTimeout.Milliseconds() {
		return c, badRequest("timeout_ms %d: outside 0..%d", req.TimeoutMS, engine.MaxInvokeTimeout.Milliseconds())
	}
	c.Timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	return c, engine.CheckInvokeBounds(c)
}

// invokeCall reads the call of an invoke request; false when it answered
// an error.
func (a *api) invokeCall(w http.ResponseWriter, r *http.Request) (engine.InvokeCall, bool) {
	if a.invoker == nil {
		a.fail(w, r, errNoInvoker)
		return engine.InvokeCall{}, false
	}
	var req InvokeRequest
	if r.ContentLength != 0 {
		if err := a.decodeBody(w, r, "", &req); err != nil {
			a.fail(w, r, err)
			return engine.InvokeCall{}, false
		}
	}
	call, err := req.call()
	if err != nil {
		a.fail(w, r, err)
		return engine.InvokeCall{}, false
	}
	return call, true
}

func (a *api) invokeTask(w http.ResponseWriter, r *http.Request) {
	call, ok := a.invokeCall(w, r)
	if !ok {
		return
	}
	t, err := a.svc.GetTask(r.PathValue("id"))
	if err == nil && t.Broadcast && t.Latent {
		a.invokeBroadcast(w, r, t, call)
		return
	}
	if err == nil {
		t, err = a.svc.WaitDeployed(r.Context(), t)
	}
	if err == nil {
		err = t.Invocable()
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	inv, err := a.invokeLatent(r.Context(), t, call)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, InvokeAnswer{Invoked: true, Results: inv.Result, InvocationID: inv.ID, PropletID: inv.Device, TookMS: inv.TookMS})
}

func (a *api) listInvocations(w http.ResponseWriter, r *http.Request) {
	if a.invoker == nil {
		a.fail(w, r, errNoInvoker)
		return
	}
	p, err := parsePage(r)
	if err == nil {
		_, err = a.svc.GetTask(r.PathValue("id"))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	invs, err := a.invoker.Invocations(r.Context(), r.PathValue("id"), p.limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, InvocationList{Invocations: invs})
}

var errNoInvoker = fmt.Errorf("%w: invocations need the server's MQTT edge", domain.ErrUnsupported)

// invokeFunction is POST /functions/{name}/invoke: the body of POST
// /tasks/{id}/invoke, run on the latent task of the catalog module
// {name} (name:tag, or name for its latest tag), which the first call
// deploys (service.DeployFunction). While the device still compiles a
// module just deployed, the call is sent again, until
// service.FunctionDeployTimeout.
func (a *api) invokeFunction(w http.ResponseWriter, r *http.Request) {
	call, ok := a.invokeCall(w, r)
	if !ok {
		return
	}
	t, err := a.svc.DeployFunction(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	inv, err := a.invokeLatent(r.Context(), t, call)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set(HeaderFunctionTask, t.ID)
	writeJSON(w, http.StatusOK, InvokeAnswer{Invoked: true, Results: inv.Result, InvocationID: inv.ID, PropletID: inv.Device, TookMS: inv.TookMS})
}

// HeaderFunctionTask names, in the answer of POST /functions/{name}/invoke,
// the latent task that ran the call.
const HeaderFunctionTask = "Jp-Function-Task"

// invokeLatent invokes t. A device that answers it does not have the task
// (it restarted and lost it: service.LatentLost) gets it deployed again,
// once per call (service.RedeployLatent); while the task is on its way
// to its device the call waits for it (invokeDeployed).
func (a *api) invokeLatent(ctx context.Context, t engine.Task, call engine.InvokeCall) (engine.Invocation, error) {
	inv, err := a.invoker.Invoke(ctx, t, call)
	if !errors.Is(err, engine.ErrNotDeployed) {
		return inv, err
	}
	return a.invokeAgain(ctx, t.ID, t, call, err)
}

// invokeAgain follows a "not deployed" answer (err) of latent task t: it
// deploys t again when its device lost it, then calls until it answers
// (invokeDeployed); the invocations are recorded under recordAs.
func (a *api) invokeAgain(ctx context.Context, recordAs string, t engine.Task, call engine.InvokeCall, err error) (engine.Invocation, error) {
	if a.svc.LatentLost(t, err) {
		if t, err = a.svc.RedeployLatent(ctx, t); err != nil {
			return engine.Invocation{}, err
		}
	}
	return a.invokeDeployed(ctx, recordAs, t, call)
}

// redeployLost calls again, each in its own goroutine, the devices of a
// broadcast whose answer was "not deployed" (invokeAgain), and puts their
// new answers in invs and errs.
func (a *api) redeployLost(ctx context.Context, recordAs string, tasks []engine.Task, call engine.InvokeCall, invs []engine.Invocation, errs []error) {
	var wg sync.WaitGroup
	for k, err := range errs {
		if errors.Is(err, engine.ErrNotDeployed) {
			wg.Go(func() {
				inv, err := a.invokeAgain(ctx, recordAs, tasks[k], call, err)
				if inv.ID == "" { // not sent again: the redeploy failed
					inv = invs[k]
					inv.Error = err.Error()
				}
				invs[k], errs[k] = inv, err
			})
		}
	}
	wg.Wait()
}

// invokeDeployed invokes t, calling again while its device answers that
// it is not deployed yet (it runs in the engine's view from its accept,
// before its module is compiled), with a backoff from 2 ms to 100 ms.
func (a *api) invokeDeployed(ctx context.Context, recordAs string, t engine.Task, call engine.InvokeCall) (engine.Invocation, error) {
	deadline := time.Now().Add(service.FunctionDeployTimeout)
	backoff := 2 * time.Millisecond
	for {
		invs, errs := a.invoker.InvokeAll(ctx, recordAs, []engine.Task{t}, call)
		inv, err := invs[0], errs[0]
		if !errors.Is(err, engine.ErrNotDeployed) || time.Now().After(deadline) {
			return inv, err
		}
		select {
		case <-ctx.Done():
			return inv, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// invokeBroadcast is POST /tasks/{id}/invoke of a latent broadcast task:
// one invocation on every device its last run is deployed on, all at
// once; each device answers, fails or times out on its own. 200 when any
// succeeded; otherwise the status of the first device's error, with every
// device's answer all the same.
func (a *api) invokeBroadcast(w http.ResponseWriter, r *http.Request, t engine.Task, call engine.InvokeCall) {
	var running []engine.Task
	for _, k := range a.svc.Broadcast(t.ID).Tasks {
		if k.State == engine.TaskRunning && k.Device != "" {
			running = append(running, k)
		}
	}
	if len(running) == 0 {
		a.fail(w, r, fmt.Errorf("%w: latent broadcast task %s is deployed on no proplet: start it, and invoke it once it runs", domain.ErrInvalidState, t.ID))
		return
	}
	invs, errs := a.invoker.InvokeAll(r.Context(), t.ID, running, call)
	a.redeployLost(r.Context(), t.ID, running, call, invs, errs)
	ans, status := broadcastAnswer(running, invs, errs)
	if r.Context().Err() == nil {
		writeJSON(w, status, ans)
	}
}

func broadcastAnswer(tasks []engine.Task, invs []engine.Invocation, errs []error) (InvokeAnswer, int) {
	ans := InvokeAnswer{Proplets: make([]DeviceAnswer, len(tasks))}
	status := http.StatusOK
	for k, inv := range invs {
		d := DeviceAnswer{PropletID: inv.Device, TaskID: tasks[k].ID, Invoked: errs[k] == nil, Results: inv.Result,
			Error: inv.Error, TimedOut: inv.TimedOut, TookMS: inv.TookMS}
		if errs[k] != nil && d.Error == "" {
			d.Error = errs[k].Error()
		}
		ans.Proplets[k], ans.InvocationID, ans.TookMS = d, inv.ID, max(ans.TookMS, inv.TookMS)
		if d.Invoked && !ans.Invoked {
			ans.Invoked, ans.Results, ans.PropletID = true, d.Results, d.PropletID
		}
	}
	if !ans.Invoked {
		status = statusOf(errs[0])
		ans.Error = fmt.Sprintf("invocation %s failed on every one of %d proplets; the first: %v", ans.InvocationID, len(errs), errs[0])
	}
	return ans, status
}
