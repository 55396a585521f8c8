package sealer_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jetprop/jetprop/adapters/sealer"
)

var (
	keyA = bytes.Repeat([]byte{0xA5}, sealer.KeySize)
	keyB = bytes.Repeat([]byte{0x5A}, sealer.KeySize)
)

func mustNew(t testing.TB, key []byte) *sealer.AESGCM {
	t.Helper()
	s, err := sealer.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAESGCM_SealOpen(t *testing.T) {
	a, b := mustNew(t, keyA), mustNew(t, keyB)
	value := []byte("hunter2-the-password")
	sealed, kid, err := a.Seal("db", value)
	if err != nil || kid != a.KeyID() || kid == b.KeyID() || len(kid) != 16 {
		t.Fatalf("Seal: key id %q (a %q, b %q), %v", kid, a.KeyID(), b.KeyID(), err)
	}
	if bytes.Contains(sealed, value) || len(sealed) != 12+len(value)+16 {
		t.Fatalf("sealed %d bytes: %x", len(sealed), sealed)
	}
	again, _, _ := a.Seal("db", value)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	if got, err := a.Open("db", kid, sealed); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name, secret, keyID string
		with                *sealer.AESGCM
		sealed              []byte
		wantErr             error
	}{
		{"under another name", "db2", kid, a, sealed, sealer.ErrTampered},
		{"with another key", "db", kid, b, sealed, sealer.ErrWrongKey},
		{"naming another key", "db", b.KeyID(), a, sealed, sealer.ErrWrongKey},
		{"altered", "db", kid, a, flipped, sealer.ErrTampered},
		{"cut short", "db", kid, a, sealed[:20], sealer.ErrTampered},
		{"empty", "db", kid, a, nil, sealer.ErrTampered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.with.Open(tc.secret, tc.keyID, tc.sealed)
			if !errors.Is(err, tc.wantErr) || got != nil {
				t.Fatalf("Open = %q, %v; want %v", got, err, tc.wantErr)
			}
		})
	}
}

func TestNew_KeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := sealer.New(make([]byte, n)); err == nil {
			t.Errorf("New with a %d-byte key: no error", n)
		}
	}
}

func TestParseKey(t *testing.T) {
	std := base64.StdEncoding.EncodeToString(keyA)
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr bool
	}{
		{"raw bytes", keyA, keyA, false},
		{"raw bytes that look like white space", bytes.Repeat([]byte{' '}, 32), bytes.Repeat([]byte{' '}, 32), false},
		{"base64 with a newline", []byte(std + "\n"), keyA, false},
		{"base64 without padding", []byte(strings.TrimRight(std, "=")), keyA, false},
		{"base64url", []byte(base64.URLEncoding.EncodeToString(keyB)), keyB, false},
		{"base64 of 16 bytes", []byte(base64.StdEncoding.EncodeToString(keyA[:16])), nil, true},
		{"hex", []byte(strings.Repeat("a5", 32)), nil, true},
		{"empty", nil, nil, true},
		{"31 raw bytes", keyA[:31], nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sealer.ParseKey(tc.in)
			if tc.wantErr {
				if !errors.Is(err, sealer.ErrBadKey) || len(tc.in) > 4 && strings.Contains(err.Error(), string(tc.in)) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("ParseKey = %x, %v", got, err)
			}
		})
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "secrets.key")
	k := sealer.NewKeyFile(path)
	if _, err := k.Open("db", "k", []byte("x")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open before any key: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Open made a key")
	}
	sealed, kid, err := k.Seal("db", []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	key, err := sealer.ReadKeyFile(path)
	if err != nil || sealer.KeyID(key) != kid {
		t.Fatalf("key file holds key %s, want %s: %v", sealer.KeyID(key), kid, err)
	}
	// Another process on the same file: the same key.
	if got, err := sealer.NewKeyFile(path).Open("db", kid, sealed); err != nil || string(got) != "v1" {
		t.Fatalf("Open through another KeyFile = %q, %v", got, err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*"))
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestKeyFile_Hammer has many sealers make the same key file at once: they
// all end up with one key.
func TestKeyFile_Hammer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.key")
	const n = 16
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, kid, err := sealer.NewKeyFile(path).Seal("db", []byte("v"))
			if err != nil {
				t.Errorf("seal %d: %v", i, err)
			}
			ids[i] = kid
		})
	}
	wg.Wait()
	for i, id := range ids {
		if id != ids[0] {
			t.Fatalf("sealer %d has key %s, sealer 0 %s", i, id, ids[0])
		}
	}
}

func TestFromFile(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	os.WriteFile(good, keyB, 0o600)
	os.WriteFile(bad, []byte("not a key at all, but long enough to be quoted"), 0o600)
	if s, err := sealer.FromFile(good); err != nil || s.KeyID() != sealer.KeyID(keyB) {
		t.Fatalf("FromFile(raw key) = %v, %v", s, err)
	}
	if _, err := sealer.FromFile(bad); !errors.Is(err, sealer.ErrBadKey) || strings.Contains(err.Error(), "not a key") {
		t.Fatalf("FromFile(bad) = %v", err)
	}
	if _, err := sealer.FromFile(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("FromFile(missing) = %v", err)
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add([]byte(base64.StdEncoding.EncodeToString(keyA)))
	f.Add(keyA)
	f.Add([]byte(" \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, err := sealer.ParseKey(b)
		if err == nil && len(key) != sealer.KeySize {
			t.Fatalf("ParseKey returned %d bytes", len(key))
		}
	})
}

func FuzzAESGCM_Open(f *testing.F) {
	s := mustNew(f, keyA)
	sealed, _, _ := s.Seal("db", []byte("value"))
	f.Add("db", sealed)
	f.Add("", []byte{})
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		got, err := s.Open(name, s.KeyID(), b)
		if err == nil && (name != "db" || !bytes.Equal(b, sealed) || string(got) != "value") {
			t.Fatalf("Open(%q, %x) = %q: a forgery opened", name, b, got)
		}
	})
}
