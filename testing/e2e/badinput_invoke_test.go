package e2e

// invokeRows: POST /tasks/{id}/invoke and POST /functions/{name}/invoke
// (issue 13, functions on call) given an unknown target, a task that is
// not latent, bad inputs or malformed JSON; and jetprop invoke.
func invokeRows() []badInput {
	return []badInput{
		{name: "api/invoke/unknown-task", method: "POST", path: "/tasks/nosuch/invoke", body: `{}`, want: 404, msg: `task "nosuch": not found`},
		{name: "api/invoke/not-latent", method: "POST", path: "/tasks/{done}/invoke", body: `{}`, want: 409, msg: "not a latent task"},
		{name: "api/invoke/malformed-json", method: "POST", path: "/tasks/{done}/invoke", body: `{"inputs": [1,`, want: 400},
		{name: "api/invoke/too-many-inputs", method: "POST", path: "/tasks/{done}/invoke", body: `{"inputs": [` + repeatList("1", 1025) + `]}`, want: 400, msg: "inputs"},
		{name: "api/invoke/timeout-over-max", method: "POST", path: "/tasks/{done}/invoke", body: `{"timeout_ms": 1099511627776}`, want: 400, msg: "timeout_ms"},
		{name: "api/functions/unknown-name-tag", method: "POST", path: "/functions/nosuch:9/invoke", body: `{}`, want: 404, msg: "artifact nosuch:9"},
		{name: "api/functions/bad-ref", method: "POST", path: "/functions/Bad%20Name:1/invoke", body: `{}`, want: 400},
		{name: "api/functions/malformed-json", method: "POST", path: "/functions/nosuch:9/invoke", body: `{"inputs"`, want: 400},
		{name: "api/functions/unknown-field", method: "POST", path: "/functions/nosuch:9/invoke", body: `{"inputz": [1]}`, want: 400, msg: "inputz"},
		{name: "cli/invoke/unknown-function", args: []string{"invoke", "nosuch:9", "add"}, want: 1, msg: "HTTP 404"},
		{name: "cli/invoke/timeout-over-max", args: []string{"invoke", "nosuch:9", "add", "--timeout", "2h"}, want: 1, msg: "--timeout 2h0m0s"},
	}
}

func repeatList(item string, n int) string {
	s := item
	for range n - 1 {
		s += "," + item
	}
	return s
}
