package oci

import (
	"context"
	_ "crypto/sha256" // digest algorithms a manifest may use
	_ "crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jetprop/jetprop/engine/domain"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
)

// maxManifestSize bounds the manifests and indexes read into memory.
const maxManifestSize = 4 << 20

// Layer is the wasm layer a reference resolves to.
type Layer struct {
	Ref       string // resolved reference: host/repository@<manifest digest>
	Manifest  string // digest of the manifest the layer was chosen from
	Digest    string // the layer's digest, "sha256:<hex>"
	Size      int64  // the layer's size in bytes
	MediaType string // the layer's media type
}

// Module is a module being pulled: its layer and a reader of its bytes.
// Reader verifies the digest and size as it goes: the read that reaches the
// end returns ErrDigestMismatch instead of io.EOF when the bytes are not
// the layer's. The caller closes Reader.
type Module struct {
	Layer
	Reader io.ReadCloser
}

// target is a parsed reference and the repository it names.
type target struct {
	written string // as the caller wrote it
	ref     registry.Reference
	repo    *remote.Repository
}

func (c *Client) target(op, written string) (target, error) {
	ref, err := registry.ParseReference(written)
	if err != nil {
		return target{}, &Error{Op: op, Ref: written, Kind: ErrInvalidReference,
			Msg: "not a reference of the form host/repository[:tag] or host/repository@sha256:<hex>", Err: err}
	}
	if ref.Reference == "" {
		ref.Reference = DefaultTag
	}
	return target{written: written, ref: ref, repo: c.repository(ref)}, nil
}

func (t target) host() string { return t.ref.Registry }

func (t target) pinned(d string) string { return t.ref.Registry + "/" + t.ref.Repository + "@" + d }

// Resolve finds the wasm layer ref names without downloading it.
func (c *Client) Resolve(ctx context.Context, ref string) (Layer, error) {
	t, err := c.target("resolve", ref)
	if err != nil {
		return Layer{}, err
	}
	return c.resolve(ctx, "resolve", t)
}

// Pull resolves ref and opens its wasm layer. A layer larger than maxSize
// (when maxSize > 0) fails with domain.ErrTooLarge before any of it is
// downloaded.
func (c *Client) Pull(ctx context.Context, ref string, maxSize int64) (Module, error) {
	t, err := c.target("pull", ref)
	if err != nil {
		return Module{}, err
	}
	l, err := c.resolve(ctx, "pull", t)
	if err != nil {
		return Module{}, err
	}
	if err := checkSize("pull", t, l, maxSize); err != nil {
		return Module{}, err
	}
	rc, err := c.open(ctx, "pull", t, l)
	if err != nil {
		return Module{}, err
	}
	return Module{Layer: l, Reader: rc}, nil
}

func checkSize(op string, t target, l Layer, maxSize int64) error {
	if maxSize > 0 && l.Size > maxSize {
		return &Error{Op: op, Ref: t.written, Kind: domain.ErrTooLarge,
			Msg: fmt.Sprintf("layer %s is %d bytes, more than the %d allowed", l.Digest, l.Size, maxSize)}
	}
	return nil
}

// resolve fetches the manifest (through an index if need be) and chooses
// the layer.
func (c *Client) resolve(ctx context.Context, op string, t target) (Layer, error) {
	desc, m, err := c.fetchManifest(ctx, op, t, t.ref.Reference)
	if err != nil {
		return Layer{}, err
	}
	if m.isIndex() {
		child, err := selectManifest(m)
		if err != nil {
			return Layer{}, &Error{Op: op, Ref: t.written, Kind: ErrNoWasmLayer, Msg: err.Error()}
		}
		if desc, m, err = c.fetchManifest(ctx, op, t, child.Digest.String()); err != nil {
			return Layer{}, err
		}
	}
	layer, err := selectLayer(m)
	if err != nil {
		return Layer{}, &Error{Op: op, Ref: t.written, Kind: ErrNoWasmLayer, Msg: err.Error()}
	}
	l := Layer{Ref: t.pinned(desc.Digest.String()), Manifest: desc.Digest.String(),
		Digest: layer.Digest.String(), Size: layer.Size, MediaType: layer.MediaType}
	c.log.DebugContext(ctx, "oci: resolved", logRef, t.written, logResolved, l.Ref,
		logLayer, l.Digest, logType, l.MediaType, logSize, l.Size)
	return l, nil
}

// fetchManifest fetches and parses the manifest or index reference (a tag
// or digest) names, verified against its digest.
func (c *Client) fetchManifest(ctx context.Context, op string, t target, reference string) (ocispec.Descriptor, manifest, error) {
	desc, rc, err := t.repo.FetchReference(ctx, reference)
	if err != nil {
		return desc, manifest{}, c.manifestError(ctx, op, t, reference, err)
	}
	defer closeQuietly(rc)
	fail := func(kind error, msg string, err error) (ocispec.Descriptor, manifest, error) {
		return desc, manifest{}, &Error{Op: op, Ref: t.written, Kind: kind, Msg: msg, Err: err}
	}
	if desc.Size > maxManifestSize {
		return fail(nil, fmt.Sprintf("manifest %s is %d bytes, more than the %d read", desc.Digest, desc.Size, maxManifestSize), nil)
	}
	b, err := content.ReadAll(rc, desc)
	if err != nil {
		if isMismatch(err) {
			return fail(ErrDigestMismatch, fmt.Sprintf("manifest does not match its digest %s", desc.Digest), err)
		}
		return desc, manifest{}, c.fail(op, t.written, t.host(), err)
	}
	m, err := parseManifest(desc.MediaType, b)
	if err != nil {
		return fail(nil, fmt.Sprintf("manifest %s: %v", desc.Digest, err), err)
	}
	return desc, m, nil
}

// manifestError says which of repository, tag or digest was not found.
func (c *Client) manifestError(ctx context.Context, op string, t target, reference string, err error) error {
	e := c.fail(op, t.written, t.host(), err)
	if errors.Is(e.Kind, ErrNotFound) {
		e.Msg = c.notFoundMessage(ctx, t, reference)
	}
	return e
}

// errStop ends a tag listing after its first page.
var errStop = errors.New("stop")

// maxTagsShown bounds the tags listed in a not-found message.
const maxTagsShown = 10

func (c *Client) notFoundMessage(ctx context.Context, t target, reference string) string {
	what := fmt.Sprintf("tag %q", reference)
	if _, err := digest.Parse(reference); err == nil {
		what = "manifest " + reference
	}
	var tags []string
	err := t.repo.Tags(ctx, "", func(page []string) error { tags = append(tags, page...); return errStop })
	if err != nil && !errors.Is(err, errStop) {
		if _, kind := c.describe(t.host(), err); errors.Is(kind, ErrNotFound) {
			return fmt.Sprintf("repository %q not found on %s", t.ref.Repository, t.host())
		}
		return what + " not found"
	}
	if len(tags) == 0 {
		return fmt.Sprintf("%s not found (repository %q has no tags)", what, t.ref.Repository)
	}
	shown := tags[:min(len(tags), maxTagsShown)]
	more := ""
	if len(tags) > len(shown) {
		more = ", ..."
	}
	return fmt.Sprintf("%s not found (tags in %q: %s%s)", what, t.ref.Repository, strings.Join(shown, ", "), more)
}

// open starts the download of l and returns a verifying reader.
func (c *Client) open(ctx context.Context, op string, t target, l Layer) (io.ReadCloser, error) {
	served, rc, err := t.repo.Blobs().FetchReference(ctx, t.pinned(l.Digest))
	if err != nil {
		e := c.fail(op, t.written, t.host(), err)
		if errors.Is(e.Kind, ErrNotFound) {
			e.Msg = fmt.Sprintf("layer %s of manifest %s is missing from %s", l.Digest, l.Manifest, t.host())
		}
		return nil, e
	}
	if served.Size != l.Size {
		closeQuietly(rc)
		return nil, &Error{Op: op, Ref: t.written, Kind: ErrDigestMismatch,
			Msg: fmt.Sprintf("registry serves %d bytes for layer %s, the manifest says %d", served.Size, l.Digest, l.Size)}
	}
	desc := ocispec.Descriptor{MediaType: l.MediaType, Digest: digest.Digest(l.Digest), Size: l.Size}
	return &layerReader{body: rc, vr: content.NewVerifyReader(rc, desc), c: c, op: op, t: t, l: l}, nil
}

func isMismatch(err error) bool {
	return errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// layerReader streams a layer, verifying size and digest; its errors are
// *Error like every other.
type layerReader struct {
	body io.ReadCloser
	vr   *content.VerifyReader
	c    *Client
	op   string
	t    target
	l    Layer
	n    int64
	err  error
}

func (r *layerReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.vr.Read(p)
	r.n += int64(n)
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		r.err = io.EOF
		if verr := r.vr.Verify(); verr != nil {
			r.err = r.mismatch(verr)
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
		r.err = r.mismatch(err)
	default:
		r.err = r.c.fail(r.op, r.t.written, r.t.host(), err)
	}
	return n, r.err
}

func (r *layerReader) mismatch(err error) error {
	msg := fmt.Sprintf("layer %s does not match its digest", r.l.Digest)
	if r.n != r.l.Size || errors.Is(err, content.ErrTrailingData) {
		msg = fmt.Sprintf("layer %s: read %d bytes, the manifest says %d", r.l.Digest, r.n, r.l.Size)
	}
	return &Error{Op: r.op, Ref: r.t.written, Kind: ErrDigestMismatch, Msg: msg, Err: err}
}

func (r *layerReader) Close() error { return r.body.Close() }

// manifest holds the fields of every manifest and index type read here.
type manifest struct {
	MediaType string               `json:"mediaType"`
	Config    ocispec.Descriptor   `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
	Blobs     []ocispec.Descriptor `json:"blobs"`     // OCI artifact manifest
	Manifests []ocispec.Descriptor `json:"manifests"` // index, Docker manifest list
}

func (m manifest) isIndex() bool {
	return m.MediaType == ocispec.MediaTypeImageIndex || m.MediaType == mediaTypeDockerManifestList
}

// parseManifest decodes b, whose type is the registry's Content-Type or,
// when that is not a manifest type, the document's own mediaType.
func parseManifest(contentType string, b []byte) (manifest, error) {
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return manifest{}, fmt.Errorf("not valid JSON: %w", err)
	}
	if known(contentType) {
		m.MediaType = contentType
	}
	if !known(m.MediaType) {
		return manifest{}, fmt.Errorf("unsupported manifest type %q (want an OCI image manifest, a Docker v2 schema 2 manifest or an index)", m.MediaType)
	}
	return m, nil
}

func known(mediaType string) bool {
	switch mediaType {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest, mediaTypeArtifactManifest,
		ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		return true
	}
	return false
}
