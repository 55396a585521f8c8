package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/engine/service"
)

// Importer implements service.Importer over the OCI adapter: it pulls
// modules from registries into the module store and pushes stored modules
// to registries. Credentials given with a request are sent only to the
// registry its reference names; a request without credentials uses the
// server's (--oci-username, --oci-password, --oci-token), sent only to the
// registries of --oci-registry-hosts, as for task images: every other
// registry is asked anonymously. Plain HTTP is used when the request or
// --oci-plain-http asks for it. Secrets are never logged.
type Importer struct {
	modules  *artifacts.Store
	defaults service.ImportOptions
	hosts    []string    // where the defaults' credentials go
	def      *oci.Client // the defaults' client, kept for its token cache
	log      *slog.Logger
}

var _ service.Importer = (*Importer)(nil)

// Log keys.
const (
	logRef     = "ref"
	logDigest  = "digest"
	logOptions = "options"
)

// NewImporter returns an importer into modules with the server's default
// registry options, whose credentials go only to hosts ("host[:port]").
// Credentials without hosts are refused: they would go to any registry a
// user names.
func NewImporter(modules *artifacts.Store, defaults service.ImportOptions, hosts []string, log *slog.Logger) (*Importer, error) {
	if defaults.HasCredentials() && len(hosts) == 0 {
		return nil, errors.New("oci: the server's registry credentials need the registry hosts they go to")
	}
	i := &Importer{modules: modules, defaults: defaults, hosts: hosts, log: log}
	def, err := oci.New(i.options(defaults, hosts)...)
	if err != nil {
		return nil, fmt.Errorf("oci client: %w", err)
	}
	i.def = def
	return i, nil
}

// importDefaults are the registry options of the server's --oci-* flags.
func importDefaults(cfg Config) service.ImportOptions {
	return service.ImportOptions{PlainHTTP: cfg.OCIPlainHTTP, Username: cfg.OCIUsername, Password: cfg.OCIPassword, Token: cfg.OCIToken}
}

// Import implements service.Importer.
func (i *Importer) Import(ctx context.Context, ref string, opts service.ImportOptions) (string, int64, error) {
	c, err := i.client(ref, opts)
	if err != nil {
		return "", 0, err
	}
	i.log.InfoContext(ctx, "importing module from OCI registry", logRef, ref, logOptions, i.effective(opts))
	digest, size, err := oci.Import(ctx, c, i.modules, ref)
	if err != nil {
		return "", 0, classify(err)
	}
	return digest, size, nil
}

// Export implements service.Importer: the module streams from the object
// store to the registry.
func (i *Importer) Export(ctx context.Context, digest, ref string, opts service.ImportOptions) (string, error) {
	c, err := i.client(ref, opts)
	if err != nil {
		return "", err
	}
	rc, size, err := i.modules.Open(ctx, digest)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	manifest, err := c.Push(ctx, ref, rc, size, digest)
	if err != nil {
		return "", classify(err)
	}
	i.log.InfoContext(ctx, "exported module to OCI registry", logRef, ref, logDigest, digest, "manifest", manifest)
	return manifest, nil
}

// effective is what a request's options amount to with the defaults.
func (i *Importer) effective(opts service.ImportOptions) service.ImportOptions {
	if !opts.HasCredentials() {
		opts.Username, opts.Password, opts.Token = i.defaults.Username, i.defaults.Password, i.defaults.Token
	}
	opts.PlainHTTP = opts.PlainHTTP || i.defaults.PlainHTTP
	return opts
}

// client returns the client for one request: the request's credentials
// go to the registry its reference names, the server's to its hosts.
func (i *Importer) client(ref string, opts service.ImportOptions) (*oci.Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if !opts.HasCredentials() && (!opts.PlainHTTP || i.defaults.PlainHTTP) {
		return i.def, nil
	}
	hosts := i.hosts
	if opts.HasCredentials() {
		hosts = []string{registryHost(ref)}
	}
	c, err := oci.New(i.options(i.effective(opts), hosts)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", domain.ErrInvalid, err)
	}
	return c, nil
}

// options are the client options for o; its credentials go only to hosts.
func (i *Importer) options(o service.ImportOptions, hosts []string) []oci.Option {
	out := []oci.Option{oci.WithPlainHTTP(o.PlainHTTP), oci.WithLogger(i.log)}
	switch {
	case o.Token != "":
		out = append(out, oci.WithBearerToken(o.Token))
	case o.Username != "":
		out = append(out, oci.WithBasicAuth(o.Username, o.Password))
	}
	if len(hosts) > 0 {
		out = append(out, oci.WithCredentialHost(hosts...))
	}
	return out
}

// registryHost is the registry part of an OCI reference ("host[:port]").
func registryHost(ref string) string {
	host, _, _ := strings.Cut(ref, "/")
	return host
}

// classify marks an OCI failure with the engine's condition, which the
// HTTP API turns into a status: an unknown repository, tag or digest is
// domain.ErrNotFound (404); a reference that does not parse or an artifact
// without a wasm layer is domain.ErrInvalid (400); a module too large or
// not wasm keeps the module store's error (413, 400); anything else the
// registry caused (credentials refused, unreachable, content that does not
// match its digest, another answer) is domain.ErrUpstream (502).
func classify(err error) error {
	var kind error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, domain.ErrTooLarge), errors.Is(err, domain.ErrNotWasm):
		return err
	case errors.Is(err, oci.ErrNotFound):
		kind = domain.ErrNotFound
	case errors.Is(err, oci.ErrInvalidReference), errors.Is(err, oci.ErrNoWasmLayer):
		kind = domain.ErrInvalid
	default:
		kind = domain.ErrUpstream
	}
	return &registryError{kind: kind, err: err}
}

// registryError is an OCI failure marked with an engine condition; its
// message is the OCI adapter's (which names the registry and what it said).
type registryError struct{ kind, err error }

func (e *registryError) Error() string   { return e.err.Error() }
func (e *registryError) Unwrap() []error { return []error{e.kind, e.err} }
