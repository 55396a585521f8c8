package propletcmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/cmd/internal/propletcmd"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

// TestMain_MetricsAndPprof: a proplet with --metrics-addr serves its
// Prometheus metrics (a task run counted), with --pprof its profiles, and
// publishes its metrics in the Rust proplet's shape every
// --metrics-interval.
func TestMain_MetricsAndPprof(t *testing.T) {
	s := natstest.Start(t)
	nc, _ := natstest.Connect(t, s)
	discovery, err := nc.SubscribeSync("m.t1.c.c1.control.proplet.p1.create")
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := nc.SubscribeSync("m.t1.c.c1.control.proplet.p1.metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr, pprofAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	args := []string{"--mqtt-url", s.MQTTURL(), "--tenant", "t1", "--channel", "c1", "--entity-id", "p1",
		"--data", t.TempDir(), "--log-level", "warn", "--metrics-addr", metricsAddr, "--pprof", pprofAddr, "--metrics-interval", "1"}
	go func() { done <- propletcmd.Main(ctx, args, &logs, lookup(nil)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if _, err := discovery.NextMsg(15 * time.Second); err != nil {
		t.Fatalf("no discovery: %v", err)
	}
	start, _ := json.Marshal(wire.StartRequest{ID: "t-1", Name: "add", File: wasmfixtures.Add(), Inputs: wire.Strings{"1", "2"}, PropletID: "p1"})
	manager := paho.NewClient(paho.NewClientOptions().AddBroker(s.MQTTURL()).SetClientID("manager"))
	if tok := manager.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("manager connect: %v", tok.Error())
	}
	defer manager.Disconnect(0)
	if tok := manager.Publish("m/t1/c/c1/control/manager/p1/start", 1, false, start); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("start: %v", tok.Error())
	}

	msg, err := metrics.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no proplet metrics: %v", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(msg.Data, &top); err != nil || top["cpu_metrics"] == nil || top["memory_metrics"] == nil || top["metrics"] != nil {
		t.Fatalf("not the Rust proplet's shape: %s", msg.Data)
	}
	m, err := wire.DecodePropletMetrics(msg.Data)
	if err != nil || m.PropletID != "p1" || m.Memory.RSSBytes <= 0 || m.Memory.HeapAllocBytes <= 0 || m.Timestamp.Time.IsZero() {
		t.Fatalf("proplet metrics %+v (%v): %s", m, err, msg.Data)
	}

	natstest.CheckFor(t, 10*time.Second, func() error {
		body, err := get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return err
		}
		for _, want := range []string{"jetprop_proplet_tasks_run_total 1", "jetprop_proplet_tasks_failed_total 0",
			"jetprop_proplet_tasks_running 0", "jetprop_proplet_mqtt_reconnects_total 0",
			`jetprop_proplet_task_duration_seconds_count{outcome="ok"} 1`, `jetprop_proplet_tier_promotions_total{outcome="failed"} 0`,
			"process_resident_memory_bytes", "go_goroutines"} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("no %s yet; logs:\n%s", want, logs.String())
			}
		}
		return nil
	})
	if _, err := get("http://" + pprofAddr + "/debug/pprof/"); err != nil {
		t.Fatal(err)
	}
}

func TestMain_PprofLoopbackOnly(t *testing.T) {
	err := propletcmd.Main(context.Background(), []string{"--tenant", "t", "--channel", "c", "--data", t.TempDir(), "--pprof", "0.0.0.0:6061"}, io.Discard, lookup(nil))
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err %v, want a refusal of a pprof address that is not loopback", err)
	}
}
