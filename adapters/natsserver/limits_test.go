package natsserver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/natstest"
)

// TestDeviceSubs: the broker holds a device's connection to DeviceSubs
// subscriptions (each QoS 1 one a JetStream consumer): past it, SUBACK
// refuses (0x80), and the subscriptions it holds keep working.
func TestDeviceSubs(t *testing.T) {
	s, err := natsserver.Start(context.Background(), natsserver.Config{
		DataDir: t.TempDir(), NATSPort: -1, MQTTPort: -1, MaxStore: 1 << 30, MaxMemory: 64 << 20, Ready: 15 * time.Second,
		Authorize: natstest.OpenDevices, DeviceSubs: 6,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + s.MQTTAddr()).SetClientID("d1").SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	var granted, refused int
	for i := range 10 {
		topic := fmt.Sprintf("m/x/%d", i)
		tok := c.Subscribe(topic, 1, nil)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
		switch code := tok.(*paho.SubscribeToken).Result()[topic]; code {
		case 0x80:
			refused++
		case 1:
			granted++
		default:
			t.Fatalf("subscribe %s: code %#x", topic, code)
		}
		t.Logf("%s: granted %d refused %d", topic, granted, refused)
	}
	if granted == 0 || refused == 0 || granted > 6 {
		t.Fatalf("granted %d and refused %d QoS 1 subscriptions with a limit of 6", granted, refused)
	}
	if !c.IsConnectionOpen() {
		t.Fatal("connection closed")
	}
	// A refused subscription left no consumer behind.
	nc, _ := natstest.Connect(t, s)
	js, err := jetstream.NewWithAPIPrefix(nc, natsserver.DevicesJSAPI)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), "$MQTT_msgs")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != granted {
		t.Fatalf("%d consumers for %d granted subscriptions", info.State.Consumers, granted)
	}
}

// TestConsumersPerStream: more QoS 1 subscriptions than nats-server's
// default of 1,000 consumers per stream are granted (DeviceSubs bounds
// each device instead): 17 sessions of 60 (a session may hold 63).
func TestConsumersPerStream(t *testing.T) {
	if testing.Short() {
		t.Skip("1,020 consumers")
	}
	s, err := natsserver.Start(context.Background(), natsserver.Config{
		DataDir: t.TempDir(), NATSPort: -1, MQTTPort: -1, MaxStore: 1 << 30, MaxMemory: 64 << 20, Ready: 15 * time.Second,
		Authorize: natstest.OpenDevices, DeviceSubs: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	for d := range 17 {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + s.MQTTAddr()).SetClientID(fmt.Sprintf("d%d", d)).SetCleanSession(true))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect: %v", tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(100) })
		filters := map[string]byte{}
		for i := range 60 {
			filters[fmt.Sprintf("m/x/%d/%d", d, i)] = 1
		}
		tok := c.SubscribeMultiple(filters, nil)
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
		for topic, code := range tok.(*paho.SubscribeToken).Result() {
			if code != 1 {
				t.Fatalf("device %d: subscription to %s refused (%#x)", d, topic, code)
			}
		}
	}
}
