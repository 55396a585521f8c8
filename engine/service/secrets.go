package service

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// Sealer encrypts secret values for the event store and decrypts them for
// a start message. A value is sealed for a name: it opens only under the
// name it was sealed for, and only with the key keyID names. Errors never
// hold the value.
type Sealer interface {
	Seal(name string, value []byte) (ciphertext []byte, keyID string, err error)
	Open(name, keyID string, ciphertext []byte) ([]byte, error)
}

// SecretView is the read model of secrets.
type SecretView interface {
	// Get returns a secret that was ever set, deleted or not.
	Get(name string) (engine.Secret, bool)
	// List returns up to limit existing secrets from offset, by name, and
	// how many exist.
	List(offset, limit int) ([]engine.Secret, int)
	WaitFor(ctx context.Context, seq uint64) error
}

// WithSecrets gives the service the secrets read model and the sealer
// their values are sealed with. Without them the service keeps no
// secrets, and a task or workflow that refers to one is refused; without
// a sealer it lists and deletes secrets but sets and opens none.
func WithSecrets(v SecretView, sealer Sealer) ServiceOption {
	return func(s *Service) { s.secrets, s.sealer = v, sealer }
}

var (
	errNoSecrets = fmt.Errorf("%w: this server keeps no secrets", domain.ErrUnsupported)
	errNoSealer  = fmt.Errorf("%w: this server has no key to seal secrets with", domain.ErrUnsupported)
)

// SetSecret seals value and stores it as the next version of secret name;
// by is the id of the API token that asks ("" when nobody authenticated).
// It returns once the read model shows it. The value is 1 to
// engine.MaxSecretValue bytes of UTF-8 without NUL: it becomes an
// environment variable.
func (s *Service) SetSecret(ctx context.Context, name string, value []byte, by string) (engine.Secret, error) {
	switch {
	case s.secrets == nil:
		return engine.Secret{}, errNoSecrets
	case s.sealer == nil:
		return engine.Secret{}, errNoSealer
	}
	if err := engine.ValidateSecretName(name); err != nil {
		return engine.Secret{}, err
	}
	if err := checkSecretValue(name, value); err != nil {
		return engine.Secret{}, err
	}
	sealed, keyID, err := s.sealer.Seal(name, value)
	if err != nil {
		return engine.Secret{}, fmt.Errorf("secret %q: %w", name, err)
	}
	sec, err := s.h.Secret(ctx, engine.SetSecret{Name: name, Ciphertext: sealed, KeyID: keyID, By: by})
	if err != nil {
		return sec, err
	}
	return readBack(ctx, s.readTimeout, s.secrets, name, sec.Seq, sec)
}

// checkSecretValue says what is wrong with a value, never what it is.
func checkSecretValue(name string, value []byte) error {
	switch {
	case len(value) == 0:
		return fmt.Errorf("%w: secret %q: the value is empty", domain.ErrInvalid, name)
	case len(value) > engine.MaxSecretValue:
		return fmt.Errorf("%w: secret %q: the value has %d bytes, at most %d are allowed", domain.ErrInvalid, name, len(value), engine.MaxSecretValue)
	case !utf8.Valid(value):
		return fmt.Errorf("%w: secret %q: the value is not UTF-8 text (encode binary values, e.g. in base64)", domain.ErrInvalid, name)
	case bytes.IndexByte(value, 0) >= 0:
		return fmt.Errorf("%w: secret %q: the value holds a NUL byte, which no environment variable can", domain.ErrInvalid, name)
	}
	return nil
}

// DeleteSecret deletes secret name; by is the id of the API token that
// asks. Tasks and workflows that refer to it fail when they are
// dispatched. It returns once the read model shows it.
func (s *Service) DeleteSecret(ctx context.Context, name, by string) (engine.Secret, error) {
	if s.secrets == nil {
		return engine.Secret{}, errNoSecrets
	}
	sec, err := s.h.Secret(ctx, engine.DeleteSecret{Name: name, By: by})
	if err != nil {
		return sec, err
	}
	return readBack(ctx, s.readTimeout, s.secrets, name, sec.Seq, sec)
}

// ListSecrets returns a page of the existing secrets, by name, and how
// many exist. What the caller shows of them is theirs to choose; the
// values are sealed.
func (s *Service) ListSecrets(offset, limit int) ([]engine.Secret, int) {
	if s.secrets == nil {
		return nil, 0
	}
	return s.secrets.List(offset, limit)
}

// ResolveSecrets opens the secrets names and returns their values by name:
// for a start message, and nothing else. A secret that does not exist (it
// was deleted after the task that refers to it was created) is an error
// wrapping domain.ErrNotFound; an error names the secret, never its value.
func (s *Service) ResolveSecrets(_ context.Context, names []string) (map[string]string, error) {
	if s.secrets == nil {
		return nil, errNoSecrets
	}
	values := make(map[string]string, len(names))
	for _, name := range names {
		sec, ok := s.secrets.Get(name)
		if !ok || !sec.Exists() {
			return nil, fmt.Errorf("secret %q: %w (deleted after the task was created?)", name, domain.ErrNotFound)
		}
		if s.sealer == nil {
			return nil, fmt.Errorf("secret %q: %w", name, errNoSealer)
		}
		v, err := s.sealer.Open(name, sec.KeyID, sec.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("secret %q (version %d): %w", name, sec.Version, err)
		}
		values[name] = string(v)
	}
	return values, nil
}

// checkSecretRefs refuses an environment that refers to a secret that
// does not exist, or by a name that is not valid, naming each (what says
// whose environment it is: "task", `step "a"`).
func (s *Service) checkSecretRefs(what string, env map[string]string) error {
	names, err := engine.SecretRefs(env)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var unknown []string
	for _, name := range names {
		if sec, ok := s.secretOf(name); !ok || !sec.Exists() {
			unknown = append(unknown, fmt.Sprintf("%q", name))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: %s: env refers to unknown secret %s (set it first: jetprop secret set NAME)",
			domain.ErrInvalid, what, strings.Join(unknown, ", "))
	}
	return nil
}

func (s *Service) secretOf(name string) (engine.Secret, bool) {
	if s.secrets == nil {
		return engine.Secret{}, false
	}
	return s.secrets.Get(name)
}
