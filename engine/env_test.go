package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

func TestEnvProblems(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // substring of the problems joined; "" for none
	}{
		{name: "posix names", env: map[string]string{"LOG_LEVEL": "debug", "_x1": ""}},
		{name: "dash and dot are taken", env: map[string]string{"my-var": "1", "a.b": "2"}},
		{name: "empty key", env: map[string]string{"": "x"}, want: "a key is empty"},
		{name: "equals in key", env: map[string]string{"A=B": "x"}, want: `key "A=B" holds '='`},
		{name: "NUL in key", env: map[string]string{"N\x00": "x"}, want: `key "N\x00" holds a NUL byte`},
		{name: "NUL in value", env: map[string]string{"V": "a\x00b"}, want: `the value of "V" holds a NUL byte`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(engine.EnvProblems(tc.env), "; ")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("EnvProblems = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecideTask_CreateRefusesBadEnv(t *testing.T) {
	_, err := engine.DecideTask(engine.Task{}, engine.CreateTask{ID: "t1", Spec: events.TaskCreated{Name: "add", Env: map[string]string{"A=B": "1"}}})
	if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), `key "A=B"`) {
		t.Fatalf("err = %v, want ErrInvalid naming the key", err)
	}
}

func TestWorkflowSpec_ValidateRefusesBadEnv(t *testing.T) {
	spec := engine.WorkflowSpec{Name: "w", Steps: []engine.StepSpec{{Name: "a", Module: "add:1", Env: map[string]string{"": "1"}}}}
	err := spec.Validate()
	if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), `step "a": env: a key is empty`) {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckFunction(t *testing.T) {
	tests := []struct {
		name    string
		fn      string
		exports []string
		want    string // "" accepted, else a substring of the refusal
	}{
		{name: "exported", fn: "add", exports: []string{"add"}},
		{name: "falls back to main", fn: "nosuch", exports: []string{"main", "helper"}},
		{name: "falls back to run", fn: "nosuch", exports: []string{"run"}},
		{name: "WASI command", fn: "anything", exports: []string{"_start"}},
		{name: "missing", fn: "ad", exports: []string{"sub", "add"}, want: `function "ad" is not exported by module m (nor is main, run or _start, which proplets fall back to); it exports "add", "sub"`},
		{name: "no functions", fn: "f", exports: nil, want: "exports no functions"},
		{name: "a fallback named", fn: "main", exports: []string{"add"}, want: `function "main" is not exported by module m (nor is run or _start,`},
		{name: "long list capped", fn: "f", exports: strings.Split("a b c d e g h i j k l m n o p q r s t u v w", " "), want: `"u" and 2 more`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := engine.CheckFunction(tc.fn, "module m", tc.exports)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
