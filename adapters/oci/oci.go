// Package oci moves wasm modules between OCI registries and jetprop, with
// oras-go v2.
//
// References are written "host[:port]/repository[:tag]" or
// "host[:port]/repository@sha256:<hex>" and are honoured exactly: a tag is
// resolved as that tag, a digest as that manifest digest. A reference without
// a tag or digest means the tag "latest" (DefaultTag), as with docker and
// oras. "host/repo:tag@sha256:..." pulls the digest and ignores the tag. The
// registry host is always part of the reference: there is no Docker Hub
// default.
//
// Pull reads OCI image manifests, Docker v2 schema 2 manifests and OCI
// artifact manifests, and follows an image index (or Docker manifest list)
// to its "wasm" platform entry or its only entry. The module is the layer
// chosen by media type, in this order:
//
//  1. MediaTypeWasmLayer ("application/vnd.wasm.content.layer.v1+wasm"), the
//     layer type of wasm-to-oci (whose artifacts carry the config type
//     MediaTypeWasmConfig), Propeller's examples and most wasm tooling;
//  2. MediaTypeWasm ("application/wasm"), the CNCF wasm OCI artifact layout;
//  3. MediaTypeModuleWasmLayer, the variant some wasmCloud/Krustlet builds of
//     wasm-to-oci wrote;
//  4. otherwise the only layer of a single-layer artifact, whatever its type.
//
// Anything else (several layers, none of a wasm type) is ErrNoWasmLayer, with
// the media types found in the message. The layer is verified against its
// descriptor's digest and size while it streams.
//
// Push writes the standard wasm artifact: config MediaTypeWasmConfig ("{}"),
// one layer of MediaTypeWasmLayer, an OCI image manifest, tagged as given.
package oci

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/jetprop/jetprop/engine/domain"
)

// Media types of wasm artifacts.
const (
	MediaTypeWasmLayer       = "application/vnd.wasm.content.layer.v1+wasm"
	MediaTypeWasm            = "application/wasm"
	MediaTypeModuleWasmLayer = "application/vnd.module.wasm.content.layer.v1+wasm"
	MediaTypeWasmConfig      = "application/vnd.wasm.config.v1+json"
)

// Manifest media types that are not in image-spec.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeArtifactManifest   = "application/vnd.oci.artifact.manifest.v1+json"
)

// DefaultTag is the tag of a reference that names none.
const DefaultTag = "latest"

// userAgent is sent with every request.
const userAgent = "jetprop"

// Log keys.
const (
	logRef      = "ref"
	logResolved = "resolved"
	logLayer    = "layer"
	logType     = "media_type"
	logSize     = "size"
)

// Client talks to OCI registries. It is safe for concurrent use; credentials
// and tokens obtained from a registry are cached for the client's lifetime.
type Client struct {
	plainHTTP bool
	cred      auth.Credential
	credHosts []string // the only hosts the credentials go to; none: any
	http      *http.Client
	log       *slog.Logger
	doer      remote.Client
}

// Option configures a Client.
type Option func(*Client) error

// WithPlainHTTP talks HTTP instead of HTTPS to every registry (for loopback
// and lab registries).
func WithPlainHTTP(on bool) Option {
	return func(c *Client) error { c.plainHTTP = on; return nil }
}

// WithBasicAuth sends this username and password when a registry asks for
// them (basic auth, or the distribution token protocol's token endpoint).
func WithBasicAuth(username, password string) Option {
	return func(c *Client) error {
		if username == "" || password == "" {
			return errors.New("oci: basic auth needs a username and a password")
		}
		c.cred.Username, c.cred.Password = username, password
		return nil
	}
}

// WithBearerToken presents token (a registry access token) when a registry
// asks for a bearer token.
func WithBearerToken(token string) Option {
	return func(c *Client) error {
		if token == "" {
			return errors.New("oci: empty bearer token")
		}
		c.cred.AccessToken = token
		return nil
	}
}

// WithCredentialHost sends the credentials only to these registries
// ("host[:port]", as written in references, compared without regard to
// case); every other registry is asked anonymously. By default they go to
// any registry that asks; set this when references come from users.
func WithCredentialHost(hosts ...string) Option {
	return func(c *Client) error {
		for _, h := range hosts {
			if h = strings.TrimSpace(h); h == "" {
				return errors.New("oci: empty credential host")
			}
			c.credHosts = append(c.credHosts, strings.ToLower(h))
		}
		return nil
	}
}

// WithHTTPClient replaces the HTTP client (default: oras' retrying client,
// which retries 5xx, 429 and timeouts with backoff).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("oci: nil HTTP client")
		}
		c.http = hc
		return nil
	}
}

// WithLogger sets the logger (debug records of what was resolved and
// fetched). Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return errors.New("oci: nil logger")
		}
		c.log = l
		return nil
	}
}

// New returns a client.
func New(opts ...Option) (*Client, error) {
	c := &Client{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.cred.AccessToken != "" && c.cred.Username != "" {
		return nil, errors.New("oci: choose basic auth or a bearer token, not both")
	}
	if c.http == nil {
		c.http = retry.NewClient()
	}
	ac := &auth.Client{Client: c.http, Cache: auth.NewCache(), Credential: c.credential}
	ac.SetUserAgent(userAgent)
	c.doer = authDoer{ac}
	return c, nil
}

func (c *Client) credential(_ context.Context, host string) (auth.Credential, error) {
	if !c.credentialFor(host) {
		return auth.EmptyCredential, nil
	}
	return c.cred, nil
}

// credentialFor reports whether the credentials go to host.
func (c *Client) credentialFor(host string) bool {
	return c.credHosts == nil || slices.Contains(c.credHosts, strings.ToLower(host))
}

func (c *Client) hasCredential() bool { return c.cred != auth.EmptyCredential }

// repository is the oras client for ref's repository.
func (c *Client) repository(ref registry.Reference) *remote.Repository {
	return &remote.Repository{Client: c.doer, Reference: ref, PlainHTTP: c.plainHTTP}
}

// authDoer marks the errors of the authentication handshake (no
// credential for a challenge, a token endpoint that refused or failed) so
// they read as ErrUnauthorized. auth.Client returns transport errors as
// *url.Error and registry answers as responses; anything else comes from
// resolving credentials.
type authDoer struct{ c *auth.Client }

func (d authDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.c.Do(req)
	if err != nil && !errors.As(err, new(*url.Error)) {
		return nil, &authError{err}
	}
	return resp, err
}

type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// closeQuietly closes rc, for deferred closes whose error does not matter
// (the content was verified or the operation already failed).
func closeQuietly(rc io.Closer) { _ = rc.Close() }

// IsRegistryHost reports whether the first path element of a reference
// names a registry host rather than a repository: it holds a "." or a port,
// or is localhost (the rule Docker and oras use).
func IsRegistryHost(s string) bool { return domain.IsRegistryHost(s) }
