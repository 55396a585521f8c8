package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
// and time taken.
type InvokeAnswer struct {
	Invoked      bool    `json:"invoked"`
	Results      string  `json:"results"`
	InvocationID string  `json:"invocation_id"`
	PropletID    string  `json:"proplet_id"`
	TookMS       float64 `json:"took_ms"`
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
	if err == nil {
		err = t.Invocable()
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	inv, err := a.invoker.Invoke(r.Context(), t, call)
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
	inv, err := a.invokeDeployed(r.Context(), t, call)
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

// invokeDeployed invokes t, calling again while its device answers that
// it is not deployed yet (it runs in the engine's view from its accept,
// before its module is compiled), with a backoff from 2 ms to 100 ms.
func (a *api) invokeDeployed(ctx context.Context, t engine.Task, call engine.InvokeCall) (engine.Invocation, error) {
	deadline := time.Now().Add(service.FunctionDeployTimeout)
	backoff := 2 * time.Millisecond
	for {
		inv, err := a.invoker.Invoke(ctx, t, call)
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
