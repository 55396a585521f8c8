package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

// attackRig is a server with a real proplet, alice, running a task the
// attacks go after, and the credentials an attacker may hold.
type attackRig struct {
	a       *app.App
	m       *mosquitto
	topics  wire.Topics
	auth    bool
	alice   string // a real jetprop proplet on its own topics
	running string // a daemon task running on alice during the attacks
	done    string // a task alice completed before them
	// With auth on: mallory is a provisioned device the attacker owns, bob
	// a provisioned legacy (Propeller) device, and aliceKey alice's key.
	malloryKey, bobKey, aliceKey string
}

func newAttackRig(t *testing.T, auth bool) *attackRig {
	t.Helper()
	r := &attackRig{m: newMosquitto(t), topics: wire.Topics{Tenant: tenant, Channel: channel}, auth: auth, alice: "alice"}
	a, err := app.Start(context.Background(), app.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSPort: -1, MQTTPort: -1,
		Tenant: tenant, Channel: channel, Replicas: 1, MaxModule: 100 << 20,
		Liveness: 30 * time.Second, LogLevel: "info", Auth: auth,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	r.a = a
	r.m.host, r.m.port = hostPort(t, a.MQTTURL())
	cfg := proplet.Config{MQTTAddress: a.MQTTURL(), Tenant: tenant, Channel: channel, EntityID: r.alice,
		DataDir: t.TempDir(), QoS: 1, Liveliness: 200 * time.Millisecond}
	if auth {
		r.aliceKey = r.provision(t, r.alice, false)
		r.malloryKey = r.provision(t, "mallory", false)
		r.bobKey = r.provision(t, "bob", true)
		cfg.APIKey = r.aliceKey
	}
	runProplet(t, cfg)
	natstest.CheckFor(t, 20*time.Second, func() error {
		if d, _ := a.Devices().Get(r.alice); !d.State.Up() {
			return fmt.Errorf("alice is %s", d.State)
		}
		return nil
	})
	r.done = r.runTask(t, wasmfixtures.Add(), "add", []string{"1", "2"}, false)
	r.waitTask(t, r.done, engine.TaskCompleted)
	r.running = r.runTask(t, wasmfixtures.Loop(), "loop", nil, true)
	r.waitTask(t, r.running, engine.TaskRunning)
	return r
}

func (r *attackRig) provision(t *testing.T, id string, legacy bool) string {
	t.Helper()
	_, key, err := r.a.Service().ProvisionDevice(context.Background(), id, legacy)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func runProplet(t *testing.T, cfg proplet.Config) {
	t.Helper()
	p, err := proplet.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (r *attackRig) runTask(t *testing.T, module []byte, name string, inputs []string, daemon bool) string {
	t.Helper()
	ctx := context.Background()
	task, err := r.a.Service().CreateTask(ctx, events.TaskCreated{Name: name, Inputs: inputs, Daemon: daemon, TargetDevice: r.alice}, bytes.NewReader(module))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.a.Service().StartTask(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	return task.ID
}

func (r *attackRig) waitTask(t *testing.T, id string, state engine.TaskState) engine.Task {
	t.Helper()
	var task engine.Task
	natstest.CheckFor(t, 20*time.Second, func() error {
		task, _ = r.a.Tasks().Get(id)
		if task.State != state {
			return fmt.Errorf("task %s is %s, want %s (%s)", id, task.State, state, task.Error)
		}
		return nil
	})
	return task
}

// eventLog is every message of every event stream, hashed.
func (r *attackRig) eventLog(t *testing.T) string {
	t.Helper()
	js, err := jetstream.New(r.a.Conn())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, k := range events.Kinds() {
		st, err := js.Stream(context.Background(), k.Stream())
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d %d\n", k.Stream(), info.State.FirstSeq, info.State.LastSeq)
		for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(context.Background(), seq)
			if err != nil {
				t.Fatal(err)
			}
			keys := make([]string, 0, len(m.Header))
			for k := range m.Header {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			fmt.Fprintf(h, "%d %s", seq, m.Subject)
			for _, k := range keys {
				fmt.Fprintf(h, " %s=%v", k, m.Header[k])
			}
			fmt.Fprintf(h, " %x\n", m.Data)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// outcome is what became of an attempt.
type outcome int

const (
	refused    outcome = iota // the broker refused the connection
	denied                    // connected, but the subscription was refused
	dropped                   // connected and "sent" (MQTT 3.1.1 cannot say otherwise); nothing may come of it
	subscribed                // connected and subscribed (nothing came within -W)
)

var outcomeNames = [...]string{"refused", "denied", "dropped", "subscribed"}

func (o outcome) String() string { return outcomeNames[o] }

// attempt runs a mosquitto client and classifies what the broker did.
func (r *attackRig) attempt(t *testing.T, bin string, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	var text string
	// In dev mode an attack that takes alice's client id kicks her proplet
	// off, and the proplet's reconnect kicks the attacker off in turn: a
	// publish caught in between sees its connection lost, with no answer
	// from the broker. That race is tried again, a few times; a broker
	// that closes the connection every time still fails the test below.
	for try := 1; ; try++ {
		cmd := exec.CommandContext(ctx, bin, append(r.m.common(), args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err = cmd.Run()
		text = out.String()
		if try == takeoverTries || !strings.Contains(text, "The connection was lost") {
			break
		}
		t.Logf("try %d: %s", try, strings.TrimSpace(text))
	}
	switch {
	case strings.Contains(text, "not authorised") || strings.Contains(text, "Connection Refused"):
		return refused
	case strings.Contains(text, "denied"):
		return denied
	case err != nil:
		var exit *exec.ExitError
		if errors.As(err, &exit) && bin == r.m.subBin && exit.ExitCode() == 27 { // -W timeout: nothing came
			return subscribed
		}
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, text)
	}
	return dropped
}

// takeoverTries bounds the tries of an attack whose connection is lost
// to a session takeover (attempt).
const takeoverTries = 3

// creds are mosquitto's credential options for a device.
func creds(id, key string) []string {
	if key == "" {
		return []string{"-i", id}
	}
	return []string{"-i", id, "-u", id, "-P", key}
}

func result(task, device string) string {
	return fmt.Sprintf(`{"task_id":%q,"proplet_id":%q,"results":"pwned","error":null}`, task, device)
}

// mqttAttack is one attack with mosquitto_pub or mosquitto_sub.
type mqttAttack struct {
	name string
	sub  bool     // mosquitto_sub (bounded by -W), else mosquitto_pub
	args []string // after the connection options
	want outcome  // with --auth on
	dev  outcome  // in dev mode (mallory and bob are anonymous there)
}

func (r *attackRig) mqttAttacks() []mqttAttack {
	tp := r.topics.Topic
	own := func(suffix, dev string) string { return tp(wire.OwnTopic(suffix, dev)) }
	start := fmt.Sprintf(`{"id":%q,"name":"add","image_url":"evil.example/pwn:1","proplet_id":"alice"}`, r.running)
	mallory, bob := creds("mallory", r.malloryKey), creds("bob", r.bobKey)
	pub := func(c []string, topic, payload string, more ...string) []string {
		return append(append(append([]string{}, c...), "-q", "1", "-t", topic, "-m", payload), more...)
	}
	sub := func(c []string, topic string) []string {
		return append(append([]string{}, c...), "-q", "1", "-t", topic, "-W", "2", "-C", "1")
	}
	anon := []string{"-i", "anon"}
	return []mqttAttack{
		{name: "anonymous: write an event into TASKS", args: pub(anon, "jp/evt/task/x", `{}`), want: refused, dev: dropped},
		{name: "anonymous: purge TASKS through the JetStream API", args: pub(anon, "$JS/API/STREAM/PURGE/TASKS", `{}`), want: refused, dev: dropped},
		{name: "anonymous: delete TIMERS", args: pub(anon, "$JS/API/STREAM/DELETE/TIMERS", ``), want: refused, dev: dropped},
		{name: "anonymous: read everything", sub: true, args: sub(anon, "#"), want: refused, dev: denied},
		{name: "anonymous: a forged result for alice's task", args: pub(anon, tp(wire.SuffixResults), result(r.running, "alice")), want: refused, dev: dropped},
		{name: "anonymous: a retained forged start", args: pub(anon, tp(wire.SuffixStart), start, "-r"), want: refused, dev: dropped},
		{name: "alice's client id without her key: take her session over", args: pub([]string{"-i", "alice", "-u", "alice"}, own(wire.SuffixAlive, "alice"), `{"proplet_id":"alice","status":"offline"}`), want: refused, dev: dropped},
		{name: "alice's client id with mallory's key", args: pub([]string{"-i", "alice", "-u", "mallory", "-P", r.malloryKey}, own(wire.SuffixAlive, "alice"), `{}`), want: refused, dev: dropped},
		{name: "alice's id with a wrong key", args: pub([]string{"-i", "alice", "-u", "alice", "-P", "jpd_guess"}, own(wire.SuffixAlive, "alice"), `{}`), want: refused, dev: dropped},
		{name: "mallory: write an event into TASKS", args: pub(mallory, "jp/evt/task/x", `{}`), want: dropped, dev: dropped},
		{name: "mallory: purge TASKS", args: pub(mallory, "$JS/API/STREAM/PURGE/TASKS", `{}`), want: dropped, dev: dropped},
		{name: "mallory: delete TIMERS", args: pub(mallory, "$JS/API/STREAM/DELETE/TIMERS", ``), want: dropped, dev: dropped},
		{name: "mallory: delete the devices' MQTT sessions", args: pub(mallory, "$JS/API/STREAM/DELETE/$MQTT_sess", ``), want: dropped, dev: dropped},
		{name: "mallory: read everything", sub: true, args: sub(mallory, "#"), want: denied, dev: denied},
		{name: "mallory: read alice's starts", sub: true, args: sub(mallory, own(wire.SuffixStart, "alice")), want: denied, dev: subscribed},
		{name: "mallory: read the shared starts", sub: true, args: sub(mallory, tp(wire.SuffixStart)), want: denied, dev: subscribed},
		{name: "mallory: read what devices report", sub: true, args: sub(mallory, tp("control/proplet/#")), want: denied, dev: denied},
		{name: "mallory: read the engine's inboxes", sub: true, args: sub(mallory, "_INBOX/#"), want: denied, dev: denied},
		{name: "mallory: read the system account", sub: true, args: sub(mallory, "$SYS/#"), want: denied, dev: denied},
		{name: "mallory: a result on the shared topic for alice's task", args: pub(mallory, tp(wire.SuffixResults), result(r.running, "alice")), want: dropped, dev: dropped},
		{name: "mallory: a result on alice's topic", args: pub(mallory, own(wire.SuffixResults, "alice"), result(r.running, "alice")), want: dropped, dev: dropped},
		{name: "mallory: a result on her own topic naming alice", args: pub(mallory, own(wire.SuffixResults, "mallory"), result(r.running, "alice")), want: dropped, dev: dropped},
		{name: "mallory: a result on her own topic for alice's task", args: pub(mallory, own(wire.SuffixResults, "mallory"), result(r.running, "mallory")), want: dropped, dev: dropped},
		{name: "mallory: a retained start on alice's topic", args: pub(mallory, own(wire.SuffixStart, "alice"), start, "-r"), want: dropped, dev: dropped},
		{name: "mallory: a retained start on the shared topic", args: pub(mallory, tp(wire.SuffixStart), start, "-r"), want: dropped, dev: dropped},
		{name: "mallory: stop alice's task", args: pub(mallory, own(wire.SuffixStop, "alice"), fmt.Sprintf(`{"id":%q}`, r.running)), want: dropped, dev: dropped},
		{name: "mallory: alice's last will", args: pub(mallory, own(wire.SuffixAlive, "alice"), `{"proplet_id":"alice","status":"offline"}`), want: dropped, dev: dropped},
		{name: "mallory: alice offline on the shared topic", args: pub(mallory, tp(wire.SuffixAlive), `{"proplet_id":"alice","status":"offline"}`), want: dropped, dev: dropped},
		{name: "mallory: chunks for alice", args: pub(mallory, tp(wire.PropletChunkTopic("alice")), `{"app_name":"x","chunk_idx":0,"total_chunks":1,"data":"AA=="}`), want: dropped, dev: dropped},
		{name: "mallory: another tenant's topics", args: pub(mallory, "m/other/c/x/control/proplet/mallory/results", result(r.running, "mallory")), want: dropped, dev: dropped},
		{name: "bob (legacy): write an event into TASKS", args: pub(bob, "jp/evt/task/x", `{}`), want: dropped, dev: dropped},
		{name: "bob (legacy): read alice's starts", sub: true, args: sub(bob, own(wire.SuffixStart, "alice")), want: denied, dev: subscribed},
		{name: "bob (legacy): a result for alice's task as himself", args: pub(bob, tp(wire.SuffixResults), result(r.running, "bob")), want: dropped, dev: dropped},
	}
}

// TestAttacks_AuthOn runs every attack against a server with --auth on,
// with mosquitto clients nobody here wrote and nats.go: each is refused or
// comes to nothing, the event log is byte for byte what it was, and the
// tasks end as they should.
func TestAttacks_AuthOn(t *testing.T) {
	skipShort(t)
	r := newAttackRig(t, true)
	before := r.eventLog(t)
	for _, at := range r.mqttAttacks() {
		t.Run(at.name, func(t *testing.T) {
			bin := r.m.pubBin
			if at.sub {
				bin = r.m.subBin
			}
			if got := r.attempt(t, bin, at.args...); got != at.want {
				t.Fatalf("%s, want %s", got, at.want)
			}
		})
	}
	r.natsAttacks(t)
	r.settled(t)
	if after := r.eventLog(t); after != before {
		t.Fatal("the event log changed")
	}
	if task, _ := r.a.Tasks().Get(r.running); task.State != engine.TaskRunning {
		t.Fatalf("alice's task is %s after the attacks", task.State)
	}
	if _, err := r.a.Service().StopTask(context.Background(), r.running); err != nil {
		t.Fatal(err)
	}
	r.waitTask(t, r.running, engine.TaskStopped)
	r.waitTask(t, r.runTask(t, wasmfixtures.Add(), "add", []string{"20", "22"}, false), engine.TaskCompleted)
	if d, _ := r.a.Devices().Get(r.alice); !d.State.Up() {
		t.Fatalf("alice is %s after the attacks", d.State)
	}
}

// settled waits until the engine has handled every message devices got
// into EDGE_IN: an attack that got through would be in the event log then.
func (r *attackRig) settled(t *testing.T) {
	t.Helper()
	js, err := jetstream.New(r.a.Conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	natstest.CheckFor(t, 20*time.Second, func() error {
		st, err := js.Stream(ctx, mqtt.EdgeStream)
		if err != nil {
			return err
		}
		cons, err := st.Consumer(ctx, mqtt.EdgeConsumer)
		if err != nil {
			return err
		}
		ci, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if last := st.CachedInfo().State.LastSeq; ci.AckFloor.Stream < last || ci.NumAckPending > 0 {
			return fmt.Errorf("EDGE_IN at %d, the engine has handled up to %d", last, ci.AckFloor.Stream)
		}
		return nil
	})
}

// natsAttacks go through the NATS port: it admits the engine and
// provisioned devices, and a device there has its topics and nothing else.
func (r *attackRig) natsAttacks(t *testing.T) {
	url := r.a.NATSURL()
	t.Run("NATS: anonymous", func(t *testing.T) {
		if nc, err := nats.Connect(url); err == nil {
			nc.Close()
			t.Fatal("connected")
		}
	})
	t.Run("NATS: the engine's user with a guessed password", func(t *testing.T) {
		if nc, err := nats.Connect(url, nats.UserInfo("jetprop-engine", "guess")); err == nil {
			nc.Close()
			t.Fatal("connected")
		}
	})
	t.Run("NATS: mallory's credentials", func(t *testing.T) {
		violations := make(chan error, 16)
		nc, err := nats.Connect(url, nats.UserInfo("mallory", r.malloryKey), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			violations <- err
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		for _, subj := range []string{"jp.evt.task.x", "$JS.API.STREAM.PURGE.TASKS", "m.x.c.y.control.manager.alice.start"} {
			if err := nc.Publish(subj, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-violations:
				if !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(err.Error(), "Permissions Violation") {
					t.Fatalf("%s: %v", subj, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("publish to %s was not refused", subj)
			}
		}
		if _, err := nc.Request("$JS.API.STREAM.LIST", nil, 2*time.Second); err == nil {
			t.Fatal("listed the streams")
		}
	})
}

// TestAttacks_Revoke: a revoked device cannot connect again and loses the
// connection it has.
func TestAttacks_Revoke(t *testing.T) {
	skipShort(t)
	r := newAttackRig(t, true)
	key := r.provision(t, "eve", false)
	lost := make(chan time.Time, 1)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(r.a.MQTTURL()).SetClientID("eve").SetUsername("eve").SetPassword(key).
		SetAutoReconnect(false).SetConnectionLostHandler(func(paho.Client, error) { lost <- time.Now() }))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("eve cannot connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	at := time.Now()
	if _, err := r.a.Service().RevokeDevice(context.Background(), "eve", "stolen"); err != nil {
		t.Fatal(err)
	}
	select {
	case when := <-lost:
		t.Logf("revoke → connection closed: %s", when.Sub(at).Round(time.Microsecond))
	case <-time.After(20 * time.Second):
		t.Fatal("the revoked device is still connected")
	}
	if got := r.attempt(t, r.m.pubBin, append(creds("eve", key), "-t", r.topics.Topic(wire.OwnTopic(wire.SuffixAlive, "eve")), "-m", `{}`)...); got != refused {
		t.Fatalf("a revoked device connected again (%s)", got)
	}
}

// TestAttacks_DevMode runs the same attacks against a server in dev mode
// and shows what it still refuses — the event log's streams, the engine's
// subjects, other tenants, reading what devices report, publishing what
// only the engine sends — and what it allows: any client may speak as
// any device on the device topics, results included, and take a device's
// client id (docs/ARCHITECTURE.md, "Devices and their identity").
func TestAttacks_DevMode(t *testing.T) {
	skipShort(t)
	r := newAttackRig(t, false)
	for _, at := range r.mqttAttacks() {
		t.Run(at.name, func(t *testing.T) {
			bin := r.m.pubBin
			if at.sub {
				bin = r.m.subBin
			}
			if got := r.attempt(t, bin, at.args...); got != at.dev {
				t.Fatalf("%s, want %s", got, at.dev)
			}
		})
	}
	t.Run("NATS: anonymous", func(t *testing.T) {
		if nc, err := nats.Connect(r.a.NATSURL()); err == nil {
			nc.Close()
			t.Fatal("connected")
		}
	})
	r.settled(t)
	// What dev mode allows: a forged result completed alice's task.
	task := r.waitTask(t, r.running, engine.TaskCompleted)
	if string(task.Result) != `"pwned"` {
		t.Fatalf("alice's task ended with %s", task.Result)
	}
	// What it does not: nothing was written into, purged from or deleted
	// of the event log's streams but by the engine.
	if q := r.a.Quarantine(); q.Len() != 0 || len(q.Streams()) != 0 {
		t.Fatalf("the event log was written to: %d quarantined, streams %+v", q.Len(), q.Streams())
	}
	js, err := jetstream.New(r.a.Conn())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"TASKS", "TIMERS"} {
		st, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if first := st.CachedInfo().State.FirstSeq; name == "TASKS" && first != 1 {
			t.Fatalf("TASKS was purged: first sequence %d", first)
		}
	}
}
