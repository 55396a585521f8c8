package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

// Importer moves modules between OCI registries and the module store. The
// composition root implements it over the OCI adapter. Its errors wrap
// domain.ErrNotFound (unknown repository, tag or digest), domain.ErrInvalid (a reference
// that does not parse, content that is not a wasm module), domain.ErrUpstream (the
// registry refused the credentials, could not be reached or served bad
// content), or the module store's own errors (too large, not wasm).
type Importer interface {
	// Import stores the module ref names (by tag or by digest, as
	// written) and returns its digest and size. A module already stored
	// is not downloaded again.
	Import(ctx context.Context, ref string, opts ImportOptions) (digest string, size int64, err error)
	// Export pushes the stored module digest to the registry as ref (a
	// tag) and returns the manifest digest.
	Export(ctx context.Context, digest, ref string, opts ImportOptions) (manifestDigest string, err error)
}

// ImportOptions says how to reach a registry for one import or export.
// Empty credentials mean the importer's defaults (the server's --oci-*
// flags). It never prints its secrets: String and LogValue redact them.
type ImportOptions struct {
	PlainHTTP bool   // talk plain HTTP (loopback and lab registries)
	Username  string // basic auth, with Password
	Password  string
	Token     string // a bearer (registry access) token, instead of Username
}

// Validate checks that the credentials go together.
func (o ImportOptions) Validate() error {
	switch {
	case o.Token != "" && (o.Username != "" || o.Password != ""):
		return fmt.Errorf("%w: give a username and password, or a token, not both", domain.ErrInvalid)
	case (o.Username == "") != (o.Password == ""):
		return fmt.Errorf("%w: a username needs a password and a password a username", domain.ErrInvalid)
	}
	return nil
}

// HasCredentials reports whether the options carry credentials of their own.
func (o ImportOptions) HasCredentials() bool { return o.Username != "" || o.Token != "" }

// String describes the options without their secrets.
func (o ImportOptions) String() string {
	auth := "none"
	switch {
	case o.Token != "":
		auth = "token"
	case o.Username != "":
		auth = "basic(" + o.Username + ")"
	}
	return fmt.Sprintf("plain_http=%t auth=%s", o.PlainHTTP, auth)
}

// LogValue logs the options without their secrets.
func (o ImportOptions) LogValue() slog.Value { return slog.StringValue(o.String()) }

// WithImporter lets the service import modules from OCI registries and
// export them back.
func WithImporter(i Importer) ServiceOption {
	return func(s *Service) { s.importer = i }
}

// ImportArtifact stores the module the OCI reference ref names and points
// name:tag at it, recording ref as the module's source. An empty name is
// taken from ref: the repository's last path element and ref's tag
// ("registry:5000/demo/add:v2" is add:v2); a reference by digest only is
// tagged "sha256-" and the first 12 hex digits of that digest
// ("host/demo/add@sha256:1a2b..." is add:sha256-1a2b...); a reference with
// neither is tagged DefaultTag. Name and tag are checked before anything is
// downloaded. Importing a digest already stored downloads nothing.
func (s *Service) ImportArtifact(ctx context.Context, ref, name string, opts ImportOptions) (engine.ArtifactTag, error) {
	if s.importer == nil {
		return engine.ArtifactTag{}, fmt.Errorf("%w: this server imports no OCI images", domain.ErrUnsupported)
	}
	target, err := importTarget(ref, name)
	if err != nil {
		return engine.ArtifactTag{}, err
	}
	if err := opts.Validate(); err != nil {
		return engine.ArtifactTag{}, err
	}
	digest, size, err := s.importer.Import(ctx, ref, opts)
	if err != nil {
		return engine.ArtifactTag{}, err
	}
	return s.tag(ctx, engine.TagArtifact{Name: target.Name, Tag: target.Tag, Digest: digest, Size: size,
		MediaType: engine.MediaTypeWasm, Source: ref})
}

// ExportArtifact pushes the module ref names (name:tag, name or a digest)
// to an OCI registry as the reference to (host/repository:tag; without a
// tag, DefaultTag; a digest is refused), and returns the module's catalog
// row and the manifest digest the registry stored.
func (s *Service) ExportArtifact(ctx context.Context, ref, to string, opts ImportOptions) (engine.ArtifactTag, string, error) {
	if s.importer == nil {
		return engine.ArtifactTag{}, "", fmt.Errorf("%w: this server exports no OCI images", domain.ErrUnsupported)
	}
	if strings.TrimSpace(to) == "" {
		return engine.ArtifactTag{}, "", fmt.Errorf("%w: give the OCI reference to export to (host/repository:tag)", domain.ErrInvalid)
	}
	if err := opts.Validate(); err != nil {
		return engine.ArtifactTag{}, "", err
	}
	row, err := s.GetArtifact(ctx, ref)
	if err != nil {
		return engine.ArtifactTag{}, "", err
	}
	m, err := s.importer.Export(ctx, row.Digest, to, opts)
	return row, m, err
}

// importTarget is the name:tag an import of ref is stored under.
func importTarget(ref, name string) (engine.ArtifactRef, error) {
	if strings.TrimSpace(ref) == "" {
		return engine.ArtifactRef{}, fmt.Errorf("%w: give the OCI reference to import (host/repository:tag or host/repository@sha256:...)", domain.ErrInvalid)
	}
	if name != "" {
		r, err := pushRef(name, "")
		if err != nil {
			return engine.ArtifactRef{}, err
		}
		return r, nil
	}
	r := engine.ArtifactRef{Name: repoName(ref), Tag: refTag(ref)}
	if err := r.Validate(); err != nil {
		return engine.ArtifactRef{}, fmt.Errorf("%w: %s:%s, taken from %q, is no artifact name:tag (names are letters, digits, - and _): give one with name (--name NAME[:TAG])",
			domain.ErrInvalid, r.Name, r.Tag, ref)
	}
	return r, nil
}

// repoName is the last path element of ref's repository.
func repoName(ref string) string {
	repo, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo[strings.LastIndex(repo, "/")+1:]
}

// refTag is ref's tag, else "<algorithm>-<12 hex digits>" of its digest,
// else DefaultTag.
func refTag(ref string) string {
	repo, digest, byDigest := strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		return repo[i+1:]
	}
	if byDigest {
		alg, hexPart, _ := strings.Cut(digest, ":")
		return alg + "-" + hexPart[:min(len(hexPart), 12)]
	}
	return engine.DefaultTag
}
