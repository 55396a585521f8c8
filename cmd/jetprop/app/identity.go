package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jetprop/jetprop/engine/service"
)

// stableID returns the id kept in dataDir/name, making one (prefix + a
// ULID) on first use. The engine's MQTT client id is stable per data dir, so
// a crashed engine leaves no session record behind on the broker, and every
// replica (each with its own data dir) has its own.
func stableID(dataDir, name, prefix string) (string, error) {
	path := filepath.Join(dataDir, name)
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	id := prefix + service.NewULIDs().New()
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return id, nil
}
