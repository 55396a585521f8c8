package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/cmd/jetprop/app"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// pushArtifact stores module under name:tag in the catalog.
func pushArtifact(t testing.TB, a *app.App, ref string, module []byte) {
	t.Helper()
	resp, err := http.Post(a.HTTPURL()+"/artifacts?name="+ref, "application/wasm", bytes.NewReader(module))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push %s: %d", ref, resp.StatusCode)
	}
}

// invokeFunction calls POST /functions/{ref}/invoke and returns the
// answer and the task that ran it.
func invokeFunction(t testing.TB, a *app.App, ref string, body any) (invokeAnswer, string) {
	t.Helper()
	j, _ := json.Marshal(body)
	resp, err := http.Post(a.HTTPURL()+"/functions/"+ref+"/invoke", "application/json", bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans invokeAnswer
	json.NewDecoder(resp.Body).Decode(&ans)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("invoke %s: %d %+v", ref, resp.StatusCode, ans)
	}
	return ans, resp.Header.Get("Jp-Function-Task")
}

// TestApp_InvokeFunction: concurrent first calls of a catalog name:tag
// deploy one latent task and all answer; later calls reuse it; a push of
// another module to the tag deploys it under the same name and stops the
// old task.
func TestApp_InvokeFunction(t *testing.T) {
	a := startApp(t, testConfig(t.TempDir(), 1))
	waitDevices(t, a, 1)
	pushArtifact(t, a, "calc:1", wasmfixtures.Add())

	var wg sync.WaitGroup
	tasks := make([]string, 4)
	for i := range tasks {
		wg.Go(func() {
			ans, task := invokeFunction(t, a, "calc:1", map[string]any{"function": "add", "inputs": []any{i, 10}})
			if ans.Results != fmt.Sprint(i+10) {
				t.Errorf("call %d answered %+v", i, ans)
			}
			tasks[i] = task
		})
	}
	wg.Wait()
	first := tasks[0]
	for _, id := range tasks {
		if id == "" || id != first {
			t.Fatalf("concurrent first calls ran on tasks %v, want one", tasks)
		}
	}
	ans, task := invokeFunction(t, a, "calc:1", map[string]any{"inputs": []any{2, 3}}) // the default function: add
	if ans.Results != "5" || task != first {
		t.Fatalf("warm call answered %+v on %s", ans, task)
	}

	pushArtifact(t, a, "calc:1", wasmfixtures.Padded(wasmfixtures.Add(), 2048))
	ans, task = invokeFunction(t, a, "calc:1", map[string]any{"inputs": []any{4, 4}})
	if ans.Results != "8" || task == first || task == "" {
		t.Fatalf("after the push: %+v on %s (old %s)", ans, task, first)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		var old apiTask
		json.Unmarshal(call(t, "GET", a.HTTPURL()+"/tasks/"+first, nil, http.StatusOK), &old)
		if old.Status != "stopped" {
			return fmt.Errorf("old function task %s", old.Status)
		}
		return nil
	})

	t.Run("an unknown name:tag is 404", func(t *testing.T) {
		b, status := do(t, "POST", a.HTTPURL()+"/functions/nosuch:9/invoke", nil)
		if status != http.StatusNotFound || !strings.Contains(string(b), "nosuch") {
			t.Fatalf("%d %s", status, b)
		}
	})
}
