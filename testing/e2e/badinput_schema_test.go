package e2e

import "strings"

// apiTaskSchema: Propeller's task fields on POST /tasks (issue 13) that
// the API refuses: the ones jetprop does not implement, set, and the ones
// it implements, out of their bounds.
func apiTaskSchema() []badInput {
	row := func(name, body string, msg string) badInput {
		return badInput{name: "api/task-schema/" + name, method: "POST", path: "/tasks", body: body, want: 400, msg: msg}
	}
	return []badInput{
		row("encrypted", `{"name":"add","encrypted":true}`, "encrypted: encrypted workloads are not supported"),
		row("kbs-resource-path", `{"name":"add","kbs_resource_path":"k/1"}`, "kbs_resource_path: encrypted workloads (a KBS) are not supported"),
		row("hal-storage-path", `{"name":"add","hal_storage_path":"/hal"}`, "hal_storage_path: HAL storage is not supported"),
		row("depends-on", `{"name":"add","depends_on":["a"]}`, "depends_on: not supported on POST /tasks"),
		row("priority-over", `{"name":"add","priority":101}`, "priority must be between 0 and 100, got 101"),
		row("metadata-large", `{"name":"add","metadata":{"a":"`+strings.Repeat("v", 16<<10)+`"}}`, "metadata: 16387 bytes, more than the limit of 16384"),
		row("metadata-key-long", `{"name":"add","metadata":{"`+strings.Repeat("k", 300)+`":1}}`, "bytes, more than the limit of 256"),
		row("schedule-bad", `{"name":"add","schedule":"61 * * * *"}`, "schedule \"61 * * * *\""),
		row("schedule-long", `{"name":"add","schedule":"`+strings.Repeat("1,", 200)+`1 * * * *"}`, "schedule: 409 bytes, more than the limit of 256"),
		row("timezone-bad", `{"name":"add","schedule":"* * * * *","timezone":"Mars/Olympus"}`, "Mars/Olympus"),
		row("run-if-bad", `{"name":"add","run_if":"sometimes"}`, `run_if "sometimes"`),
		row("broadcast-target", `{"name":"add","broadcast":true,"proplet_id":"p1"}`, "broadcast and proplet_id are mutually exclusive"),
		{name: "api/task-schema/job-hal-storage-path", method: "POST", path: "/jobs", body: `{"tasks":[{"name":"a","image_url":"add:1","hal_storage_path":"/hal"}]}`, want: 400, msg: "hal_storage_path: HAL storage is not supported"},
		{name: "api/task-schema/job-metadata", method: "POST", path: "/jobs", body: `{"tasks":[{"name":"a","image_url":"add:1","metadata":{"a":1}}]}`, want: 400, msg: "metadata is not supported on the tasks of a job or workflow"},
		row("monitoring-profile-large", `{"name":"add","monitoring_profile":{"x":"`+strings.Repeat("m", 5000)+`"}}`, "monitoring_profile: 5008 bytes, more than the limit of 4096"),
	}
}

// apiTaskFilters: GET /tasks metadata conditions the API refuses.
func apiTaskFilters() []badInput {
	return []badInput{
		{name: "api/task-filter/no-colon", method: "GET", path: "/tasks?metadata=site", want: 400, msg: `metadata "site": want key:value`},
		{name: "api/task-filter/bad-json", method: "GET", path: "/tasks?metadata=%7Bbad", want: 400, msg: "want key:value or a JSON object"},
		{name: "api/task-filter/too-many", method: "GET", path: "/tasks?" + manyFilters(17), want: 400, msg: "metadata: 17 conditions, more than the limit of 16"},
	}
}

func manyFilters(n int) string {
	var q []string
	for i := range n {
		q = append(q, "metadata=k"+strings.Repeat("x", i)+":v")
	}
	return strings.Join(q, "&")
}
