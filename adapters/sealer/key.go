package sealer

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ErrBadKey is key material that is not KeySize bytes, raw or in base64.
var ErrBadKey = errors.New("want 32 random bytes, raw or in base64 (e.g. head -c 32 /dev/urandom | base64)")

// ParseKey reads a key: exactly KeySize bytes as they are, or their
// base64 (standard or URL alphabet, padded or not) with white space
// around it. The error never quotes the material.
func ParseKey(b []byte) ([]byte, error) {
	if len(b) == KeySize {
		return bytes.Clone(b), nil // 32 bytes are never the base64 of 32 bytes
	}
	text := strings.TrimRight(strings.TrimSpace(string(b)), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(text); err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	return nil, ErrBadKey
}

// ReadKeyFile reads the key in the file at path (ParseKey).
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// FromFile returns a sealer with the key in the file at path.
func FromFile(path string) (*AESGCM, error) {
	key, err := ReadKeyFile(path)
	if err != nil {
		return nil, err
	}
	return New(key)
}

// KeyFile is a sealer whose key is in a file that it makes, with a new
// random key in base64 and mode 0600, at the first Seal when the file does
// not exist. Until a key exists there is nothing to open. It is safe for
// concurrent use; two processes making the file at once agree on one key
// (the file appears whole and only once, and the loser reads the
// winner's).
type KeyFile struct {
	path string

	mu sync.Mutex
	s  *AESGCM
}

// NewKeyFile returns a sealer over the key in the file at path, made at
// the first Seal.
func NewKeyFile(path string) *KeyFile { return &KeyFile{path: path} }

// Path is where the key is, or will be.
func (k *KeyFile) Path() string { return k.path }

// Seal seals value for name, making the key first if there is none.
func (k *KeyFile) Seal(name string, value []byte) ([]byte, string, error) {
	s, err := k.sealer(true)
	if err != nil {
		return nil, "", err
	}
	return s.Seal(name, value)
}

// Open opens a value sealed for name.
func (k *KeyFile) Open(name, keyID string, sealed []byte) ([]byte, error) {
	s, err := k.sealer(false)
	if err != nil {
		return nil, err
	}
	return s.Open(name, keyID, sealed)
}

func (k *KeyFile) sealer(create bool) (*AESGCM, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.s != nil {
		return k.s, nil
	}
	s, err := FromFile(k.path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err = makeKeyFile(k.path); err == nil || errors.Is(err, fs.ErrExist) {
			s, err = FromFile(k.path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	k.s = s
	return s, nil
}

// makeKeyFile writes a new random key in base64 to path, which must not
// exist, readable and writable by its owner only. The key is written to a
// temporary file first and linked to path, so that nobody reads half a
// key and a path made meanwhile by another process is left as it is
// (fs.ErrExist).
func makeKeyFile(path string) error {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Link(f.Name(), path)
}
