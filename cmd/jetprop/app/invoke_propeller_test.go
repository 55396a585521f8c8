package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// TestApp_InvokePropellerProplet: jetprop invokes a proplet that speaks
// as Propeller's Rust proplet does (proplet/src/service.rs): shared
// topics at QoS 1, a latent start deploys and answers nothing, an invoke
// on control/manager/invoke is answered on control/proplet/invoke_results
// with results a string and error null.
func TestApp_InvokePropellerProplet(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 0))
	const id = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	prefix := "m/t1/c/c1/"
	c := mqttClient(t, a.MQTTURL(), id)
	var mu sync.Mutex
	deployed := map[string]bool{}
	answer := func(_ paho.Client, m paho.Message) {
		var req struct {
			ID           string   `json:"id"`
			InvocationID string   `json:"invocation_id"`
			Inputs       []string `json:"inputs"`
			PropletID    string   `json:"proplet_id"`
			Latent       bool     `json:"latent"`
		}
		if json.Unmarshal(m.Payload(), &req) != nil || (req.PropletID != "" && req.PropletID != id) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if m.Topic() == prefix+"control/manager/start" {
			deployed[req.ID] = req.Latent
			return
		}
		res := map[string]any{"task_id": req.ID, "invocation_id": req.InvocationID, "proplet_id": id, "results": "", "error": nil}
		if !deployed[req.ID] {
			res["error"] = fmt.Sprintf("task %s has not been precompiled; deploy it as a latent task first", req.ID)
		} else {
			x, _ := strconv.Atoi(req.Inputs[0])
			y, _ := strconv.Atoi(req.Inputs[1])
			res["results"] = strconv.Itoa(x + y)
		}
		b, _ := json.Marshal(res)
		go c.Publish(prefix+"control/proplet/invoke_results", 1, false, b)
	}
	for _, s := range []string{"start", "invoke"} {
		if tok := c.Subscribe(prefix+"control/manager/"+s, 1, answer); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	publish(t, c, prefix+"control/proplet/create", []byte(`{"proplet_id":"`+id+`","namespace":"default","metadata":{"environment":"docker","os":"linux","cpu_arch":"x86_64","total_memory_bytes":1024,"proplet_version":"0.5.0","wasm_runtime":"wasmtime"}}`))
	publish(t, c, prefix+"control/proplet/alive", []byte(`{"proplet_id":"`+id+`","status":"alive","namespace":"default"}`))
	waitDevices(t, a, 1)
	task := deployLatent(t, a, "add", wasmfixtures.Add())
	var ans invokeAnswer
	natstest.CheckFor(t, 10*time.Second, func() error {
		b, status := do(t, "POST", a.HTTPURL()+"/tasks/"+task+"/invoke", map[string]any{"inputs": []any{20, "22"}})
		if status != http.StatusOK {
			return fmt.Errorf("invoke: %d %s", status, b)
		}
		return json.Unmarshal(b, &ans)
	})
	if !ans.Invoked || ans.Results != "42" || ans.PropletID != id {
		t.Fatalf("answer %+v", ans)
	}
}
