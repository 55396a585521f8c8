package engine_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

func step(name string, deps ...string) engine.StepSpec {
	return engine.StepSpec{Name: name, Module: "app:v1", Function: "main", DependsOn: deps}
}

func spec(steps ...engine.StepSpec) engine.WorkflowSpec {
	return engine.WorkflowSpec{Name: "wf", Steps: steps}
}

func TestWorkflowSpec_Validate(t *testing.T) {
	with := func(s engine.StepSpec, f func(*engine.StepSpec)) engine.StepSpec { f(&s); return s }
	withWF := func(w engine.WorkflowSpec, f func(*engine.WorkflowSpec)) engine.WorkflowSpec { f(&w); return w }
	diamond := spec(step("a"), step("b", "a"), step("c", "a"), step("d", "b", "c"))
	tests := []struct {
		name    string
		spec    engine.WorkflowSpec
		wantErr string // "" for a valid spec
	}{
		{"diamond", diamond, ""},
		{"everything set", withWF(spec(step("a"), with(step("b", "a"), func(s *engine.StepSpec) {
			s.Inputs, s.StdinFrom, s.RunIf, s.Timeout, s.ScheduleToStart = []string{"x=${steps.a.result}"}, "a", engine.RunIfAlways, "30s", "1m"
			s.Retry = &engine.RetryPolicy{MaxAttempts: 3, InitialBackoff: "1s", Multiplier: 2, MaxBackoff: "1m"}
			s.Placement = engine.StepPlacement{Selector: map[string]string{"os": "linux"}, Broadcast: true, MinSuccess: 2}
			s.Module = "sha256:" + strings.Repeat("ab", 32)
		})), func(w *engine.WorkflowSpec) {
			w.Mode, w.FailFast, w.Deadline, w.Cron, w.Timezone = engine.ModeDAG, true, "1h", "*/5 0-6,22 1 * 1-5", "Europe/Paris"
		}), ""},
		{"oci module", spec(with(step("a"), func(s *engine.StepSpec) { s.Module = "ghcr.io/acme/app:1.0" })), ""},
		{"sequential reference to an earlier step", withWF(spec(step("a"), step("b"), with(step("c"), func(s *engine.StepSpec) { s.Inputs = []string{"${steps.a.result}"} })), func(w *engine.WorkflowSpec) { w.Mode = engine.ModeSequential }), ""},
		{"no name", withWF(diamond, func(w *engine.WorkflowSpec) { w.Name = "" }), "name is required"},
		{"no steps", spec(), "at least one step"},
		{"bad mode", withWF(diamond, func(w *engine.WorkflowSpec) { w.Mode = "fast" }), `mode "fast"`},
		{"duplicate step", spec(step("a"), step("a")), `duplicate step name "a"`},
		{"bad step name", spec(step("a b")), `name "a b" must be`},
		{"unknown dependency", spec(step("a", "zz")), `step "a": depends_on unknown step "zz"`},
		{"cycle", spec(step("a", "b"), step("b", "c"), step("c", "a")), "cycle: a → b → c → a"},
		{"cycle below a root", spec(step("r"), step("x", "r", "z"), step("y", "x"), step("z", "y")), "cycle: x → z → y → x"},
		{"self dependency", spec(step("a", "a")), "cycle: a → a"},
		{"secret in env", spec(with(step("a"), func(s *engine.StepSpec) {
			s.Env = map[string]string{"TOKEN": "${secret:api_token}", "AUTH": "Bearer ${secret:api-2}"}
		})), ""},
		{"secret reference with a bad name", spec(with(step("a"), func(s *engine.StepSpec) { s.Env = map[string]string{"K": "${secret:a b}"} })),
			`step "a": env K: ${secret:a b}: a secret's name is`},
		{"reference to unknown step", spec(with(step("a"), func(s *engine.StepSpec) { s.Inputs = []string{"${steps.nope.result}"} })), `refers to unknown step "nope"`},
		{"reference to a non-ancestor", spec(step("a"), with(step("b"), func(s *engine.StepSpec) { s.Inputs = []string{"${steps.a.result}"} })), `refers to step "a", which is not one of its dependencies`},
		{"reference to a descendant", spec(with(step("a"), func(s *engine.StepSpec) { s.Inputs = []string{"${steps.b.result}"} }), step("b", "a")), `refers to step "b"`},
		{"stdin from a non-ancestor", spec(step("a"), step("b"), with(step("c", "b"), func(s *engine.StepSpec) { s.StdinFrom = "a" })), `stdin_from refers to step "a"`},
		{"cron with 4 fields", withWF(diamond, func(w *engine.WorkflowSpec) { w.Cron = "* * * *" }), "want 5 fields"},
		{"cron minute out of range", withWF(diamond, func(w *engine.WorkflowSpec) { w.Cron = "61 * * * *" }), "minute field"},
		{"cron zero step", withWF(diamond, func(w *engine.WorkflowSpec) { w.Cron = "*/0 * * * *" }), "positive number"},
		{"cron backwards range", withWF(diamond, func(w *engine.WorkflowSpec) { w.Cron = "* 5-2 * * *" }), "runs backwards"},
		{"cron word", withWF(diamond, func(w *engine.WorkflowSpec) { w.Cron = "* * * * mon" }), "day of week field"},
		{"bad timezone", withWF(diamond, func(w *engine.WorkflowSpec) { w.Timezone = "Mars/Olympus" }), `timezone "Mars/Olympus"`},
		{"negative deadline", withWF(diamond, func(w *engine.WorkflowSpec) { w.Deadline = "-1h" }), `deadline "-1h" is negative`},
		{"unparsable timeout", spec(with(step("a"), func(s *engine.StepSpec) { s.Timeout = "5 minutes" })), `timeout "5 minutes" is not a duration`},
		{"negative timeout", spec(with(step("a"), func(s *engine.StepSpec) { s.Timeout = "-1s" })), `timeout "-1s" is negative`},
		{"negative schedule_to_start", spec(with(step("a"), func(s *engine.StepSpec) { s.ScheduleToStart = "-2s" })), "schedule_to_start"},
		{"negative backoff", spec(with(step("a"), func(s *engine.StepSpec) { s.Retry = &engine.RetryPolicy{MaxAttempts: 2, InitialBackoff: "-1s"} })), "initial_backoff"},
		{"small multiplier", spec(with(step("a"), func(s *engine.StepSpec) { s.Retry = &engine.RetryPolicy{MaxAttempts: 2, Multiplier: 0.5} })), "multiplier 0.5"},
		{"negative attempts", spec(with(step("a"), func(s *engine.StepSpec) { s.Retry = &engine.RetryPolicy{MaxAttempts: -1} })), "max_attempts -1"},
		{"min_success without fan-out", spec(with(step("a"), func(s *engine.StepSpec) { s.Placement.MinSuccess = 2 })), "min_success needs broadcast or a selector"},
		{"device and broadcast", spec(with(step("a"), func(s *engine.StepSpec) { s.Placement = engine.StepPlacement{Device: "p1", Broadcast: true} })), "exclude each other"},
		{"empty module", spec(with(step("a"), func(s *engine.StepSpec) { s.Module = "" })), `step "a": module is required`},
		{"bad digest", spec(with(step("a"), func(s *engine.StepSpec) { s.Module = "sha256:abc" })), "64 lower-case hex"},
		{"bad run_if", spec(with(step("a"), func(s *engine.StepSpec) { s.RunIf = "sometimes" })), `run_if "sometimes"`},
		{"run_if failure on a root", spec(with(step("a"), func(s *engine.StepSpec) { s.RunIf = engine.RunIfFailure })), "never runs"},
		{"depends_on in parallel mode", withWF(spec(step("a"), step("b", "a")), func(w *engine.WorkflowSpec) { w.Mode = engine.ModeParallel }), "parallel workflow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want ErrInvalid containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestWorkflowSpec_ValidateReportsEveryProblem(t *testing.T) {
	s := spec(engine.StepSpec{Name: "a", Timeout: "-1s"}, step("a"))
	err := s.Validate()
	for _, want := range []string{"module is required", "timeout", "duplicate step name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestWorkflowSpec_TopoOrder(t *testing.T) {
	tests := []struct {
		name string
		spec engine.WorkflowSpec
		want []int
	}{
		{"independent steps keep declaration order", spec(step("x"), step("y"), step("z")), []int{0, 1, 2}},
		{"diamond declared backwards", spec(step("d", "b", "c"), step("b", "a"), step("c", "a"), step("a")), []int{3, 1, 2, 0}},
		{"ties broken by declaration order", spec(step("late", "root"), step("root"), step("free")), []int{1, 0, 2}},
		{"sequential", engine.WorkflowSpec{Name: "s", Mode: engine.ModeSequential, Steps: []engine.StepSpec{step("c"), step("a"), step("b")}}, []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.spec.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := tt.spec.TopoOrder(); !slices.Equal(got, tt.want) {
				t.Fatalf("TopoOrder() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRetryPolicy_Backoff(t *testing.T) {
	tests := []struct {
		name   string
		policy engine.RetryPolicy
		want   []time.Duration // after attempts 1, 2, ...
	}{
		{"defaults", engine.RetryPolicy{MaxAttempts: 4}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{"capped", engine.RetryPolicy{InitialBackoff: "500ms", Multiplier: 3, MaxBackoff: "5s"}, []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 4500 * time.Millisecond, 5 * time.Second, 5 * time.Second}},
		{"constant", engine.RetryPolicy{InitialBackoff: "2s", Multiplier: 1}, []time.Duration{2 * time.Second, 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.policy.Backoff(i + 1); got != want {
					t.Errorf("Backoff(%d) = %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

func TestValidateCron(t *testing.T) {
	for _, ok := range []string{"* * * * *", "0 0 1 1 0", "59 23 31 12 7", "*/15 9-17 * * 1-5", "0,30 8-18/2 1,15 */3 *", "* * * * * *", "30 0 9 * * 1-5", "@daily", "@hourly"} {
		if err := engine.ValidateCron(ok); err != nil {
			t.Errorf("ValidateCron(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "* * * *", "* * * * * * *", "60 * * * * *", "@sometimes", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "1-", "a * * * *", "*/x * * * *", ",, * * * *"} {
		if err := engine.ValidateCron(bad); err == nil {
			t.Errorf("ValidateCron(%q) = nil, want an error", bad)
		}
	}
	if got := engine.CronSchedule(" 0  9 * * 1-5"); got != "0 0 9 * * 1-5" {
		t.Errorf("CronSchedule of five fields = %q", got)
	}
}
