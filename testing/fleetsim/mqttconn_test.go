package fleetsim_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/fleetsim"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/tcpproxy"
)

// proxy relays MQTT packets between devices and a real broker, records
// what the devices send, and can withhold the broker's PUBACKs or cut
// every connection.
type proxy struct {
	*tcpproxy.Proxy
	holdAcks atomic.Bool // drop PUBACKs from the broker

	mu   sync.Mutex
	sent []packets.ControlPacket // by the devices, in order
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{}
	p.Proxy = tcpproxy.Start(t, target,
		func(dst, src net.Conn) { relayPackets(dst, src, p.record) },
		func(dst, src net.Conn) { relayPackets(dst, src, p.pass) })
	return p
}

// relayPackets copies packets from src to dst while keep says so, until
// either side fails.
func relayPackets(dst, src net.Conn, keep func(packets.ControlPacket) bool) {
	for {
		pkt, err := packets.ReadPacket(src)
		if err != nil {
			return
		}
		if keep(pkt) && pkt.Write(dst) != nil {
			return
		}
	}
}

func (p *proxy) record(pkt packets.ControlPacket) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, pkt)
	return true
}

func (p *proxy) pass(pkt packets.ControlPacket) bool {
	_, ack := pkt.(*packets.PubackPacket)
	return !ack || !p.holdAcks.Load()
}

// count is how many packets the devices sent that match.
func (p *proxy) count(match func(packets.ControlPacket) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pkt := range p.sent {
		if match(pkt) {
			n++
		}
	}
	return n
}

// publishes are the PUBLISH packets the devices sent on topics ending in
// suffix.
func (p *proxy) publishes(suffix string) []*packets.PublishPacket {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*packets.PublishPacket
	for _, pkt := range p.sent {
		if pub, ok := pkt.(*packets.PublishPacket); ok && strings.HasSuffix(pub.TopicName, suffix) {
			out = append(out, pub)
		}
	}
	return out
}

func isType[T packets.ControlPacket](pkt packets.ControlPacket) bool { _, ok := pkt.(T); return ok }

// TestDevice_Reconnect: a device the broker disconnects comes back,
// subscribes and announces again, heartbeats again and receives its
// starts; the stats count the loss.
func TestDevice_Reconnect(t *testing.T) {
	s := startBroker(t, nil)
	px := startProxy(t, s.MQTTAddr())
	o := observe(t, s)
	f := connectFleet(t, fleetsim.Config{URL: px.URL(), Devices: 1, Tenant: "sim", Channel: "c1", Heartbeat: 200 * time.Millisecond})
	if n, err := s.Disconnect("-", "sim-00000"); err != nil || n != 1 {
		t.Fatalf("Disconnect: %d, %v", n, err)
	}
	before := len(o.heartbeats(t, "sim-00000"))
	natstest.CheckFor(t, 15*time.Second, func() error {
		st := f.Stats()
		subs, connects := px.count(isType[*packets.SubscribePacket]), px.count(isType[*packets.ConnectPacket])
		if st.ConnectionsLost != 1 || st.Connected != 1 || connects != 2 || subs < 2 || len(px.publishes("/create")) != 2 {
			return fmt.Errorf("stats %+v, %d CONNECT, %d SUBSCRIBE, %d discoveries", st, connects, subs, len(px.publishes("/create")))
		}
		if n := len(o.heartbeats(t, "sim-00000")); n < before+3 {
			return fmt.Errorf("%d heartbeats after the reconnect", n-before)
		}
		return nil
	})
	for _, p := range px.publishes("/alive") {
		if p.Qos != 0 {
			t.Fatalf("a heartbeat at QoS %d, want 0 (the default, as the proplet)", p.Qos)
		}
	}
	sendStart(t, mqttClient(t, s, "manager"), "sim-00000", "t1", 1)
	natstest.CheckFor(t, 10*time.Second, func() error {
		if st := f.Stats(); st.Starts != 1 || st.Accepts != 1 || st.Results != 1 {
			return fmt.Errorf("stats %+v: want the start received, accepted and answered", st)
		}
		return nil
	})
}

// TestDevice_ResendAfterReconnect: a QoS 1 publish the broker had not
// acknowledged when the connection dropped is sent again, with DUP and
// its packet id, on the next connection, and acknowledged there.
func TestDevice_ResendAfterReconnect(t *testing.T) {
	s := startBroker(t, nil)
	px := startProxy(t, s.MQTTAddr())
	f := connectFleet(t, fleetsim.Config{URL: px.URL(), Devices: 1, Tenant: "sim", Channel: "c1", Heartbeat: 300 * time.Millisecond, HeartbeatQoS: 1})
	px.holdAcks.Store(true)
	held := len(px.publishes("/alive"))
	natstest.CheckFor(t, 10*time.Second, func() error {
		if n := len(px.publishes("/alive")); n <= held {
			return errors.New("no heartbeat sent since the broker's PUBACKs are withheld")
		}
		return nil
	})
	unacked := px.publishes("/alive")[held]
	px.holdAcks.Store(false)
	px.Cut()
	natstest.CheckFor(t, 15*time.Second, func() error {
		for _, p := range px.publishes("/alive")[held+1:] {
			if p.Dup && p.MessageID == unacked.MessageID && string(p.Payload) == string(unacked.Payload) {
				return nil
			}
		}
		return fmt.Errorf("heartbeat %d not sent again with DUP; stats %+v", unacked.MessageID, f.Stats())
	})
	natstest.CheckFor(t, 10*time.Second, func() error {
		if st := f.Stats(); st.Connected != 1 || st.ConnectionsLost != 1 {
			return fmt.Errorf("stats %+v: want it connected again after one loss", st)
		}
		return nil
	})
}

// TestDevice_AckQoS1Start: a start delivered at QoS 1 is acknowledged,
// so the broker's consumer has nothing pending to redeliver.
func TestDevice_AckQoS1Start(t *testing.T) {
	s := startBroker(t, nil)
	px := startProxy(t, s.MQTTAddr())
	f := connectFleet(t, fleetsim.Config{URL: px.URL(), Devices: 1, Tenant: "sim", Channel: "c1", QoS: 1})
	sendStart(t, mqttClient(t, s, "manager"), "sim-00000", "t1", 1)
	natstest.CheckFor(t, 10*time.Second, func() error {
		if st := f.Stats(); st.Starts != 1 || st.Accepts != 1 {
			return fmt.Errorf("stats %+v: want the start received and accepted", st)
		}
		if n := px.count(isType[*packets.PubackPacket]); n != 1 {
			return fmt.Errorf("%d PUBACKs from the device, want 1", n)
		}
		if pending := ackPending(t, s); pending != 0 {
			return fmt.Errorf("%d deliveries waiting for their ack in the broker", pending)
		}
		return nil
	})
	if st := f.Stats(); st.Redelivered != 0 || st.Duplicates != 0 {
		t.Errorf("stats %+v: want no redelivery", st)
	}
}

// ackPending sums the deliveries the MQTT subscriptions' JetStream
// consumers wait an ack for.
func ackPending(t *testing.T, s *natsserver.Server) int {
	t.Helper()
	st := mqttMsgs(t, s)
	n := 0
	for ci := range st.ListConsumers(t.Context()).Info() {
		n += ci.NumAckPending
	}
	return n
}

// TestDevice_KeepAlive: a device with nothing to send pings within its
// keepalive, and the broker keeps it connected. (nats-server's limit is
// int(1.5 × keepalive) seconds: 1 s for a keepalive of 1 s.)
func TestDevice_KeepAlive(t *testing.T) {
	s := startBroker(t, nil)
	px := startProxy(t, s.MQTTAddr())
	f := connectFleet(t, fleetsim.Config{URL: px.URL(), Devices: 1, Tenant: "sim", Channel: "c1",
		Heartbeat: time.Hour, KeepAlive: 2 * time.Second}) // nats-server drops it after 3 s of silence
	natstest.CheckFor(t, 15*time.Second, func() error {
		if n := px.count(isType[*packets.PingreqPacket]); n < 3 {
			return fmt.Errorf("%d PINGREQs, %d sent, stats %+v", n, px.count(func(packets.ControlPacket) bool { return true }), f.Stats())
		}
		return nil
	})
	if st := f.Stats(); st.ConnectionsLost != 0 || st.Connected != 1 {
		t.Errorf("stats %+v: want the connection kept", st)
	}
}

// TestFleet_ConnackRefused: a CONNACK refusal is a connect error, with
// the broker's reason, and the device keeps trying.
func TestFleet_ConnackRefused(t *testing.T) {
	s := startBrokerAuth(t, func(c natsserver.Client) error {
		if c.ClientID == "sim-00000" {
			return errors.New("not this one")
		}
		return nil
	})
	f, err := fleetsim.New(fleetsim.Config{URL: s.MQTTURL(), Devices: 1, Tenant: "sim", Channel: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if err := f.Connect(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect: %v, want the deadline", err)
	}
	st := f.Stats()
	if st.Ready != 0 || st.Connected != 0 || st.ConnectAttempts < 2 || st.ConnectErrors != st.ConnectAttempts ||
		!strings.Contains(st.LastConnectError, "CONNACK") {
		t.Errorf("stats %+v: want every attempt refused by a CONNACK, and retried", st)
	}
}

// startBrokerAuth is startBroker whose authorizer refuses the clients
// refuse says so for.
func startBrokerAuth(t *testing.T, refuse func(natsserver.Client) error) *natsserver.Server {
	t.Helper()
	return startBrokerWith(t, func(_ context.Context, c natsserver.Client) (natsserver.Grant, error) {
		if err := refuse(c); err != nil {
			return natsserver.Grant{}, err
		}
		return natsserver.Grant{Name: "test:" + c.ClientID, Pub: []string{"m.>"}, Sub: []string{"m.>"}}, nil
	})
}
