package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/examples"
	"github.com/jetprop/jetprop/testing/natstest"
)

// TestMQTT_Conformance talks to jetprop's MQTT listener (nats-server's)
// with mosquitto_pub and mosquitto_sub, MQTT 3.1.1 clients nobody here
// wrote, playing a Propeller proplet: client id and username are the
// proplet id, payloads are Propeller's JSON. The server runs in process
// (app.Start), so the inbound counters can be read.
func TestMQTT_Conformance(t *testing.T) {
	skipShort(t)
	m := newMosquitto(t)
	a := startApp(t)
	m.host, m.port = hostPort(t, a.MQTTURL())
	m.engineUser, m.enginePass = a.EngineMQTT()
	c := client.New(a.HTTPURL(), &http.Client{Timeout: 10 * time.Second})
	topics := wire.Topics{Tenant: tenant, Channel: channel}

	t.Run("discovery and alive make a device with its metadata", func(t *testing.T) {
		const id = "mosq-discovery"
		discovery := `{"proplet_id":"mosq-discovery","namespace":"ns-e2e","metadata":{"description":"a mosquitto proplet",
			"tags":["edge","zephyr"],"location":"lab","ip":"10.0.0.7","environment":"embedded","os":"zephyr","hostname":"board-7",
			"cpu_arch":"riscv32","total_memory_bytes":"524288","proplet_version":"0.5.0","wasm_runtime":"wamr"}}`
		m.pub(t, id, 2, topics.Topic(wire.SuffixCreate), discovery) // Propeller's default QoS
		m.pub(t, id, 2, topics.Topic(wire.SuffixAlive), `{"proplet_id":"mosq-discovery","status":"alive","namespace":"ns-e2e"}`)
		p := waitProplet(t, c, id, "alive", 10*time.Second)
		want := events.DeviceMetadata{
			Description: "a mosquitto proplet", Tags: []string{"edge", "zephyr"}, Location: "lab", IP: "10.0.0.7",
			Environment: "embedded", OS: "zephyr", Hostname: "board-7", CPUArch: "riscv32",
			TotalMemoryBytes: 524288, PropletVersion: "0.5.0", WasmRuntime: "wamr",
		}
		if !p.Alive || p.Namespace != "ns-e2e" || !reflect.DeepEqual(p.Metadata, want) {
			t.Fatalf("GET /proplets/%s: %s", id, jsonOf(p))
		}
	})

	t.Run("a start waits in a persistent QoS 1 session; a result completes the task", func(t *testing.T) {
		const id = "mosq-worker"
		m.pub(t, id, 1, topics.Topic(wire.SuffixCreate), `{"proplet_id":"mosq-worker","metadata":{}}`)
		waitProplet(t, c, id, "announced", 10*time.Second)
		start := topics.Topic(wire.SuffixStart)
		// Subscribe with a persistent session, then leave: the start is
		// published while the proplet is away.
		m.sub(t, "-c", "-i", id, "-u", id, "-q", "1", "-t", start, "-E")

		module := examples.Add()
		body := fmt.Sprintf(`{"name":"add","file":%q,"inputs":[10,"20"],"proplet_id":%q}`, base64.StdEncoding.EncodeToString(module), id)
		taskID := postTask(t, a.HTTPURL(), body)
		if _, err := c.StartTask(context.Background(), taskID); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, c, taskID, "running", 10*time.Second)

		got := m.sub(t, "-c", "-i", id, "-u", id, "-q", "1", "-t", start, "-C", "1", "-W", "20")
		checkStart(t, got, taskID, id, module)

		result := fmt.Sprintf(`{"task_id":%q,"proplet_id":%q,"results":"42","error":null}`, taskID, id)
		m.pub(t, id, 2, topics.Topic(wire.SuffixResults), result, "-c") // the proplet's own session, as a proplet would
		task := waitStatus(t, c, taskID, "completed", 10*time.Second)
		if string(task.Results) != `"42"` || task.Error != "" || task.PropletID != id {
			t.Fatalf("task after the result: %s", jsonOf(task))
		}
	})

	for _, qos := range []string{"0", "1"} {
		t.Run("a last will at QoS "+qos+" marks the device offline", func(t *testing.T) {
			id := "mosq-will-" + qos
			m.pub(t, id, 1, topics.Topic(wire.SuffixCreate), fmt.Sprintf(`{"proplet_id":%q,"metadata":{"os":"linux"}}`, id))
			m.pub(t, id, 1, topics.Topic(wire.SuffixAlive), fmt.Sprintf(`{"proplet_id":%q,"status":"alive"}`, id))
			waitProplet(t, c, id, "alive", 10*time.Second)
			will := m.holdConnection(t, id,
				"--will-topic", topics.Topic(wire.SuffixAlive),
				"--will-payload", fmt.Sprintf(`{"status":"offline","proplet_id":%q}`, id), "--will-qos", qos)
			// EDGE_IN keeps the order messages came in, and the engine
			// records them in that order: once a marker device published
			// after the connection was up shows, a will published by then
			// would have been recorded too.
			marker := id + "-marker"
			m.pub(t, marker, 1, topics.Topic(wire.SuffixCreate), fmt.Sprintf(`{"proplet_id":%q,"metadata":{}}`, marker))
			waitProplet(t, c, marker, "announced", 10*time.Second)
			if p, _ := c.GetProplet(context.Background(), id); p.Status != "alive" {
				t.Fatalf("proplet %s is %s while its connection is up", id, p.Status)
			}
			will.kill9()
			waitProplet(t, c, id, "offline", 10*time.Second)
		})
	}

	t.Run("malformed JSON is counted and later messages are processed", func(t *testing.T) {
		var before mqtt.Snapshot
		natstest.CheckFor(t, 10*time.Second, func() error { // nothing of the earlier subtests still in flight
			before = a.InboundStats()
			if settled := before.Recorded + before.Malformed + before.Ignored + before.Retried; settled != before.Received {
				return fmt.Errorf("%d of %d messages handled", settled, before.Received)
			}
			return nil
		})
		m.pub(t, "mosq-bad", 1, topics.Topic(wire.SuffixResults), `{not json`)
		m.pub(t, "mosq-bad", 1, topics.Topic(wire.SuffixAlive), `{"status":"alive"}`) // no proplet_id
		m.pub(t, "mosq-good", 1, topics.Topic(wire.SuffixCreate), `{"proplet_id":"mosq-good","metadata":{"os":"linux"}}`)
		waitProplet(t, c, "mosq-good", "announced", 10*time.Second)
		natstest.CheckFor(t, 10*time.Second, func() error {
			st := a.InboundStats()
			if st.Malformed-before.Malformed != 2 || st.Received-before.Received != 3 || st.Recorded-before.Recorded != 1 {
				return fmt.Errorf("inbound counters went from %+v to %+v; want 3 more received, 2 malformed, 1 recorded", before, st)
			}
			return nil
		})
	})
}

// checkStart checks a start message against Propeller's StartRequest: its
// field names and types, the module inline as base64, inputs as strings.
func checkStart(t *testing.T, payload []byte, taskID, propletID string, module []byte) {
	t.Helper()
	var start map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(payload), &start); err != nil {
		t.Fatalf("start message %q: %v", payload, err)
	}
	str := func(k string) string {
		var s string
		if err := json.Unmarshal(start[k], &s); err != nil {
			t.Errorf("start field %q = %s: want a string", k, start[k])
		}
		return s
	}
	if got := str("id"); got != taskID {
		t.Errorf("id %q, want %q", got, taskID)
	}
	if got := str("name"); got != "add" {
		t.Errorf("name %q, want add", got)
	}
	if got := str("proplet_id"); got != propletID {
		t.Errorf("proplet_id %q, want %q", got, propletID)
	}
	if file, err := base64.StdEncoding.DecodeString(str("file")); err != nil || !bytes.Equal(file, module) {
		t.Errorf("file is not the module in standard base64 (%v)", err)
	}
	if got := string(start["inputs"]); got != `["10","20"]` {
		t.Errorf("inputs %s, want [\"10\",\"20\"]", got)
	}
	var state int
	if err := json.Unmarshal(start["state"], &state); err != nil {
		t.Errorf("state %s: want an integer", start["state"])
	}
	var daemon bool
	if err := json.Unmarshal(start["daemon"], &daemon); err != nil || daemon {
		t.Errorf("daemon %s: want false", start["daemon"])
	}
	if _, ok := start["cli_args"]; !ok {
		t.Errorf("no cli_args field")
	}
	if t.Failed() {
		t.Logf("start message: %s", payload)
	}
}

// postTask posts a raw JSON task (numbers among the inputs, as Propeller's
// API accepts) and returns its id.
func postTask(t *testing.T, base, body string) string {
	t.Helper()
	resp, err := http.Post(base+"/tasks", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var task struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&task); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /tasks: status %d, %v", resp.StatusCode, err)
	}
	return task.ID
}

// startApp runs jetprop in this process on random ports, with no proplet.
func startApp(t *testing.T) *app.App {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("JETPROP_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := app.Start(context.Background(), app.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSPort: -1, MQTTPort: -1,
		Tenant: tenant, Channel: channel, Replicas: 1, MaxModule: 100 << 20,
		Liveness: 30 * time.Second, LogLevel: "info",
	}, log)
	if err != nil {
		t.Fatalf("start jetprop: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func hostPort(t *testing.T, mqttURL string) (string, string) {
	t.Helper()
	u, err := url.Parse(mqttURL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// mosquitto runs Debian's mosquitto clients against one MQTT listener.
// Every run is bounded in time.
type mosquitto struct {
	pubBin     string
	subBin     string
	host, port string
	// The engine's MQTT credentials, for what only the engine may publish
	// (holdConnection's probes on a device's command topic).
	engineUser, enginePass string
}

// envRequireMosquitto set (CI sets it) makes missing mosquitto clients a
// failure, as registrytest.EnvRequire does for the registry.
const envRequireMosquitto = "JETPROP_REQUIRE_MOSQUITTO"

// newMosquitto finds mosquitto_pub and mosquitto_sub, or skips the test
// (fails it under envRequireMosquitto).
func newMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	m := &mosquitto{}
	for name, dst := range map[string]*string{"mosquitto_pub": &m.pubBin, "mosquitto_sub": &m.subBin} {
		path, err := exec.LookPath(name)
		if err != nil {
			msg := fmt.Sprintf("%s not found: install Debian's mosquitto-clients (apt-get install mosquitto-clients; CI does it in .ci/run)", name)
			if os.Getenv(envRequireMosquitto) != "" {
				t.Fatalf("%s; %s is set", msg, envRequireMosquitto)
			}
			t.Skipf("%s; set %s=1 to make this a failure", msg, envRequireMosquitto)
		}
		*dst = path
	}
	return m
}

func (m *mosquitto) common() []string { return []string{"-h", m.host, "-p", m.port, "-V", "mqttv311"} }

// pub publishes one message as client id (username the same).
func (m *mosquitto) pub(t *testing.T, id string, qos int, topic, payload string, extra ...string) {
	t.Helper()
	args := append(m.common(), "-i", id, "-u", id, "-q", fmt.Sprint(qos), "-t", topic, "-m", payload)
	m.run(t, m.pubBin, append(args, extra...)...)
}

// sub runs mosquitto_sub with args (which must make it end: -E, -C, -W)
// and returns what it printed.
func (m *mosquitto) sub(t *testing.T, args ...string) []byte {
	t.Helper()
	return m.run(t, m.subBin, append(m.common(), args...)...)
}

func (m *mosquitto) run(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", bin, strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// holdConnection runs mosquitto_sub as client id with extra options
// (a last will), and returns once its connection is live: it is subscribed
// to a probe topic of its own, and a probe published there has come back.
// The caller kills it; -W bounds it if nobody does.
func (m *mosquitto) holdConnection(t *testing.T, id string, extra ...string) *proc {
	t.Helper()
	// A device may read its command topics, which only the engine may
	// publish on: the probe goes there with the engine's credentials.
	probe := wire.Topics{Tenant: tenant, Channel: channel}.Topic(wire.OwnTopic("control/manager", id) + "/probe")
	args := append(m.common(), "-i", id, "-u", id, "-k", "10", "-q", "1", "-t", probe, "-W", "60")
	out := &syncBuffer{}
	p := startProc(t, "mosquitto_sub "+id, os.DevNull, out, os.Environ(), m.subBin, append(args, extra...)...)
	for i := 0; ; i++ {
		want := fmt.Sprintf("probe-%d", i)
		m.run(t, m.pubBin, append(m.common(), "-i", id+"-probe", "-u", m.engineUser, "-P", m.enginePass, "-q", "0", "-t", probe, "-m", want)...)
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			if strings.Contains(out.String(), want) {
				return p
			}
			time.Sleep(10 * time.Millisecond)
		}
		if p.exited() || i == 20 {
			t.Fatalf("mosquitto_sub %s did not get a probe (exited: %v, %v):\n%s", id, p.exited(), p.err, out)
		}
	}
}

// TestMQTT_UnackedStartRedeliveredOnReconnect: a proplet that received a
// start and went away before acknowledging it gets it again when its
// persistent session resumes. MQTT 3.1.1 (4.4) requires the server to
// re-send unacknowledged QoS 1 messages on reconnect; nats-server instead
// redelivers them when its MQTT ack wait expires (30 s by default, measured
// here; jetprop sets natsserver.MQTTAckWait, 5 s).
func TestMQTT_UnackedStartRedeliveredOnReconnect(t *testing.T) {
	skipShort(t)
	a := startApp(t)
	c := client.New(a.HTTPURL(), &http.Client{Timeout: 10 * time.Second})
	topics := wire.Topics{Tenant: tenant, Channel: channel}
	const id = "paho-no-ack"

	first, starts := pahoProplet(t, a.MQTTURL(), id, topics)
	if tok := first.Publish(topics.Topic(wire.SuffixCreate), 1, false, `{"proplet_id":"paho-no-ack","metadata":{}}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("discovery: %v", tok.Error())
	}
	waitProplet(t, c, id, "announced", 10*time.Second)
	task := create(t, c, httpapi.TaskRequest{Name: "add", File: examples.Add(), Inputs: wire.Strings{"1", "2"}, PropletID: id})
	if _, err := c.StartTask(context.Background(), task.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-starts: // received, never acknowledged
	case <-time.After(10 * time.Second):
		t.Fatal("the start did not arrive")
	}
	first.Disconnect(0)

	reconnected := time.Now()
	second, starts := pahoProplet(t, a.MQTTURL(), id, topics)
	defer second.Disconnect(0)
	select {
	case m := <-starts:
		m.Ack()
		t.Logf("the unacknowledged start came back %s after the reconnect (duplicate flag %v)", time.Since(reconnected).Round(time.Millisecond), m.Duplicate())
	case <-time.After(3 * natsserver.MQTTAckWait):
		t.Fatalf("the unacknowledged start was not re-sent within %s of the session resuming", 3*natsserver.MQTTAckWait)
	}
}

// pahoProplet connects a paho client as proplet id with a persistent
// session and manual acks, subscribed at QoS 1 to starts, which it passes
// on unacknowledged.
func pahoProplet(t *testing.T, url, id string, topics wire.Topics) (paho.Client, <-chan paho.Message) {
	t.Helper()
	msgs := make(chan paho.Message, 16)
	handler := func(_ paho.Client, m paho.Message) { msgs <- m }
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(id).
		SetCleanSession(false).SetAutoAckDisabled(true).SetAutoReconnect(false).
		SetDefaultPublishHandler(handler)
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	if tok := cl.Subscribe(topics.Topic(wire.SuffixStart), 1, handler); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", id, tok.Error())
	}
	return cl, msgs
}
