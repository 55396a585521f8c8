package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// DigestPrefix starts every module digest.
const DigestPrefix = "sha256:"

// ValidDigest reports whether d is "sha256:" and 64 lower-case hex digits.
func ValidDigest(d string) bool {
	h, ok := strings.CutPrefix(d, DigestPrefix)
	return ok && validHex(h)
}

// ParseDigest returns the hex part of "sha256:<hex>", or an error that is
// ErrBadDigest.
func ParseDigest(d string) (string, error) {
	h, ok := strings.CutPrefix(d, DigestPrefix)
	if !ok || !validHex(h) {
		return "", fmt.Errorf("%w: %q", ErrBadDigest, d)
	}
	return h, nil
}

// DigestHex returns d without its "sha256:" prefix (d itself when it has
// none). It does not validate.
func DigestHex(d string) string { return strings.TrimPrefix(d, DigestPrefix) }

// DigestOf returns the digest of b.
func DigestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return DigestPrefix + hex.EncodeToString(sum[:])
}

// Hasher computes a digest over what is written to it.
type Hasher struct{ h hash.Hash }

// NewHasher returns an empty Hasher.
func NewHasher() *Hasher { return &Hasher{h: sha256.New()} }

// Write adds p to the digest; it never fails.
func (d *Hasher) Write(p []byte) (int, error) { return d.h.Write(p) }

// Digest returns "sha256:<hex>" of everything written so far.
func (d *Hasher) Digest() string { return DigestPrefix + hex.EncodeToString(d.h.Sum(nil)) }

func validHex(h string) bool {
	if len(h) != sha256.Size*2 {
		return false
	}
	for _, r := range h {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
