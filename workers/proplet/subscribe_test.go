package proplet_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/natstest"
)

// commandConsumers returns the subjects of the JetStream consumers the
// MQTT listener keeps for subscriptions to commands (control/manager/...;
// in stream $MQTT_msgs of the devices' account, filtered on
// $MQTT.msgs.<subject>).
func commandConsumers(t testing.TB, s *server.Server) []string {
	t.Helper()
	jsz, err := s.Jsz(&server.JSzOptions{Account: natsserver.DevicesAccount, Streams: true, Consumer: true, Config: true})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, acc := range jsz.AccountDetails {
		for _, st := range acc.Streams {
			if st.Name != "$MQTT_msgs" {
				continue
			}
			for _, c := range st.Consumer {
				if c.Config == nil {
					continue
				}
				if subject := strings.TrimPrefix(c.Config.FilterSubject, "$MQTT.msgs."); strings.Contains(subject, ".control.manager") {
					out = append(out, subject)
				}
			}
		}
	}
	return out
}

// TestProplet_CommandSubscriptionQoS: on its own topics the proplet
// subscribes to commands at QoS 0 whatever its configured QoS, so the
// broker keeps no JetStream consumer for it (and removes the one an older
// version's QoS 1 subscription left in the session); on the shared topics
// starts and stops keep the configured QoS, each a consumer.
func TestProplet_CommandSubscriptionQoS(t *testing.T) {
	commands := topics.Prefix() + "/control/manager/"
	own := wire.Subject(commands + "proplet-1")
	tests := []struct {
		name    string
		shared  bool
		qos     byte
		older   bool // an older version subscribed at QoS 1 before
		wantSub []string
	}{
		{name: "own topics qos 1", qos: 1},
		{name: "own topics qos 2", qos: 2},
		{name: "own topics after an older version", qos: 1, older: true},
		{name: "shared topics qos 1", shared: true, qos: 1,
			wantSub: []string{wire.Subject(commands + "start"), wire.Subject(commands + "stop")}},
		{name: "shared topics qos 0", shared: true, qos: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.Start(t)
			m := newManager(t, s)
			cfg := testConfig(t, s)
			cfg.SharedTopics, cfg.QoS = tc.shared, tc.qos
			if tc.older {
				subscribeAsOlderVersion(t, s, cfg.EntityID)
				if got := commandConsumers(t, s.NATS()); len(got) == 0 {
					t.Fatal("the older version's subscription left no consumer")
				}
			}
			startProplet(t, cfg, m)
			var got []string
			natstest.CheckFor(t, wait, func() error {
				got = commandConsumers(t, s.NATS())
				slices.Sort(got)
				if !slices.Equal(got, tc.wantSub) {
					return fmt.Errorf("consumers for %v, want %v", got, tc.wantSub)
				}
				return nil
			})
			for _, f := range got {
				if strings.HasPrefix(f, own) {
					t.Fatalf("a consumer for the proplet's own commands: %s", f)
				}
			}
			if !tc.shared { // and commands still arrive
				m.marker(cfg.EntityID, "marker")
			}
		})
	}
}

// subscribeAsOlderVersion leaves a persistent session with the QoS 1
// command subscription of an older proplet.
func subscribeAsOlderVersion(t testing.TB, s *natsserver.Server, id string) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(s.MQTTURL()).SetClientID(id).SetCleanSession(false).SetAutoReconnect(false)
	c := paho.NewClient(opts)
	for _, do := range []func() paho.Token{
		c.Connect,
		func() paho.Token { return c.Subscribe(topics.Topic(wire.OwnTopic("control/manager", id)+"/+"), 1, nil) },
	} {
		if tok := do(); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("older version: %v", tok.Error())
		}
	}
	c.Disconnect(0)
	waitGone(t, s.NATS(), id)
}

// TestProplet_UnreachableWhenRefused: a broker that refuses the proplet's
// command subscription gets heartbeats that say unreachable, with the
// reason, and no discovery. Once a reconnect subscribes, the proplet
// announces itself again and heartbeats alive.
func TestProplet_UnreachableWhenRefused(t *testing.T) {
	var allow atomic.Bool
	s, err := natsserver.Start(context.Background(), natsserver.Config{
		DataDir: t.TempDir(), NATSPort: -1, MQTTPort: -1, MaxStore: 1 << 30, MaxMemory: 64 << 20, Ready: 15 * time.Second,
		Authorize: natsserver.AuthorizerFunc(func(ctx context.Context, c natsserver.Client) (natsserver.Grant, error) {
			g, err := natstest.OpenDevices.Authorize(ctx, c)
			if c.ClientID == "proplet-1" && !allow.Load() {
				g.Sub = []string{wire.Subject(topics.Prefix()) + ".registry.>"} // no commands
			}
			return g, err
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	m := newManager(t, s)
	px := startProxy(t, s.MQTTAddr())
	cfg := ownConfig(t, s)
	cfg.MQTTAddress = px.URL()
	launch(t, cfg)

	a := m.waitAlive(wire.StatusUnreachable, 2)[0]
	if a.PropletID != "proplet-1" || !strings.Contains(a.Reason, "refused") || !strings.Contains(a.Reason, "control/manager/proplet-1/+") {
		t.Fatalf("alive %+v", a)
	}
	if n := len(m.received(wire.SuffixCreate)); n != 0 {
		t.Fatalf("%d discoveries from a proplet that cannot receive", n)
	}
	for _, b := range m.received(wire.SuffixAlive) {
		if a, err := wire.DecodeAlive(b); err != nil || a.Status == wire.StatusAlive {
			t.Fatalf("heartbeat %s (%v) from a proplet that cannot receive", b, err)
		}
	}

	allow.Store(true)
	px.Cut()
	m.waitDiscoveries(1)
	m.waitAlive(wire.StatusAlive, 1)
	m.marker(cfg.EntityID, "marker")
}
