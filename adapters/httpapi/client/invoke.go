package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/jetprop/jetprop/adapters/httpapi"
)

// InvokeTask runs one invocation of a deployed latent task (POST
// /tasks/{id}/invoke) and returns its answer; a failed run is an *Error
// (502 with the device's reason, 504 with no answer in time). Sent once:
// a repeat would run the function again.
func (c *Client) InvokeTask(ctx context.Context, id string, req httpapi.InvokeRequest) (httpapi.InvokeAnswer, error) {
	var ans httpapi.InvokeAnswer
	return ans, c.do(ctx, http.MethodPost, taskPath(id, "/invoke"), req, &ans)
}

// InvokeFunction runs one invocation of the catalog module ref (name:tag,
// or name for its latest tag), which the server deploys as a latent task
// on its first call (POST /functions/{ref}/invoke). Sent once.
func (c *Client) InvokeFunction(ctx context.Context, ref string, req httpapi.InvokeRequest) (httpapi.InvokeAnswer, error) {
	var ans httpapi.InvokeAnswer
	return ans, c.do(ctx, http.MethodPost, "/functions/"+url.PathEscape(ref)+"/invoke", req, &ans)
}
