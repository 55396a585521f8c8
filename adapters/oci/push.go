package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// wasmConfig is the config blob of pushed artifacts, as wasm-to-oci wrote.
var wasmConfig = []byte("{}")

// Push uploads module (size bytes with the given "sha256:<hex>" digest) as
// a wasm OCI artifact: config MediaTypeWasmConfig, one layer of
// MediaTypeWasmLayer, an OCI image manifest tagged as ref says (DefaultTag
// when it names none). The manifest holds no timestamp, so pushing the same
// module twice gives the same manifest digest. A blob the registry already
// has (same digest and size) is not uploaded again, and module is then not
// read. Returns the manifest digest.
func (c *Client) Push(ctx context.Context, ref string, module io.Reader, size int64, dgst string) (string, error) {
	t, err := c.target("push", ref)
	if err != nil {
		return "", err
	}
	if _, err := digest.Parse(t.ref.Reference); err == nil {
		return "", &Error{Op: "push", Ref: ref, Kind: ErrInvalidReference, Msg: "push needs a tag, not a digest"}
	}
	layer, err := layerDescriptor(dgst, size)
	if err != nil {
		return "", &Error{Op: "push", Ref: ref, Msg: err.Error(), Err: err}
	}
	if err := c.pushBlob(ctx, t, layer, module); err != nil {
		return "", err
	}
	config := content.NewDescriptorFromBytes(MediaTypeWasmConfig, wasmConfig)
	if err := c.pushBlob(ctx, t, config, bytes.NewReader(wasmConfig)); err != nil {
		return "", err
	}
	m, err := c.pushManifest(ctx, t, config, layer)
	if err != nil {
		return "", err
	}
	c.log.DebugContext(ctx, "oci: pushed", logRef, ref, logResolved, t.pinned(m), logLayer, dgst, logSize, size)
	return m, nil
}

func layerDescriptor(dgst string, size int64) (ocispec.Descriptor, error) {
	d, err := digest.Parse(dgst)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("module digest %q: %w", dgst, err)
	}
	if size < 0 {
		return ocispec.Descriptor{}, fmt.Errorf("module size %d", size)
	}
	return ocispec.Descriptor{MediaType: MediaTypeWasmLayer, Digest: d, Size: size}, nil
}

// pushBlob uploads r as desc unless the registry has a blob of that digest
// and size. r is read through a VerifyReader, so a module shorter or longer
// than its size, or with other bytes than its digest, is ErrDigestMismatch.
func (c *Client) pushBlob(ctx context.Context, t target, desc ocispec.Descriptor, r io.Reader) error {
	have, err := t.repo.Blobs().Resolve(ctx, t.pinned(desc.Digest.String()))
	switch {
	case err == nil && have.Size == desc.Size:
		return nil
	case err == nil:
		return &Error{Op: "push", Ref: t.written, Kind: ErrDigestMismatch,
			Msg: fmt.Sprintf("the registry holds %s with %d bytes, not %d", desc.Digest, have.Size, desc.Size)}
	case !errors.Is(err, errdef.ErrNotFound):
		return c.fail("push", t.written, t.host(), err)
	}
	vr := content.NewVerifyReader(r, desc)
	err = t.repo.Blobs().Push(ctx, desc, io.NopCloser(vr))
	verr := vr.Verify()
	switch {
	case errors.Is(verr, io.ErrUnexpectedEOF), errors.Is(verr, content.ErrTrailingData),
		errors.Is(verr, content.ErrMismatchedDigest):
		return &Error{Op: "push", Ref: t.written, Kind: ErrDigestMismatch,
			Msg: fmt.Sprintf("the module does not match digest %s and size %d", desc.Digest, desc.Size), Err: verr}
	case err != nil:
		return c.fail("push", t.written, t.host(), err)
	}
	return nil
}

// pushManifest uploads the manifest under the tag and returns its digest.
func (c *Client) pushManifest(ctx context.Context, t target, config, layer ocispec.Descriptor) (string, error) {
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    []ocispec.Descriptor{layer},
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, b)
	if err := t.repo.Manifests().PushReference(ctx, desc, bytes.NewReader(b), t.ref.Reference); err != nil {
		return "", c.fail("push", t.written, t.host(), err)
	}
	return desc.Digest.String(), nil
}
