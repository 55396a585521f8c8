package fleetsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/fleetsim"
	"github.com/jetprop/jetprop/testing/natstest"
)

// simTopics are the topics of the fleets in these tests.
var simTopics = wire.Topics{Tenant: "sim", Channel: "c1"}

// startBroker runs a nats-server with its MQTT listener and no engine.
// Every client may publish on the device topics (m.>); sub says what a
// client may subscribe to (all of m.> when nil), so a test can make the
// broker refuse a device's subscription.
func startBroker(t *testing.T, sub func(clientID string) []string) *natsserver.Server {
	t.Helper()
	return startBrokerWith(t, func(_ context.Context, c natsserver.Client) (natsserver.Grant, error) {
		g := natsserver.Grant{Name: "test:" + c.ClientID, Pub: []string{"m.>"}, Sub: []string{"m.>"}}
		if sub != nil {
			g.Sub = sub(c.ClientID)
		}
		return g, nil
	})
}

// startBrokerWith runs a nats-server with its MQTT listener, no engine,
// and authorize as its authorizer.
func startBrokerWith(t *testing.T, authorize natsserver.AuthorizerFunc) *natsserver.Server {
	t.Helper()
	s, err := natsserver.Start(context.Background(), natsserver.Config{
		DataDir: t.TempDir(), NATSPort: -1, MQTTPort: -1, MaxStore: 1 << 30, MaxMemory: 64 << 20,
		Ready: 15 * time.Second, Authorize: authorize,
	})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// observer records what devices publish on their own topics.
type observer struct {
	mu   sync.Mutex
	msgs map[string][][]byte // by kind (wire.SuffixAlive, ...)
}

// observe subscribes a client of its own to everything devices publish.
func observe(t *testing.T, s *natsserver.Server) *observer {
	t.Helper()
	o := &observer{msgs: map[string][][]byte{}}
	c := mqttClient(t, s, "observer")
	tok := c.Subscribe(simTopics.Topic("control/proplet/#"), 0, func(_ paho.Client, m paho.Message) {
		suffix, err := simTopics.Suffix(m.Topic())
		kind, _ := wire.SplitOwn(suffix)
		o.mu.Lock()
		defer o.mu.Unlock()
		if err == nil {
			o.msgs[kind] = append(o.msgs[kind], m.Payload())
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("observer subscribe: %v", tok.Error())
	}
	return o
}

// accepted decodes the accepts seen so far, sorted.
func (o *observer) accepted(t *testing.T) []wire.Accepted {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []wire.Accepted
	for _, b := range o.msgs[wire.SuffixAccepted] {
		a, err := wire.DecodeAccepted(b)
		if err != nil {
			t.Errorf("accepted %s: %v", b, err)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b wire.Accepted) int {
		return strings.Compare(fmt.Sprint(a.TaskID, a.Attempt, a.PropletID), fmt.Sprint(b.TaskID, b.Attempt, b.PropletID))
	})
	return out
}

// heartbeats decodes the heartbeats device sent so far.
func (o *observer) heartbeats(t *testing.T, device string) []wire.Alive {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []wire.Alive
	for _, b := range o.msgs[wire.SuffixAlive] {
		a, err := wire.DecodeAlive(b)
		if err != nil {
			t.Errorf("alive %s: %v", b, err)
		}
		if a.PropletID == device {
			out = append(out, a)
		}
	}
	return out
}

// mqttClient connects a plain paho client (a manager or an observer).
func mqttClient(t *testing.T, s *natsserver.Server, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(s.MQTTURL()).SetClientID(id).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// sendStart publishes a start of task (attempt) on device's own topic at
// QoS 1, as the engine does.
func sendStart(t *testing.T, manager paho.Client, device, task string, attempt int) {
	t.Helper()
	b, err := json.Marshal(wire.StartRequest{ID: task, Name: "add", ImageURL: "sha256:00", Attempt: attempt, PropletID: device})
	if err != nil {
		t.Fatal(err)
	}
	tok := manager.Publish(simTopics.Topic(wire.OwnTopic(wire.SuffixStart, device)), 1, false, b)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish start: %v", tok.Error())
	}
}

// mqttConsumers counts the JetStream consumers nats-server made for MQTT
// subscriptions at QoS 1 (on $MQTT_msgs, in the devices' account).
func mqttConsumers(t *testing.T, s *natsserver.Server) int {
	t.Helper()
	return mqttMsgs(t, s).CachedInfo().State.Consumers
}

// mqttMsgs is the stream of nats-server's MQTT messages in the devices'
// account, whose consumers are the QoS 1 subscriptions.
func mqttMsgs(t *testing.T, s *natsserver.Server) jetstream.Stream {
	t.Helper()
	nc, _ := natstest.Connect(t, s)
	js, err := jetstream.NewWithAPIPrefix(nc, natsserver.DevicesJSAPI)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), "$MQTT_msgs")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// connectFleet connects a fleet of cfg's devices and closes it at cleanup.
func connectFleet(t *testing.T, cfg fleetsim.Config) *fleetsim.Fleet {
	t.Helper()
	f, err := fleetsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestDevice_Accept: a device accepts every start it receives, a re-sent
// one too, and answers each task and attempt once; the stats tell starts,
// re-sends and accepts apart. Without accepts (the proplet before them)
// it only answers.
func TestDevice_Accept(t *testing.T) {
	accept := func(attempt int) wire.Accepted {
		return wire.Accepted{TaskID: "t1", Attempt: attempt, PropletID: "sim-00000"}
	}
	threeAccepts := []wire.Accepted{accept(1), accept(1), accept(2)}
	for _, tc := range []struct {
		name     string
		qos      byte
		noAccept bool
		want     []wire.Accepted
	}{
		{name: "QoS 0", qos: 0, want: threeAccepts},
		{name: "QoS 1", qos: 1, want: threeAccepts},
		{name: "no accept, QoS 1", qos: 1, noAccept: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startBroker(t, nil)
			o := observe(t, s)
			f := connectFleet(t, fleetsim.Config{URL: s.MQTTURL(), Devices: 1, Tenant: "sim", Channel: "c1", QoS: tc.qos, NoAccept: tc.noAccept})
			manager := mqttClient(t, s, "manager")
			sendStart(t, manager, "sim-00000", "t1", 1)
			sendStart(t, manager, "sim-00000", "t1", 1) // re-sent
			sendStart(t, manager, "sim-00000", "t1", 2)
			natstest.CheckFor(t, 10*time.Second, func() error {
				if st := f.Stats(); st.Results < 2 || int(st.Accepts) < len(tc.want) {
					return fmt.Errorf("stats %+v: want 2 results, %d accepts", st, len(tc.want))
				}
				return nil
			})
			if got, want := mqttConsumers(t, s), int(tc.qos); got != want {
				t.Errorf("%d JetStream consumers for the MQTT subscriptions, want %d", got, want)
			}
			f.Close() // waits for every answer
			st := f.Stats()
			if st.Starts != 3 || st.Duplicates != 1 || st.Results != 2 || st.Accepts != int64(len(tc.want)) || st.AcceptErrors != 0 {
				t.Errorf("stats %+v: want 3 starts, 1 re-sent, %d accepts, 2 results", st, len(tc.want))
			}
			if st.QoS != int(tc.qos) || st.Accept == tc.noAccept {
				t.Errorf("stats say QoS %d, accept %t", st.QoS, st.Accept)
			}
			natstest.CheckFor(t, 5*time.Second, func() error {
				if got := o.accepted(t); !slices.Equal(got, tc.want) {
					return fmt.Errorf("accepts seen %v, want %v", got, tc.want)
				}
				return nil
			})
		})
	}
}

// TestDevice_Unreachable: a device whose subscription the broker refuses
// heartbeats "unreachable" with the reason, and the stats count it;
// without accepts (the proplet before them) it heartbeats "alive".
func TestDevice_Unreachable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		noAccept   bool
		wantStatus string
	}{
		{name: "accept", wantStatus: wire.StatusUnreachable},
		{name: "no accept", noAccept: true, wantStatus: wire.StatusAlive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startBroker(t, func(id string) []string {
				if id == "sim-00001" {
					return []string{wire.Subject(simTopics.Topic(wire.PropletChunkTopic(id)))} // not its starts
				}
				return []string{"m.>"}
			})
			o := observe(t, s)
			f := connectFleet(t, fleetsim.Config{URL: s.MQTTURL(), Devices: 2, Tenant: "sim", Channel: "c1",
				Heartbeat: 100 * time.Millisecond, NoAccept: tc.noAccept})
			natstest.CheckFor(t, 10*time.Second, func() error {
				if n := len(o.heartbeats(t, "sim-00001")); n < 3 {
					return fmt.Errorf("%d heartbeats of the refused device", n)
				}
				return nil
			})
			for _, a := range o.heartbeats(t, "sim-00001") {
				if a.Status != tc.wantStatus || (tc.wantStatus == wire.StatusUnreachable) != strings.Contains(a.Reason, "control/manager/sim-00001/+") {
					t.Errorf("heartbeat %+v, want status %s (and the refused filter as the reason when unreachable)", a, tc.wantStatus)
				}
			}
			for _, a := range o.heartbeats(t, "sim-00000") {
				if a.Status != wire.StatusAlive {
					t.Errorf("heartbeat of the subscribed device %+v", a)
				}
			}
			wantUnreachable := 1
			if tc.noAccept {
				wantUnreachable = 0
			}
			st := f.Stats()
			if st.Subscribed != 1 || st.Unreachable != wantUnreachable || st.SubscribeRefused < 2 ||
				(st.UnreachableHeartbeats > 0) != (wantUnreachable > 0) {
				t.Errorf("stats %+v: want 1 subscribed, %d unreachable, the refusal retried", st, wantUnreachable)
			}
			if !f.Subscribed("sim-00000") || f.Subscribed("sim-00001") {
				t.Error("Subscribed: want sim-00000 and not sim-00001")
			}
		})
	}
}
