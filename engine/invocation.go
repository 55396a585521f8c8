package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
)

// Invocations of latent tasks (Propeller's functions on call). A latent
// task, once running on a device, has its module deployed there; each
// invocation runs it once, synchronously, and is recorded after its
// answer (or its timeout) as one Invocation.
const (
	// DefaultInvokeTimeout is how long an invocation waits for its answer
	// unless the call says: Propeller's manager waits 30 s.
	DefaultInvokeTimeout = 30 * time.Second
	// MaxInvokeTimeout bounds the timeout a call may ask for: under the
	// HTTP server's default write timeout (1 min), which would cut the
	// answer of a longer call.
	MaxInvokeTimeout = 50 * time.Second
	// MaxInvocationResultKept bounds the result text an Invocation record
	// keeps (the caller got all of it); the rest is cut.
	MaxInvocationResultKept = 1 << 10
)

// ErrNotDeployed is a failed invocation whose device answered that the
// task is not deployed there: it runs in the engine's view (accepted)
// while the device still fetches and compiles its module. A caller that
// just deployed it may call again.
var ErrNotDeployed = errors.New("the latent task is not deployed on its device yet")

// ErrDeploying is an ErrNotDeployed whose device said the task is on its
// way (its module is being fetched or compiled): waiting is enough. An
// ErrNotDeployed without it from a jetprop proplet means the device does
// not have the task at all (it restarted and lost it): it must be
// deployed again.
var ErrDeploying = errors.New("the latent task is being deployed on its device")

// InvokeCall is one call of a latent task: what replaces or adds to the
// task's own function, inputs, env and stdin for this run.
type InvokeCall struct {
	Function string            `json:"function,omitempty"`
	Inputs   []string          `json:"inputs,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Stdin    []byte            `json:"stdin,omitempty"`
	Timeout  time.Duration     `json:"-"`
}

// Invocation records one invocation, once answered or timed out.
type Invocation struct {
	ID       string    `json:"id"`
	TaskID   string    `json:"task_id"`
	Device   string    `json:"proplet_id"`
	Function string    `json:"function,omitempty"`
	At       time.Time `json:"at"`
	TookMS   float64   `json:"took_ms"`
	Result   string    `json:"results,omitempty"` // cut to MaxInvocationResultKept
	Error    string    `json:"error,omitempty"`
	TimedOut bool      `json:"timed_out,omitempty"`
}

// CheckInvokeBounds checks a call against the bounds of a task's fields
// (the same names, inputs, env and payload bounds) and the timeout bound.
func CheckInvokeBounds(c InvokeCall) error {
	switch {
	case len(c.Function) > MaxNameLen:
		return boundErr("function", len(c.Function), MaxNameLen, "bytes")
	case len(c.Inputs) > MaxInputs:
		return boundErr("inputs", len(c.Inputs), MaxInputs, "inputs")
	case c.Timeout < 0 || c.Timeout > MaxInvokeTimeout:
		return fmt.Errorf("%w: timeout_ms: %d, outside 0..%d", domain.ErrInvalid, c.Timeout.Milliseconds(), MaxInvokeTimeout.Milliseconds())
	}
	envBytes, problem := checkEnv("env", c.Env)
	if problem != "" {
		return fmt.Errorf("%w: %s", domain.ErrInvalid, problem)
	}
	if n := envBytes + sumLen(c.Inputs) + len(c.Stdin); n > MaxTaskPayload {
		return boundErr("inputs, env and stdin together", n, MaxTaskPayload, "bytes")
	}
	return nil
}

// Invocable says whether t can be invoked now: it exists, is latent, and
// runs (is deployed) on a device; else why not (ErrNotFound,
// ErrInvalidState naming the reason).
func (t Task) Invocable() error {
	switch {
	case !t.Exists():
		return fmt.Errorf("task %s: %w", t.ID, domain.ErrNotFound)
	case !t.Latent:
		return fmt.Errorf("%w: task %s is not a latent task and cannot be invoked (create it with \"latent\": true)", domain.ErrInvalidState, t.ID)
	case t.State != TaskRunning || t.Device == "":
		return fmt.Errorf("%w: latent task %s is %s, not deployed: start it, and invoke it once it runs", domain.ErrInvalidState, t.ID, t.State)
	}
	return nil
}
