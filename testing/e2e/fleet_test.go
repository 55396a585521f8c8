package e2e

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/httpapi/client"
	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/fleetsim"
)

// TestFleet_ThousandDevices connects 1,000 simulated proplets
// (testing/fleetsim, real MQTT, the proplet's protocol: starts at QoS 0,
// each one accepted) to a real `jetprop up` and checks reachability, not
// speed: every device connects with its subscription accepted, and at QoS
// 0 the broker makes no JetStream consumer for it; the API shows every
// one alive, each receives the start of the task targeted at it and no
// other device's, accepts every start it receives, and every result is
// recorded. Deadlines are generous (a loaded 2-core box); nothing is
// timed. 1,000 is exactly nats-server's default cap of consumers per
// stream, which QoS 1 subscriptions met: see TestFleet_BeyondConsumerLimit.
func TestFleet_ThousandDevices(t *testing.T) {
	skipShort(t)
	s := startServer(t, t.TempDir(), newPorts(t), 0)
	checkFleet(t, s, fleetsim.Config{Devices: 1000}, 3*time.Minute)
	n := mqttConsumers(t, s)
	t.Logf("JetStream consumers for MQTT subscriptions: %d", n)
	if n >= 1000 {
		t.Errorf("%d JetStream consumers for MQTT subscriptions: want none per device at QoS 0", n)
	}
}

// TestFleet_BeyondConsumerLimit is TestFleet_ThousandDevices with 1,001
// devices that behave as a proplet that sends no accepts (Propeller's, or
// jetprop's before accepts): a QoS 1 subscription each, which is a
// JetStream consumer on the stream $MQTT_msgs of the devices' account.
// nats-server caps consumers per stream at 1,000 by default, so the
// 1,001st device's SUBACK used to be 0x80 while it heartbeated and looked
// alive; the embedded server lifts that cap (each device's connection is
// held to 32 subscriptions instead), and every device is reachable.
func TestFleet_BeyondConsumerLimit(t *testing.T) {
	skipShort(t)
	s := startServer(t, t.TempDir(), newPorts(t), 0)
	checkFleet(t, s, fleetsim.Config{Devices: 1001, QoS: 1, NoAccept: true}, 3*time.Minute)
	if n := mqttConsumers(t, s); n < 1001 {
		t.Errorf("%d JetStream consumers for 1,001 QoS 1 subscriptions", n)
	}
}

// checkFleet runs fleetsim's reach test with fleet (its devices and
// protocol) against server s and checks every count.
func checkFleet(t *testing.T, s *server, fleet fleetsim.Config, reachTimeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	fleet.URL = "tcp://127.0.0.1:" + strconv.Itoa(s.ports.mqtt)
	fleet.Tenant, fleet.Channel, fleet.ConnectParallel = tenant, channel, 64
	devices := fleet.Devices
	r, err := fleetsim.Run(ctx, fleetsim.RunConfig{
		Fleet: fleet, API: client.New(s.url, nil),
		Reach: true, AliveTimeout: 3 * time.Minute, ReachTimeout: reachTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d devices: connected in %s, alive after %s, reach took %s", devices, r.Connect.Took, r.Alive.Took, r.Reach.Took)
	wantAccepts := int(r.Fleet.Starts)
	if fleet.NoAccept {
		wantAccepts = 0
	}
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"devices connected and set up", r.Connect.Ready, devices},
		{"subscriptions the broker accepted", r.Connect.Subscribed, devices},
		{"devices the API shows alive", r.Alive.Alive, devices},
		{"tasks created and started, one per device", r.Reach.Targeted, devices},
		{"devices that received the start of their own task", r.Reach.Reached, devices},
		{"starts that reached a device other than their target", r.Reach.Foreign, 0},
		{"results the API shows recorded", r.Reach.Recorded, devices},
		{"messages on another device's topic or naming another proplet", int(r.Fleet.Foreign), 0},
		{"invalid start messages", int(r.Fleet.StartsInvalid), 0},
		{"accepts sent, one per start received (none before accepts)", int(r.Fleet.Accepts), wantAccepts},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
		}
	}
	if t.Failed() {
		t.Logf("subscriptions refused (SUBACK 0x80): %d; devices without their start (some): %v; report: %+v",
			r.Fleet.SubscribeRefused, r.Reach.Missing, r)
	}
}

// mqttConsumers counts the JetStream consumers nats-server keeps for MQTT
// subscriptions at QoS 1 (on $MQTT_msgs, in the devices' account), the
// engine's own included.
func mqttConsumers(t *testing.T, s *server) int {
	t.Helper()
	return devicesStream(t, t.Context(), s, "$MQTT_msgs").CachedInfo().State.Consumers
}

// devicesStream opens a stream of the devices' account (the MQTT
// listener's), whose JetStream API the engine reaches under a prefix. The
// connection is closed at the test's end.
func devicesStream(t *testing.T, ctx context.Context, s *server, name string) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc := s.natsConn()
	t.Cleanup(nc.Close)
	js, err := jetstream.NewWithAPIPrefix(nc, natsserver.DevicesJSAPI)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
