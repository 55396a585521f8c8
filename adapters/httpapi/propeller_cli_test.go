package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/testing/apitest"
	"github.com/jetprop/jetprop/testing/natstest"
	"github.com/jetprop/jetprop/testing/wasmfixtures"
)

// propellerCLI runs Propeller's CLI (PROPELLER_CLI, built from Propeller's
// sources: make propeller-cli) against the stack and returns its output,
// colours stripped; the test fails when the CLI reports an error.
type propellerCLI struct {
	t   *testing.T
	bin string
	url string
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func (c propellerCLI) run(args ...string) string {
	c.t.Helper()
	out, err := exec.CommandContext(c.t.Context(), c.bin, append(args, "--manager-url", c.url)...).CombinedOutput()
	text := ansi.ReplaceAllString(string(out), "")
	if err != nil || strings.Contains(strings.ToLower(text), "error") {
		c.t.Fatalf("propeller-cli %s: %v\n%s", strings.Join(args, " "), err, text)
	}
	return text
}

// json decodes the first JSON value the CLI printed.
func (c propellerCLI) json(v any, args ...string) {
	c.t.Helper()
	out := c.run(args...)
	i := strings.IndexAny(out, "{[")
	if i < 0 || json.NewDecoder(strings.NewReader(out[i:])).Decode(v) != nil {
		c.t.Fatalf("propeller-cli %s: no JSON in %q", strings.Join(args, " "), out)
	}
}

type cliTask struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	State     int      `json:"state"`
	Inputs    []string `json:"inputs"`
	DependsOn []string `json:"depends_on"`
	Results   any      `json:"results"`
}

// TestPropellerCLI runs Propeller's own CLI through its flows against
// jetprop: tasks create/upload/update/start/view/results, proplets
// list/view/alive-history/delete, workflows create then tasks start of the
// roots, jobs create and tasks view of its tasks' ids. Set PROPELLER_CLI
// to the CLI binary (make propeller-cli builds it from the mirror).
func TestPropellerCLI(t *testing.T) {
	bin := os.Getenv("PROPELLER_CLI")
	if bin == "" {
		t.Skip("PROPELLER_CLI not set (make propeller-cli)")
	}
	s := apitest.Start(t, apitest.Config{})
	runWorkflows(t, s)
	s.Announce(t, "p1")
	s.Announce(t, "p2")
	s.Respond(t, func(task engine.Task) (engine.RecordResult, bool) {
		return engine.RecordResult{Result: json.RawMessage(`"` + strings.Join(task.Inputs, "+") + `"`)}, true
	})
	cli := propellerCLI{t: t, bin: bin, url: s.URL}

	var task cliTask
	cli.json(&task, "tasks", "create", "add")
	wasm := filepath.Join(t.TempDir(), "add.wasm")
	if err := os.WriteFile(wasm, wasmfixtures.Add(), 0o600); err != nil {
		t.Fatal(err)
	}
	cli.run("tasks", "upload", task.ID, wasm)
	cli.json(&task, "tasks", "update", task.ID, "--inputs", "5,6")
	_, b := call(t, http.MethodGet, s.URL+"/tasks/"+task.ID, "", nil)
	module := decode[httpapi.Task](t, b).Module // the steps below name it by its digest
	if strings.Join(task.Inputs, ",") != "5,6" || module == "" {
		t.Fatalf("update: %+v", task)
	}
	cli.run("tasks", "start", task.ID)
	waitCLITask(t, cli, task.ID)

	cli.run("proplets", "list")
	var history struct {
		Total   int   `json:"total"`
		History []any `json:"history"`
	}
	cli.json(&history, "proplets", "alive-history", "p2")
	if history.Total != 1 || len(history.History) != 1 {
		t.Fatalf("alive-history %+v", history)
	}
	cli.run("proplets", "delete", "p2")

	var wf []cliTask
	cli.json(&wf, "workflows", "create", "--tasks", `[{"id":"a","name":"add","image_url":"`+module+`","inputs":["1","2"]},
		{"id":"b","name":"add","image_url":"`+module+`","inputs":["3","4"],"depends_on":["a"]}]`)
	if len(wf) != 2 || len(wf[1].DependsOn) != 1 || wf[1].DependsOn[0] != wf[0].ID {
		t.Fatalf("workflow %+v", wf)
	}
	cli.run("tasks", "start", wf[0].ID) // the root, as Propeller's flow has it
	for _, tk := range wf {
		waitCLITask(t, cli, tk.ID)
	}

	var job struct {
		JobID string    `json:"job_id"`
		Tasks []cliTask `json:"tasks"`
	}
	cli.json(&job, "jobs", "create", "--name", "etl", "--tasks", `[{"name":"add","image_url":"`+module+`","inputs":["7","8"]}]`)
	cli.run("jobs", "start", job.JobID)
	waitCLITask(t, cli, job.Tasks[0].ID)
}

// waitCLITask waits until tasks view shows the task completed.
func waitCLITask(t *testing.T, cli propellerCLI, id string) {
	t.Helper()
	natstest.CheckFor(t, apitest.Timeout, func() error {
		var got cliTask
		cli.json(&got, "tasks", "view", id)
		if got.ID != id || got.State != 3 {
			return fmt.Errorf("task %s: %+v", id, got)
		}
		return nil
	})
}
