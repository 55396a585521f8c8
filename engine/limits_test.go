package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// TestDecideTask_Limits: a create asking for memory or time no proplet can
// give is refused, naming the bound, and changes nothing.
func TestDecideTask_Limits(t *testing.T) {
	tests := []struct {
		name    string
		spec    events.TaskCreated
		wantErr error
		wantMsg string
	}{
		{name: "memory at wasm32's maximum", spec: events.TaskCreated{Name: "f", MemoryMiB: 4096}},
		{name: "memory above wasm32", spec: events.TaskCreated{Name: "f", MemoryMiB: 4097},
			wantErr: domain.ErrInvalid, wantMsg: "memory_mib 4097 is above wasm32's maximum of 4096 MiB"},
		{name: "memory 100000 MiB", spec: events.TaskCreated{Name: "f", MemoryMiB: 100000},
			wantErr: domain.ErrInvalid, wantMsg: "maximum of 4096 MiB"},
		{name: "negative memory", spec: events.TaskCreated{Name: "f", MemoryMiB: -1},
			wantErr: domain.ErrInvalid, wantMsg: "must not be negative"},
		{name: "timeout at the maximum", spec: events.TaskCreated{Name: "f", TimeoutMS: engine.MaxTaskTimeout.Milliseconds()}},
		{name: "timeout above the maximum", spec: events.TaskCreated{Name: "f", TimeoutMS: engine.MaxTaskTimeout.Milliseconds() + 1},
			wantErr: domain.ErrInvalid, wantMsg: "above the maximum of 2592000000 (720h0m0s)"},
		{name: "timeout that would overflow", spec: events.TaskCreated{Name: "f", TimeoutMS: 1<<63 - 1},
			wantErr: domain.ErrInvalid, wantMsg: "timeout_ms 9223372036854775807 is above the maximum"},
		{name: "negative timeout", spec: events.TaskCreated{Name: "f", TimeoutMS: -1},
			wantErr: domain.ErrInvalid, wantMsg: "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.DecideTask(engine.Task{}, engine.CreateTask{ID: "t1", Spec: tc.spec})
			if tc.wantErr == nil {
				if err != nil || len(got) != 1 {
					t.Fatalf("events %v, err %v; want the task created", got, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) || got != nil {
				t.Fatalf("events %v, err %v; want none and %v containing %q", got, err, tc.wantErr, tc.wantMsg)
			}
		})
	}
}

func TestWorkflowSpec_StepTimeoutLimit(t *testing.T) {
	spec := func(timeout string) engine.WorkflowSpec {
		return engine.WorkflowSpec{Name: "wf", Steps: []engine.StepSpec{{Name: "a", Module: "m:1", Timeout: timeout}}}
	}
	if err := spec("720h").Validate(); err != nil {
		t.Fatalf("720h refused: %v", err)
	}
	err := spec("721h").Validate()
	if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), `timeout "721h" is above the maximum of 720h0m0s`) {
		t.Fatalf("721h: %v", err)
	}
}
