package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// AdminTokenFile is the file in the data directory where a server with
// Auth writes the admin token it creates when it has none (mode 0600).
const AdminTokenFile = "admin.token"

// AdminTokenPath is where the server with data directory dataDir keeps
// the admin token it bootstrapped.
func AdminTokenPath(dataDir string) string { return filepath.Join(dataDir, AdminTokenFile) }

// bootstrapToken makes sure a server that requires tokens can be used:
// with no active admin token it creates one and writes it to
// AdminTokenPath, logging where it is, never what it is.
func (a *App) bootstrapToken(ctx context.Context) error {
	path := AdminTokenPath(a.cfg.DataDir)
	t, created, err := a.svc.BootstrapToken(ctx, func(secret string) error { return writeSecret(path, secret) })
	if err != nil {
		return fmt.Errorf("auth: bootstrap an admin token: %w", err)
	}
	if created {
		a.log.Warn("auth: no admin token was active; created one, readable by this user only",
			"token_id", t.ID, "file", path)
	}
	return nil
}

// writeSecret replaces path with secret and a newline, readable and
// writable by the owner only, through a temporary file and a rename, so
// that no reader sees half a token.
func writeSecret(path, secret string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, there is nothing to remove
	err = errors.Join(f.Chmod(0o600), write(f, secret+"\n"), f.Sync(), f.Close())
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(f.Name(), path)
}

func write(f *os.File, s string) error {
	_, err := f.WriteString(s)
	return err
}

// AdminTokenFileExists reports whether the data directory holds a
// bootstrapped admin token file.
func (a *App) AdminTokenFileExists() bool {
	_, err := os.Stat(AdminTokenPath(a.cfg.DataDir))
	return !errors.Is(err, fs.ErrNotExist)
}
