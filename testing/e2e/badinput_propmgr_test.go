package e2e

// propmgrRows: PUT, upload and DELETE on a step's task alias (a workflow's
// steps are fixed at its create: 409 with what to do instead), and the
// command lines jetprop task update refuses.
func propmgrRows() []badInput {
	cli := func(name string, want int, msg string, args ...string) badInput {
		return badInput{name: "cli/task-update-" + name, args: append([]string{"task", "update"}, args...), want: want, msg: msg}
	}
	return []badInput{
		{name: "api/routes/step-alias-update", method: "PUT", path: "/tasks/{wf}-a-0", body: `{"inputs":["7","8"]}`, want: 409, msg: "a workflow's steps are fixed when it is created"},
		{name: "api/routes/step-alias-update-held-job", method: "PUT", path: "/tasks/{job}-add-0", body: `{"inputs":["7","8"]}`, want: 409, msg: "create the job again"},
		{name: "api/routes/step-alias-upload", method: "PUT", path: "/tasks/{wf}-a-0/upload", header: map[string]string{"Content-Type": "application/wasm"}, body: "\x00asm\x01\x00\x00\x00", want: 409, msg: "cannot be updated"},
		{name: "api/routes/step-alias-delete", method: "DELETE", path: "/tasks/{wf}-a-0", want: 409, msg: "cannot be deleted; cancel the workflow"},
		{name: "api/routes/step-alias-delete-held-job", method: "DELETE", path: "/tasks/{job}-add-0", want: 409, msg: "cannot be deleted"},
		{name: "api/routes/step-alias-update-unknown-step", method: "PUT", path: "/tasks/{wf}-nosuch-0", body: `{"inputs":["1"]}`, want: 404, msg: "not found"},
		cli("nothing", 1, "nothing to update", "{pending}"),
		cli("missing-id", 2, "missing arguments: want <id>"),
		cli("unknown", 1, "not found (HTTP 404)", "nosuch", "--inputs", "1"),
		cli("file-and-image", 1, "give --file or --image, not both", "{pending}", "--file", "{dir}/add.wasm", "--image", "add:1"),
		cli("timeout-over-bound", 1, "above the maximum", "{pending}", "--timeout", "1000h"),
		cli("memory-over-wasm32", 1, "--memory 5000", "{pending}", "--memory", "5000"),
		cli("priority-over-bound", 1, "priority", "{pending}", "--priority", "101"),
		cli("step-alias", 1, "steps are fixed", "{wf}-a-0", "--inputs", "1"),
	}
}
