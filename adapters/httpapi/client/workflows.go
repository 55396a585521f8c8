package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine"
)

// CreateWorkflow creates a workflow from spec, once however often it is
// retried (see the package's doc); its first steps start at once.
func (c *Client) CreateWorkflow(ctx context.Context, spec engine.WorkflowSpec) (httpapi.Workflow, error) {
	var w httpapi.Workflow
	return w, c.create(ctx, "/workflows", spec, &w)
}

// GetWorkflow returns one workflow.
func (c *Client) GetWorkflow(ctx context.Context, id string) (httpapi.Workflow, error) {
	var w httpapi.Workflow
	return w, c.do(ctx, http.MethodGet, workflowPath(id, ""), nil, &w)
}

// WatchWorkflow returns the workflow once its sequence passes after, once it
// has ended, or once wait has passed (the server caps it at httpapi.MaxWorkflowWait),
// whichever comes first. Pass the Seq of the last answer as after to follow
// a workflow's changes.
func (c *Client) WatchWorkflow(ctx context.Context, id string, after uint64, wait time.Duration) (httpapi.Workflow, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	var w httpapi.Workflow
	return w, c.do(ctx, http.MethodGet, workflowPath(id, "")+"?"+q.Encode(), nil, &w)
}

// ListWorkflows returns a page of workflows, newest first; limit 0 asks for
// the server's default.
func (c *Client) ListWorkflows(ctx context.Context, offset, limit int) (httpapi.WorkflowList, error) {
	var l httpapi.WorkflowList
	return l, c.do(ctx, http.MethodGet, "/workflows"+pageQuery(offset, limit), nil, &l)
}

// CancelWorkflow ends a running workflow; an empty reason leaves the
// server's default.
func (c *Client) CancelWorkflow(ctx context.Context, id, reason string) (httpapi.Workflow, error) {
	var body any
	if reason != "" {
		body = httpapi.CancelRequest{Reason: reason}
	}
	var w httpapi.Workflow
	return w, c.do(ctx, http.MethodPost, workflowPath(id, "/cancel"), body, &w)
}

func workflowPath(id, action string) string { return "/workflows/" + url.PathEscape(id) + action }
