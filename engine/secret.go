package engine

import (
	"fmt"
	"regexp"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// MaxSecretValue is the largest value a secret may hold, in bytes: it
// travels in an environment variable of a start message.
const MaxSecretValue = 64 << 10

// maxCiphertext bounds what a secret.set may carry: the value and room
// for a nonce, a tag and any framing a sealer adds.
const maxCiphertext = MaxSecretValue + 1024

var secretNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidateSecretName checks a secret's name: 1 to 64 letters, digits,
// '-' or '_' (a single subject token, and readable in ${secret:NAME}).
func ValidateSecretName(name string) error {
	if !secretNameRE.MatchString(name) {
		return fmt.Errorf("%w: secret name %q: want 1 to 64 letters, digits, '-' or '_'", domain.ErrInvalid, name)
	}
	return nil
}

// Secret is a named secret, folded from its events. It holds the value
// sealed (Ciphertext), never the value.
type Secret struct {
	Name       string    `json:"name"`
	Version    int       `json:"version"` // of the last value set, deleted or not
	KeyID      string    `json:"key_id"`
	Ciphertext []byte    `json:"ciphertext,omitempty"`
	CreatedAt  time.Time `json:"created_at"` // when it was set while it did not exist
	UpdatedAt  time.Time `json:"updated_at"` // its last set or delete
	UpdatedBy  string    `json:"updated_by,omitempty"`
	Deleted    bool      `json:"deleted,omitempty"`
	Seq        uint64    `json:"seq"`
}

// Exists reports whether the secret has a value: set, and not deleted
// since.
func (s Secret) Exists() bool { return s.Seq != 0 && !s.Deleted }

// LastSeq is the sequence of the last event applied.
func (s Secret) LastSeq() uint64 { return s.Seq }

// Apply folds one event into the secret.
func (s Secret) Apply(env events.Envelope, ev events.Event) Secret {
	existed := s.Exists()
	s.Name, s.Seq, s.UpdatedAt = env.Aggregate.ID, env.Seq, env.Time
	switch e := ev.(type) {
	case events.SecretSet:
		if !existed {
			s.CreatedAt = env.Time
		}
		s.Version, s.KeyID, s.Ciphertext, s.UpdatedBy, s.Deleted = e.Version, e.KeyID, e.Ciphertext, e.SetBy, false
	case events.SecretDeleted:
		s.Ciphertext, s.UpdatedBy, s.Deleted = nil, e.DeletedBy, true
	}
	return s
}

// Secret commands.
type (
	// SetSecret gives a secret a new value, sealed by the caller: the
	// core never sees the value.
	SetSecret struct {
		Name       string
		Ciphertext []byte
		KeyID      string
		By         string // the id of the API token asking; "" when nobody authenticated
	}
	// DeleteSecret removes a secret.
	DeleteSecret struct {
		Name string
		By   string
	}
)

// SecretCommand is any of the secret commands.
type SecretCommand interface{ SecretName() string }

func (c SetSecret) SecretName() string    { return c.Name }
func (c DeleteSecret) SecretName() string { return c.Name }

// DecideSecret returns the events cmd causes on s. Every set is a new
// version (a sealed value is never the same twice); deleting a secret
// that does not exist is ErrNotFound.
func DecideSecret(s Secret, cmd SecretCommand) ([]events.Event, error) {
	if err := ValidateSecretName(cmd.SecretName()); err != nil {
		return nil, err
	}
	switch c := cmd.(type) {
	case SetSecret:
		if len(c.Ciphertext) == 0 || len(c.Ciphertext) > maxCiphertext || c.KeyID == "" {
			return nil, fmt.Errorf("%w: secret %s: a sealed value (1 to %d bytes) and its key id are required", domain.ErrInvalid, c.Name, maxCiphertext)
		}
		return one(events.SecretSet{Ciphertext: c.Ciphertext, KeyID: c.KeyID, Version: s.Version + 1, SetBy: c.By}), nil
	case DeleteSecret:
		if !s.Exists() {
			return nil, fmt.Errorf("secret %q: %w", c.Name, domain.ErrNotFound)
		}
		return one(events.SecretDeleted{DeletedBy: c.By}), nil
	}
	return nil, fmt.Errorf("%w: %T", domain.ErrInvalid, cmd)
}
