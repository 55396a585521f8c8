package httpapi_test

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/adapters/httpapi"
)

// matrixDoc is the compatibility matrix TestPropellerMatrix keeps true.
const matrixDoc = "../../docs/propeller.md"

// Propeller's surface, from its sources (absmach/propeller): the routes of
// manager/api/transport.go (path parameters as {id}), the commands of
// cli/, the topics of proplet/src and manager/service.go, and the fields
// of pkg/task.Task. A route, command, topic or field Propeller adds goes
// here and in docs/propeller.md.
var (
	propellerRoutes = []string{
		"GET /proplets", "GET /proplets/{id}", "DELETE /proplets/{id}", "GET /proplets/{id}/sdf",
		"GET /proplets/{id}/metrics", "GET /proplets/{id}/alive-history",
		"POST /tasks", "GET /tasks", "GET /tasks/{id}", "PUT /tasks/{id}", "PUT /tasks/{id}/upload",
		"DELETE /tasks/{id}", "POST /tasks/{id}/start", "POST /tasks/{id}/stop", "POST /tasks/{id}/invoke",
		"GET /tasks/{id}/metrics", "GET /tasks/{id}/results",
		"POST /fl/experiments", "GET /fl/task", "POST /fl/update", "POST /fl/update_cbor", "GET /fl/rounds/{id}/complete",
		"POST /workflows",
		"POST /jobs", "GET /jobs", "GET /jobs/{id}", "POST /jobs/{id}/start", "POST /jobs/{id}/stop",
		"GET /health", "GET /metrics",
	}
	propellerCommands = []string{
		"health",
		"tasks create", "tasks view", "tasks list", "tasks update", "tasks delete", "tasks start", "tasks stop",
		"tasks invoke", "tasks metrics", "tasks results", "tasks upload",
		"proplets list", "proplets view", "proplets delete", "proplets sdf", "proplets metrics", "proplets alive-history",
		"jobs create", "jobs list", "jobs view", "jobs start", "jobs stop",
		"workflows create",
		"fl configure", "fl task", "fl update", "fl update-cbor", "fl round-status",
		"provision", "add-proplets", "add-proxy",
	}
	propellerTopics = []string{
		"control/manager/start", "control/manager/stop", "control/manager/invoke",
		"control/proplet/create", "control/proplet/alive", "control/proplet/results", "control/proplet/invoke_results",
		"control/proplet/metrics", "control/proplet/task_metrics",
		"registry/proplet", "registry/server", "fl/rounds/start", "fl/rounds/{round}/updates/{proplet}",
	}
	propellerTaskFields = []string{
		"id", "name", "kind", "state", "image_url", "file", "cli_args", "inputs", "env", "daemon", "latent",
		"encrypted", "kbs_resource_path", "proplet_id", "depends_on", "run_if", "workflow_id", "job_id",
		"results", "error", "monitoring_profile", "start_time", "finish_time", "created_at", "updated_at",
		"mode", "schedule", "next_run", "is_recurring", "timezone", "broadcast", "priority", "metadata",
		"hal_storage_path",
	}
)

// matrixStatuses are the values of the matrix's second column.
var matrixStatuses = []string{"same", "extended", "refused", "pending", "jetprop"}

// matrixRow is a table row: "| `key` | status | notes |".
var matrixRow = regexp.MustCompile("^\\| `([^`]+)` \\| ([a-z]+) \\|")

// readMatrix returns the rows of each "## " section: key -> status.
func readMatrix(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(matrixDoc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections := map[string]map[string]string{}
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "## "); ok {
			cur, sections[h] = h, map[string]string{}
			continue
		}
		m := matrixRow.FindStringSubmatch(line)
		if m == nil || cur == "" {
			continue
		}
		if !slices.Contains(matrixStatuses, m[2]) {
			t.Errorf("%s: %q is marked %q, want one of %v", cur, m[1], m[2], matrixStatuses)
		}
		if _, dup := sections[cur][m[1]]; dup {
			t.Errorf("%s: %q is listed twice", cur, m[1])
		}
		sections[cur][m[1]] = m[2]
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sections
}

// TestPropellerMatrix holds docs/propeller.md to the route table: every
// Propeller route is in the matrix; a route marked same, extended or
// jetprop is served, one marked refused or pending is not; every route
// served is in the matrix; a jetprop-only route is not one of Propeller's.
// Propeller's CLI commands, topics and task fields must be listed too.
func TestPropellerMatrix(t *testing.T) {
	matrix := readMatrix(t)
	routes := matrix["Routes"]
	served := map[string]bool{}
	for _, rt := range httpapi.Routes(httpapi.New(nil, nil)) {
		served[rt.Pattern] = true
		if _, ok := routes[rt.Pattern]; !ok {
			t.Errorf("route %s is served but not in %s: add it (jetprop, or Propeller's status)", rt.Pattern, matrixDoc)
		}
	}
	for _, r := range propellerRoutes {
		if _, ok := routes[r]; !ok {
			t.Errorf("Propeller's route %s is not in %s", r, matrixDoc)
		}
	}
	for r, status := range routes {
		switch on := served[r]; {
		case (status == "refused" || status == "pending") && on:
			t.Errorf("route %s is served but marked %s in %s: mark it same or extended", r, status, matrixDoc)
		case status != "refused" && status != "pending" && !on:
			t.Errorf("route %s is marked %s in %s but not served", r, status, matrixDoc)
		case status == "jetprop" && slices.Contains(propellerRoutes, r):
			t.Errorf("route %s is Propeller's, marked jetprop", r)
		case status != "jetprop" && !slices.Contains(propellerRoutes, r):
			t.Errorf("route %s is marked %s but is not Propeller's: add it to propellerRoutes, or mark it jetprop", r, status)
		}
	}
	for section, want := range map[string][]string{
		"CLI (`propeller-cli`)": propellerCommands, "MQTT topics": propellerTopics, "Task fields": propellerTaskFields,
	} {
		for _, k := range want {
			if _, ok := matrix[section][k]; !ok {
				t.Errorf("%s: Propeller's %q is not listed in %s", section, k, matrixDoc)
			}
		}
	}
}
