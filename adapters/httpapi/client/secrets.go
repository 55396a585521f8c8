package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/jetprop/jetprop/adapters/httpapi"
)

// SetSecret gives the secret name a new value (admin only) and returns the
// secret: its name and new version, never the value.
func (c *Client) SetSecret(ctx context.Context, name, value string) (httpapi.Secret, error) {
	var s httpapi.Secret
	return s, c.do(ctx, http.MethodPut, "/secrets/"+url.PathEscape(name), httpapi.SecretRequest{Value: &value}, &s)
}

// ListSecrets returns a page of secrets by name: names, versions and when
// they changed, never values; limit 0 asks for the server's default.
func (c *Client) ListSecrets(ctx context.Context, offset, limit int) (httpapi.SecretList, error) {
	var l httpapi.SecretList
	return l, c.do(ctx, http.MethodGet, "/secrets"+pageQuery(offset, limit), nil, &l)
}

// DeleteSecret deletes a secret; tasks that refer to it fail when they are
// dispatched.
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/secrets/"+url.PathEscape(name), nil, nil)
}
