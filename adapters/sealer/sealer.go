// Package sealer seals jetprop's secrets with AES-256-GCM: a random 96-bit
// nonce for every value, the secret's name as additional data (a value
// moved to another name does not open), under a 256-bit key that the event
// store never sees. A sealed value is the nonce followed by the ciphertext
// and its 16-byte tag. It is the server's service.Sealer.
//
// The key is 32 random bytes, raw or in base64, in a file or in the
// environment (ParseKey, ReadKeyFile); KeyFile makes one at the first
// seal, for a single box. Each key has an id (a hash of it), stored beside
// every value it sealed, so a server with another key says so instead of
// failing to open it. Nothing here changes keys: rotation is not built.
package sealer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the size of a key: 32 bytes, for AES-256.
const KeySize = 32

// Conditions of Open.
var (
	// ErrWrongKey: the value was sealed with another key than this one.
	ErrWrongKey = errors.New("sealed with another key")
	// ErrTampered: the value does not open under its name with its key:
	// it, or the name it is stored under, was altered.
	ErrTampered = errors.New("does not open: the sealed value or its name was altered")
)

// AESGCM seals and opens values with one key. It is safe for concurrent
// use.
type AESGCM struct {
	id   string
	aead cipher.AEAD
}

// New returns a sealer with key, which must be KeySize bytes.
func New(key []byte) (*AESGCM, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("sealer: the key has %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	return &AESGCM{id: KeyID(key), aead: aead}, nil
}

// KeyID names a key without giving it away: the first 8 bytes of the
// SHA-256 of a label and the key, in hex.
func KeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("jetprop secrets key id\x00"), key...))
	return hex.EncodeToString(sum[:8])
}

// KeyID is the id of this sealer's key.
func (s *AESGCM) KeyID() string { return s.id }

// Seal seals value for the secret name and returns it with the key's id.
func (s *AESGCM) Seal(name string, value []byte) ([]byte, string, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(value)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // never fails (crypto/rand)
	return s.aead.Seal(nonce, nonce, value, []byte(name)), s.id, nil
}

// Open opens a value Seal sealed for name with the key keyID names.
func (s *AESGCM) Open(name, keyID string, sealed []byte) ([]byte, error) {
	if keyID != s.id {
		return nil, fmt.Errorf("%w: key %s, this server's key is %s", ErrWrongKey, keyID, s.id)
	}
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrTampered
	}
	value, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(name))
	if err != nil {
		return nil, ErrTampered
	}
	return value, nil
}
