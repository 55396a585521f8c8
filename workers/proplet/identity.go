package proplet

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// idFile is where a generated proplet id is kept, under the data dir.
const idFile = "proplet-id"

// loadOrCreateID returns the id kept in dir, creating and saving a UUID
// the first time, so restarts keep the id (and with it the MQTT session).
// A UUID, since Propeller's manager takes only UUIDs as proplet ids (GET
// /proplets/{id} is 400 on anything else): a jetprop proplet under a
// Propeller manager can be looked up. A data dir made before keeps its id
// (a ULID), whatever it is.
func loadOrCreateID(dir string) (string, error) {
	path := filepath.Join(dir, idFile)
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("proplet: read id: %w", err)
	}
	id, err := newUUID()
	if err != nil {
		return "", fmt.Errorf("proplet: new id: %w", err)
	}
	if err := writeFileAtomic(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("proplet: save id: %w", err)
	}
	return id, nil
}

// writeFileAtomic writes via a temp file and rename, so a crash never
// leaves a half-written id.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// newUUID returns a random (version 4) UUID in its canonical lowercase
// form, as Propeller's manager and proplets make them.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
