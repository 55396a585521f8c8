// Package apitest runs jetprop's HTTP API for tests over the real stack: an
// embedded nats-server, the JetStream event store, the projections kept
// current by their subscriptions, the command handler, the module store and
// the service. Stack also plays the part of proplets through the command
// handler, the way the MQTT inbound adapter records what devices say. No
// workflow process manager runs: workflows are recorded and read, their
// steps do not start.
package apitest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/adapters/sealer"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/projections"
	"github.com/jetprop/jetprop/testing/natstest"
)

// Config adjusts the stack.
type Config struct {
	ModuleMax int64            // the module store's size limit (default domain.DefaultMaxModuleSize)
	Options   []httpapi.Option // passed to httpapi.New
	Auth      bool             // require bearer tokens (httpapi.WithAuth); Stack.Token makes them

	// Importer, when set, builds the service's OCI importer over the
	// stack's module store (e.g. app.NewImporter); without it imports and
	// exports answer 501.
	Importer func(modules *artifacts.Store) (service.Importer, error)

	// Server, when set, is the nats-server the stack runs on (another
	// stack's, to run two engines on one JetStream); default: a new one.
	Server *natsserver.Server
	// ReadTimeout, when set, is the service's (service.WithReadTimeout).
	ReadTimeout time.Duration
}

// Stack is a running API and what it is built from.
type Stack struct {
	URL        string // base URL of the API
	Server     *natsserver.Server
	Store      *events.JetStream
	Quarantine *events.Quarantine // shared by the store, the projections and the handler
	Handler    *service.Handler
	Service    *service.Service
	Tasks      *projections.Tasks
	Devices    *projections.Devices
	Artifacts  *projections.Artifacts
	Workflows  *projections.Workflows
	Tokens     *projections.Tokens
	Secrets    *projections.Secrets
	Sealer     *sealer.AESGCM // with a random key
	Modules    *artifacts.Store

	ctx context.Context // cancelled at cleanup
	wg  sync.WaitGroup
}

// Timeout bounds every wait of the helpers.
const Timeout = 10 * time.Second

// Start builds the stack; everything stops at the test's cleanup.
func Start(t testing.TB, cfg Config) *Stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stack{ctx: ctx}
	srv := cfg.Server
	if srv == nil {
		srv = natstest.Start(t)
	}
	s.Server = srv
	nc, js := natstest.Connect(t, srv)
	t.Cleanup(func() { cancel(); s.wg.Wait() }) // before the connection closes
	var err error
	s.Quarantine = events.NewQuarantine()
	if s.Store, err = events.NewJetStream(ctx, nc, events.StreamOptions{}, events.WithQuarantine(s.Quarantine)); err != nil {
		t.Fatal(err)
	}
	if s.Modules, err = artifacts.New(ctx, js, artifacts.Options{MaxSize: cfg.ModuleMax}); err != nil {
		t.Fatal(err)
	}
	codec, held := events.DefaultCodec(), projections.WithQuarantine(s.Quarantine)
	s.Tasks, s.Devices = projections.NewTasks(codec, held), projections.NewDevices(codec, held)
	s.follow(t, s.Tasks)
	s.follow(t, s.Devices)
	s.Artifacts = projections.NewArtifacts(codec, held)
	s.follow(t, s.Artifacts)
	s.Workflows = projections.NewWorkflows(codec, held)
	s.follow(t, s.Workflows)
	s.Tokens = projections.NewTokens(codec, held)
	s.follow(t, s.Tokens)
	s.Secrets = projections.NewSecrets(codec, held)
	s.follow(t, s.Secrets)
	key := make([]byte, sealer.KeySize)
	_, _ = rand.Read(key)
	if s.Sealer, err = sealer.New(key); err != nil {
		t.Fatal(err)
	}
	s.Handler = service.NewHandler(s.Store, codec, service.SystemClock{}, service.NewULIDs(), service.WithQuarantine(s.Quarantine))
	opts := []service.ServiceOption{service.WithArtifacts(s.Artifacts), service.WithWorkflows(s.Workflows), service.WithTokens(s.Tokens),
		service.WithSecrets(s.Secrets, s.Sealer), service.WithReadTimeout(cfg.ReadTimeout)}
	if cfg.Importer != nil {
		imp, err := cfg.Importer(s.Modules)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, service.WithImporter(imp))
	}
	s.Service = service.New(s.Handler, s.Tasks, s.Devices, s.Modules, opts...)
	apiOpts := cfg.Options
	if cfg.Auth {
		apiOpts = append(slices.Clip(apiOpts), httpapi.WithAuth())
	}
	ts := httptest.NewServer(httpapi.New(s.Service, s.Store, apiOpts...))
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

// follow catches p up and keeps it current until cleanup.
func (s *Stack) follow(t testing.TB, p projections.Projection) {
	t.Helper()
	if err := projections.Catchup(s.ctx, s.Store, p); err != nil {
		t.Fatal(err)
	}
	s.wg.Go(func() {
		if err := projections.Follow(s.ctx, s.Store, p); err != nil {
			t.Errorf("follow %s: %v", p.Kind(), err)
		}
	})
}

// Token creates an API token with role and returns its secret.
func (s *Stack) Token(t testing.TB, role domain.Role) string {
	t.Helper()
	tok, err := s.Service.CreateToken(s.ctx, "test "+string(role), role, "")
	if err != nil {
		t.Fatalf("create a %s token: %v", role, err)
	}
	return tok.Secret
}

// Announce makes proplet id known and alive, as its discovery message does.
func (s *Stack) Announce(t testing.TB, id string) {
	t.Helper()
	d, err := s.Handler.Device(s.ctx, engine.Announce{ID: id})
	if err != nil {
		t.Fatalf("announce %s: %v", id, err)
	}
	s.waitFor(t, s.Devices, d.Seq)
}

// Record records a result for the task's current attempt, as a proplet's
// results message does: result is sent as a JSON string; a non-empty
// errMsg fails the task.
func (s *Stack) Record(t testing.TB, taskID, result, errMsg string) engine.Task {
	t.Helper()
	raw, _ := json.Marshal(result)
	cur, ok := s.Tasks.Get(taskID)
	if !ok {
		t.Fatalf("record result of %s: no such task", taskID)
	}
	task, err := s.Handler.Task(s.ctx, engine.RecordResult{ID: taskID, Device: cur.Device, Result: raw, Error: errMsg})
	if err != nil {
		t.Fatalf("record result of %s: %v", taskID, err)
	}
	s.waitFor(t, s.Tasks, task.Seq)
	return task
}

// Respond answers every attempt scheduled from now on, until cleanup, with
// what fn returns for the task (ID, device and attempt are filled in); an
// attempt for which fn returns false gets no answer.
func (s *Stack) Respond(t testing.TB, fn func(engine.Task) (engine.RecordResult, bool)) {
	t.Helper()
	from := s.Tasks.LastSeq() + 1
	s.wg.Go(func() {
		err := s.Store.Subscribe(s.ctx, events.KindTask, from, func(e events.Envelope) error {
			if e.Type != (events.TaskScheduled{}).EventType() {
				return nil
			}
			return s.respond(e, fn)
		})
		if s.ctx.Err() == nil {
			t.Errorf("respond: %v", err)
		}
	})
}

func (s *Stack) respond(e events.Envelope, fn func(engine.Task) (engine.RecordResult, bool)) error {
	var sched events.TaskScheduled
	if err := json.Unmarshal(e.Data, &sched); err != nil {
		return err
	}
	if err := s.Tasks.WaitFor(s.ctx, e.Seq); err != nil {
		return err
	}
	task, ok := s.Tasks.Get(e.Aggregate.ID)
	if !ok {
		return nil // deleted meanwhile
	}
	cmd, ok := fn(task)
	if !ok {
		return nil
	}
	cmd.ID, cmd.Device, cmd.Attempt = task.ID, sched.Device, sched.Attempt
	_, err := s.Handler.Task(s.ctx, cmd)
	if errors.Is(err, domain.ErrStale) {
		return nil // stopped or rescheduled meanwhile
	}
	return err
}

func (s *Stack) waitFor(t testing.TB, p interface {
	WaitFor(context.Context, uint64) error
}, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, Timeout)
	defer cancel()
	if err := p.WaitFor(ctx, seq); err != nil {
		t.Fatal(err)
	}
}
