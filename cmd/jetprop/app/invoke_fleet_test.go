package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/events"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

// sleepyRuntime writes an external runtime (a shell script standing in
// for wasmtime) that answers "late" after secs seconds.
func sleepyRuntime(t *testing.T, secs int) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "sleepy-runtime")
	if err := os.WriteFile(script, fmt.Appendf(nil, "#!/bin/sh\nsleep %d\necho late\n", secs), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// runPropletWith runs a proplet until the returned stop (or the test's end).
func runPropletWith(t *testing.T, cfg proplet.Config) (stop func()) {
	t.Helper()
	p, err := proplet.New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

type broadcastAnswer struct {
	invokeAnswer
	Error    string `json:"error"`
	Proplets []struct {
		PropletID string  `json:"proplet_id"`
		TaskID    string  `json:"task_id"`
		Invoked   bool    `json:"invoked"`
		Results   string  `json:"results"`
		Error     string  `json:"error"`
		TimedOut  bool    `json:"timed_out"`
		TookMS    float64 `json:"took_ms"`
	} `json:"proplets"`
}

// TestApp_InvokeBroadcast: a latent broadcast task is deployed on every
// alive proplet, and one POST /tasks/{id}/invoke runs it on each of them
// and answers per device; a device that does not answer in time is there
// with its error and holds no other back; every device's answer is
// recorded under the broadcast task.
func TestApp_InvokeBroadcast(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 0))
	for _, id := range []string{"p1", "p2"} {
		runPropletWith(t, proplet.Config{MQTTAddress: a.MQTTURL(), Tenant: "t1", Channel: "c1", DataDir: t.TempDir(), QoS: 1, EntityID: id})
	}
	runPropletWith(t, proplet.Config{MQTTAddress: a.MQTTURL(), Tenant: "t1", Channel: "c1", DataDir: t.TempDir(), QoS: 1, EntityID: "p3-slow",
		ExternalRuntime: sleepyRuntime(t, 4)})
	waitDevices(t, a, 3)
	var created apiTask
	json.Unmarshal(call(t, "POST", a.HTTPURL()+"/tasks", map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "latent": true, "broadcast": true}, http.StatusCreated), &created)
	b, status := do(t, "POST", a.HTTPURL()+"/tasks/"+created.ID+"/invoke", nil)
	if status != http.StatusConflict || !strings.Contains(string(b), "deployed on no proplet") {
		t.Fatalf("invoke before the start: %d %s", status, b)
	}
	call(t, "POST", a.HTTPURL()+"/tasks/"+created.ID+"/start", nil, http.StatusOK)

	var ans broadcastAnswer
	natstest.CheckFor(t, 15*time.Second, func() error { // until every device runs it
		b, status := do(t, "POST", a.HTTPURL()+"/tasks/"+created.ID+"/invoke", map[string]any{"inputs": []string{"2", "3"}, "timeout_ms": 1500})
		ans = broadcastAnswer{}
		json.Unmarshal(b, &ans)
		if status != http.StatusOK || len(ans.Proplets) != 3 || !ans.Proplets[0].Invoked || !ans.Proplets[1].Invoked {
			return fmt.Errorf("invoke: %d %s", status, b)
		}
		return nil
	})
	if !ans.Invoked || ans.Results != "5" || ans.PropletID != "p1" || ans.InvocationID == "" {
		t.Fatalf("top level of the answer: %+v", ans)
	}
	for k, want := range []string{"p1", "p2", "p3-slow"} {
		d := ans.Proplets[k]
		if d.PropletID != want || !strings.HasPrefix(d.TaskID, created.ID+"-") {
			t.Fatalf("device %d: %+v, want %s", k, d, want)
		}
		if want != "p3-slow" && (d.Results != "5" || d.Error != "" || d.TookMS >= 1500) {
			t.Fatalf("device %s held back or failed: %+v", want, d)
		}
	}
	if slow := ans.Proplets[2]; slow.Invoked || !slow.TimedOut || !strings.Contains(slow.Error, "timed out") {
		t.Fatalf("the slow device: %+v", slow)
	}

	natstest.CheckFor(t, 10*time.Second, func() error {
		var list struct {
			Invocations []struct {
				ID       string `json:"id"`
				Device   string `json:"proplet_id"`
				TimedOut bool   `json:"timed_out"`
			} `json:"invocations"`
		}
		json.Unmarshal(call(t, "GET", a.HTTPURL()+"/tasks/"+created.ID+"/invocations", nil, http.StatusOK), &list)
		seen := map[string]bool{}
		for _, inv := range list.Invocations {
			if inv.ID == ans.InvocationID {
				seen[inv.Device] = true
			}
		}
		if len(seen) != 3 {
			return fmt.Errorf("records of invocation %s: %v", ans.InvocationID, seen)
		}
		return nil
	})
	call(t, "POST", a.HTTPURL()+"/tasks/"+created.ID+"/stop", nil, http.StatusOK)
}

// TestApp_InvokeAnswerFromInvokedProplet: an answer to an invocation is
// taken only from the proplet it was sent to. A second MQTT client that
// sees the invocation answers it at once, on the shared topic as itself,
// on its own topic claiming to be the invoked proplet, and on the shared
// topic claiming to be it (the invoked proplet listens on its own
// topics): each is ignored and counted, and the call waits for the real
// device's answer.
func TestApp_InvokeAnswerFromInvokedProplet(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 0))
	runPropletWith(t, proplet.Config{MQTTAddress: a.MQTTURL(), Tenant: "t1", Channel: "c1", DataDir: t.TempDir(), QoS: 1, EntityID: "p1",
		ExternalRuntime: sleepyRuntime(t, 1)})
	waitDevices(t, a, 1)
	id := deployLatent(t, a, "add", wasmfixtures.Add())

	const prefix = "m/t1/c/c1/"
	intruder := mqttClient(t, a.MQTTURL(), "intruder")
	answer := func(_ paho.Client, m paho.Message) {
		var req wire.InvokeRequest
		if json.Unmarshal(m.Payload(), &req) != nil {
			return
		}
		forged := func(topic, claimed string) {
			b, _ := json.Marshal(map[string]any{"task_id": req.ID, "invocation_id": req.InvocationID, "proplet_id": claimed, "results": "forged", "error": nil})
			intruder.Publish(prefix+topic, 0, false, b)
		}
		forged(wire.SuffixInvokeResults, "intruder")
		forged(wire.OwnTopic(wire.SuffixInvokeResults, "intruder"), "p1")
		forged(wire.SuffixInvokeResults, "p1")
	}
	if tok := intruder.Subscribe(prefix+wire.OwnTopic(wire.SuffixInvoke, "p1"), 0, answer); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	ans := invokeWhenDeployed(t, a, id, map[string]any{"inputs": []string{"2", "3"}, "timeout_ms": 5000})
	if strings.TrimSpace(ans.Results) != "late" || ans.PropletID != "p1" {
		t.Fatalf("the call took a forged answer: %+v", ans)
	}
	natstest.CheckFor(t, 5*time.Second, func() error {
		b := call(t, "GET", a.HTTPURL()+"/metrics", nil, http.StatusOK)
		if !strings.Contains(string(b), `jetprop_invoke_answers_ignored_total{reason="foreign"} 3`) {
			return fmt.Errorf("forged answers not counted:\n%s", grepLines(string(b), "invoke_answers"))
		}
		return nil
	})
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// TestApp_InvokeAfterPropletRestart: a latent task whose proplet
// restarted is deployed again. A restart the engine hears of (the
// proplet reports the task interrupted) and one it does not (the report
// never reached EDGE_IN) both end with the first call after the restart
// answered: the second through the invoke path, which deploys the task
// again when the device answers that it does not have it.
func TestApp_InvokeAfterPropletRestart(t *testing.T) {
	ns := natstest.Start(t)
	cfg := testConfig(t.TempDir(), 0)
	cfg.NATSURL, cfg.MQTTURL = ns.EngineURL(), ns.EngineMQTTURL()
	a := startApp(t, cfg)
	dir := t.TempDir()
	pcfg := proplet.Config{MQTTAddress: ns.MQTTURL(), Tenant: "t1", Channel: "c1", DataDir: dir, QoS: 1, EntityID: "p1", ResultResend: time.Hour}
	stop := runPropletWith(t, pcfg)
	waitDevices(t, a, 1)
	id := deployLatent(t, a, "add", wasmfixtures.Add())
	invokeWhenDeployed(t, a, id, map[string]any{"inputs": []string{"2", "3"}})

	restart := func() {
		stop()
		waitDeviceUp(t, a, "p1", false) // its goodbye
		stop = runPropletWith(t, pcfg)
		waitDeviceUp(t, a, "p1", true)
		b, status := do(t, "POST", a.HTTPURL()+"/tasks/"+id+"/invoke", map[string]any{"inputs": []string{"20", "3"}})
		if status != http.StatusOK || !strings.Contains(string(b), `"results":"23"`) {
			tk, _ := a.Tasks().Get(id)
			d, _ := a.Devices().Get("p1")
			t.Fatalf("first invoke after the restart: %d %s\ntask %+v\ndevice %+v\nevents %v", status, b, tk, d, eventTypes(t, a, events.TaskAggregate(id)))
		}
	}
	t.Run("heard of", func(*testing.T) { restart() })

	t.Run("unheard of", func(t *testing.T) {
		_, js := natstest.Connect(t, ns)
		topics := wire.Topics{Tenant: "t1", Channel: "c1"}
		full := mqtt.EdgeStreamConfig(topics, 1)
		blind := full
		blind.Subjects = nil
		for _, k := range []string{wire.SuffixCreate, wire.SuffixAlive, wire.SuffixAccepted} {
			blind.Subjects = append(blind.Subjects, wire.Subject(topics.Topic(k)), wire.Subject(topics.Topic(wire.OwnTopic(k, "+"))))
		}
		if _, err := js.UpdateStream(context.Background(), blind); err != nil {
			t.Fatal(err)
		}
		stop() // its "interrupted" result is lost
		if _, err := js.UpdateStream(context.Background(), full); err != nil {
			t.Fatal(err)
		}
		before, _ := a.Tasks().Get(id)
		restart()
		after, _ := a.Tasks().Get(id)
		if after.Attempt != before.Attempt+1 || len(after.Ended) == 0 || !strings.Contains(after.Ended[len(after.Ended)-1].Reason, "not deployed") {
			t.Fatalf("attempt %d → %d, ended %+v: not deployed again by the invoke", before.Attempt, after.Attempt, after.Ended)
		}
	})
}

// waitDeviceUp waits until device id is up, or not.
func waitDeviceUp(t *testing.T, a *app.App, id string, up bool) {
	t.Helper()
	natstest.CheckFor(t, 15*time.Second, func() error {
		if d, _ := a.Devices().Get(id); d.State.Up() != up {
			return fmt.Errorf("device %s is %s", id, d.State)
		}
		return nil
	})
}

// TestApp_InvokeThroughReplicas: a latent task deployed through one
// engine replica is invoked through the other: the answer comes to the
// replica that waits for it (both hear every answer on core NATS).
func TestApp_InvokeThroughReplicas(t *testing.T) {
	ns := natstest.Start(t)
	a1, a2 := startReplica(t, ns), startReplica(t, ns)
	runPropletWith(t, proplet.Config{MQTTAddress: ns.MQTTURL(), Tenant: "t1", Channel: "c1", DataDir: t.TempDir(), QoS: 1, EntityID: "p1"})
	waitDevices(t, a1, 1)
	waitDevices(t, a2, 1)
	id := deployLatent(t, a1, "add", wasmfixtures.Add())
	invokeWhenDeployed(t, a1, id, map[string]any{"inputs": []string{"2", "3"}})
	var ans invokeAnswer
	natstest.CheckFor(t, 10*time.Second, func() error { // a2's read model follows a1's writes
		b, status := do(t, "POST", a2.HTTPURL()+"/tasks/"+id+"/invoke", map[string]any{"inputs": []string{"40", "2"}})
		if status != http.StatusOK {
			return fmt.Errorf("invoke through the other replica: %d %s", status, b)
		}
		return json.Unmarshal(b, &ans)
	})
	if ans.Results != "42" || ans.PropletID != "p1" {
		t.Fatalf("invoke through the other replica: %+v", ans)
	}
	for range 5 {
		b := call(t, "POST", a2.HTTPURL()+"/tasks/"+id+"/invoke", map[string]any{"inputs": []string{"1", "1"}}, http.StatusOK)
		if !strings.Contains(string(b), `"results":"2"`) {
			t.Fatalf("invoke through the other replica: %s", b)
		}
	}
}
