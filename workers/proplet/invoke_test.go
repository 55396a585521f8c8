package proplet_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/adapters/mqtt/wire"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

// invokeResults returns the invoke answers seen, by invocation id.
func (m *manager) invokeResults() map[string]wire.InvokeResult {
	out := map[string]wire.InvokeResult{}
	for _, b := range m.received(wire.SuffixInvokeResults) {
		r, err := wire.DecodeInvokeResult(b)
		if err != nil {
			m.t.Fatalf("invoke result %s: %v", b, err)
		}
		out[r.InvocationID] = r
	}
	return out
}

// waitInvoke waits for the answer of one invocation.
func (m *manager) waitInvoke(id string) wire.InvokeResult {
	m.t.Helper()
	var r wire.InvokeResult
	natstest.CheckFor(m.t, wait, func() error {
		var ok bool
		if r, ok = m.invokeResults()[id]; !ok {
			return fmt.Errorf("no answer to invocation %s", id)
		}
		return nil
	})
	return r
}

func waitDeployed(t *testing.T, p *running, id string, want bool) {
	t.Helper()
	natstest.CheckFor(t, wait, func() error {
		if got := slices.Contains(p.Deployed(), id); got != want {
			return fmt.Errorf("%s deployed: %v, want %v (deployed %v)", id, got, want, p.Deployed())
		}
		return nil
	})
}

// TestProplet_Invoke: a latent start deploys the module without running
// it (no result); each invoke runs the function with its own inputs and
// env and is answered with its invocation id, in Propeller's form (results
// a string, error null); a stop undeploys, and an invoke then is answered
// with Propeller's "has not been precompiled" error. On Propeller's shared
// topics and on jetprop's own.
func TestProplet_Invoke(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			s := natstest.Start(t)
			m := newManager(t, s)
			cfg := testConfig(t, s)
			cfg.SharedTopics = shared
			p := startProplet(t, cfg, m)
			invoke, start, stop := wire.SuffixInvoke, wire.SuffixStart, wire.SuffixStop
			if !shared {
				invoke, start, stop = wire.OwnTopic(invoke, "proplet-1"), wire.OwnTopic(start, "proplet-1"), wire.OwnTopic(stop, "proplet-1")
			}
			m.publish(start, wire.StartRequest{ID: "fn", Name: "add", File: wasmfixtures.Add(), Latent: true, PropletID: "proplet-1", Attempt: 1})
			waitDeployed(t, p, "fn", true)
			m.publish(invoke, wire.InvokeRequest{ID: "fn", InvocationID: "i1", Inputs: wire.Strings{"2", "3"}, PropletID: "proplet-1"})
			m.publish(invoke, wire.InvokeRequest{ID: "fn", InvocationID: "i2", Inputs: wire.Strings{"40", "2"}, PropletID: "proplet-1"})
			for id, want := range map[string]string{"i1": "5", "i2": "42"} {
				if r := m.waitInvoke(id); r.Failed() || r.Text() != want || r.TaskID != "fn" || r.PropletID != "proplet-1" {
					t.Fatalf("invocation %s answered %+v, want %s", id, r, want)
				}
			}
			raw := m.received(wire.SuffixInvokeResults)[0]
			var shape map[string]any
			if err := json.Unmarshal(raw, &shape); err != nil || shape["error"] != nil {
				t.Fatalf("answer %s: error must be null, as Propeller's proplet sends it", raw)
			}
			if rs, _ := m.results("fn"); len(rs) != 0 {
				t.Fatalf("a deployed latent task published results %v", rs)
			}
			m.publish(invoke, wire.InvokeRequest{ID: "nope", InvocationID: "i3", PropletID: "proplet-1"})
			if r := m.waitInvoke("i3"); !strings.Contains(string(r.Error), "has not been precompiled") {
				t.Fatalf("invoke of a task not deployed answered %+v", r)
			}
			m.publish(stop, wire.StopRequest{ID: "fn", PropletID: "proplet-1", Attempt: 1})
			waitDeployed(t, p, "fn", false)
			m.publish(invoke, wire.InvokeRequest{ID: "fn", InvocationID: "i4", Inputs: wire.Strings{"1", "1"}, PropletID: "proplet-1"})
			if r := m.waitInvoke("i4"); !strings.Contains(string(r.Error), "has not been precompiled") {
				t.Fatalf("invoke after stop answered %+v", r)
			}
		})
	}
}

// TestProplet_InvokeConcurrent: invocations run side by side on instances
// of one compiled module: MaxConcurrentInvokes of them at once all answer,
// each with its own inputs; the function and env come from the call.
func TestProplet_InvokeConcurrent(t *testing.T) {
	s := natstest.Start(t)
	m := newManager(t, s)
	p := startProplet(t, testConfig(t, s), m)
	m.start(wire.StartRequest{ID: "fn", Name: "add", File: wasmfixtures.Add(), Latent: true})
	waitDeployed(t, p, "fn", true)
	var wg sync.WaitGroup
	for i := range proplet.MaxConcurrentInvokes / 2 {
		wg.Go(func() {
			m.publish(wire.SuffixInvoke, wire.InvokeRequest{ID: "fn", InvocationID: fmt.Sprint("c", i), Inputs: wire.Strings{fmt.Sprint(i), "1000"}})
		})
	}
	wg.Wait()
	for i := range proplet.MaxConcurrentInvokes / 2 {
		if r := m.waitInvoke(fmt.Sprint("c", i)); r.Text() != fmt.Sprint(i+1000) {
			t.Fatalf("invocation c%d answered %+v", i, r)
		}
	}
	m.start(wire.StartRequest{ID: "env", Name: "main", File: wasmfixtures.RevEnv(), Latent: true, Env: map[string]string{"A": "task"}})
	waitDeployed(t, p, "env", true)
	m.publish(wire.SuffixInvoke, wire.InvokeRequest{ID: "env", InvocationID: "e1", Env: map[string]string{"B": "call"}})
	if r := m.waitInvoke("e1"); r.Failed() || !strings.Contains(r.Text(), "ksat=A") || !strings.Contains(r.Text(), "llac=B") {
		t.Fatalf("env invocation answered %+v", r)
	}
}

// TestProplet_InvokeHeldWhileDeploying: an invocation of a latent task
// still deploying (its module on the way) is held for the call's
// deploy_wait_ms and runs as soon as the module is compiled; with no wait
// (Propeller's manager) or past it, it is answered "being deployed".
func TestProplet_InvokeHeldWhileDeploying(t *testing.T) {
	gate, asked := make(chan struct{}), make(chan struct{}, 1)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		<-gate
		w.Write(wasmfixtures.Add())
	}))
	defer web.Close()
	defer close(gate)
	s := natstest.Start(t)
	m := newManager(t, s)
	startProplet(t, testConfig(t, s), m)
	m.start(wire.StartRequest{ID: "fn", Name: "add", ImageURL: web.URL + "/add.wasm", Latent: true})
	<-asked
	m.publish(wire.SuffixInvoke, wire.InvokeRequest{ID: "fn", InvocationID: "held", Inputs: wire.Strings{"2", "3"}, DeployWaitMS: 5000})
	m.publish(wire.SuffixInvoke, wire.InvokeRequest{ID: "fn", InvocationID: "short", DeployWaitMS: 1})
	m.publish(wire.SuffixInvoke, wire.InvokeRequest{ID: "fn", InvocationID: "now"})
	for _, id := range []string{"now", "short"} {
		if r := m.waitInvoke(id); !strings.Contains(string(r.Error), wire.Deploying) {
			t.Fatalf("invocation %s answered %+v, want %q", id, r, wire.Deploying)
		}
	}
	if r, ok := m.invokeResults()["held"]; ok {
		t.Fatalf("held invocation answered before the module came: %+v", r)
	}
	gate <- struct{}{}
	if r := m.waitInvoke("held"); r.Failed() || r.Text() != "5" {
		t.Fatalf("held invocation answered %+v", r)
	}
}
