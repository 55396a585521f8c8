// Package registrytest runs a real OCI registry for one test: Debian's
// docker-registry binary (the CNCF distribution registry v2) on a random
// loopback port, with its storage in a temp dir and a generated config.
//
// The registry can require basic auth (an htpasswd file the harness writes)
// or bearer tokens (JWTs the harness signs with a key the registry trusts), so
// tests exercise the same authentication handshakes a client meets in
// production.
//
// Tests skip when the binary is missing, unless JETPROP_REQUIRE_REGISTRY is
// set (CI sets it), in which case they fail. JETPROP_REGISTRY_BIN names
// another binary (for example the upstream "registry" build).
package registrytest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
	"golang.org/x/crypto/bcrypt"
)

// Environment variables the harness reads.
const (
	EnvRequire = "JETPROP_REQUIRE_REGISTRY" // non-empty: a missing binary fails the test
	EnvBinary  = "JETPROP_REGISTRY_BIN"     // path of the registry binary to run
)

// binaries are looked up on PATH, in order, when EnvBinary is not set:
// Debian's package name first, then the upstream one.
var binaries = []string{"docker-registry", "registry"}

const (
	readyTimeout = 15 * time.Second
	stopTimeout  = 5 * time.Second
	startTries   = 3
)

// Registry is a running registry.
type Registry struct {
	Host     string // "127.0.0.1:<port>", the registry part of a reference
	Dir      string // storage root directory
	Username string // set by WithBasicAuth
	Password string // set by WithBasicAuth

	htpasswd string // path of the htpasswd file, when basic auth is on
	token    *tokenIssuer
	cmd      *exec.Cmd
	done     chan struct{}
	logPath  string
}

type config struct {
	username, password string
	token              bool
}

// Option configures the registry.
type Option func(*config)

// WithBasicAuth makes the registry require HTTP basic auth with this user.
func WithBasicAuth(username, password string) Option {
	return func(c *config) { c.username, c.password = username, password }
}

// WithTokenAuth makes the registry require bearer tokens (the distribution
// token protocol) signed by a key only this harness holds; mint them with
// Registry.Token. The realm named in the registry's challenge does not
// exist: clients must already hold a token.
func WithTokenAuth() Option {
	return func(c *config) { c.token = true }
}

// Start runs a registry for the test and stops it at cleanup.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	bin := binary(t)
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	r := &Registry{Dir: t.TempDir(), Username: cfg.username, Password: cfg.password}
	etc := t.TempDir()
	r.setupAuth(t, cfg, etc)
	var err error
	for range startTries {
		if err = r.start(bin, etc); err == nil {
			t.Cleanup(func() { r.stop(t) })
			return r
		}
	}
	t.Fatalf("registrytest: %v\n%s", err, r.log())
	return nil
}

// binary finds the registry binary or skips (fails under EnvRequire).
func binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvBinary); p != "" {
		return p
	}
	for _, name := range binaries {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "registrytest: no registry binary (install Debian's docker-registry package: apt-get install -y docker-registry)"
	if os.Getenv(EnvRequire) != "" {
		t.Fatalf("%s; %s is set", msg, EnvRequire)
	}
	t.Skipf("%s; set %s=1 to make this a failure", msg, EnvRequire)
	return ""
}

// Ref returns the reference of path ("repo:tag", "repo@sha256:...") on
// this registry.
func (r *Registry) Ref(path string) string { return r.Host + "/" + path }

// URL is the registry's base URL.
func (r *Registry) URL() string { return "http://" + r.Host }

// BlobPath is the file holding a blob ("sha256:<hex>") in the storage
// directory, for tests that corrupt what the registry serves.
func (r *Registry) BlobPath(digest string) string {
	hexPart := domain.DigestHex(digest)
	if len(hexPart) < 2 {
		return ""
	}
	return filepath.Join(r.Dir, "docker", "registry", "v2", "blobs", "sha256", hexPart[:2], hexPart, "data")
}

// start runs the binary on a fresh port and waits until /v2/ answers.
func (r *Registry) start(bin, etc string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	r.Host = fmt.Sprintf("127.0.0.1:%d", port)
	path := filepath.Join(etc, "config.yml")
	if err := os.WriteFile(path, []byte(r.configYAML()), 0o600); err != nil {
		return err
	}
	r.logPath = filepath.Join(etc, "registry.log")
	logf, err := os.Create(r.logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	r.cmd = exec.Command(bin, "serve", path)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	r.done = make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	return r.waitReady()
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the registry binds it; Start then tries again.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls GET /v2/ until it answers (200, or 401 when auth is on).
func (r *Registry) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for wait := 5 * time.Millisecond; time.Now().Before(deadline); wait = min(wait*2, 100*time.Millisecond) {
		select {
		case <-r.done:
			return fmt.Errorf("registry on %s exited during start", r.Host)
		default:
		}
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(wait)
	}
	r.kill()
	return fmt.Errorf("registry on %s not ready after %s", r.Host, readyTimeout)
}

// stop ends the process and shows its log when the test failed.
func (r *Registry) stop(t testing.TB) {
	r.kill()
	if t.Failed() {
		t.Logf("registrytest: log of the registry on %s:\n%s", r.Host, r.log())
	}
}

// kill asks the registry to stop, kills it after stopTimeout, and waits.
func (r *Registry) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

func (r *Registry) log() string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return string(b)
}

// setupAuth writes the files auth needs under etc.
func (r *Registry) setupAuth(t testing.TB, cfg config, etc string) {
	t.Helper()
	switch {
	case cfg.username != "" && cfg.token:
		t.Fatal("registrytest: WithBasicAuth and WithTokenAuth are exclusive")
	case cfg.username != "":
		r.htpasswd = filepath.Join(etc, "htpasswd")
		if err := writeHtpasswd(r.htpasswd, cfg.username, cfg.password); err != nil {
			t.Fatalf("registrytest: %v", err)
		}
	case cfg.token:
		issuer, err := newTokenIssuer(filepath.Join(etc, "token-roots.pem"))
		if err != nil {
			t.Fatalf("registrytest: %v", err)
		}
		r.token = issuer
	}
}

// authYAML is the "auth:" section of the config ("" for an open registry).
func (r *Registry) authYAML() string {
	switch {
	case r.htpasswd != "":
		return fmt.Sprintf("auth:\n  htpasswd:\n    realm: registrytest\n    path: %q\n", r.htpasswd)
	case r.token != nil:
		return r.token.configYAML(r.URL())
	}
	return ""
}

// writeHtpasswd writes one "user:bcrypt-hash" line, the format the
// registry's htpasswd access controller reads. The minimum bcrypt cost keeps
// every authenticated request fast.
func writeHtpasswd(path, username, password string) error {
	if username == "" || strings.ContainsAny(username, ":\n") || password == "" {
		return errors.New("htpasswd needs a username without ':' and a password")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s:%s\n", username, hash)
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// configYAML is the registry's configuration, written as plain text at
// each start (the address, and the token realm, name the current port).
func (r *Registry) configYAML() string {
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: %q
  headers:
    X-Content-Type-Options: [nosniff]
%s`, r.Dir, r.Host, randomHex(16), r.authYAML())
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
