package proplet_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
	"github.com/jetprop/jetprop/workers/proplet"
)

// propellerManager is Propeller's own manager (PROPELLER_MANAGER, built from
// Propeller's sources: make propeller-manager) run as a process of its own
// on the test's broker, with its HTTP API on a free loopback port.
type propellerManager struct {
	t   *testing.T
	url string
	log *lockedBuffer
}

// lockedBuffer is the manager's output, written by exec's copier goroutine
// and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startPropellerManager runs the manager binary against the MQTT broker at
// mqttURL, on Propeller's topics m/<tenant>/c/<channel>, with in-memory
// storage and its defaults otherwise (QoS 2), until the test ends; it waits until GET /health answers.
func startPropellerManager(t *testing.T, bin, mqttURL string) *propellerManager {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir() // no config.toml: everything comes from the environment
	cmd.Env = append(os.Environ(),
		"MANAGER_MQTT_ADDRESS="+mqttURL,
		"MANAGER_TENANT_ID="+topics.Tenant,
		"MANAGER_CHANNEL_ID="+topics.Channel,
		"MANAGER_ENTITY_ID=propeller-manager",
		"MANAGER_API_KEY=unused",
		"MANAGER_STORAGE_TYPE=memory",
		"MANAGER_HTTP_HOST=127.0.0.1",
		"MANAGER_HTTP_PORT="+strconv.Itoa(port),
		"MANAGER_LOG_LEVEL=debug",
		"JOB_EXECUTION_MODE=parallel",
	)
	m := &propellerManager{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), log: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(wait):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("Propeller's manager said:\n%s", m.log.String())
		}
	})
	natstest.CheckFor(t, wait, func() error {
		_, err := m.try(http.MethodGet, "/health", nil)
		return err
	})
	return m
}

// checkQuiet fails the test when the manager could not read or handle a
// message of the proplet: Propeller's pubsub logs that and moves on.
func (m *propellerManager) checkQuiet() {
	for _, bad := range []string{"Failed to handle MQTT message", "Failed to unmarshal received message"} {
		if strings.Contains(m.log.String(), bad) {
			m.t.Errorf("Propeller's manager logged %q", bad)
		}
	}
}

// freePort is a loopback port nobody listens on (the manager takes a port
// number, not a listener).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// try sends a request (body JSON unless it is a *multipart.Writer's form)
// and returns the answer's body, or an error for a status other than 2xx.
func (m *propellerManager) try(method, path string, body any) ([]byte, error) {
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case form:
		rd, ctype = bytes.NewReader(b.body), b.ctype
	default:
		j, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(m.t.Context(), method, m.url+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return out, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
	return out, nil
}

// call is try that fails the test on an error and decodes the answer into
// out (when not nil).
func (m *propellerManager) call(method, path string, body, out any) {
	m.t.Helper()
	b, err := m.try(method, path, body)
	if err != nil {
		m.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			m.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// form is a multipart body with its content type.
type form struct {
	body  []byte
	ctype string
}

func wasmForm(t *testing.T, module []byte) form {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	part, err := w.CreateFormFile("file", "module.wasm")
	if err == nil {
		_, err = part.Write(module)
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return form{body: b.Bytes(), ctype: w.FormDataContentType()}
}

// propellerTask is the part of Propeller's task JSON the test reads.
type propellerTask struct {
	ID        string `json:"id"`
	State     int    `json:"state"`
	Results   any    `json:"results"`
	Error     string `json:"error"`
	PropletID string `json:"proplet_id"`
}

// Propeller's task states (pkg/task).
const (
	propellerRunning   = 2
	propellerCompleted = 3
	propellerFailed    = 4
)

// waitState waits until the manager shows the task in state.
func (m *propellerManager) waitState(id string, state int) propellerTask {
	m.t.Helper()
	var got propellerTask
	natstest.CheckFor(m.t, wait, func() error {
		got = propellerTask{}
		b, err := m.try(http.MethodGet, "/tasks/"+id, nil)
		if err == nil {
			err = json.Unmarshal(b, &got)
		}
		if err == nil && got.State != state {
			err = fmt.Errorf("task %s: %+v, want state %d", id, got, state)
		}
		return err
	})
	return got
}

// TestPropellerManager runs jetprop's proplet under Propeller's own
// manager (built from its sources) on jetprop's embedded MQTT listener,
// and drives the manager's HTTP API as a Propeller user would: the proplet
// is listed alive under its UUID; a task created with an inline module and
// one uploaded run and their results are read back; a latent task is
// started (deployed), invoked twice with the answer in the HTTP response,
// and stopped; proplet metrics reach the manager. Set PROPELLER_MANAGER to
// the manager binary (make propeller-manager builds it from the mirror).
func TestPropellerManager(t *testing.T) {
	bin := os.Getenv("PROPELLER_MANAGER")
	if bin == "" {
		t.Skip("PROPELLER_MANAGER not set (make propeller-manager)")
	}
	s := natstest.Start(t)
	m := startPropellerManager(t, bin, s.MQTTURL())
	cfg := testConfig(t, s)
	cfg.EntityID = ""            // the default id: a UUID, as Propeller's API wants
	cfg.QoS = proplet.DefaultQoS // 2, as the manager's default
	cfg.Liveliness = 500 * time.Millisecond
	cfg.MetricsInterval = proplet.MinMetricsInterval
	p := launch(t, cfg)
	waitActive(t, m, p.ID())

	t.Run("task", func(t *testing.T) {
		var task propellerTask
		m.call(http.MethodPost, "/tasks", map[string]any{"name": "add", "file": wasmfixtures.Add(), "inputs": []string{"5", "6"}}, &task)
		m.call(http.MethodPost, "/tasks/"+task.ID+"/start", nil, nil)
		if got := m.waitState(task.ID, propellerCompleted); got.Results != "11" || got.PropletID != p.ID() {
			t.Fatalf("task %+v, want results 11 from %s", got, p.ID())
		}
		var res struct{ Results any }
		m.call(http.MethodGet, "/tasks/"+task.ID+"/results", nil, &res)
		if res.Results != "11" {
			t.Fatalf("results %+v", res)
		}
	})
	t.Run("upload", func(t *testing.T) {
		var task propellerTask
		m.call(http.MethodPost, "/tasks", map[string]any{"name": "add", "inputs": []string{"40", "2"}}, &task)
		m.call(http.MethodPut, "/tasks/"+task.ID+"/upload", wasmForm(t, wasmfixtures.Add()), nil)
		m.call(http.MethodPost, "/tasks/"+task.ID+"/start", nil, nil)
		if got := m.waitState(task.ID, propellerCompleted); got.Results != "42" {
			t.Fatalf("task %+v, want results 42", got)
		}
	})
	t.Run("wasi env and failure", func(t *testing.T) {
		var ok, bad propellerTask
		m.call(http.MethodPost, "/tasks", map[string]any{"name": "_start", "file": wasmfixtures.Echo(), "cli_args": []string{"--", "one"}, "env": map[string]string{"GREETING": "hi"}}, &ok)
		m.call(http.MethodPost, "/tasks", map[string]any{"name": "_start", "file": wasmfixtures.Fail()}, &bad)
		m.call(http.MethodPost, "/tasks/"+ok.ID+"/start", nil, nil)
		m.call(http.MethodPost, "/tasks/"+bad.ID+"/start", nil, nil)
		if got := m.waitState(ok.ID, propellerCompleted); !strings.Contains(fmt.Sprint(got.Results), "GREETING=hi") {
			t.Fatalf("echo %+v", got)
		}
		if got := m.waitState(bad.ID, propellerFailed); got.Results != "" || !strings.Contains(got.Error, "boom") {
			t.Fatalf("failed task %+v, want results \"\" and the module's stderr in error", got)
		}
	})
	t.Run("daemon stop", func(t *testing.T) {
		var task propellerTask
		m.call(http.MethodPost, "/tasks", map[string]any{"name": "loop", "file": wasmfixtures.Loop(), "daemon": true}, &task)
		m.call(http.MethodPost, "/tasks/"+task.ID+"/start", nil, nil)
		natstest.CheckFor(t, wait, func() error {
			b, err := m.try(http.MethodGet, "/tasks/"+task.ID+"/metrics", nil)
			if err == nil && !strings.Contains(string(b), `"total":`) || strings.Contains(string(b), `"total":0`) {
				err = fmt.Errorf("task metrics: %s", b)
			}
			return err
		})
		m.call(http.MethodPost, "/tasks/"+task.ID+"/stop", nil, nil)
		natstest.CheckFor(t, wait, func() error {
			if slices.Contains(p.Running(), task.ID) {
				return fmt.Errorf("%s still running after the stop", task.ID)
			}
			return nil
		})
	})
	t.Run("workflow", func(t *testing.T) {
		a, b := testUUID(t), testUUID(t) // Propeller's routes take UUIDs only
		m.call(http.MethodPost, "/workflows", map[string]any{"tasks": []map[string]any{
			{"id": a, "name": "add", "file": wasmfixtures.Add(), "inputs": []string{"1", "2"}},
			{"id": b, "name": "add", "file": wasmfixtures.Add(), "inputs": []string{"3", "4"}, "depends_on": []string{a}},
		}}, nil)
		m.call(http.MethodPost, "/tasks/"+a+"/start", nil, nil) // the root; the manager starts b after it
		for id, want := range map[string]string{a: "3", b: "7"} {
			if got := m.waitState(id, propellerCompleted); got.Results != want {
				t.Fatalf("workflow task %s: %+v, want %s", id, got, want)
			}
		}
	})
	t.Run("job", func(t *testing.T) {
		var job struct {
			JobID string          `json:"job_id"`
			Tasks []propellerTask `json:"tasks"`
		}
		m.call(http.MethodPost, "/jobs", map[string]any{"name": "etl", "tasks": []map[string]any{
			{"name": "add", "file": wasmfixtures.Add(), "inputs": []string{"7", "8"}},
		}}, &job)
		m.call(http.MethodPost, "/jobs/"+job.JobID+"/start", nil, nil)
		if got := m.waitState(job.Tasks[0].ID, propellerCompleted); got.Results != "15" {
			t.Fatalf("job task %+v", got)
		}
	})
	t.Run("latent", func(t *testing.T) {
		var task propellerTask
		m.call(http.MethodPost, "/tasks", map[string]any{"name": "add", "file": wasmfixtures.Add(), "latent": true}, &task)
		m.call(http.MethodPost, "/tasks/"+task.ID+"/start", nil, nil)
		waitDeployed(t, p, task.ID, true)
		for in, want := range map[[2]string]string{{"2", "3"}: "5", {"40", "2"}: "42"} {
			var ans struct {
				Invoked bool `json:"invoked"`
				Results any  `json:"results"`
			}
			m.call(http.MethodPost, "/tasks/"+task.ID+"/invoke", map[string]any{"inputs": in[:]}, &ans)
			if !ans.Invoked || ans.Results != want {
				t.Fatalf("invoke %v: %+v, want %s", in, ans, want)
			}
		}
		if got := m.waitState(task.ID, propellerRunning); got.Results != nil {
			t.Fatalf("a deployed latent task has results %+v", got)
		}
		m.call(http.MethodPost, "/tasks/"+task.ID+"/stop", nil, nil)
		waitDeployed(t, p, task.ID, false)

		var echo propellerTask
		m.call(http.MethodPost, "/tasks", map[string]any{"name": "_start", "file": wasmfixtures.Echo(), "latent": true, "env": map[string]string{"A": "task"}}, &echo)
		m.call(http.MethodPost, "/tasks/"+echo.ID+"/start", nil, nil)
		waitDeployed(t, p, echo.ID, true)
		var ans struct{ Results string }
		m.call(http.MethodPost, "/tasks/"+echo.ID+"/invoke", map[string]any{"env": map[string]string{"B": "call"}}, &ans)
		if !strings.Contains(ans.Results, "A=task") || !strings.Contains(ans.Results, "B=call") {
			t.Fatalf("invoke with env answered %q, want the task's env and the call's", ans.Results)
		}
	})
	t.Cleanup(m.checkQuiet) // after the subtests, before the manager stops
	t.Run("metrics", func(t *testing.T) {
		natstest.CheckFor(t, wait, func() error {
			var page struct {
				Total   int `json:"total"`
				Metrics []struct {
					CPU    map[string]any `json:"cpu_metrics"`
					Memory map[string]any `json:"memory_metrics"`
				} `json:"metrics"`
			}
			b, err := m.try(http.MethodGet, "/proplets/"+p.ID()+"/metrics", nil)
			if err == nil {
				err = json.Unmarshal(b, &page)
			}
			if err == nil && (page.Total == 0 || page.Metrics[0].Memory == nil) {
				err = fmt.Errorf("proplet metrics: %s", b)
			}
			return err
		})
	})
}

// waitActive waits until the manager lists the proplet as active.
func waitActive(t *testing.T, m *propellerManager, id string) {
	t.Helper()
	natstest.CheckFor(t, wait, func() error {
		b, err := m.try(http.MethodGet, "/proplets/"+id, nil)
		if err == nil && !strings.Contains(string(b), `"alive":true`) {
			err = fmt.Errorf("proplet %s: %s", id, b)
		}
		return err
	})
}

// testUUID is a random version 4 UUID.
func testUUID(t *testing.T) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
