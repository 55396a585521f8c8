package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/jetprop/jetprop/adapters/natsserver"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
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
