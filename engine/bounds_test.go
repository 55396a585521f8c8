package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

func manyEnv(n, keyLen, valLen int) map[string]string {
	env := make(map[string]string, n)
	for i := range n {
		k := fmt.Sprintf("K%0*d", max(keyLen-1, 1), i)
		env[k] = strings.Repeat("v", valLen)
	}
	return env
}

func manyStrings(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Repeat("1", size)
	}
	return out
}

// TestDecideCreate_Bounds holds every create, whichever path it comes by,
// to the bounds of engine/bounds.go: at the bound it is accepted, one over
// it is refused with an ErrInvalid that names the field.
func TestDecideCreate_Bounds(t *testing.T) {
	task := func(f func(*events.TaskCreated)) events.TaskCreated {
		s := events.TaskCreated{Name: "add", Module: "sha256:" + strings.Repeat("ab", 32)}
		f(&s)
		return s
	}
	tests := []struct {
		name    string
		spec    events.TaskCreated
		wantErr string // "" when accepted
	}{
		{"name at the bound", task(func(s *events.TaskCreated) { s.Name = strings.Repeat("f", engine.MaxNameLen) }), ""},
		{"name over", task(func(s *events.TaskCreated) { s.Name = strings.Repeat("f", 10<<10) }), "task name (the function to call): 10240 bytes, more than the limit of 256"},
		{"image_url over", task(func(s *events.TaskCreated) { s.ImageURL = strings.Repeat("i", engine.MaxRefLen+1) }), "image_url: 2049 bytes"},
		{"inputs at the bound", task(func(s *events.TaskCreated) { s.Inputs = manyStrings(engine.MaxInputs, 1) }), ""},
		{"inputs count over", task(func(s *events.TaskCreated) { s.Inputs = manyStrings(1_000_000, 1) }), "inputs: 1000000 inputs, more than the limit of 1024"},
		{"inputs size over", task(func(s *events.TaskCreated) { s.Inputs = manyStrings(2, engine.MaxTaskPayload/2+1) }), "inputs, cli_args, env and stdin together: 262146 bytes"},
		{"stdin over", task(func(s *events.TaskCreated) { s.Stdin = make([]byte, engine.MaxTaskPayload+1) }), "more than the limit of 262144"},
		{"cli_args over", task(func(s *events.TaskCreated) { s.CLIArgs = manyStrings(engine.MaxCLIArgs+1, 1) }), "cli_args: 1025 arguments"},
		{"env count over", task(func(s *events.TaskCreated) { s.Env = manyEnv(engine.MaxEnvVars+1, 8, 1) }), "env: 129 variables, more than the limit of 128"},
		{"env name over", task(func(s *events.TaskCreated) { s.Env = manyEnv(1, engine.MaxEnvKeyLen+1, 1) }), "env name \"K0000000000"},
		{"env value at the bound", task(func(s *events.TaskCreated) { s.Env = manyEnv(1, 8, engine.MaxEnvValueLen) }), ""},
		{"env value over", task(func(s *events.TaskCreated) { s.Env = manyEnv(1, 8, engine.MaxEnvValueLen+1) }), "env \"K0000000\": 32769 bytes"},
		{"env total over", task(func(s *events.TaskCreated) { s.Env = manyEnv(9, 8, engine.MaxEnvValueLen) }), "together: 294984 bytes"},
		{"max_attempts at the bound", task(func(s *events.TaskCreated) { s.MaxAttempts = engine.MaxRetryAttempts }), ""},
		{"max_attempts over", task(func(s *events.TaskCreated) { s.MaxAttempts = 1_000_000_000 }), "retry max_attempts: 1000000000 attempts, more than the limit of 100"},
		{"a workflow's task carries results over the input bound", task(func(s *events.TaskCreated) {
			s.Workflow, s.Step, s.Inputs, s.Stdin = "wf", "a", manyStrings(engine.MaxInputs+1, 512), make([]byte, engine.MaxTaskPayload)
		}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engine.DecideTask(engine.Task{}, engine.CreateTask{ID: "t1", Spec: tt.spec})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrInvalid with %q", err, tt.wantErr)
			}
		})
	}
}

func TestWorkflowSpec_ValidateBounds(t *testing.T) {
	with := func(f func(*engine.StepSpec)) engine.WorkflowSpec {
		s := step("a")
		f(&s)
		return spec(s)
	}
	retry := func(r engine.RetryPolicy) engine.WorkflowSpec {
		return with(func(s *engine.StepSpec) { s.Retry = &r })
	}
	steps := func(n int) engine.WorkflowSpec {
		w := spec()
		for i := range n {
			w.Steps = append(w.Steps, step(fmt.Sprintf("s%d", i)))
		}
		return w
	}
	tests := []struct {
		name    string
		spec    engine.WorkflowSpec
		wantErr string
	}{
		{"steps at the bound", steps(engine.MaxWorkflowSteps), ""},
		{"steps over", steps(engine.MaxWorkflowSteps + 1), "steps: 1001 steps, more than the limit of 1000"},
		{"workflow name over", func() engine.WorkflowSpec { w := spec(step("a")); w.Name = strings.Repeat("n", 10<<10); return w }(), "name: 10240 bytes"},
		{"function over", with(func(s *engine.StepSpec) { s.Function = strings.Repeat("f", engine.MaxNameLen+1) }), "function: 257 bytes"},
		{"module over", with(func(s *engine.StepSpec) { s.Module = strings.Repeat("m", engine.MaxRefLen+1) }), "module: 2049 bytes"},
		{"inputs over", with(func(s *engine.StepSpec) { s.Inputs = manyStrings(engine.MaxInputs+1, 1) }), "inputs: 1025 inputs"},
		{"inputs size over", with(func(s *engine.StepSpec) { s.Inputs = manyStrings(2, engine.MaxTaskPayload/2+1) }), "inputs and env together: 262146 bytes"},
		{"env count over", with(func(s *engine.StepSpec) { s.Env = manyEnv(engine.MaxEnvVars+1, 8, 1) }), "env: 129 variables"},
		{"env value over", with(func(s *engine.StepSpec) { s.Env = manyEnv(1, 8, engine.MaxEnvValueLen+1) }), "32769 bytes"},
		{"selector over", with(func(s *engine.StepSpec) {
			s.Placement.Selector, s.Placement.Broadcast = manyEnv(engine.MaxSelectorEntries+1, 4, 1), true
		}), "placement selector: 33 entries"},
		{"retry at the bounds", retry(engine.RetryPolicy{MaxAttempts: engine.MaxRetryAttempts, InitialBackoff: "100ms", Multiplier: 10, MaxBackoff: "24h"}), ""},
		{"max_attempts over", retry(engine.RetryPolicy{MaxAttempts: 1_000_000_000, InitialBackoff: "1ms"}), "retry max_attempts: 1000000000 attempts, more than the limit of 100"},
		{"initial_backoff under", retry(engine.RetryPolicy{MaxAttempts: 3, InitialBackoff: "1ms"}), "retry initial_backoff 1ms: want 100ms to 24h0m0s"},
		{"initial_backoff zero", retry(engine.RetryPolicy{MaxAttempts: 3, InitialBackoff: "0s"}), "retry initial_backoff 0s"},
		{"max_backoff over", retry(engine.RetryPolicy{MaxAttempts: 3, MaxBackoff: "48h"}), "retry max_backoff 48h"},
		{"multiplier over", retry(engine.RetryPolicy{MaxAttempts: 3, Multiplier: 1000}), "retry multiplier 1000: more than the limit of 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrInvalid with %q", err, tt.wantErr)
			}
		})
	}
}

// TestDecideCreateWorkflow_SpecSize refuses a spec whose stored JSON is
// over MaxWorkflowSpec though each step is within its own bounds.
func TestDecideCreateWorkflow_SpecSize(t *testing.T) {
	w := spec()
	for i := range 20 {
		s := step(fmt.Sprintf("s%d", i))
		s.Env = manyEnv(1, 8, engine.MaxEnvValueLen)
		w.Steps = append(w.Steps, s)
	}
	_, err := engine.DecideWorkflow(engine.Workflow{}, engine.CreateWorkflow{ID: "w1", Spec: w})
	if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "more than the limit of 524288") {
		t.Fatalf("err = %v, want the spec size bound", err)
	}
}
