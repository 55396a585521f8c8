package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

type invokeAnswer struct {
	Invoked      bool    `json:"invoked"`
	Results      string  `json:"results"`
	InvocationID string  `json:"invocation_id"`
	PropletID    string  `json:"proplet_id"`
	TookMS       float64 `json:"took_ms"`
}

// deployLatent creates a latent task of module, starts it and waits until
// it runs (deployed).
func deployLatent(t testing.TB, a *app.App, name string, module []byte) string {
	t.Helper()
	var created apiTask
	json.Unmarshal(call(t, "POST", a.HTTPURL()+"/tasks", map[string]any{"name": name, "file": b64(module), "latent": true}, http.StatusCreated), &created)
	call(t, "POST", a.HTTPURL()+"/tasks/"+created.ID+"/start", nil, http.StatusOK)
	natstest.CheckFor(t, 10*time.Second, func() error {
		var got apiTask
		json.Unmarshal(call(t, "GET", a.HTTPURL()+"/tasks/"+created.ID, nil, http.StatusOK), &got)
		if got.Status != "running" {
			return fmt.Errorf("latent task %s", got.Status)
		}
		return nil
	})
	return created.ID
}

// invokeWhenDeployed invokes until the device has the task deployed (it
// runs, in the engine's view, from its accept, just before it compiled).
func invokeWhenDeployed(t testing.TB, a *app.App, id string, body any) invokeAnswer {
	t.Helper()
	var ans invokeAnswer
	natstest.CheckFor(t, 10*time.Second, func() error {
		b, status := do(t, "POST", a.HTTPURL()+"/tasks/"+id+"/invoke", body)
		if status != http.StatusOK {
			return fmt.Errorf("invoke: %d %s", status, b)
		}
		return json.Unmarshal(b, &ans)
	})
	return ans
}

// TestApp_Invoke: a latent task is deployed by its start and answers each
// POST /tasks/{id}/invoke synchronously, in Propeller's answer shape; the
// invocations are recorded and listed; mistakes are 4xx with JSON errors.
func TestApp_Invoke(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 1))
	waitDevices(t, a, 1)
	id := deployLatent(t, a, "add", wasmfixtures.Add())
	ans := invokeWhenDeployed(t, a, id, map[string]any{"inputs": []any{2, "3"}})
	if !ans.Invoked || ans.Results != "5" || ans.InvocationID == "" || ans.PropletID == "" {
		t.Fatalf("invoke answered %+v", ans)
	}
	for i := range 5 {
		b := call(t, "POST", a.HTTPURL()+"/tasks/"+id+"/invoke", map[string]any{"inputs": []any{i, 100}}, http.StatusOK)
		json.Unmarshal(b, &ans)
		if ans.Results != fmt.Sprint(i+100) {
			t.Fatalf("invoke %d answered %s", i, b)
		}
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		var list struct {
			Invocations []struct {
				ID      string `json:"id"`
				Results string `json:"results"`
			} `json:"invocations"`
		}
		json.Unmarshal(call(t, "GET", a.HTTPURL()+"/tasks/"+id+"/invocations", nil, http.StatusOK), &list)
		if len(list.Invocations) < 6 || list.Invocations[len(list.Invocations)-1].Results != "104" {
			return fmt.Errorf("invocations %+v", list.Invocations)
		}
		return nil
	})

	t.Run("a failing call is 502 with the device's reason", func(t *testing.T) {
		b, status := do(t, "POST", a.HTTPURL()+"/tasks/"+id+"/invoke", map[string]any{"inputs": []any{"x", 1}})
		if status != http.StatusBadGateway || !strings.Contains(string(b), "not a valid i32") {
			t.Fatalf("bad input to the function: %d %s", status, b)
		}
	})
	refusals := []struct {
		name, path string
		body       any
		want       int
		text       string
	}{
		{"unknown task", "/tasks/nope/invoke", nil, http.StatusNotFound, "not found"},
		{"bad json", "/tasks/" + id + "/invoke", "{", http.StatusBadRequest, ""},
		{"unknown field", "/tasks/" + id + "/invoke", map[string]any{"inputz": []int{1}}, http.StatusBadRequest, "inputz"},
		{"timeout over its bound", "/tasks/" + id + "/invoke", map[string]any{"timeout_ms": 1 << 40}, http.StatusBadRequest, "timeout_ms"},
		{"too many inputs", "/tasks/" + id + "/invoke", map[string]any{"inputs": make([]int, 1025)}, http.StatusBadRequest, "inputs"},
		{"function name too long", "/tasks/" + id + "/invoke", map[string]any{"function": strings.Repeat("f", 300)}, http.StatusBadRequest, "function"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			b, status := do(t, "POST", a.HTTPURL()+tc.path, tc.body)
			if status != tc.want || !strings.Contains(string(b), `"error"`) || !strings.Contains(string(b), tc.text) {
				t.Fatalf("%d %s, want %d naming %q", status, b, tc.want, tc.text)
			}
		})
	}
	t.Run("a task that is not latent is 409", func(t *testing.T) {
		done := runHTTP(t, a, map[string]any{"name": "add", "file": b64(wasmfixtures.Add()), "inputs": []any{1, 2}})
		b, status := do(t, "POST", a.HTTPURL()+"/tasks/"+done.ID+"/invoke", nil)
		if status != http.StatusConflict || !strings.Contains(string(b), "not a latent task") {
			t.Fatalf("%d %s", status, b)
		}
	})
	t.Run("no answer in time is 504", func(t *testing.T) {
		loop := deployLatent(t, a, "loop", wasmfixtures.Loop())
		natstest.CheckFor(t, 10*time.Second, func() error { // 502 "not precompiled" until deployed
			b, status := do(t, "POST", a.HTTPURL()+"/tasks/"+loop+"/invoke", map[string]any{"timeout_ms": 200})
			if status != http.StatusGatewayTimeout || !strings.Contains(string(b), "no answer") {
				return fmt.Errorf("%d %s", status, b)
			}
			return nil
		})
	})
	t.Run("a stopped latent task is 409", func(t *testing.T) {
		call(t, "POST", a.HTTPURL()+"/tasks/"+id+"/stop", nil, http.StatusOK)
		b, status := do(t, "POST", a.HTTPURL()+"/tasks/"+id+"/invoke", nil)
		if status != http.StatusConflict {
			t.Fatalf("%d %s", status, b)
		}
	})
}

// do sends body (JSON, or a string as is; nil: none) and returns the answer
// and its status.
func do(t testing.TB, method, url string, body any) ([]byte, int) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, url, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return out, resp.StatusCode
}
