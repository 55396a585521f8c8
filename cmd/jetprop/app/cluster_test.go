package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

// TestCluster_MQTTFailover: an engine given every node's NATS and MQTT
// URLs, and a proplet given two MQTT addresses, both on the first node at
// first; that node stops; both move to a surviving node and the next task
// runs.
func TestCluster_MQTTFailover(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	cfg := testConfig(t.TempDir(), 0)
	cfg.NATSURL, cfg.MQTTURL, cfg.Replicas = c.EngineURLs(), strings.Join(c.EngineMQTTURLs(), ","), 3
	a := startApp(t, cfg)
	devices := c.MQTTURLs()
	startProplet(t, devices[0]+","+devices[1], "t1", "c1", t.TempDir())
	waitDevices(t, a, 1)
	add := map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []any{1, 2}}
	if done := runHTTPWhenPlaceable(t, a, add); done.Status != "completed" {
		t.Fatalf("before: %s %q", done.Status, done.Error)
	}
	if n := mqttConns(t, c.Node(0)); n != 2 {
		t.Fatalf("%d MQTT connections on the first node, want the engine's and the proplet's", n)
	}
	c.Stop(0)
	stopped := time.Now()
	done := runHTTPWhenPlaceable(t, a, add)
	if done.Status != "completed" || string(done.Results) != `"3"` {
		t.Fatalf("after the first node stopped: %s %s %q", done.Status, done.Results, done.Error)
	}
	t.Logf("a task ran %s after the first node stopped", time.Since(stopped).Round(time.Millisecond))
}

// mqttConns counts the MQTT connections of s.
func mqttConns(t testing.TB, s *natsserver.Server) int {
	t.Helper()
	cz, err := s.NATS().Connz(&server.ConnzOptions{Account: natsserver.DevicesAccount})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cz.Conns {
		if c.MQTTClient != "" {
			n++
		}
	}
	return n
}

// TestCluster_Nodes: three jetprop servers, each a cluster node (no
// separate nats-server), with device credentials on. A device provisioned
// through one node connects to another node's MQTT listener (every node's
// callout admits it), and a task created on a third node runs on it.
func TestCluster_Nodes(t *testing.T) {
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("127.0.0.1:%d", p))
	}
	apps := make([]*app.App, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		cfg := testConfig(t.TempDir(), 0)
		cfg.Auth, cfg.Replicas, cfg.ServerName = true, 3, fmt.Sprintf("n%d", i)
		cfg.ClusterListen, cfg.Routes, cfg.ClusterSecret = routes[i], strings.Join(routes, ","), natstest.ClusterSecret
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			apps[i], errs[i] = app.Start(ctx, cfg, testLogger(t).With("node", i))
		})
	}
	wg.Wait()
	for i, a := range apps {
		if a != nil {
			t.Cleanup(a.Close)
		}
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
	}
	ctx := context.Background()
	_, key, err := apps[0].Service().ProvisionDevice(ctx, "edge-1", false)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proplet.New(proplet.Config{MQTTAddress: apps[2].MQTTURL(), Tenant: "t1", Channel: "c1", EntityID: "edge-1", APIKey: key,
		DataDir: t.TempDir(), QoS: 1}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Go(func() { _ = p.Run(pctx) })
	t.Cleanup(func() { stop(); pwg.Wait() })
	waitDevices(t, apps[1], 1)
	task, err := apps[1].Service().CreateTask(ctx, events.TaskCreated{Name: "add", Inputs: []string{"4", "5"}}, bytes.NewReader(wasmfixtures.Add()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apps[1].Service().StartTask(ctx, task.ID); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 20*time.Second, func() error {
		tk, _ := apps[0].Tasks().Get(task.ID)
		if tk.State != engine.TaskCompleted {
			return fmt.Errorf("task is %s", tk.State)
		}
		return nil
	})
	for i, a := range apps {
		if err := a.Err(); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
}

// freePorts reserves n loopback ports and gives them back: the nodes'
// route ports must be known before any node starts.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func TestConfig_ValidateCluster(t *testing.T) {
	node := func(edit func(*app.Config)) app.Config {
		c := testConfig("x", 0)
		c.ClusterListen, c.ServerName, c.ClusterSecret, c.Routes = "127.0.0.1:6222", "n1", natstest.ClusterSecret, "n2:6222,n3:6222"
		edit(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     app.Config
		wantErr string
	}{
		{"a node", node(func(*app.Config) {}), ""},
		{"no server name", node(func(c *app.Config) { c.ServerName = "" }), "--server-name is required"},
		{"no secret", node(func(c *app.Config) { c.ClusterSecret = "" }), "--cluster-secret-file"},
		{"short secret", node(func(c *app.Config) { c.ClusterSecret = "short" }), "at least 16"},
		{"both secrets", node(func(c *app.Config) { c.ClusterSecretFile = "f" }), "exclude each other"},
		{"with --nats-url", node(func(c *app.Config) { c.NATSURL, c.MQTTURL = "nats://a:4222", "tcp://a:1883" }), "no embedded server"},
		{"bad route", node(func(c *app.Config) { c.Routes = "n2" }), "--routes"},
		{"routes without a listener", node(func(c *app.Config) { c.ClusterListen = "" }), "need --cluster-listen"},
		{"mqtt list", node(func(c *app.Config) {
			c.ClusterListen, c.Routes, c.ClusterSecret, c.NATSURL, c.MQTTURL = "", "", "", "nats://a:4222,nats://b:4222", "tcp://a:1883, tcp://b:1883"
		}), ""},
		{"bad mqtt list", node(func(c *app.Config) {
			c.ClusterListen, c.Routes, c.ClusterSecret, c.NATSURL, c.MQTTURL = "", "", "", "nats://a:4222", "tcp://a:1883,b:1883"
		}), "--mqtt-url"},
		{"bad nats list", node(func(c *app.Config) {
			c.ClusterListen, c.Routes, c.ClusterSecret, c.NATSURL, c.MQTTURL = "", "", "", "nats://u:pw@a:4222,http://b", "tcp://a:1883"
		}), `"http://b": scheme`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
