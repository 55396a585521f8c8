package oci

import (
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerPreference lists the layer media types that hold a wasm module, the
// preferred first (see the package documentation).
var layerPreference = []string{MediaTypeWasmLayer, MediaTypeWasm, MediaTypeModuleWasmLayer}

// wasmArchitecture is the platform architecture of wasm entries in an index.
const wasmArchitecture = "wasm"

// selectLayer chooses the layer holding the module.
func selectLayer(m manifest) (ocispec.Descriptor, error) {
	layers := m.Layers
	if len(layers) == 0 {
		layers = m.Blobs
	}
	if len(layers) == 0 {
		return ocispec.Descriptor{}, errors.New("the manifest has no layers")
	}
	for _, mt := range layerPreference {
		found := withMediaType(layers, mt)
		switch {
		case len(found) == 1:
			return validLayer(found[0])
		case len(found) > 1:
			return ocispec.Descriptor{}, fmt.Errorf("%d layers of type %s: cannot tell which is the module", len(found), mt)
		}
	}
	if len(layers) == 1 {
		return validLayer(layers[0])
	}
	return ocispec.Descriptor{}, fmt.Errorf("none of the %d layers is wasm (media types: %s; want %s, or a single layer)",
		len(layers), strings.Join(mediaTypes(layers), ", "), strings.Join(layerPreference, ", "))
}

func withMediaType(ds []ocispec.Descriptor, mt string) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	for _, d := range ds {
		if d.MediaType == mt {
			out = append(out, d)
		}
	}
	return out
}

func mediaTypes(ds []ocispec.Descriptor) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.MediaType
	}
	return out
}

func validLayer(d ocispec.Descriptor) (ocispec.Descriptor, error) {
	if err := d.Digest.Validate(); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("layer digest %q: %w", d.Digest, err)
	}
	if d.Size < 0 {
		return ocispec.Descriptor{}, fmt.Errorf("layer %s has a negative size", d.Digest)
	}
	return d, nil
}

// selectManifest chooses an index entry: the one for the wasm architecture,
// else the only one.
func selectManifest(idx manifest) (ocispec.Descriptor, error) {
	var wasm []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if d.Platform != nil && d.Platform.Architecture == wasmArchitecture {
			wasm = append(wasm, d)
		}
	}
	switch {
	case len(wasm) == 1:
		return wasm[0], nil
	case len(wasm) == 0 && len(idx.Manifests) == 1:
		return idx.Manifests[0], nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("the index lists %d manifests (platforms: %s), %d of them for architecture %q: cannot tell which holds the module",
		len(idx.Manifests), strings.Join(platforms(idx.Manifests), ", "), len(wasm), wasmArchitecture)
}

func platforms(ds []ocispec.Descriptor) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = "unknown"
		if p := d.Platform; p != nil {
			out[i] = p.OS + "/" + p.Architecture
		}
	}
	return out
}
