package natsserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// globalAccount is the account everything lived in before the server had
// two (the engine's and the devices').
const globalAccount = "$G"

// migrateStore moves a store written before the accounts existed: the
// event streams, buckets and timers of the global account go to the
// engine's account, the MQTT listener's streams ($MQTT_*) to the devices'.
// A store already split, or a new one, is left as it is.
func migrateStore(dataDir string) error {
	root := filepath.Join(dataDir, "jetstream")
	old := filepath.Join(root, globalAccount, "streams")
	entries, err := os.ReadDir(old)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("natsserver: migrate store: %w", err)
	}
	for _, e := range entries {
		to := EngineAccount
		if strings.HasPrefix(e.Name(), "$MQTT_") {
			to = DevicesAccount
		}
		dst := filepath.Join(root, to, "streams")
		if err := os.MkdirAll(dst, 0o750); err != nil {
			return fmt.Errorf("natsserver: migrate store: %w", err)
		}
		if err := os.Rename(filepath.Join(old, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return fmt.Errorf("natsserver: migrate store: %w", err)
		}
	}
	return os.RemoveAll(filepath.Join(root, globalAccount))
}
