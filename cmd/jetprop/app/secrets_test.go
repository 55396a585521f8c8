package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// secretValue is what must never leak. No part of the stack writes it
// reversed but the revenv module, so its reverse proves the module got it.
const secretValue = "Zq8-leak-CANARY-71xw"

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

// leaks reports whether b holds the secret's value, as is or in base64
// (a []byte field of a JSON document).
func leaks(b []byte) bool {
	return bytes.Contains(b, []byte(secretValue)) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString([]byte(secretValue))))
}

// syncBuffer is a log destination that several goroutines write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// secretsRig is a server with --auth on, one local proplet (on its own
// topics), a debug log kept in memory and every API answer kept.
type secretsRig struct {
	t       *testing.T
	a       *app.App
	dir     string
	token   string
	log     *syncBuffer
	mu      sync.Mutex
	answers [][]byte
}

func newSecretsRig(t *testing.T) *secretsRig {
	key := make([]byte, 32)
	rand.Read(key)
	r := &secretsRig{t: t, dir: t.TempDir(), log: &syncBuffer{}}
	cfg := testConfig(r.dir, 1)
	cfg.Auth, cfg.SecretsKey = true, base64.StdEncoding.EncodeToString(key)
	log := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.Start(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(a.Close)
	r.a = a
	b, err := os.ReadFile(app.AdminTokenPath(r.dir))
	if err != nil {
		t.Fatal(err)
	}
	r.token = strings.TrimSpace(string(b))
	return r
}

// call sends a request with the admin token, keeps the answer and checks
// its status.
func (r *secretsRig) call(method, path, contentType string, body []byte, want int) []byte {
	r.t.Helper()
	req, _ := http.NewRequest(method, r.a.HTTPURL()+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	r.mu.Lock()
	r.answers = append(r.answers, out)
	r.mu.Unlock()
	if resp.StatusCode != want {
		r.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, out)
	}
	return out
}

func (r *secretsRig) callJSON(method, path string, v any, want int) []byte {
	r.t.Helper()
	b, _ := json.Marshal(v)
	return r.call(method, path, "application/json", b, want)
}

// runTask creates a task, starts it and waits until it ends.
func (r *secretsRig) runTask(req httpapi.TaskRequest) engine.Task {
	r.t.Helper()
	created := decodeAs[httpapi.Task](r.t, r.callJSON("POST", "/tasks", req, http.StatusCreated))
	r.call("POST", "/tasks/"+created.ID+"/start", "", nil, http.StatusOK)
	return r.waitTask(created.ID)
}

func (r *secretsRig) waitTask(id string) engine.Task {
	r.t.Helper()
	var task engine.Task
	natstest.CheckFor(r.t, 20*time.Second, func() error {
		task, _ = r.a.Tasks().Get(id)
		if !task.State.Terminal() {
			return fmt.Errorf("task %s is %s", id, task.State)
		}
		return nil
	})
	r.call("GET", "/tasks/"+id, "", nil, http.StatusOK)
	r.call("GET", "/tasks/"+id+"/results", "", nil, http.StatusOK)
	return task
}

func decodeAs[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, b, err)
	}
	return v
}

// listener is an MQTT client that keeps what arrives on its topic filter.
type listener struct {
	paho.Client
	mu   sync.Mutex
	msgs []paho.Message
}

func (l *listener) got() []paho.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}

func listen(t *testing.T, url, id, user, password, filter string) *listener {
	t.Helper()
	l := &listener{}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(password).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect as %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	l.Client = c
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		l.mu.Lock()
		l.msgs = append(l.msgs, m)
		l.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return l
}

// TestApp_SecretNeverLeaks runs tasks and a workflow whose env refers to a
// secret through a real proplet, on a server with --auth on: the module
// gets the value, the start goes only to the proplet's own topic, a device
// on Propeller's shared topics never gets a task with secrets (the task
// fails, naming the secret), a secret deleted after the task was created
// fails it at dispatch, and the value is nowhere else: not in any stored
// message of any stream (the event streams replayed, every other stream
// read), not in an API answer, not in the server's log at debug level
// (engine, broker and the local proplet), not in an error, not in the
// proplet's data dir.
func TestApp_SecretNeverLeaks(t *testing.T) {
	r := newSecretsRig(t)
	a := r.a
	ctx := t.Context()
	waitDevices(t, a, 1)
	topics := wire.Topics{Tenant: "t1", Channel: "c1"}

	// A Propeller proplet, on the shared topics, listening for starts.
	_, spyKey, err := a.Service().ProvisionDevice(ctx, "spy", true)
	if err != nil {
		t.Fatal(err)
	}
	spy := listen(t, a.MQTTURL(), "spy", "spy", spyKey, topics.Topic(wire.SuffixStart))
	publish(t, spy, topics.Topic(wire.SuffixCreate), []byte(`{"proplet_id":"spy"}`))
	waitDevices(t, a, 2)
	// Whatever the engine sends to any device's own topics.
	engineUser, enginePW := a.EngineMQTT()
	own := listen(t, a.MQTTURL(), "test-own-topics", engineUser, enginePW, topics.Topic("control/manager/+/start"))

	r.callJSON("PUT", "/secrets/api_key", httpapi.SecretRequest{Value: ptr(secretValue)}, http.StatusOK)
	r.call("PUT", "/secrets/temp", "text/plain", []byte(secretValue+"-temp"), http.StatusOK)

	env := map[string]string{"API_KEY": "${secret:api_key}", "GREETING": "hi ${secret:api_key}!"}
	done := r.runTask(httpapi.TaskRequest{Name: "_start", File: wasmfixtures.RevEnv(), Env: env, PropletID: "local-0"})
	t.Run("the module got the value", func(t *testing.T) {
		var out string
		json.Unmarshal(done.Result, &out)
		if done.State != engine.TaskCompleted || !strings.Contains(out, reverse("API_KEY="+secretValue)) || !strings.Contains(out, reverse("GREETING=hi "+secretValue+"!")) {
			t.Fatalf("task %s %q: %s", done.State, done.Error, done.Result)
		}
		if done.Env["API_KEY"] != "${secret:api_key}" {
			t.Fatalf("the task's env is %q", done.Env)
		}
	})

	t.Run("the start went to the proplet's own topic only", func(t *testing.T) {
		// The listener is a client of its own: its copy may come after the
		// task has completed.
		natstest.CheckFor(t, 10*time.Second, func() error {
			msgs := own.got()
			i := slices.IndexFunc(msgs, func(m paho.Message) bool { return bytes.Contains(m.Payload(), []byte(done.ID)) })
			if i < 0 || msgs[i].Topic() != topics.Topic("control/manager/local-0/start") || !leaks(msgs[i].Payload()) {
				return fmt.Errorf("no start with the value on local-0's own topic: %d messages", len(msgs))
			}
			return nil
		})
	})

	t.Run("a device on the shared topics gets no task with secrets", func(t *testing.T) {
		failed := r.runTask(httpapi.TaskRequest{Name: "_start", File: wasmfixtures.RevEnv(), Env: env, PropletID: "spy"})
		if failed.State != engine.TaskFailed || !strings.Contains(failed.Error, `secret "api_key"`) || !strings.Contains(failed.Error, "shared topics") {
			t.Fatalf("task %s: %q", failed.State, failed.Error)
		}
		// A task without secrets goes to spy: once it is there, anything
		// sent before would be there too.
		control := decodeAs[httpapi.Task](t, r.callJSON("POST", "/tasks", httpapi.TaskRequest{Name: "_start", File: wasmfixtures.RevEnv(), PropletID: "spy"}, http.StatusCreated))
		r.call("POST", "/tasks/"+control.ID+"/start", "", nil, http.StatusOK)
		natstest.CheckFor(t, 10*time.Second, func() error {
			if n := len(spy.got()); n == 0 {
				return fmt.Errorf("spy got nothing yet")
			}
			return nil
		})
		msgs := spy.got()
		if len(msgs) != 1 || !bytes.Contains(msgs[0].Payload(), []byte(control.ID)) || leaks(msgs[0].Payload()) {
			t.Fatalf("spy got %d starts on the shared topic: %q", len(msgs), msgs[0].Payload())
		}
	})

	t.Run("a secret deleted after the task was created fails it at dispatch", func(t *testing.T) {
		created := decodeAs[httpapi.Task](t, r.callJSON("POST", "/tasks", httpapi.TaskRequest{Name: "_start", File: wasmfixtures.RevEnv(),
			Env: map[string]string{"T": "${secret:temp}"}, PropletID: "local-0"}, http.StatusCreated))
		r.call("DELETE", "/secrets/temp", "", nil, http.StatusNoContent)
		r.call("POST", "/tasks/"+created.ID+"/start", "", nil, http.StatusOK)
		failed := r.waitTask(created.ID)
		if failed.State != engine.TaskFailed || !strings.Contains(failed.Error, `secret "temp"`) || !strings.Contains(failed.Error, "not found") {
			t.Fatalf("task %s: %q", failed.State, failed.Error)
		}
	})

	t.Run("an unknown secret is refused at create time", func(t *testing.T) {
		out := r.callJSON("POST", "/tasks", httpapi.TaskRequest{Name: "_start", File: wasmfixtures.RevEnv(), Env: map[string]string{"X": "${secret:nope}"}}, http.StatusBadRequest)
		if !strings.Contains(string(out), `unknown secret \"nope\"`) {
			t.Fatalf("answer %s", out)
		}
	})

	t.Run("a workflow step gets the value", func(t *testing.T) {
		r.call("POST", "/artifacts?name=revenv&tag=1", "application/wasm", wasmfixtures.RevEnv(), http.StatusCreated)
		spec := engine.WorkflowSpec{Name: "wf", Steps: []engine.StepSpec{{Name: "a", Module: "revenv:1", Function: "_start",
			Env: map[string]string{"K": "${secret:api_key}"}, Placement: engine.StepPlacement{Device: "local-0"}}}}
		w := decodeAs[httpapi.Workflow](t, r.callJSON("POST", "/workflows", spec, http.StatusCreated))
		natstest.CheckFor(t, 20*time.Second, func() error {
			got, _ := a.Service().GetWorkflow(w.ID)
			if got.State != engine.WorkflowCompleted {
				return fmt.Errorf("workflow %s", got.State)
			}
			return nil
		})
		got := decodeAs[httpapi.Workflow](t, r.call("GET", "/workflows/"+w.ID, "", nil, http.StatusOK))
		if step, _ := got.Step("a"); !strings.Contains(string(step.Result), reverse("K="+secretValue)) {
			t.Fatalf("step a: %s %q", step.Result, step.Error)
		}
	})

	for _, path := range []string{"/tasks", "/secrets", "/events?follow=false", "/workflows", "/proplets", "/devices", "/events/quarantine"} {
		r.call("GET", path, "", nil, http.StatusOK)
	}
	t.Run("not in any stored event", func(t *testing.T) {
		for _, k := range events.Kinds() {
			n := 0
			err := a.Store().Replay(ctx, k, 1, func(e events.Envelope) error {
				n++
				if b, _ := json.Marshal(e); leaks(b) {
					t.Errorf("%s event %d (%s) holds the value: %s", k.Stream(), e.Seq, e.Type, b)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if k == events.KindSecret && n != 3 {
				t.Errorf("%d secret events, want 3 (api_key set, temp set and deleted)", n)
			}
		}
	})
	t.Run("not in any stored message of any stream", func(t *testing.T) {
		js, _ := jetstream.New(a.Conn())
		scanned, err := scanStreams(ctx, js)
		if err != nil || !slices.Contains(scanned, "SECRETS") || !slices.Contains(scanned, "EDGE_IN") {
			t.Fatalf("engine account: scanned %q: %v", scanned, err)
		}
		// The broker's own streams (MQTT sessions and messages): a start
		// is kept there until the device acknowledges it.
		djs, _ := jetstream.NewWithAPIPrefix(a.Conn(), natsserver.DevicesJSAPI)
		natstest.CheckFor(t, 10*time.Second, func() error {
			scanned, err := scanStreams(ctx, djs)
			if err == nil && !slices.Contains(scanned, "$MQTT_msgs") {
				err = fmt.Errorf("devices account: scanned %q", scanned)
			}
			return err
		})
	})
	t.Run("not in an API answer", func(t *testing.T) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, b := range r.answers {
			if leaks(b) {
				t.Errorf("an answer holds the value: %s", b)
			}
		}
	})
	t.Run("not in the log", func(t *testing.T) {
		if log := r.log.Bytes(); leaks(log) || !bytes.Contains(log, []byte("component=proplet")) {
			t.Fatalf("log (%d bytes) holds the value, or is not the whole log", len(log))
		}
	})
	t.Run("not on disk", func(t *testing.T) {
		// Everything in the data dir (the engine's streams, the local
		// proplet's journal and caches) but the broker's MQTT store, which
		// holds a start until its device acknowledges it (read above).
		devices := filepath.Join(r.dir, "jetstream", natsserver.DevicesAccount)
		filepath.WalkDir(r.dir, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case path == devices:
				return fs.SkipDir
			case !d.IsDir():
				if b, _ := os.ReadFile(path); leaks(b) {
					t.Errorf("%s holds the value", path)
				}
			}
			return nil
		})
	})
}

func ptr[T any](v T) *T { return &v }

// scanStreams reads every message of every stream js reaches and fails
// at one that holds the value; it returns the streams it read.
func scanStreams(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	var scanned []string
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return scanned, err
		}
		scanned = append(scanned, name)
		info := st.CachedInfo().State
		for seq := info.FirstSeq; seq <= info.LastSeq && info.Msgs > 0; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted
			}
			hdr, _ := json.Marshal(m.Header)
			if leaks(m.Data) || leaks(hdr) {
				return scanned, fmt.Errorf("stream %s message %d (%s) holds the value", name, seq, m.Subject)
			}
		}
	}
	return scanned, names.Err()
}
