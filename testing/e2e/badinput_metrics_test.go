package e2e

// metricsRows: Propeller's metrics routes (issue 13), given an unknown id
// or a bad page.
func metricsRows() []badInput {
	return []badInput{
		{name: "api/metrics/unknown-proplet", method: "GET", path: "/proplets/nosuch/metrics", want: 404, msg: `proplet "nosuch": not found`},
		{name: "api/metrics/unknown-task", method: "GET", path: "/tasks/nosuch/metrics", want: 404, msg: `task "nosuch": not found`},
		{name: "api/metrics/task-limit-0", method: "GET", path: "/tasks/{done}/metrics?limit=0", want: 400, msg: `limit "0": want a whole number from 1 to 1000`},
		{name: "api/metrics/task-negative-offset", method: "GET", path: "/tasks/{done}/metrics?offset=-1", want: 400, msg: `offset "-1": want a whole number >= 0`},
		{name: "api/metrics/proplet-limit-over-max", method: "GET", path: "/proplets/nosuch/metrics?limit=1001", want: 400, msg: "from 1 to 1000"},
	}
}
