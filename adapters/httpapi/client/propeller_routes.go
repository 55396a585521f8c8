package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/jetprop/jetprop/adapters/httpapi"
)

// UpdateTask changes a task that is not scheduled or running (PUT
// /tasks/{id}): the fields set in req replace the task's.
func (c *Client) UpdateTask(ctx context.Context, id string, req httpapi.TaskRequest) (httpapi.Task, error) {
	var t httpapi.Task
	return t, c.do(ctx, http.MethodPut, taskPath(id, ""), req, &t)
}

// DeleteProplet forgets a proplet that runs no task (DELETE
// /proplets/{id}); it comes back with its next heartbeat.
func (c *Client) DeleteProplet(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/proplets/"+url.PathEscape(id), nil, nil)
}

// AliveHistory returns a page of a proplet's liveness history; limit 0
// asks for the server's default.
func (c *Client) AliveHistory(ctx context.Context, id string, offset, limit int) (httpapi.AliveHistory, error) {
	var h httpapi.AliveHistory
	return h, c.do(ctx, http.MethodGet, "/proplets/"+url.PathEscape(id)+"/alive-history"+pageQuery(offset, limit), nil, &h)
}
