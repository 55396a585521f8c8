package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/jetprop/jetprop/adapters/httpapi"
	"github.com/jetprop/jetprop/engine/domain"
)

// CreateToken creates an API token (admin only) and returns it with its
// secret, which no later answer shows.
func (c *Client) CreateToken(ctx context.Context, name string, role domain.Role) (httpapi.NewToken, error) {
	var t httpapi.NewToken
	return t, c.do(ctx, http.MethodPost, "/tokens", httpapi.TokenRequest{Name: name, Role: string(role)}, &t)
}

// ListTokens returns a page of tokens, oldest first, revoked ones too;
// limit 0 asks for the server's default.
func (c *Client) ListTokens(ctx context.Context, offset, limit int) (httpapi.TokenList, error) {
	var l httpapi.TokenList
	return l, c.do(ctx, http.MethodGet, "/tokens"+pageQuery(offset, limit), nil, &l)
}

// GetToken returns one token.
func (c *Client) GetToken(ctx context.Context, id string) (httpapi.Token, error) {
	var t httpapi.Token
	return t, c.do(ctx, http.MethodGet, "/tokens/"+url.PathEscape(id), nil, &t)
}

// RevokeToken revokes a token; once it returns, the server refuses it.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/tokens/"+url.PathEscape(id), nil, nil)
}
