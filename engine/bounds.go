package engine

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Bounds of what a client declares in a task or a workflow spec. They
// hold on every path (the API, the CLI, Propeller's jobs and workflows,
// the tasks a workflow creates) because the deciders check them:
// decideCreate with CheckTaskBounds, decideCreateWorkflow with
// WorkflowSpec.Validate. docs/limits.md lists them. The sizes are well
// under the broker's 1 MiB message (natsserver.DefaultMaxPayload), which
// a task's creation event and its start message must fit in.
const (
	// MaxNameLen bounds a task's function name (its export), a workflow's
	// name and a step's function, in bytes.
	MaxNameLen = 256
	// MaxRefLen bounds a module reference: a task's image_url, a step's
	// module (name:tag, a digest, an OCI reference or a URL).
	MaxRefLen = 2048
	// MaxInputs bounds the inputs of a task or a step.
	MaxInputs = 1024
	// MaxCLIArgs bounds the arguments of a task for an external runtime.
	MaxCLIArgs = 1024
	// MaxEnvVars bounds the environment variables of a task or a step.
	MaxEnvVars = 128
	// MaxEnvKeyLen bounds an environment variable's name, in bytes.
	MaxEnvKeyLen = 256
	// MaxEnvValueLen bounds an environment variable's value, in bytes.
	MaxEnvValueLen = 32 << 10
	// MaxTaskPayload bounds the bytes of a task's inputs, cli_args, env
	// (names and values) and stdin together, and of a step's inputs and
	// env: room for real arguments, and far from the broker's message
	// limit. Data larger than this belongs in a module or an artifact.
	MaxTaskPayload = 256 << 10

	// MaxRetryAttempts bounds max_attempts of a task's or a step's retry
	// policy (counting the first attempt).
	MaxRetryAttempts = 100
	// MinRetryBackoff and MaxRetryBackoff bound a step's initial_backoff
	// and max_backoff when they are given.
	MinRetryBackoff = 100 * time.Millisecond
	MaxRetryBackoff = 24 * time.Hour
	// MaxRetryMultiplier bounds a step's backoff multiplier.
	MaxRetryMultiplier = 10.0

	// MaxWorkflowSteps bounds the steps of a workflow (and so the tasks
	// of a job or of Propeller's workflow).
	MaxWorkflowSteps = 1000
	// MaxSelectorEntries bounds a step's placement selector.
	MaxSelectorEntries = 32
	// MaxWorkflowSpec bounds a workflow spec as stored (its JSON in the
	// workflow's creation event), in bytes.
	MaxWorkflowSpec = 512 << 10
)

// CheckTaskBounds checks a task's declared fields against the bounds
// above; its error wraps domain.ErrInvalid and names the bound. The
// service calls it before it stores a module, decideCreate on every
// create. A task a workflow creates carries its dependencies' results in
// its inputs and stdin, which devices sent (and the inbound bounds
// limit): only its env counts against MaxTaskPayload.
func CheckTaskBounds(t events.TaskCreated) error {
	switch {
	case len(t.Name) > MaxNameLen:
		return boundErr("task name (the function to call)", len(t.Name), MaxNameLen, "bytes")
	case len(t.ImageURL) > MaxRefLen:
		return boundErr("image_url", len(t.ImageURL), MaxRefLen, "bytes")
	case len(t.CLIArgs) > MaxCLIArgs:
		return boundErr("cli_args", len(t.CLIArgs), MaxCLIArgs, "arguments")
	case t.MaxAttempts > MaxRetryAttempts:
		return boundErr("retry max_attempts", t.MaxAttempts, MaxRetryAttempts, "attempts")
	}
	envBytes, problem := checkEnv("env", t.Env)
	if problem != "" {
		return fmt.Errorf("%w: %s", domain.ErrInvalid, problem)
	}
	payload := envBytes + sumLen(t.CLIArgs)
	if t.Workflow == "" {
		if len(t.Inputs) > MaxInputs {
			return boundErr("inputs", len(t.Inputs), MaxInputs, "inputs")
		}
		payload += sumLen(t.Inputs) + len(t.Stdin)
	}
	if payload > MaxTaskPayload {
		return boundErr("inputs, cli_args, env and stdin together", payload, MaxTaskPayload, "bytes")
	}
	return nil
}

// checkEnv checks an environment's count and sizes and returns its bytes,
// or the first problem in the order of the names.
func checkEnv(what string, env map[string]string) (int, string) {
	if len(env) > MaxEnvVars {
		return 0, boundMsg(what, len(env), MaxEnvVars, "variables")
	}
	n := 0
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		if len(k) > MaxEnvKeyLen {
			return 0, boundMsg(what+" name "+clip(k), len(k), MaxEnvKeyLen, "bytes")
		}
		if len(v) > MaxEnvValueLen {
			return 0, boundMsg(what+" "+clip(k), len(v), MaxEnvValueLen, "bytes")
		}
		n += len(k) + len(v)
	}
	return n, ""
}

func sumLen(ss []string) int {
	n := 0
	for _, s := range ss {
		n += len(s)
	}
	return n
}

// boundErr names the field, its size and the bound it exceeds.
func boundErr(what string, got, limit int, unit string) error {
	return fmt.Errorf("%w: %s", domain.ErrInvalid, boundMsg(what, got, limit, unit))
}

func boundMsg(what string, got, limit int, unit string) string {
	return fmt.Sprintf("%s: %d %s, more than the limit of %d", what, got, unit, limit)
}

// clip quotes s, cut to 32 bytes, for an error message that names an
// over-long value.
func clip(s string) string {
	if len(s) > 32 {
		return fmt.Sprintf("%q…", s[:32])
	}
	return fmt.Sprintf("%q", s)
}

// checkBounds checks the spec's sizes and counts (Validate reports them
// with the other problems).
func (s WorkflowSpec) checkBounds(v *specCheck) {
	if len(s.Name) > MaxNameLen {
		v.addf("name: %d bytes, more than the limit of %d", len(s.Name), MaxNameLen)
	}
	if len(s.Steps) > MaxWorkflowSteps {
		v.addf("steps: %d steps, more than the limit of %d", len(s.Steps), MaxWorkflowSteps)
	}
}

// checkStepBounds checks a step's sizes and counts.
func (v *specCheck) checkStepBounds(at string, st StepSpec) {
	switch {
	case len(st.Function) > MaxNameLen:
		v.addf("%s: function: %d bytes, more than the limit of %d", at, len(st.Function), MaxNameLen)
	case len(st.Module) > MaxRefLen:
		v.addf("%s: module: %d bytes, more than the limit of %d", at, len(st.Module), MaxRefLen)
	case len(st.Inputs) > MaxInputs:
		v.addf("%s: inputs: %d inputs, more than the limit of %d", at, len(st.Inputs), MaxInputs)
	case len(st.DependsOn) > MaxWorkflowSteps:
		v.addf("%s: depends_on: %d entries, more than the limit of %d", at, len(st.DependsOn), MaxWorkflowSteps)
	case len(st.Placement.Selector) > MaxSelectorEntries:
		v.addf("%s: placement selector: %d entries, more than the limit of %d", at, len(st.Placement.Selector), MaxSelectorEntries)
	}
	envBytes, problem := checkEnv("env", st.Env)
	if problem != "" {
		v.addf("%s: %s", at, problem)
		return
	}
	if n := envBytes + sumLen(st.Inputs); n > MaxTaskPayload {
		v.addf("%s: inputs and env together: %d bytes, more than the limit of %d", at, n, MaxTaskPayload)
	}
}

// checkRetryBounds checks a retry policy's count and durations.
func (v *specCheck) checkRetryBounds(at string, r RetryPolicy) {
	if r.MaxAttempts > MaxRetryAttempts {
		v.addf("%s: retry max_attempts: %d attempts, more than the limit of %d", at, r.MaxAttempts, MaxRetryAttempts)
	}
	if r.Multiplier > MaxRetryMultiplier {
		v.addf("%s: retry multiplier %g: more than the limit of %g", at, r.Multiplier, MaxRetryMultiplier)
	}
	for _, b := range [...]struct{ what, s string }{{"initial_backoff", r.InitialBackoff}, {"max_backoff", r.MaxBackoff}} {
		if d, err := time.ParseDuration(b.s); err == nil && (d < MinRetryBackoff || d > MaxRetryBackoff) {
			v.addf("%s: retry %s %s: want %s to %s", at, b.what, b.s, MinRetryBackoff, MaxRetryBackoff)
		}
	}
}

// clipName is a name cut to MaxNameLen bytes, for error messages about
// specs whose names may be over it.
func clipName(s string) string { return s[:min(len(s), MaxNameLen)] }
