package natstest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/natstest"
)

// TestStartCluster: three nodes form one JetStream cluster; the engine's
// credentials work on every node; an R3 stream keeps taking writes when
// its leader's node stops, and that node comes back on its data and ports.
func TestStartCluster(t *testing.T) {
	start := time.Now()
	c := natstest.StartCluster(t, 3)
	t.Logf("cluster up in %s", time.Since(start).Round(time.Millisecond))
	if c.MetaLeader() < 0 {
		t.Fatal("no meta leader after start")
	}
	for _, u := range strings.Split(c.EngineURLs(), ",") {
		nc, err := nats.Connect(u)
		if err != nil {
			t.Fatalf("engine on %s: %v", u, err)
		}
		nc.Close()
	}
	nc, err := nats.Connect(c.EngineURLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "t.1")
	leader := -1
	natstest.CheckFor(t, 10*time.Second, func() error {
		if leader = c.StreamLeader(natsserver.EngineAccount, "T"); leader < 0 {
			return fmt.Errorf("no leader of T")
		}
		return nil
	})
	c.Stop(leader)
	stopped := time.Now()
	natstest.CheckFor(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := js.Publish(ctx, "t.2", []byte("x"))
		return err
	})
	t.Logf("writes again %s after the leader's node stopped", time.Since(stopped).Round(time.Millisecond))
	if l := c.StreamLeader(natsserver.EngineAccount, "T"); l == leader {
		t.Fatalf("stopped node %d still leads", leader)
	}
	c.Restart(leader)
	natstest.CheckFor(t, 20*time.Second, func() error {
		if !c.Node(leader).NATS().JetStreamIsStreamCurrent(natsserver.EngineAccount, "T") {
			return fmt.Errorf("node %d not current on T", leader)
		}
		return nil
	})
	for i, u := range c.MQTTURLs() {
		mqttConnect(t, u, fmt.Sprintf("dev-%d", i))
	}
}

func publish(t *testing.T, js jetstream.JetStream, subj string) {
	t.Helper()
	if _, err := js.Publish(context.Background(), subj, []byte("x")); err != nil {
		t.Fatal(err)
	}
}

// mqttConnect connects a device (the auth callout admits it) to url.
func mqttConnect(t *testing.T, url, id string) {
	t.Helper()
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetConnectTimeout(5 * time.Second))
	tok := cl.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt %s: %v", url, tok.Error())
	}
	cl.Disconnect(0)
}
