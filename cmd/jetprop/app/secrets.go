package app

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/jetprop/jetprop/adapters/sealer"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
)

// SecretsKeyFile is the key file a server with GenerateSecretsKey (`jetprop
// up` in dev mode) keeps in its data directory, made at the first secret
// set.
const SecretsKeyFile = "secrets.key"

// SecretsKeyPath is where a server with data directory dataDir and
// GenerateSecretsKey keeps its key.
func SecretsKeyPath(dataDir string) string { return filepath.Join(dataDir, SecretsKeyFile) }

// errNoSecretsKey refuses to seal or open a secret on a server started
// without a key: there is no insecure fallback.
var errNoSecretsKey = fmt.Errorf("%w: this server has no key for secrets; start it with --secrets-key-file FILE "+
	"(JETPROP_SECRETS_KEY_FILE) or JETPROP_SECRETS_KEY holding 32 random bytes in base64 (head -c 32 /dev/urandom | base64)",
	domain.ErrUnsupported)

// noSecretsKey is the sealer of a server without a key.
type noSecretsKey struct{}

var _ service.Sealer = noSecretsKey{}

func (noSecretsKey) Seal(string, []byte) ([]byte, string, error) { return nil, "", errNoSecretsKey }
func (noSecretsKey) Open(string, string, []byte) ([]byte, error) { return nil, errNoSecretsKey }

// sealer returns the sealer of secrets the config asks for, and where its
// key is (never the key).
func (a *App) sealer() (service.Sealer, string, error) {
	switch {
	case a.cfg.SecretsKey != "":
		key, err := sealer.ParseKey([]byte(a.cfg.SecretsKey))
		if err != nil {
			return nil, "", fmt.Errorf("JETPROP_SECRETS_KEY: %w", err)
		}
		s, err := sealer.New(key)
		if err != nil {
			return nil, "", err
		}
		return s, "JETPROP_SECRETS_KEY (key id " + s.KeyID() + ")", nil
	case a.cfg.SecretsKeyFile != "":
		s, err := sealer.FromFile(a.cfg.SecretsKeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("--secrets-key-file: %w", err)
		}
		return s, a.cfg.SecretsKeyFile + " (key id " + s.KeyID() + ")", nil
	case a.cfg.GenerateSecretsKey:
		path := SecretsKeyPath(a.cfg.DataDir)
		return sealer.NewKeyFile(path), path + " (dev mode: made at the first secret set, beside the event log)", nil
	}
	return noSecretsKey{}, "none (secrets can be neither set nor sent)", nil
}

// logSecretsKey logs where the key of secrets is, and warns when stored
// secrets do not open with it: tasks that refer to them will fail.
func (a *App) logSecretsKey(s service.Sealer, where string) {
	a.log.Info("secrets key", "key", where)
	all, _ := a.secs.List(0, math.MaxInt)
	bad := 0
	for _, sec := range all {
		if _, err := s.Open(sec.Name, sec.KeyID, sec.Ciphertext); err != nil {
			bad++
		}
	}
	if bad > 0 {
		a.log.Warn("stored secrets do not open with this server's key (none given, or another one): tasks that refer to them will fail",
			"secrets", bad, "key", where)
	}
}
