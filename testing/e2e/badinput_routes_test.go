package e2e

// routesRows: the inputs the routes of issue 13 (PUT /tasks/{id}, DELETE
// /proplets/{id}, alive-history, ?status= filters, step task ids) refuse.
func routesRows() []badInput {
	return []badInput{
		{name: "api/routes/update-unknown-task", method: "PUT", path: "/tasks/nosuch", body: `{"inputs":["1"]}`, want: 404, msg: `task "nosuch": not found`},
		{name: "api/routes/update-unknown-field", method: "PUT", path: "/tasks/{pending}", body: `{"nope":1}`, want: 400, msg: `unknown field "nope"`},
		{name: "api/routes/update-file-and-image", method: "PUT", path: "/tasks/{pending}", body: `{"file":"AGFzbQEAAAA=","image_url":"add:1"}`, want: 400, msg: "give file or image_url, not both"},
		{name: "api/routes/update-function-missing", method: "PUT", path: "/tasks/{done}", body: `{"name":"nosuchexport"}`, want: 400, msg: "nosuchexport"},
		{name: "api/routes/update-memory-negative", method: "PUT", path: "/tasks/{pending}", body: `{"memory_mib":-1}`, want: 400, msg: "memory limit and max_attempts must not be negative"},
		{name: "api/routes/update-inputs-over-bound", method: "PUT", path: "/tasks/{pending}", body: `{"inputs":[` + manyInputs(1025) + `]}`, want: 400, msg: "inputs"},
		{name: "api/routes/update-not-json", method: "PUT", path: "/tasks/{pending}", body: `{`, want: 400, msg: "JSON"},
		{name: "api/routes/delete-unknown-proplet", method: "DELETE", path: "/proplets/nosuch", want: 404, msg: `proplet "nosuch": not found`},
		{name: "api/routes/alive-history-unknown", method: "GET", path: "/proplets/nosuch/alive-history", want: 404, msg: `proplet "nosuch": not found`},
		{name: "api/routes/alive-history-limit-0", method: "GET", path: "/proplets/{proplet}/alive-history?limit=0", want: 400, msg: `limit "0"`},
		{name: "api/routes/proplets-status", method: "GET", path: "/proplets?status=dead", want: 400, msg: `status "dead": want one of active, inactive`},
		{name: "api/routes/tasks-status", method: "GET", path: "/tasks?status=Running", want: 400, msg: `status "Running": want one of pending`},
		{name: "api/routes/jobs-status", method: "GET", path: "/jobs?status=stopped", want: 400, msg: `status "stopped": want one of completed`},
		{name: "api/routes/step-alias-unknown-step", method: "GET", path: "/tasks/{wf}-nosuch-0", want: 404, msg: "not found"},
		{name: "api/routes/step-alias-held-job-start", method: "POST", path: "/tasks/{job}-add-0/start", want: 409, msg: "start the job"},
		{name: "api/routes/step-alias-stop-done", method: "POST", path: "/tasks/{wf}-a-0/stop", want: 409, msg: "not running"},
	}
}

// manyInputs is n inputs "1", comma-separated.
func manyInputs(n int) string {
	b := make([]byte, 0, 4*n)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `"1"`...)
	}
	return string(b)
}
