package service_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/adapters/sealer"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/replay"
)

// newSecretService is a service with the tasks, workflows and secrets read
// models following an in-memory store, sealing with s (nil: no sealer).
func newSecretService(t *testing.T, s service.Sealer) (*service.Service, events.Store) {
	t.Helper()
	store := events.NewMemory()
	tasks, wfs, secrets := projections.NewTasks(codec), projections.NewWorkflows(codec), projections.NewSecrets(codec)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range []projections.Projection{tasks, wfs, secrets} {
		wg.Go(func() {
			if err := projections.Follow(ctx, store, p); err != nil {
				t.Errorf("follow %s: %v", p.Kind(), err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	h := service.NewHandler(store, codec, service.SystemClock{}, replay.NewSeqIDs("id-"))
	return service.New(h, tasks, nil, nil, service.WithWorkflows(wfs), service.WithSecrets(secrets, s)), store
}

func testSealer(t *testing.T) *sealer.AESGCM {
	t.Helper()
	s, err := sealer.New(bytes.Repeat([]byte{7}, sealer.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const secretValue = "s3cr3t-Value-91"

func TestService_Secrets(t *testing.T) {
	svc, store := newSecretService(t, testSealer(t))
	ctx := testCtx(t)
	v1, err := svc.SetSecret(ctx, "db", []byte("first"), "tk1")
	if err != nil || v1.Version != 1 || v1.UpdatedBy != "tk1" {
		t.Fatalf("set v1: %+v, %v", v1, err)
	}
	v2, err := svc.SetSecret(ctx, "db", []byte(secretValue), "")
	if err != nil || v2.Version != 2 {
		t.Fatalf("set v2: %+v, %v", v2, err)
	}
	if list, total := svc.ListSecrets(0, 10); total != 1 || list[0].Name != "db" || list[0].Version != 2 {
		t.Fatalf("list %+v (%d)", list, total)
	}
	got, err := svc.ResolveSecrets(ctx, []string{"db"})
	if err != nil || got["db"] != secretValue {
		t.Fatalf("resolve: %q, %v", got, err)
	}
	for _, env := range load(t, store, events.SecretAggregate("db")) {
		if bytes.Contains(env.Data, []byte(secretValue)) || bytes.Contains(env.Data, []byte("first")) {
			t.Fatalf("a value in the stored event: %s", env.Data)
		}
	}

	task, err := svc.CreateTask(ctx, events.TaskCreated{Name: "_start", ImageURL: "https://example.com/m.wasm",
		Env: map[string]string{"DB": "${secret:db}", "URL": "pg://app:${secret:db}@db"}}, nil)
	if err != nil || task.Env["DB"] != "${secret:db}" || task.Env["URL"] != "pg://app:${secret:db}@db" {
		t.Fatalf("create a task that refers to db: %+v, %v", task.Env, err)
	}

	deleted, err := svc.DeleteSecret(ctx, "db", "tk1")
	if err != nil || !deleted.Deleted || deleted.UpdatedBy != "tk1" {
		t.Fatalf("delete: %+v, %v", deleted, err)
	}
	if _, total := svc.ListSecrets(0, 10); total != 0 {
		t.Fatalf("a deleted secret is listed")
	}
	if _, err := svc.ResolveSecrets(ctx, []string{"db"}); !errors.Is(err, domain.ErrNotFound) || !strings.Contains(err.Error(), `"db"`) {
		t.Fatalf("resolve a deleted secret: %v", err)
	}
	if _, err := svc.DeleteSecret(ctx, "db", ""); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("delete again: %v", err)
	}
}

func TestService_SetSecretRefused(t *testing.T) {
	svc, _ := newSecretService(t, testSealer(t))
	long := strings.Repeat("x", engine.MaxSecretValue+1)
	tests := []struct {
		name, secret, value string
		wantErr             error
		wantMsg             string
	}{
		{"empty value", "db", "", domain.ErrInvalid, "empty"},
		{"NUL in the value", "db", "pass\x00word-hidden", domain.ErrInvalid, "NUL"},
		{"not UTF-8", "db", "pass\xffword-hidden", domain.ErrInvalid, "UTF-8"},
		{"too large", "db", long, domain.ErrInvalid, "at most"},
		{"bad name", "a.b", "v-hidden", domain.ErrInvalid, "secret name"},
		{"name too long", strings.Repeat("n", 65), "v-hidden", domain.ErrInvalid, "secret name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.SetSecret(testCtx(t), tc.secret, []byte(tc.value), "")
			checkErr(t, err, tc.wantErr)
			if !strings.Contains(err.Error(), tc.wantMsg) || len(tc.value) > 4 && strings.Contains(err.Error(), tc.value[:5]) {
				t.Fatalf("err %q: want it to say %q and not to quote the value", err, tc.wantMsg)
			}
		})
	}
	t.Run("no sealer", func(t *testing.T) {
		svc, _ := newSecretService(t, nil)
		if _, err := svc.SetSecret(testCtx(t), "db", []byte("v"), ""); !errors.Is(err, domain.ErrUnsupported) {
			t.Fatalf("set without a sealer: %v", err)
		}
	})
	t.Run("no secrets at all", func(t *testing.T) {
		bare := service.New(nil, nil, nil, nil)
		if _, err := bare.SetSecret(testCtx(t), "db", []byte("v"), ""); !errors.Is(err, domain.ErrUnsupported) {
			t.Fatalf("set: %v", err)
		}
		if _, err := bare.ResolveSecrets(testCtx(t), []string{"db"}); !errors.Is(err, domain.ErrUnsupported) {
			t.Fatalf("resolve: %v", err)
		}
	})
}

// TestService_SecretReferences: tasks and workflows that refer to a
// secret that does not exist are refused, naming it; nothing is stored.
func TestService_SecretReferences(t *testing.T) {
	svc, store := newSecretService(t, testSealer(t))
	ctx := testCtx(t)
	if _, err := svc.SetSecret(ctx, "known", []byte(secretValue), ""); err != nil {
		t.Fatal(err)
	}
	step := func(name string, env map[string]string) engine.StepSpec {
		return engine.StepSpec{Name: name, Module: "https://example.com/m.wasm", Env: env}
	}
	tests := []struct {
		name    string
		create  func() error
		wantMsg []string
	}{
		{"task: unknown secret", func() error {
			_, err := svc.CreateTask(ctx, events.TaskCreated{Name: "f", ImageURL: "https://example.com/m.wasm",
				Env: map[string]string{"A": "${secret:known}", "B": "x${secret:nope}y", "C": "${secret:other}"}}, nil)
			return err
		}, []string{`task: env refers to unknown secret "nope", "other"`}},
		{"task: bad name", func() error {
			_, err := svc.CreateTask(ctx, events.TaskCreated{Name: "f", Env: map[string]string{"A": "${secret:no way}"}}, nil)
			return err
		}, []string{"env A: ${secret:no way}"}},
		{"workflow: unknown secret", func() error {
			_, err := svc.CreateWorkflow(ctx, engine.WorkflowSpec{Name: "wf", Steps: []engine.StepSpec{
				step("a", map[string]string{"K": "${secret:known}"}), step("b", map[string]string{"K": "${secret:missing}"}),
			}}, service.WorkflowOptions{})
			return err
		}, []string{`step "b"`, `unknown secret "missing"`}},
		{"workflow: bad name", func() error {
			_, err := svc.CreateWorkflow(ctx, engine.WorkflowSpec{Name: "wf", Steps: []engine.StepSpec{step("a", map[string]string{"K": "${secret:}"})}}, service.WorkflowOptions{})
			return err
		}, []string{`step "a": env K: ${secret:}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.create()
			checkErr(t, err, domain.ErrInvalid)
			for _, m := range tc.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Fatalf("err %q: want it to say %q", err, m)
				}
			}
		})
	}
	for _, k := range []events.Kind{events.KindTask, events.KindWorkflow} {
		if seq, _ := store.LastSeq(ctx, k); seq != 0 {
			t.Fatalf("a refused create stored %s events", k)
		}
	}
	if _, err := svc.CreateWorkflow(ctx, engine.WorkflowSpec{Name: "wf", Steps: []engine.StepSpec{step("a", map[string]string{"K": "Bearer ${secret:known}"})}}, service.WorkflowOptions{}); err != nil {
		t.Fatalf("a workflow that refers to a known secret: %v", err)
	}
}
