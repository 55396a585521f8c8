package proplet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

func TestProplet_AnnouncesAndHeartbeats(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	startProplet(t, testConfig(t, s), m)

	d, err := wire.DecodeDiscovery(m.received(wire.SuffixCreate)[0])
	if err != nil {
		t.Fatal(err)
	}
	md := d.Metadata
	if d.PropletID != "proplet-1" || d.Namespace != "edge" || md.Environment != "binary" ||
		md.WasmRuntime != "wazero" || md.OS == "" || md.CPUArch == "" || md.PropletVersion != proplet.Version {
		t.Fatalf("discovery %+v", d)
	}
	alive := m.waitAlive(wire.StatusAlive, 3) // one at once, then every 100ms
	if a := alive[0]; a.PropletID != "proplet-1" || a.Namespace != "edge" {
		t.Fatalf("alive %+v", a)
	}
}

// TestProplet_HeartbeatQoS: heartbeats go at QoS 0 by default, whatever
// --mqtt-qos says (discovery keeps it), and at --heartbeat-qos when set.
// The manager subscribes at 1, so a message arrives at its publisher's
// QoS up to 1.
func TestProplet_HeartbeatQoS(t *testing.T) {
	for _, tc := range []struct {
		heartbeat, want byte
	}{{0, 0}, {1, 1}} {
		t.Run(fmt.Sprintf("heartbeat-qos%d", tc.heartbeat), func(t *testing.T) {
			s := natstest.Start(t)
			m := newManager(t, s)
			cfg := testConfig(t, s)
			cfg.QoS, cfg.HeartbeatQoS = 2, tc.heartbeat
			startProplet(t, cfg, m)
			m.waitAlive(wire.StatusAlive, 2)
			if got := m.qosOf(wire.SuffixCreate); len(got) == 0 || got[0] != 1 {
				t.Fatalf("discovery delivered at QoS %v, want 1 (published at 2)", got)
			}
			for _, q := range m.qosOf(wire.SuffixAlive) {
				if q != tc.want {
					t.Fatalf("heartbeats delivered at QoS %v, want all %d", m.qosOf(wire.SuffixAlive), tc.want)
				}
			}
		})
	}
}

// TestProplet_RunsAdd runs add(10, 20) at each QoS (2 is Propeller's default).
func TestProplet_RunsAdd(t *testing.T) {
	for _, qos := range []byte{0, 1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			s := natstest.Start(t)
			m := newManager(t, s)
			cfg := testConfig(t, s)
			cfg.QoS = qos
			startProplet(t, cfg, m)
			m.start(wire.StartRequest{ID: "t1", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"10", "20"}, Attempt: 3})
			r, raw := m.waitResult("t1")
			if r.Text() != "30" || r.Failed() || r.PropletID != "proplet-1" || r.Attempt != 3 {
				t.Fatalf("result %s", raw)
			}
			if !strings.Contains(raw, `"error":null`) {
				t.Fatalf("error not null on success: %s", raw)
			}
		})
	}
}

func TestProplet_Results(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/add.wasm":
			w.Write(wasmfixtures.Add())
		case "/huge.wasm":
			w.Write(make([]byte, 1<<20+1))
		default:
			http.NotFound(w, r)
		}
	}))
	defer web.Close()
	add, loop := wasmfixtures.Add(), wasmfixtures.Loop()
	tests := []struct {
		name    string
		req     wire.StartRequest
		want    string
		wantErr string
	}{
		{name: "inline", req: wire.StartRequest{Name: "add", File: add, Inputs: wire.Strings{"2", "3"}}, want: "5"},
		{name: "http image_url", req: wire.StartRequest{Name: "add", ImageURL: web.URL + "/add.wasm", Inputs: wire.Strings{"4", "5"}}, want: "9"},
		{name: "http not found", req: wire.StartRequest{Name: "add", ImageURL: web.URL + "/nope.wasm"}, wantErr: "404 Not Found"},
		{name: "http too large", req: wire.StartRequest{Name: "add", ImageURL: web.URL + "/huge.wasm"}, wantErr: "module too large"},
		{name: "oci image_url, no registry", req: wire.StartRequest{Name: "add", ImageURL: "docker.io/acme/add:v1"},
			wantErr: "module download stalled: no chunk of docker.io/acme/add:v1 came after 3 requests on registry/proplet"},
		{name: "bad digest", req: wire.StartRequest{Name: "add", ImageURL: "docker.io/acme/add:v1", Digest: "sha256:abc"},
			wantErr: `start digest "sha256:abc" is not sha256:<64 hex digits>`},
		{name: "registry module too large", req: wire.StartRequest{Name: "add", ImageURL: "sha256:" + strings.Repeat("ab", 32), Size: 2 << 20},
			wantErr: "module too large: sha256:abab"},
		{name: "no module", req: wire.StartRequest{Name: "add"}, wantErr: "start carries neither file nor image_url"},
		{name: "bad input", req: wire.StartRequest{Name: "add", File: add, Inputs: wire.Strings{"x", "1"}},
			wantErr: `add param 0 (i32): "x" is not a valid i32`},
		{name: "input count", req: wire.StartRequest{Name: "add", File: add, Inputs: wire.Strings{"1"}},
			wantErr: "add takes 2 params (i32, i32), got 1 inputs"},
		{name: "missing export", req: wire.StartRequest{Name: "sub", File: add}, wantErr: "function not exported"},
		{name: "invalid module", req: wire.StartRequest{Name: "add", File: wasmfixtures.Invalid()}, wantErr: "invalid wasm module"},
		{name: "wasi stdin", req: wire.StartRequest{Name: "_start", File: wasmfixtures.Uppercase(), Stdin: []byte("edge")}, want: "EDGE"},
		{name: "wasi args and env", req: wire.StartRequest{Name: "main", File: wasmfixtures.Echo(), CLIArgs: []string{"-v"}, Env: map[string]string{"K": "v"}},
			want: "-v\nK=v\n"},
		{name: "wasi exit", req: wire.StartRequest{Name: "_start", File: wasmfixtures.Fail()}, wantErr: "exit code 3: boom: bad input"},
		{name: "timeout_ms", req: wire.StartRequest{Name: "loop", File: loop, TimeoutMS: 50}, wantErr: "timeout after 50ms"},
		{name: "memory_mib", req: wire.StartRequest{Name: "run", File: wasmfixtures.BigMemory(), MemoryMiB: 1}, wantErr: "memory limit exceeded"},
		{name: "memory default", req: wire.StartRequest{Name: "run", File: wasmfixtures.BigMemory()}, want: "64"},
		{name: "latent, module does not compile", req: wire.StartRequest{Name: "add", File: wasmfixtures.Invalid(), Latent: true}, wantErr: "invalid wasm module"},
	}
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	cfg.MaxModuleMiB = 1
	startProplet(t, cfg, m)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.ID = fmt.Sprintf("task-%d", i)
			m.start(tc.req)
			r, raw := m.waitResult(tc.req.ID)
			if tc.wantErr == "" && (r.Failed() || r.Text() != tc.want) {
				t.Fatalf("result %s, want %q", raw, tc.want)
			}
			if tc.wantErr != "" && !strings.Contains(string(r.Error), tc.wantErr) {
				t.Fatalf("result %s, want error containing %q", raw, tc.wantErr)
			}
		})
	}
}

// TestProplet_IgnoresOtherProplets: a start for another proplet is not run
// (unless broadcast). The ignored start is a daemon that never ends, so had
// it been accepted it would still be running when the later task ends.
func TestProplet_IgnoresOtherProplets(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	p := startProplet(t, testConfig(t, s), m)
	loop := wasmfixtures.Loop()
	m.start(wire.StartRequest{ID: "theirs", Name: "loop", File: loop, Daemon: true, PropletID: "proplet-2"})
	m.start(wire.StartRequest{ID: "broadcast", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "1"}, PropletID: "proplet-2", Broadcast: true})
	m.start(wire.StartRequest{ID: "ours", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}, PropletID: "proplet-1"})
	if r, raw := m.waitResult("ours"); r.Text() != "3" {
		t.Fatalf("result %s", raw)
	}
	if r, raw := m.waitResult("broadcast"); r.Text() != "2" {
		t.Fatalf("result %s", raw)
	}
	if running := p.Running(); slices.Contains(running, "theirs") {
		t.Fatalf("running %v: ran another proplet's task", running)
	}
}

// TestProplet_DuplicateStartIgnored: a second start of a running task is
// ignored, so one stop ends everything and one result is published.
func TestProplet_DuplicateStartIgnored(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	p := startProplet(t, testConfig(t, s), m)
	req := wire.StartRequest{ID: "dup", Name: "loop", File: wasmfixtures.Loop(), Daemon: true}
	m.start(req)
	m.start(req)
	// Starts arrive in order; a stop (another topic) could overtake them.
	m.start(wire.StartRequest{ID: "marker", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}})
	m.waitResult("marker")
	if running := p.Running(); !slices.Equal(running, []string{"dup"}) {
		t.Fatalf("running %v, want [dup]", running)
	}
	m.stop("dup")
	natstest.CheckFor(t, wait, func() error {
		if running := p.Running(); len(running) > 0 {
			return fmt.Errorf("still running %v", running)
		}
		return nil
	})
	m.wantNoResult("dup")
}

// wantNoResult fails if a result for taskID came: on the shared topics a
// stopped task sends none (as Propeller's proplet). A task run after it
// marks the point by which its result would have come: results go out in
// the order the tasks end, and the stopped task ended first.
func (m *manager) wantNoResult(taskID string) {
	m.t.Helper()
	marker := "after-" + taskID
	m.start(wire.StartRequest{ID: marker, Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}})
	m.waitResult(marker)
	if _, raws := m.results(taskID); len(raws) != 0 {
		m.t.Fatalf("results for stopped %s: %q, want none", taskID, raws)
	}
}

// TestProplet_StopBeforeStart: a stop that reaches the proplet before its
// start (they travel on different subscriptions) still stops the task.
func TestProplet_StopBeforeStart(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	p := startProplet(t, testConfig(t, s), m)
	m.stop("early")
	m.start(wire.StartRequest{ID: "early", Name: "loop", File: wasmfixtures.Loop(), Daemon: true})
	m.wantNoResult("early") // the marker's start comes after early's: early never ran
	if running := p.Running(); len(running) != 0 {
		t.Fatalf("still running %v", running)
	}
}

func TestProplet_StopInterruptsLoop(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	p := startProplet(t, testConfig(t, s), m)
	m.start(wire.StartRequest{ID: "spin", Name: "loop", File: wasmfixtures.Loop(), Attempt: 2})
	natstest.CheckFor(t, wait, func() error {
		if !slices.Contains(p.Running(), "spin") {
			return errors.New("spin not running")
		}
		return nil
	})
	stopped := time.Now()
	m.stop("spin")
	natstest.CheckFor(t, wait, func() error {
		if running := p.Running(); len(running) != 0 {
			return fmt.Errorf("still running %v", running)
		}
		return nil
	})
	if d := time.Since(stopped); d > 2*time.Second {
		t.Fatalf("stop took %s", d)
	}
	m.wantNoResult("spin")
}

// TestProplet_PersistentSession: a start published at QoS 1 while the
// proplet is away reaches it when it comes back with the same id.
func TestProplet_PersistentSession(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	startProplet(t, cfg, m).stop(t)
	m.waitAlive(wire.StatusOffline, 1) // the clean shutdown announces itself
	// A QoS 1 message that races the broker's own cleanup of the old
	// connection is handed to it and redelivered only after the MQTT ack
	// wait (30 s): publish once the broker has let go.
	waitGone(t, s.NATS(), cfg.EntityID)

	m.start(wire.StartRequest{ID: "queued", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"20", "22"}})
	launch(t, cfg)
	if r, raw := m.waitResult("queued"); r.Text() != "42" {
		t.Fatalf("result %s", raw)
	}
}

// TestProplet_WillOnAbruptDisconnect cuts the proplet's TCP connection and
// keeps the network down: the broker publishes its last will. When the
// network is back the proplet reconnects, re-subscribes and announces itself
// again. (A reconnect that beats the broker's cleanup of the dead
// connection takes the session over, and nats-server then sends no will.)
func TestProplet_WillOnAbruptDisconnect(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	px := startProxy(t, s.MQTTAddr())
	cfg := testConfig(t, s)
	cfg.MQTTAddress = px.URL()
	startProplet(t, cfg, m)

	px.SetDown(true)
	will := m.waitAlive(wire.StatusOffline, 1)[0]
	if will.PropletID != "proplet-1" {
		t.Fatalf("will %+v", will)
	}
	px.SetDown(false)
	m.waitDiscoveries(2)
	m.start(wire.StartRequest{ID: "after", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "1"}})
	if r, raw := m.waitResult("after"); r.Text() != "2" {
		t.Fatalf("result %s", raw)
	}
}

// TestProplet_ShutdownInterruptsTasks: cancelling Run stops running tasks,
// reports them, says offline and returns.
func TestProplet_ShutdownInterruptsTasks(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	p := startProplet(t, testConfig(t, s), m)
	m.start(wire.StartRequest{ID: "daemon", Name: "loop", File: wasmfixtures.Loop(), Daemon: true})
	natstest.CheckFor(t, wait, func() error {
		if len(p.Running()) == 0 {
			return errors.New("daemon not running")
		}
		return nil
	})
	p.stop(t)
	if r, raw := m.waitResult("daemon"); string(r.Error) != proplet.ErrShutdown.Error() {
		t.Fatalf("result %s", raw)
	}
	if a := m.waitAlive(wire.StatusOffline, 1)[0]; a.PropletID != "proplet-1" {
		t.Fatalf("offline %+v", a)
	}
	if err := p.Run(context.Background()); !errors.Is(err, proplet.ErrRunTwice) {
		t.Fatalf("second Run: %v", err)
	}
}

func TestProplet_MalformedCounted(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	p := startProplet(t, testConfig(t, s), m)
	m.publish(wire.SuffixStart, []byte("{not json"))
	m.publish(wire.SuffixStart, []byte(`{"name":"add"}`)) // no id: nobody to answer
	m.publish(wire.SuffixStop, []byte(`[]`))
	m.start(wire.StartRequest{ID: "ok", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}})
	if r, raw := m.waitResult("ok"); r.Text() != "3" {
		t.Fatalf("result %s", raw)
	}
	if n := p.Malformed(); n != 3 {
		t.Fatalf("malformed %d, want 3", n)
	}
}

func TestNew_GeneratedIDPersists(t *testing.T) {
	cfg := proplet.Config{Tenant: "t", Channel: "c", DataDir: t.TempDir()}
	ids := make([]string, 2)
	for i := range ids {
		p, err := proplet.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID()
	}
	if !uuidV4.MatchString(ids[0]) || ids[0] != ids[1] {
		t.Fatalf("ids %q: want one UUID kept across restarts", ids)
	}
	saved, err := os.ReadFile(cfg.DataDir + "/proplet-id")
	if err != nil || !bytes.Equal(bytes.TrimSpace(saved), []byte(ids[0])) {
		t.Fatalf("saved id %q, %v", saved, err)
	}
}

// uuidV4 is the canonical form of a random UUID, as Propeller's manager
// parses proplet ids (uuid.Parse).
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestNew_ExistingIDKept: a data dir made before the UUID default keeps
// its id.
func TestNew_ExistingIDKept(t *testing.T) {
	cfg := proplet.Config{Tenant: "t", Channel: "c", DataDir: t.TempDir()}
	const old = "01KBQ6ZJ3M9Y5V2T8R7N4P6Q1W"
	if err := os.WriteFile(cfg.DataDir+"/proplet-id", []byte(old+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := proplet.New(cfg, nil)
	if err != nil || p.ID() != old {
		t.Fatalf("id %q, %v: want the id the data dir holds", p.ID(), err)
	}
}

func TestNew_ExternalRuntime(t *testing.T) {
	cfg := proplet.Config{Tenant: "t", Channel: "c", DataDir: t.TempDir(), ExternalRuntime: "/no/such/runtime"}
	if _, err := proplet.New(cfg, nil); err == nil {
		t.Fatal("accepted a missing external runtime")
	}
}

// TestProplet_ExternalRuntime runs tasks through an external runtime (a
// shell script standing in for wasmtime): inputs become its arguments when
// there are no cli_args, and discovery names it.
func TestProplet_ExternalRuntime(t *testing.T) {
	script := t.TempDir() + "/fake-wasmtime"
	body := "#!/bin/sh\nshift\necho \"args=$* env=$GREETING\"\n[ \"$1\" != fail ] || { echo broken >&2; exit 4; }\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	cfg.ExternalRuntime = script
	startProplet(t, cfg, m)
	if d, _ := wire.DecodeDiscovery(m.received(wire.SuffixCreate)[0]); d.Metadata.WasmRuntime != "fake-wasmtime" {
		t.Fatalf("wasm_runtime %q", d.Metadata.WasmRuntime)
	}
	add := wasmfixtures.Add()
	m.start(wire.StartRequest{ID: "inputs", Name: "add", File: add, Inputs: wire.Strings{"1", "2"}, Env: map[string]string{"GREETING": "hi"}})
	m.start(wire.StartRequest{ID: "cli", Name: "add", File: add, Inputs: wire.Strings{"1"}, CLIArgs: []string{"--x"}})
	m.start(wire.StartRequest{ID: "fails", Name: "add", File: add, CLIArgs: []string{"fail"}})
	if r, raw := m.waitResult("inputs"); r.Text() != "args=1 2 env=hi\n" {
		t.Fatalf("result %s", raw)
	}
	if r, raw := m.waitResult("cli"); r.Text() != "args=--x env=\n" {
		t.Fatalf("result %s", raw)
	}
	if r, raw := m.waitResult("fails"); string(r.Error) != "exit code 4: broken" {
		t.Fatalf("result %s", raw)
	}
}

// TestProplet_OwnTopics: with its own topics (the default) a proplet
// announces, heartbeats and answers on control/proplet/<id>/..., runs a
// start sent on control/manager/<id>/start, and hears nothing on the
// shared topics or another proplet's.
func TestProplet_OwnTopics(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	cfg.SharedTopics = false
	startProplet(t, cfg, m)
	m.waitAlive(wire.StatusAlive, 1)
	m.start(wire.StartRequest{ID: "shared", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "1"}, PropletID: "proplet-1"})
	m.startOn("proplet-2", wire.StartRequest{ID: "theirs", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}, PropletID: "proplet-1"})
	m.startOn("proplet-1", wire.StartRequest{ID: "ours", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"2", "3"}, PropletID: "proplet-1"})
	if r, raw := m.waitResult("ours"); r.Text() != "5" || r.PropletID != "proplet-1" {
		t.Fatalf("result %s", raw)
	}
	// The proplet subscribes to neither the shared topic nor another
	// proplet's: neither start can reach it.
	if rs, _ := m.results("shared"); len(rs) != 0 {
		t.Fatalf("a start on the shared topic ran: %+v", rs)
	}
	if rs, _ := m.results("theirs"); len(rs) != 0 {
		t.Fatalf("a start on another proplet's topic ran: %+v", rs)
	}
	for _, suffix := range []string{wire.SuffixCreate, wire.SuffixAlive, wire.SuffixResults} {
		for _, from := range m.senders(suffix) {
			if from != "proplet-1" {
				t.Fatalf("%s published on %q, want its own topic", suffix, from)
			}
		}
	}
}

// TestProplet_EnvNeitherLoggedNorJournaled: the env of a start may hold
// the values of secrets; the module gets it, the proplet's log (at debug
// level) and its data dir (the journal) never hold it.
func TestProplet_EnvNeitherLoggedNorJournaled(t *testing.T) {
	const value = "pl4in-s3cret-value"
	s := natstest.Start(t)
	m := newManager(t, s)
	cfg := testConfig(t, s)
	r := startProplet(t, cfg, m)
	m.start(wire.StartRequest{ID: "t1", Name: "_start", File: wasmfixtures.RevEnv(), Env: map[string]string{"API_KEY": value}})
	if res, raw := m.waitResult("t1"); res.Failed() || res.Text() != "eulav-terc3s-ni4lp=YEK_IPA\n" {
		t.Fatalf("result %s: the module did not get the env", raw)
	}
	m.start(wire.StartRequest{ID: "t2", Name: "_start", File: wasmfixtures.Fail(), Env: map[string]string{"API_KEY": value}})
	m.waitResult("t2")
	r.waitLog(t, "task ended", "t2")
	if r.log.contains(value) {
		t.Fatal("the proplet logged an env value")
	}
	err := filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(value)) {
			t.Errorf("%s holds an env value", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
