package mqtt_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// fakeSecrets is the SecretResolver port: the values of the secrets that
// exist.
type fakeSecrets map[string]string

var _ mqtt.SecretResolver = fakeSecrets(nil)

func (f fakeSecrets) ResolveSecrets(_ context.Context, names []string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		v, ok := f[n]
		if !ok {
			return nil, fmt.Errorf("secret %q: %w", n, domain.ErrNotFound)
		}
		out[n] = v
	}
	return out, nil
}

const apiValue = "sk-live-4f9a"

// TestDispatcher_Secrets: a start puts the secrets' values in only for a
// device on its own topics, and only in the message; any other case fails
// the task with a reason that names the secret, not its value.
func TestDispatcher_Secrets(t *testing.T) {
	env := map[string]string{"API": "${secret:api}", "AUTH": "Bearer ${secret:api}", "MODE": "fast"}
	tests := []struct {
		name       string
		device     string
		env        map[string]string
		secrets    mqtt.SecretResolver
		wantTopic  string            // "": nothing sent, the task fails
		wantEnv    map[string]string // of the start sent
		wantReason []string
	}{
		{name: "own topics: resolved in the message", device: "own", env: env, secrets: fakeSecrets{"api": apiValue},
			wantTopic: "control/manager/own/start", wantEnv: map[string]string{"API": apiValue, "AUTH": "Bearer " + apiValue, "MODE": "fast"}},
		{name: "shared topics: refused", device: "legacy", env: env, secrets: fakeSecrets{"api": apiValue},
			wantReason: []string{`secret "api"`, "proplet legacy listens on Propeller's shared topics"}},
		{name: "a device the read model does not know: refused", device: "ghost", env: env, secrets: fakeSecrets{"api": apiValue},
			wantReason: []string{`secret "api"`, "shared topics"}},
		{name: "deleted since the task was created", device: "own", env: env, secrets: fakeSecrets{},
			wantReason: []string{`secret "api"`, "not found"}},
		{name: "no resolver", device: "own", env: env,
			wantReason: []string{`secret "api"`, "resolves no secrets"}},
		{name: "a bad reference", device: "own", env: map[string]string{"K": "${secret:a.b}"}, secrets: fakeSecrets{},
			wantReason: []string{"${secret:a.b}"}},
		{name: "no secrets: shared topics are fine", device: "legacy", env: map[string]string{"MODE": "fast"},
			wantTopic: wire.SuffixStart, wantEnv: map[string]string{"MODE": "fast"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rig := newDispatchRig()
			rig.devices = fakeDevices{"own": {ID: "own", OwnTopics: true}, "legacy": {ID: "legacy"}}
			rig.secrets = tc.secrets
			rig.run(t, 1)
			task := httpTask(tc.device, 1)
			task.Env = maps.Clone(tc.env)
			rig.schedule(t, task)
			calls := rig.settle(t)
			if tc.wantTopic == "" {
				checkFailed(t, calls, tc.wantReason)
				return
			}
			want := httpStart(tc.device, 1)
			want.Env = tc.wantEnv
			checkCalls(t, calls, []any{want, engine.MarkStarted{ID: "t1", Attempt: 1}})
			if got := rig.send.sentOn(); got[0] != tc.wantTopic {
				t.Fatalf("start sent on %q, want %q", got[0], tc.wantTopic)
			}
			if got, _ := rig.tasks.Get("t1"); !maps.Equal(got.Env, tc.env) {
				t.Fatalf("the task's env became %q", got.Env)
			}
		})
	}
}

// checkFailed checks that calls are one FailTask whose reason says every
// one of want and never the secret's value.
func checkFailed(t *testing.T, calls []any, want []string) {
	t.Helper()
	if len(calls) != 1 {
		t.Fatalf("calls:\n%swant one FailTask", formatCalls(calls))
	}
	fail, ok := calls[0].(engine.FailTask)
	if !ok || fail.ID != "t1" || fail.Attempt != 1 {
		t.Fatalf("calls:\n%swant one FailTask", formatCalls(calls))
	}
	if strings.Contains(fail.Reason, apiValue) {
		t.Fatalf("reason %q holds the value", fail.Reason)
	}
	for _, w := range want {
		if !strings.Contains(fail.Reason, w) {
			t.Fatalf("reason %q: want it to say %q", fail.Reason, w)
		}
	}
}
