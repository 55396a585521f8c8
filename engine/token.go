package engine

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// TokenPrefix begins every API token, so that a leaked one is recognisable
// (by secret scanners, in a log, in a shell history).
const TokenPrefix = "jpt_"

// TokenBytes is how many random bytes a token carries (256 bits).
const TokenBytes = 32

// tokenLen is the length of a token: the prefix and the random bytes in
// unpadded base64url.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(TokenBytes)

// FormatToken writes random bytes (TokenBytes of them, from a
// cryptographic source) as a token: "jpt_" and unpadded base64url.
func FormatToken(random []byte) string {
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(random)
}

// WellFormedToken reports whether s looks like a token FormatToken wrote
// (it may still be unknown or revoked).
func WellFormedToken(s string) bool {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok || len(s) != tokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	return err == nil && len(b) == TokenBytes
}

// HashToken returns the hex SHA-256 of a token's secret: what events and
// read models keep instead of the secret. A token has 256 random bits, so
// a plain hash is as hard to invert as the secret is to guess; a slow
// password hash would only make every request slower.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Token is an API token, folded from its events. It holds the hash of
// the secret, never the secret.
type Token struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Role      domain.Role `json:"role"`
	Hash      string      `json:"hash"`
	CreatedAt time.Time   `json:"created_at"`
	CreatedBy string      `json:"created_by,omitempty"`
	Revoked   bool        `json:"revoked,omitempty"`
	RevokedAt time.Time   `json:"revoked_at,omitzero"`
	RevokedBy string      `json:"revoked_by,omitempty"`
	Seq       uint64      `json:"seq"`
}

// Exists reports whether the token was created.
func (t Token) Exists() bool { return t.Seq != 0 }

// Active reports whether the token authenticates: created, not revoked.
func (t Token) Active() bool { return t.Exists() && !t.Revoked }

// LastSeq is the sequence of the last event applied.
func (t Token) LastSeq() uint64 { return t.Seq }

// Apply folds one event into the token.
func (t Token) Apply(env events.Envelope, ev events.Event) Token {
	t.Seq = env.Seq
	switch e := ev.(type) {
	case events.TokenCreated:
		t.ID, t.Name, t.Role, t.Hash = env.Aggregate.ID, e.Name, e.Role, e.Hash
		t.CreatedAt, t.CreatedBy = env.Time, e.CreatedBy
	case events.TokenRevoked:
		t.Revoked, t.RevokedAt, t.RevokedBy = true, env.Time, e.RevokedBy
	}
	return t
}

// Token commands.
type (
	// CreateToken records a new token. The caller draws the secret and
	// the id and gives only the secret's HashToken.
	CreateToken struct {
		ID   string
		Name string
		Role domain.Role
		Hash string
		By   string // the id of the token asking; "" when nobody authenticated (dev mode, bootstrap)
	}
	// RevokeToken makes a token stop authenticating, for good.
	RevokeToken struct {
		ID string
		By string
	}
)

// TokenCommand is any of the token commands.
type TokenCommand interface{ TokenID() string }

func (c CreateToken) TokenID() string { return c.ID }
func (c RevokeToken) TokenID() string { return c.ID }

// MaxTokenName is the longest token name, in characters.
const MaxTokenName = 64

// ValidateTokenName checks a token's name: 1 to MaxTokenName printable
// characters, not starting or ending with a space.
func ValidateTokenName(name string) error {
	n := utf8.RuneCountInString(name)
	ok := n > 0 && n <= MaxTokenName && utf8.ValidString(name) && strings.TrimSpace(name) == name
	for _, r := range name {
		ok = ok && unicode.IsPrint(r)
	}
	if !ok {
		return fmt.Errorf("%w: token name %q: want 1 to %d printable characters without surrounding spaces", domain.ErrInvalid, name, MaxTokenName)
	}
	return nil
}

// DecideToken returns the events cmd causes on t. No events and no error
// means the command is already satisfied: the same token created again
// (a retried request), a revoked token revoked again.
func DecideToken(t Token, cmd TokenCommand) ([]events.Event, error) {
	if err := events.ValidateID(cmd.TokenID()); err != nil {
		return nil, fmt.Errorf("%w: token id: %v", domain.ErrInvalid, err)
	}
	switch c := cmd.(type) {
	case CreateToken:
		return decideCreateToken(t, c)
	case RevokeToken:
		if !t.Exists() {
			return nil, fmt.Errorf("token %s: %w", c.ID, domain.ErrNotFound)
		}
		if t.Revoked {
			return nil, nil
		}
		return one(events.TokenRevoked{RevokedBy: c.By}), nil
	}
	return nil, fmt.Errorf("%w: %T", domain.ErrInvalid, cmd)
}

func decideCreateToken(t Token, c CreateToken) ([]events.Event, error) {
	if err := ValidateTokenName(c.Name); err != nil {
		return nil, err
	}
	if !c.Role.Valid() {
		_, err := domain.ParseRole(string(c.Role))
		return nil, err
	}
	if b, err := hex.DecodeString(c.Hash); err != nil || len(b) != sha256.Size || strings.ToLower(c.Hash) != c.Hash {
		return nil, fmt.Errorf("%w: token hash %q: want a hex SHA-256 in lower case", domain.ErrInvalid, c.Hash)
	}
	if t.Exists() {
		if t.Hash == c.Hash && t.Name == c.Name && t.Role == c.Role {
			return nil, nil
		}
		return nil, fmt.Errorf("token %s: %w", c.ID, domain.ErrExists)
	}
	return one(events.TokenCreated{Name: c.Name, Role: c.Role, Hash: c.Hash, CreatedBy: c.By}), nil
}
