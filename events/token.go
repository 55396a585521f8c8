package events

import "github.com/jetprop/jetprop/engine/domain"

// API token events (stream TOKENS, subject jp.evt.token.<id>). A token's
// secret is never in an event: only its SHA-256, which is enough to check
// a secret presented later and useless to anyone who reads the stream.

// TokenCreated records a new API token.
type TokenCreated struct {
	Name      string      `json:"name"`
	Role      domain.Role `json:"role"`
	Hash      string      `json:"hash"`                 // hex SHA-256 of the secret
	CreatedBy string      `json:"created_by,omitempty"` // the id of the token that created it; "" in dev mode and at bootstrap
}

// TokenRevoked records that a token no longer authenticates anyone.
type TokenRevoked struct {
	RevokedBy string `json:"revoked_by,omitempty"` // the id of the token that revoked it; "" in dev mode
}

func (TokenCreated) EventType() string { return "token.created" }
func (TokenRevoked) EventType() string { return "token.revoked" }
