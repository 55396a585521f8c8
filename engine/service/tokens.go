package service

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"math"
	"strings"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// TokenView is the read model of API tokens.
type TokenView interface {
	// Get returns a token that was created (revoked or not).
	Get(id string) (engine.Token, bool)
	// ByHash returns the active token whose secret hashes to hash.
	ByHash(hash string) (engine.Token, bool)
	// List returns up to limit tokens from offset, oldest first, and the
	// total.
	List(offset, limit int) ([]engine.Token, int)
	LastSeq() uint64
	WaitFor(ctx context.Context, seq uint64) error
}

// WithTokens gives the service the API tokens read model. Without it the
// service knows no tokens: it creates none and authenticates nobody.
func WithTokens(v TokenView) ServiceOption {
	return func(s *Service) { s.tokens = v }
}

// NewToken is a token just created, with its secret: the only time the
// secret is known to anyone but whoever it was given to.
type NewToken struct {
	engine.Token
	Secret string
}

// BootstrapName is the name of the admin token a server creates when it
// requires authentication and has no active admin token.
const BootstrapName = "bootstrap admin"

// CreateToken creates a token with a fresh secret; by is the id of the
// token that asks ("" when nobody authenticated). It returns once the
// read model knows the token, so the secret works at once.
func (s *Service) CreateToken(ctx context.Context, name string, role domain.Role, by string) (NewToken, error) {
	return s.createToken(ctx, newTokenSecret(), name, role, by)
}

func (s *Service) createToken(ctx context.Context, secret, name string, role domain.Role, by string) (NewToken, error) {
	if s.tokens == nil {
		return NewToken{}, errNoTokens
	}
	cmd := engine.CreateToken{ID: s.h.IDs().New(), Name: strings.TrimSpace(name), Role: role, Hash: engine.HashToken(secret), By: by}
	t, err := s.h.Token(ctx, cmd)
	if err != nil {
		return NewToken{}, err
	}
	t, err = readBack(ctx, s.readTimeout, s.tokens, t.ID, t.Seq, t)
	return NewToken{Token: t, Secret: secret}, err
}

// newTokenSecret draws engine.TokenBytes from the system's cryptographic
// source (which never fails: crypto/rand.Read aborts the program rather
// than return an error).
func newTokenSecret() string {
	b := make([]byte, engine.TokenBytes)
	_, _ = rand.Read(b)
	return engine.FormatToken(b)
}

var errNoTokens = fmt.Errorf("%w: this server keeps no API tokens", domain.ErrUnsupported)

// BootstrapToken creates an admin token named BootstrapName when no
// active admin token exists, and reports whether it did. The secret is
// handed to save before the token is recorded: a crash in between leaves
// a saved secret that matches nothing, and the next start makes another,
// never a recorded admin token whose secret nobody has.
func (s *Service) BootstrapToken(ctx context.Context, save func(secret string) error) (NewToken, bool, error) {
	if s.tokens == nil {
		return NewToken{}, false, errNoTokens
	}
	if s.adminTokens() > 0 {
		return NewToken{}, false, nil
	}
	secret := newTokenSecret()
	if err := save(secret); err != nil {
		return NewToken{}, false, err
	}
	t, err := s.createToken(ctx, secret, BootstrapName, domain.RoleAdmin, "")
	return t, err == nil, err
}

// adminTokens counts the active admin tokens.
func (s *Service) adminTokens() int {
	all, _ := s.tokens.List(0, math.MaxInt)
	n := 0
	for _, t := range all {
		if t.Active() && t.Role == domain.RoleAdmin {
			n++
		}
	}
	return n
}

// RevokeToken revokes token id; by is the id of the token that asks. It
// returns once the read model shows the revocation, so the token is
// refused from the next request on (on this server; other replicas follow
// the stream within moments). Revoking a revoked token changes nothing.
func (s *Service) RevokeToken(ctx context.Context, id, by string) (engine.Token, error) {
	if s.tokens == nil {
		return engine.Token{}, errNoTokens
	}
	t, err := s.h.Token(ctx, engine.RevokeToken{ID: id, By: by})
	if err != nil {
		return t, err
	}
	return readBack(ctx, s.readTimeout, s.tokens, t.ID, t.Seq, t)
}

// GetToken returns one token, revoked or not.
func (s *Service) GetToken(id string) (engine.Token, error) {
	if s.tokens == nil {
		return engine.Token{}, errNoTokens
	}
	t, ok := s.tokens.Get(id)
	if !ok {
		return engine.Token{}, fmt.Errorf("token %q: %w", id, domain.ErrNotFound)
	}
	return t, nil
}

// ListTokens returns a page of tokens, oldest first, and the total.
func (s *Service) ListTokens(offset, limit int) ([]engine.Token, int) {
	if s.tokens == nil {
		return nil, 0
	}
	return s.tokens.List(offset, limit)
}

// Authenticate returns the active token whose secret is secret, or an
// error that is domain.ErrUnauthenticated: the secret is malformed,
// unknown or revoked.
func (s *Service) Authenticate(secret string) (engine.Token, error) {
	if !engine.WellFormedToken(secret) {
		return engine.Token{}, fmt.Errorf("%w: malformed token (a jetprop token is %s and 43 base64url characters)", domain.ErrUnauthenticated, engine.TokenPrefix)
	}
	hash := engine.HashToken(secret)
	var t engine.Token
	ok := false
	if s.tokens != nil {
		t, ok = s.tokens.ByHash(hash)
	}
	// The lookup is by the hash, so its timing tells a caller about the
	// hash of their own guess only; the comparison is constant-time all
	// the same.
	if !ok || subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1 || !t.Active() {
		return engine.Token{}, fmt.Errorf("%w: unknown or revoked token", domain.ErrUnauthenticated)
	}
	return t, nil
}
