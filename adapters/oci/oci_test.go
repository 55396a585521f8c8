package oci_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/testing/registrytest"
)

func TestClient_PushPull(t *testing.T) {
	reg := registrytest.Start(t)
	c := newClient(t)
	module := wasmModule(t, 4096)
	manifest := push(t, c, reg.Ref("demo/add:v1"), module)

	for _, ref := range []string{reg.Ref("demo/add:v1"), reg.Ref("demo/add@" + manifest), reg.Ref("demo/add:ignored@" + manifest)} {
		t.Run(ref, func(t *testing.T) {
			m, got, err := pullAll(t, c, ref, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, module) {
				t.Fatalf("pulled %d bytes, not the module pushed", len(got))
			}
			want := oci.Layer{Ref: reg.Ref("demo/add@" + manifest), Manifest: manifest,
				Digest: digestOf(module), Size: int64(len(module)), MediaType: oci.MediaTypeWasmLayer}
			if m.Layer != want {
				t.Fatalf("layer %+v, want %+v", m.Layer, want)
			}
		})
	}
	if again := push(t, c, reg.Ref("demo/add:v1"), module); again != manifest {
		t.Fatalf("pushing the same module again gave manifest %s, want %s", again, manifest)
	}
}

func TestClient_TagHonoured(t *testing.T) {
	reg := registrytest.Start(t)
	c := newClient(t)
	v1, v2 := wasmModule(t, 1000), wasmModule(t, 2000)
	push(t, c, reg.Ref("demo/add:v1"), v1)
	push(t, c, reg.Ref("demo/add:v2"), v2)
	push(t, c, reg.Ref("demo/add:latest"), v2)
	tests := []struct {
		ref  string
		want []byte
	}{
		{"demo/add:v1", v1},
		{"demo/add:v2", v2},
		{"demo/add", v2}, // no tag: latest
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			_, got, err := pullAll(t, c, reg.Ref(tc.ref), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("%s gave the module of another tag", tc.ref)
			}
		})
	}
}

const (
	typeTarGzip      = "application/vnd.oci.image.layer.v1.tar+gzip"
	typeDockerLayer  = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	typeDockerConfig = "application/vnd.docker.container.image.v1+json"
	typeDockerV2     = "application/vnd.docker.distribution.manifest.v2+json"
)

func TestClient_LayerSelection(t *testing.T) {
	reg := registrytest.Start(t)
	c := newClient(t)
	r := rawRepo(t, reg, "demo/select")
	wasm, other := wasmModule(t, 3000), wasmModule(t, 3000)
	junk := blob{typeTarGzip, []byte("not the module")}
	emptyConfig := blob{ocispec.MediaTypeEmptyJSON, []byte("{}")}
	tests := []struct {
		name     string
		manifest string
		config   blob
		layers   []blob
		want     []byte
		wantErr  error
	}{
		{"wasm layer among others", ocispec.MediaTypeImageManifest, emptyConfig,
			[]blob{junk, {oci.MediaTypeWasmLayer, wasm}, {"application/json", []byte(`{"a":1}`)}}, wasm, nil},
		{"application/wasm", ocispec.MediaTypeImageManifest, emptyConfig,
			[]blob{{"text/plain", []byte("readme")}, {oci.MediaTypeWasm, wasm}}, wasm, nil},
		{"vnd.wasm layer before application/wasm", ocispec.MediaTypeImageManifest, emptyConfig,
			[]blob{{oci.MediaTypeWasm, other}, {oci.MediaTypeWasmLayer, wasm}}, wasm, nil},
		{"wasmCloud module.wasm variant", ocispec.MediaTypeImageManifest, emptyConfig,
			[]blob{junk, {oci.MediaTypeModuleWasmLayer, wasm}}, wasm, nil},
		{"wasm-to-oci artifact", ocispec.MediaTypeImageManifest, blob{oci.MediaTypeWasmConfig, []byte("{}")},
			[]blob{{oci.MediaTypeWasmLayer, wasm}}, wasm, nil},
		{"single layer of unknown type", ocispec.MediaTypeImageManifest, emptyConfig,
			[]blob{{"application/octet-stream", wasm}}, wasm, nil},
		{"docker v2 manifest", typeDockerV2, blob{typeDockerConfig, []byte(`{"architecture":"wasm"}`)},
			[]blob{{oci.MediaTypeWasm, wasm}}, wasm, nil},
		{"docker v2 single layer", typeDockerV2, blob{typeDockerConfig, []byte(`{}`)},
			[]blob{{typeDockerLayer, wasm}}, wasm, nil},
		{"two unknown layers", ocispec.MediaTypeImageManifest, emptyConfig,
			[]blob{junk, {"application/octet-stream", wasm}}, nil, oci.ErrNoWasmLayer},
		{"two wasm layers", ocispec.MediaTypeImageManifest, emptyConfig,
			[]blob{{oci.MediaTypeWasm, wasm}, {oci.MediaTypeWasm, other}}, nil, oci.ErrNoWasmLayer},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tag := "case" + string(rune('a'+i))
			pushManifest(t, r, tag, tc.manifest, tc.config, tc.layers...)
			_, got, err := pullAll(t, c, reg.Ref("demo/select:"+tag), 0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && !bytes.Equal(got, tc.want) {
				t.Fatalf("pulled the wrong layer (%d bytes)", len(got))
			}
		})
	}
	t.Run("error lists the media types", func(t *testing.T) {
		_, err := c.Resolve(context.Background(), reg.Ref("demo/select:case"+string(rune('a'+8))))
		for _, mt := range []string{typeTarGzip, "application/octet-stream"} {
			if err == nil || !strings.Contains(err.Error(), mt) {
				t.Fatalf("error %v does not name %s", err, mt)
			}
		}
	})
}

func TestClient_Index(t *testing.T) {
	reg := registrytest.Start(t)
	c := newClient(t)
	r := rawRepo(t, reg, "demo/multi")
	wasm := wasmModule(t, 2000)
	cfg := blob{ocispec.MediaTypeEmptyJSON, []byte("{}")}
	linux := pushManifest(t, r, "linux", ocispec.MediaTypeImageManifest, cfg, blob{typeTarGzip, []byte("a linux image")})
	mod := pushManifest(t, r, "wasm", ocispec.MediaTypeImageManifest, cfg, blob{oci.MediaTypeWasm, wasm})
	linux.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	mod.Platform = &ocispec.Platform{OS: "wasip1", Architecture: "wasm"}
	index := func(ds ...ocispec.Descriptor) ocispec.Index {
		return ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: ds}
	}
	pushJSON(t, r, "both", ocispec.MediaTypeImageIndex, index(linux, mod))
	pushJSON(t, r, "linux-only", ocispec.MediaTypeImageIndex, index(linux, linux))

	m, got, err := pullAll(t, c, reg.Ref("demo/multi:both"), 0)
	if err != nil || !bytes.Equal(got, wasm) {
		t.Fatalf("pull through the index: %v (%d bytes)", err, len(got))
	}
	if m.Manifest != mod.Digest.String() {
		t.Fatalf("resolved manifest %s, want the wasm entry %s", m.Manifest, mod.Digest)
	}
	if _, err := c.Resolve(context.Background(), reg.Ref("demo/multi:linux-only")); !errors.Is(err, oci.ErrNoWasmLayer) {
		t.Fatalf("index without a wasm entry: %v, want ErrNoWasmLayer", err)
	}
}

func TestClient_NotFound(t *testing.T) {
	reg := registrytest.Start(t)
	c := newClient(t)
	push(t, c, reg.Ref("demo/add:v1"), wasmModule(t, 100))
	unknown := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		ref     string
		wantMsg string
	}{
		{"demo/add:v3", `tag "v3" not found (tags in "demo/add": v1)`},
		{"demo/add", `tag "latest" not found (tags in "demo/add": v1)`},
		{"demo/add@" + unknown, "manifest " + unknown + " not found"},
		{"demo/nothing:v1", `repository "demo/nothing" not found on ` + reg.Host},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := c.Pull(context.Background(), reg.Ref(tc.ref), 0)
			if !errors.Is(err, oci.ErrNotFound) {
				t.Fatalf("err %v, want ErrNotFound", err)
			}
			want := "oci: pull " + reg.Ref(tc.ref) + ": " + tc.wantMsg
			if !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("message\n %s\nwant\n %s", err, want)
			}
		})
	}
}

func TestClient_InvalidReference(t *testing.T) {
	c := newClient(t)
	for _, ref := range []string{"add.wasm", "localhost:5000/demo/add@sha256:abc", "localhost:5000/Demo/Add:v1", "localhost:5000/demo/add:bad tag"} {
		if _, err := c.Pull(context.Background(), ref, 0); !errors.Is(err, oci.ErrInvalidReference) {
			t.Errorf("%q: %v, want ErrInvalidReference", ref, err)
		}
	}
}

func TestClient_DigestMismatch(t *testing.T) {
	reg := registrytest.Start(t)
	c := newClient(t)
	module := wasmModule(t, 5000)
	push(t, c, reg.Ref("demo/add:v1"), module)
	path := reg.BlobPath(digestOf(module))

	t.Run("bytes changed on the registry", func(t *testing.T) {
		bad := bytes.Clone(module)
		bad[len(bad)-1] ^= 0xff
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := pullAll(t, c, reg.Ref("demo/add:v1"), 0)
		if !errors.Is(err, oci.ErrDigestMismatch) {
			t.Fatalf("err %v, want ErrDigestMismatch", err)
		}
		st, obj := newStore(t, 0)
		if _, _, err := oci.Import(context.Background(), c, st, reg.Ref("demo/add:v1")); !errors.Is(err, oci.ErrDigestMismatch) {
			t.Fatalf("import: %v, want ErrDigestMismatch", err)
		}
		if got := objects(t, obj); len(got) != 0 {
			t.Fatalf("store holds %v after a failed import", got)
		}
	})
	t.Run("truncated on the registry", func(t *testing.T) {
		if err := os.WriteFile(path, module[:100], 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := pullAll(t, c, reg.Ref("demo/add:v1"), 0)
		if !errors.Is(err, oci.ErrDigestMismatch) {
			t.Fatalf("err %v, want ErrDigestMismatch", err)
		}
	})
}

func TestClient_PushErrors(t *testing.T) {
	reg := registrytest.Start(t)
	c := newClient(t)
	module, stored := wasmModule(t, 1000), wasmModule(t, 1000)
	push(t, c, reg.Ref("demo/add:v0"), stored)
	ctx := context.Background()
	tests := []struct {
		name    string
		ref     string
		body    []byte
		size    int64
		digest  string
		wantErr error
	}{
		{"wrong digest", "demo/add:v1", module, int64(len(module)), digestOf([]byte("other")), oci.ErrDigestMismatch},
		{"short module", "demo/add:v1", module[:500], int64(len(module)), digestOf(module), oci.ErrDigestMismatch},
		{"long module", "demo/add:v1", append(bytes.Clone(module), 1), int64(len(module)), digestOf(module), oci.ErrDigestMismatch},
		{"stored digest, other size", "demo/add:v1", stored[:999], 999, digestOf(stored), oci.ErrDigestMismatch},
		{"digest reference", "demo/add@" + digestOf(module), module, int64(len(module)), digestOf(module), oci.ErrInvalidReference},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Push(ctx, reg.Ref(tc.ref), bytes.NewReader(tc.body), tc.size, tc.digest)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
	if _, err := c.Resolve(ctx, reg.Ref("demo/add:v1")); !errors.Is(err, oci.ErrNotFound) {
		t.Fatalf("a failed push left a tag behind: %v", err)
	}
}

func TestClient_BasicAuth(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("alice", "s3cret"))
	module := wasmModule(t, 1000)
	push(t, newClient(t, oci.WithBasicAuth("alice", "s3cret")), reg.Ref("demo/add:v1"), module)
	tests := []struct {
		name    string
		opts    []oci.Option
		wantErr error
	}{
		{"right credentials", []oci.Option{oci.WithBasicAuth("alice", "s3cret")}, nil},
		{"right credentials for this host", []oci.Option{oci.WithBasicAuth("alice", "s3cret"), oci.WithCredentialHost(reg.Host)}, nil},
		{"wrong password", []oci.Option{oci.WithBasicAuth("alice", "wrong")}, oci.ErrUnauthorized},
		{"unknown user", []oci.Option{oci.WithBasicAuth("mallory", "s3cret")}, oci.ErrUnauthorized},
		{"no credentials", nil, oci.ErrUnauthorized},
		{"credentials for another host", []oci.Option{oci.WithBasicAuth("alice", "s3cret"), oci.WithCredentialHost("elsewhere:5000")}, oci.ErrUnauthorized},
		{"a token where basic auth is asked", []oci.Option{oci.WithBearerToken("tok")}, oci.ErrUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.opts...)
			_, got, err := pullAll(t, c, reg.Ref("demo/add:v1"), 0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("pull: %v, want %v", err, tc.wantErr)
			}
			if err == nil && !bytes.Equal(got, module) {
				t.Fatal("pulled other bytes")
			}
			_, err = c.Push(context.Background(), reg.Ref("demo/add:"+strings.ReplaceAll(tc.name, " ", "-")),
				bytes.NewReader(module), int64(len(module)), digestOf(module))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("push: %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestClient_BearerToken(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithTokenAuth())
	module := wasmModule(t, 1000)
	rw := newClient(t, oci.WithBearerToken(reg.Token(t, "demo/add", "pull", "push")))
	push(t, rw, reg.Ref("demo/add:v1"), module)
	tests := []struct {
		name    string
		opts    []oci.Option
		wantErr error
	}{
		{"pull token", []oci.Option{oci.WithBearerToken(reg.Token(t, "demo/add", "pull"))}, nil},
		{"token for another repository", []oci.Option{oci.WithBearerToken(reg.Token(t, "demo/other", "pull"))}, oci.ErrUnauthorized},
		{"forged token", []oci.Option{oci.WithBearerToken("eyJhbGciOiJub25lIn0.e30.c2ln")}, oci.ErrUnauthorized},
		{"no token", nil, oci.ErrUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := pullAll(t, newClient(t, tc.opts...), reg.Ref("demo/add:v1"), 0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err == nil && !bytes.Equal(got, module) {
				t.Fatal("pulled other bytes")
			}
		})
	}
}

func TestClient_TooLarge(t *testing.T) {
	reg := registrytest.Start(t)
	module := wasmModule(t, 64<<10)
	push(t, newClient(t), reg.Ref("demo/big:v1"), module)
	count, hc := countingClient()
	c := newClient(t, oci.WithHTTPClient(hc))

	if _, err := c.Pull(context.Background(), reg.Ref("demo/big:v1"), int64(len(module)-1)); !errors.Is(err, domain.ErrTooLarge) {
		t.Fatalf("pull: %v, want domain.ErrTooLarge", err)
	}
	st, obj := newStore(t, 32<<10)
	if _, _, err := oci.Import(context.Background(), c, st, reg.Ref("demo/big:v1")); !errors.Is(err, domain.ErrTooLarge) {
		t.Fatalf("import: %v, want domain.ErrTooLarge", err)
	}
	if n := count.blobGets.Load(); n != 0 {
		t.Fatalf("%d blob downloads, want none", n)
	}
	if got := objects(t, obj); len(got) != 0 {
		t.Fatalf("store holds %v", got)
	}
	_, got, err := pullAll(t, c, reg.Ref("demo/big:v1"), int64(len(module)))
	if err != nil || !bytes.Equal(got, module) {
		t.Fatalf("pull at exactly the limit: %v", err)
	}
}

func TestClient_Unreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	c := newClient(t)
	ref := host + "/demo/add:v1"
	_, err = c.Pull(context.Background(), ref, 0)
	if !errors.Is(err, oci.ErrUnreachable) {
		t.Fatalf("err %v, want ErrUnreachable", err)
	}
	if want := "oci: pull " + ref + ": registry " + host + " unreachable: "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("message %q, want prefix %q", err, want)
	}
	var oe *oci.Error
	if !errors.As(err, &oe) || oe.Op != "pull" || oe.Ref != ref {
		t.Fatalf("not an *oci.Error naming the reference: %#v", err)
	}
}

func TestNew_Options(t *testing.T) {
	tests := []struct {
		name string
		opts []oci.Option
	}{
		{"basic auth without password", []oci.Option{oci.WithBasicAuth("alice", "")}},
		{"basic auth and token", []oci.Option{oci.WithBasicAuth("alice", "pw"), oci.WithBearerToken("tok")}},
		{"empty token", []oci.Option{oci.WithBearerToken("")}},
		{"nil logger", []oci.Option{oci.WithLogger(nil)}},
		{"nil http client", []oci.Option{oci.WithHTTPClient(nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := oci.New(tc.opts...); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

func TestIsRegistryHost(t *testing.T) {
	for s, want := range map[string]bool{
		"localhost": true, "localhost:5000": true, "ghcr.io": true, "127.0.0.1:38197": true,
		"demo": false, "library": false, "": false,
	} {
		if got := oci.IsRegistryHost(s); got != want {
			t.Errorf("IsRegistryHost(%q) = %v, want %v", s, got, want)
		}
	}
}
